// Subcommands of the kiln command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine_cache.h"

namespace kiln::cli {

struct BuildOptions {
  std::string model;
  std::string output;
  EngineOptions engine;
};
int build_command(const BuildOptions& o);

struct BenchOptions {
  std::string model;  // engine or ONNX model
  EngineOptions engine;
  std::string shapes;
  int iterations = 0;     // at least this many timed runs
  double duration_s = 3;  // and at least this long
  double warmup_s = 0.5;
  bool cuda_graph = false;
  int streams = 1;
  bool profile = false;
  std::string json;
  uint64_t seed = 0;
};
int bench_command(const BenchOptions& o);

struct RunOptions {
  std::string model;
  EngineOptions engine;
  std::vector<std::string> inputs;  // NAME=FILE
  std::string output_dir;
  std::string shapes;  // NAME:DxD,...
  uint64_t seed = 0;
  bool no_optimize = false;
};
int run_command(const RunOptions& o);

struct InspectOptions {
  std::string model;  // ONNX model or engine
  bool ir = false;
  bool json = false;
  bool no_optimize = false;
  bool fp16 = false, bf16 = false;  // --ir: the precision pass as `kiln build` runs it
  bool cuda = false;                // --ir: the passes only CUDA builds run (layout_nhwc)
};
int inspect_command(const InspectOptions& o);

struct ConformanceOptions {
  std::vector<std::string> dirs;
  std::string backend = "cpu";
  bool strict = false;  // cuda: every node on the GPU (expectations column "cuda-strict")
  std::string suite;
  std::string expectations;
  std::string write_expectations;
  int jobs = 2;
  int timeout_s = 120;
  bool verbose = false;
  bool no_fork = false;
};
int conformance_command(const ConformanceOptions& o);

}  // namespace kiln::cli
