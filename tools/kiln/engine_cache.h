// Engines for `kiln run` / `kiln bench` on an ONNX model: built once per model, options and
// device, kept in a cache folder, loaded from there afterwards.
#pragma once

#include <memory>
#include <string>

#include "kiln/kiln.h"

namespace kiln::cli {

// Options shared by build, run and bench.
struct EngineOptions {
  std::string device;  // "cpu", "cuda", "" (cuda when a GPU is usable, else cpu)
  bool fp16 = false;
  bool bf16 = false;
  bool no_tf32 = false;
  uint64_t workspace_mb = 1024;
  std::string min_shapes, opt_shapes, max_shapes;
  std::string timing_cache;
  int opt_level = 3;
  bool strict = false;
  bool no_cache = false;
  bool progress = true;
};

// True when `path` starts with the engine-file magic.
bool is_engine_file(const std::string& path);

// BuilderConfig from the command-line options (device resolved, shapes parsed).
StatusOr<BuilderConfig> builder_config(const EngineOptions& o);

// Loads `path` if it is an engine; otherwise builds one from the ONNX model, through the cache
// unless o.no_cache. Says on stderr whether the engine came from the cache.
StatusOr<std::shared_ptr<Engine>> open_engine(const std::string& path, const EngineOptions& o);

// Prints a build report (fallbacks, memory) to stderr.
void print_build_report(const BuildReport& r, const BuilderConfig& c);

}  // namespace kiln::cli
