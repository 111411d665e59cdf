// The boundary between the builder/runtime and the CUDA backend. No CUDA types: a CPU-only
// build links src/backends/no_cuda/cuda_stub.cc instead of src/backends/cuda.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/datum.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::backend {

struct GpuInfo {
  int sm = 0;
  std::string name;
  int cuda_runtime = 0;
  int cuda_driver = 0;
  int cudnn = 0;
  int cublaslt = 0;
  uint64_t total_memory = 0;
};

// Whether this Kiln was built with the CUDA backend.
bool cuda_built();
// The GPU of this machine; an error (naming why) when there is none or CUDA was not built.
StatusOr<GpuInfo> cuda_device();
// Why the CUDA backend cannot run `node` ("" when it can), from the node's inferred types.
std::string cuda_supports(const ir::Node& node);
// Inputs of `node` the CUDA kernel reads on the host (shape-like tensors).
std::vector<int> cuda_host_inputs(const ir::Node& node);
// Build-time work of the node's CUDA kernel for a GPU of compute capability `sm` (compiled
// kernels stored in the node's attributes); a no-op for most kernels.
Status cuda_embed(ir::Node& node, int sm);
// True when the CUDA kernel of `node` waits on the stream (data-dependent output sizes).
bool cuda_synchronizes(const ir::Node& node);

}  // namespace kiln::backend

namespace kiln::runtime {
struct EngineData;
}
namespace kiln {
class ExecutionContext;
}

namespace kiln::backend {

// Prepares the CUDA side of a loaded engine (kernels, weights on the GPU): a cuda::Program.
StatusOr<std::shared_ptr<const void>> create_cuda_program(const runtime::EngineData& data);
// A context of a CUDA engine (its own stream, arena, handles).
StatusOr<std::unique_ptr<ExecutionContext>> create_cuda_context(
    std::shared_ptr<const runtime::EngineData> data);
// Activation arena bytes a context needed to run `data` with `inputs` (zeros of those
// shapes), or an error when the run fails.
StatusOr<uint64_t> cuda_trial_run(
    std::shared_ptr<const runtime::EngineData> data,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& inputs);

// Input shapes of one run: (input name, shape) in any order.
using InputShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

class TimingCache;

// What the builder's tuning run chose.
struct TuningResult {
  std::vector<int64_t> tactics;  // per node of data.nodes (-1: nothing chosen), profile 0's
  // Per profile (outer) and node: what that profile's tuning run chose (-1: nothing chosen).
  std::vector<std::vector<int64_t>> profile_tactics;
  int nodes_tuned = 0;  // nodes whose candidates were timed
  int candidates_timed = 0;
  int cache_hits = 0;
  std::vector<std::string> notes;  // rejected candidates, failed runs
};

// The tuning run (src/backends/cuda/tuner.h): runs `data` once per entry of `profiles` (fixed-seed
// random inputs of those shapes) and times the candidate tactics of every tunable step, `cache`
// (may be null) answering and recording. opt_level 1..5 sets how many candidates and runs.
StatusOr<TuningResult> cuda_tune(std::shared_ptr<const runtime::EngineData> data,
                                 const std::vector<InputShapes>& profiles, int opt_level,
                                 TimingCache* cache);

// Runs a CUDA engine once with host values of any kind (tensors, sequences, optionals) and
// returns the graph outputs on the host (conformance tests).
StatusOr<std::vector<Datum>> cuda_run_values(
    std::shared_ptr<const runtime::EngineData> data,
    const std::vector<std::pair<std::string, Datum>>& feeds);

}  // namespace kiln::backend
