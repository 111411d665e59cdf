// Internal interface of the CUDA FusedMatMul kernel (fused_matmul.cc) and its pointwise
// epilogue kernel (fused_matmul_act.cu).
#pragma once

#include <cstdint>

#include "backends/cuda/kernel.h"
#include "ops/fused_matmul.h"

namespace kiln::cuda {

// y[r, j] = act(y[r, j] + bias[j]) in place for y viewed as [rows, n] (bias may be null), in
// float, with the CPU reference's formulas (exact erf GELU; tanh GELU with an accurate tanh).
// dtype: float32, float16 or bfloat16.
Status launch_bias_activation(KernelContext& ctx, DType dtype, void* y, const void* bias,
                              int64_t rows, int64_t n, ops::MatMulActivation act);

}  // namespace kiln::cuda
