// Pointwise epilogue of FusedMatMul for what cuBLASLt's epilogues do not compute as the CPU
// reference does: exact (erf) GELU, tanh GELU in float32, and the K = 0 case.
#include "backends/cuda/common.cuh"
#include "backends/cuda/fused_matmul_internal.h"

namespace kiln::cuda {
namespace {

using ops::MatMulActivation;

__device__ __forceinline__ float apply_activation(int act, float x) {
  switch (act) {
    case static_cast<int>(MatMulActivation::kRelu):
      return x < 0.f ? 0.f : x;  // NaN passes through, as in Relu
    case static_cast<int>(MatMulActivation::kGelu):
      return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case static_cast<int>(MatMulActivation::kGeluTanh): {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    default:
      return x;
  }
}

template <typename T>
__global__ void bias_activation_kernel(T* y, const T* bias, int64_t total, int64_t n, int act) {
  KILN_GRID_STRIDE_LOOP(i, total) {
    float x = load_f(y, i);
    if (bias != nullptr) x += load_f(bias, i % n);
    y[i] = from_f<T>(apply_activation(act, x));
  }
}

}  // namespace

Status launch_bias_activation(KernelContext& ctx, DType dtype, void* y, const void* bias,
                              int64_t rows, int64_t n, MatMulActivation act) {
  if (rows <= 0 || n <= 0) return Status::Ok();
  if (bias == nullptr && act == MatMulActivation::kNone) return Status::Ok();
  if (dtype == DType::kFloat64) return ctx.unsupported_type(dtype);
  const int64_t total = rows * n;
  const Launch l = launch_for(total);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    bias_activation_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), total, n, static_cast<int>(act));
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("FusedMatMul epilogue");
}

}  // namespace kiln::cuda
