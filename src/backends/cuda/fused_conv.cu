// The epilogue of a convolution that cuDNN does not fuse (bfloat16, no bias, the identity
// activation with an algorithm other than IMPLICIT_PRECOMP_GEMM): y = act(y + bias[c] + z) in
// one pass over y, computed in float (double for float64).
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccOf<T> load_acc(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return p[i];
  } else {
    return load_f(p, i);
  }
}

template <typename T, bool kRelu>
__global__ void conv_epilogue_kernel(T* y, const T* bias, const T* z, int64_t n, int64_t channels,
                                     int64_t inner) {
  using A = AccOf<T>;
  KILN_GRID_STRIDE_LOOP(i, n) {
    A v = load_acc(y, i);
    if (bias) v += load_acc(bias, (i / inner) % channels);
    if (z) v += load_acc(z, i);
    if (kRelu) v = v < A(0) ? A(0) : v;  // NaN stays NaN
    if constexpr (std::is_same_v<T, double>) {
      y[i] = v;
    } else {
      y[i] = from_f<T>(v);
    }
  }
}

}  // namespace

Status launch_conv_epilogue(KernelContext& ctx, DType dtype, void* y, const void* bias,
                            const ConvEpilogue& ep, int64_t outer, int64_t channels,
                            int64_t inner) {
  const int64_t n = outer * channels * inner;
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  const bool relu = ep.act == ops::ConvActivation::kRelu;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* yt = static_cast<T*>(y);
    const T* bt = static_cast<const T*>(bias);
    const T* zt = static_cast<const T*>(ep.z);
    if (relu) {
      conv_epilogue_kernel<T, true>
          <<<l.grid, l.block, 0, ctx.stream()>>>(yt, bt, zt, n, channels, inner);
    } else {
      conv_epilogue_kernel<T, false>
          <<<l.grid, l.block, 0, ctx.stream()>>>(yt, bt, zt, n, channels, inner);
    }
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("convolution epilogue");
}

}  // namespace kiln::cuda
