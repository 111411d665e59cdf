// Building engines: ONNX model → optimized, placed, serialized engine.
//
//   kiln::BuilderConfig config;                 // CUDA when there is a GPU, FP32 with TF32
//   config.fp16 = true;
//   config.profiles.push_back({{"input", {{1, 3, 224, 224}, {8, 3, 224, 224}, {32, 3, 224,
//   224}}}}); auto bytes = kiln::build_engine("model.onnx", config); auto engine =
//   kiln::Engine::deserialize(*bytes);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln {

enum class Device { kCpu, kCuda };
const char* device_name(Device d);  // "cpu", "cuda"

// The range of shapes one input takes: kernels are tuned at `opt`; a run must stay within
// [min, max] dimension by dimension.
struct ShapeRange {
  std::vector<int64_t> min, opt, max;
};

// One optimization profile: a shape range per dynamic input.
struct OptimizationProfile {
  std::map<std::string, ShapeRange> inputs;
};

struct BuilderConfig {
  Device device = Device::kCuda;
  bool tf32 = true;   // FP32 math may use TF32 tensor cores
  bool fp16 = false;  // allow FP16 kernels (weights converted at build time)
  bool bf16 = false;  // allow BF16 kernels
  uint64_t workspace_bytes = uint64_t{1} << 30;  // scratch memory limit per kernel
  std::vector<OptimizationProfile> profiles;     // none: the model's own static shapes
  std::string timing_cache_path;                 // read and updated when not empty
  int opt_level = 3;                             // 0..5
  bool strict = false;    // a node the device cannot run is an error, not a CPU fallback
  bool progress = false;  // progress bar on stderr
};

// What a build did.
struct BuildReport {
  int nodes = 0;                       // top-level nodes after optimization
  int nodes_on_device = 0;             // of them, placed on the build's device
  std::vector<std::string> fallbacks;  // "[Op 'name' #i]: reason" for each node placed on the CPU
  uint64_t weight_bytes = 0;
  uint64_t peak_activation_bytes = 0;  // at the largest shapes of every profile (0: unknown)
  double seconds = 0;
  // Tactic tuning (CUDA engines, opt level >= 1).
  bool tuned = false;        // the tuning run ran
  int tuned_nodes = 0;       // nodes whose candidate tactics were timed
  int timed_candidates = 0;  // candidate tactics timed in all (0 with a warm timing cache)
  int cache_hits = 0;        // nodes whose tactic came from the timing cache
  double tuning_seconds = 0;
};

// Builds an engine from an ONNX model file; returns the engine file's bytes.
StatusOr<std::vector<uint8_t>> build_engine(const std::string& onnx_path,
                                            const BuilderConfig& config,
                                            BuildReport* report = nullptr);
// Same, and writes the engine to `engine_path`.
Status build_engine_file(const std::string& onnx_path, const std::string& engine_path,
                         const BuilderConfig& config, BuildReport* report = nullptr);

// Parses trtexec-style shape lists: "input:1x3x224x224,mask:1x128". Input names may be quoted
// ('name with:colon':1x3) and may contain ':' when quoted.
StatusOr<std::map<std::string, std::vector<int64_t>>> parse_shape_list(const std::string& spec);

}  // namespace kiln
