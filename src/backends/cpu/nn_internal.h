// Internal interfaces between the nn family's CPU kernel files.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/nn_util.h"
#include "ops/nn_window.h"

namespace kiln::cpu {

// Checked geometry of a Conv-like node (Conv, ConvInteger, QLinearConv, ConvTranspose).
struct ConvSetup {
  int64_t N = 0, C = 0, M = 0, group = 1;
  ops::Window window;  // pads resolved
  Im2ColGeom geom;     // Conv: img = input, cols = output; ConvTranspose: the reverse
  std::vector<int64_t> out_shape;
};
Status setup_conv(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B,
                  bool transpose, ConvSetup* cs);

// Conv of X, W and optional B under the running node's Conv attributes (group, pads, ...) into
// output 0, any float dtype (fp16/bf16 computed in float). Conv's kernel, shared with FusedConv.
Status conv_forward(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B);

// MaxPool (max) or AveragePool of X under the running node's pooling attributes into output 0
// (channels-first; no Indices output). Shared with the channels-last pools.
Status pool_forward(KernelContext& ctx, const Tensor& X, bool max);

// y = saturate(round_half_even(acc * scale[c]) + zero) per channel c (see conv.cc).
template <typename TY>
void requantize(const int32_t* acc, int64_t outer, int64_t channels, int64_t inner,
                const float* scale, int64_t scale_stride, TY zero, TY* y);

void register_conv_kernels(KernelRegistry& r);
void register_conv_misc_kernels(KernelRegistry& r);
void register_matmul_kernels(KernelRegistry& r);
void register_pool_kernels(KernelRegistry& r);
void register_roi_kernels(KernelRegistry& r);
void register_einsum_kernels(KernelRegistry& r);

}  // namespace kiln::cpu
