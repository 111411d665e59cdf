// Forward convolution through cuDNN's graph (backend) API with a process-wide cache of finalized
// execution plans (conv_graph.cc). conv_forward (nn_conv.cc) tries it before cuDNN's legacy API,
// whose every call rebuilds a plan on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {

// y = act(conv(x, w) + bias + z). Shapes in channels-first order: x [N, C, s...],
// w [M, C/group, k...], y [N, M, o...], 1 to 3 spatial dims; with channels_last (2-D only) the
// data is stored [N, s..., C], w [M, k..., C/group], z and y [N, o..., M]. Pads are symmetric:
// one per spatial dim. The caller has checked the shapes (setup() in nn_conv.cc) and allocated y;
// no tensor is empty.
struct ConvGraphArgs {
  DType dtype = DType::kUndefined;
  bool channels_last = false;
  std::vector<int64_t> x_shape, w_shape, y_shape;
  std::vector<int64_t> pads, strides, dilations;
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  const void* bias = nullptr;  // [M] of dtype, or null
  ConvEpilogue ep;             // residual z (y's shape and layout) and activation
};

enum class ConvGraphRun {
  kNotTaken,        // nothing ran: the caller runs the convolution its own way
  kFused,           // one cuDNN plan ran the convolution and its whole epilogue
  kEpilogueKernel,  // a cuDNN plan ran the convolution, our bias/epilogue kernel the rest
};

// Runs the convolution of the running node through a cached graph-API plan where the path takes
// the case: float16/bfloat16 (float32 accumulation), float32 only with TF32 allowed. The
// node's tactic (backend::TacticKind::kCudnnGraph) picks the engine configuration; during
// tuning the usable configurations are listed as candidates. Errors are real failures (a
// descriptor attribute cuDNN rejects, an execution that fails), never an unsupported case.
StatusOr<ConvGraphRun> conv_graph_forward(KernelContext& ctx, const ConvGraphArgs& a);

// Destroys the cached plans made with `handle` (plans belong to the handle they were finalized
// with); the executor calls it before destroying the handle.
void release_conv_graph_plans(cudnnHandle_t handle);

// Why the graph path last refused a case (for tests and diagnostics; "" when it never did).
std::string conv_graph_last_refusal();

}  // namespace kiln::cuda
