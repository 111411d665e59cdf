// The boundary between the builder/runtime and the CUDA backend. No CUDA types: a CPU-only
// build links src/backends/no_cuda/cuda_stub.cc instead of src/backends/cuda.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
// True when the CUDA kernel of `node` waits on the stream (data-dependent output sizes).
bool cuda_synchronizes(const ir::Node& node);

}  // namespace kiln::backend
