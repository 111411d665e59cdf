// Normalization kernels: one block per normalized row (LayerNormalization, RMSNormalization,
// InstanceNormalization, GroupNormalization) with warp-shuffle reductions, plus elementwise
// BatchNormalization (inference) and LpNormalization. Accumulation in float (double for
// float64); statistics in two passes (mean, then squared deviations).
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccOf<T> ld(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return p[i];
  } else {
    return load_f(p, i);
  }
}
template <typename T>
__device__ __forceinline__ T st(AccOf<T> v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return from_f<T>(v);
  }
}

template <typename A>
__device__ A block_sum(A v, A* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  A t = lane < nw ? shared[lane] : A(0);
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

struct AffineIndex {
  int mode = 0;  // AffineMode
  int64_t channels = 1, groups = 1, per_group = 1, spatial = 1;
  BroadcastMap map;

  __device__ __forceinline__ int64_t at(int64_t row, int64_t j, int64_t len) const {
    switch (mode) {
      case 1:
        return j;
      case 2:
        return map.offset(row * len + j);
      case 3:
        return row % channels;
      case 4:
        return (row % groups) * per_group + j / spatial;
      default:
        return row % groups;
    }
  }
};

template <typename T>
__global__ void row_norm_kernel(const T* x, T* y, int64_t rows, int64_t len, AccOf<T> eps, bool rms,
                                const T* scale, AffineIndex si, const T* bias, AffineIndex bi,
                                float* mean_out, float* inv_out) {
  using A = AccOf<T>;
  __shared__ A shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    A m = 0;
    if (!rms) {
      A s = 0;
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += ld(xr, j);
      s = block_sum(s, shared);
      m = len > 0 ? s / static_cast<A>(len) : A(0);
    }
    A q = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const A d = ld(xr, j) - m;
      q += d * d;
    }
    q = block_sum(q, shared);
    const A var = len > 0 ? q / static_cast<A>(len) : A(0);
    const A inv = A(1) / sqrt(var + eps);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      A o = (ld(xr, j) - m) * inv;
      if (scale != nullptr) o *= ld(scale, si.at(r, j, len));
      if (bias != nullptr) o += ld(bias, bi.at(r, j, len));
      yr[j] = st<T>(o);
    }
    if (threadIdx.x == 0) {
      if (mean_out != nullptr) mean_out[r] = static_cast<float>(m);
      if (inv_out != nullptr) inv_out[r] = static_cast<float>(inv);
    }
  }
}

template <typename T>
__global__ void batch_norm_kernel(const T* x, T* y, const T* scale, const T* bias, const T* mean,
                                  const T* var, AccOf<T> eps, int64_t n, int64_t channels,
                                  int64_t inner) {
  using A = AccOf<T>;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t c = (i / inner) % channels;
    const A a = ld(scale, c) / sqrt(ld(var, c) + eps);
    y[i] = st<T>((ld(x, i) - ld(mean, c)) * a + ld(bias, c));
  }
}

template <typename T>
__global__ void lp_norm_kernel(const T* x, T* y, int p, int64_t outer, int64_t n, int64_t inner) {
  using A = AccOf<T>;
  KILN_GRID_STRIDE_LOOP(oi, outer * inner) {
    const int64_t base = (oi / inner) * n * inner + oi % inner;
    A s = 0;
    for (int64_t k = 0; k < n; ++k) {
      const A v = ld(x, base + k * inner);
      s += p == 1 ? fabs(v) : v * v;
    }
    const A norm = p == 1 ? s : sqrt(s);
    for (int64_t k = 0; k < n; ++k) {
      const A v = ld(x, base + k * inner);
      y[base + k * inner] = st<T>(norm == A(0) ? A(0) : v / norm);
    }
  }
}

AffineIndex make_index(const RowNormArgs& a, AffineMode mode, const std::vector<int64_t>& shape) {
  AffineIndex ix;
  ix.mode = static_cast<int>(mode);
  ix.channels = a.channels > 0 ? a.channels : 1;
  ix.groups = a.groups > 0 ? a.groups : 1;
  ix.per_group = a.per_group;
  ix.spatial = a.spatial > 0 ? a.spatial : 1;
  if (mode == AffineMode::kBroadcast) ix.map = make_broadcast_map(shape, a.x_shape);
  return ix;
}

}  // namespace

Status launch_row_norm(KernelContext& ctx, const RowNormArgs& a) {
  if (a.rows <= 0) return Status::Ok();
  if (a.x_shape.size() > static_cast<size_t>(kMaxRank)) return ctx.unsupported("rank > 8");
  const AffineIndex si = make_index(a, a.scale_mode, a.scale_shape);
  const AffineIndex bi = make_index(a, a.bias_mode, a.bias_shape);
  const unsigned block = a.len >= 2048 ? 512 : (a.len >= 512 ? 256 : (a.len >= 128 ? 128 : 32));
  const unsigned grid = static_cast<unsigned>(a.rows < 65535LL * 16 ? a.rows : 65535LL * 16);
  const bool ok = dispatch_float(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    row_norm_kernel<T><<<grid, block, 0, ctx.stream()>>>(
        static_cast<const T*>(a.x), static_cast<T*>(a.y), a.rows, a.len,
        static_cast<AccOf<T>>(a.eps), a.rms,
        a.scale_mode == AffineMode::kNone ? nullptr : static_cast<const T*>(a.scale), si,
        a.bias_mode == AffineMode::kNone ? nullptr : static_cast<const T*>(a.bias), bi, a.mean_out,
        a.inv_std_out);
  });
  if (!ok) return ctx.unsupported_type(a.dtype);
  return ctx.check_launch("normalization");
}

Status launch_batch_norm(KernelContext& ctx, DType dtype, const void* x, void* y, const void* scale,
                         const void* bias, const void* mean, const void* var, double eps,
                         int64_t outer, int64_t channels, int64_t inner) {
  const int64_t n = outer * channels * inner;
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    batch_norm_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), static_cast<const T*>(scale),
        static_cast<const T*>(bias), static_cast<const T*>(mean), static_cast<const T*>(var),
        static_cast<AccOf<T>>(eps), n, channels, inner);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("BatchNormalization");
}

Status launch_lp_norm(KernelContext& ctx, DType dtype, const void* x, void* y, int p, int64_t outer,
                      int64_t n, int64_t inner) {
  const int64_t total = outer * inner;
  if (total <= 0 || n <= 0) return Status::Ok();
  const Launch l = launch_for(total);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    lp_norm_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(static_cast<const T*>(x),
                                                            static_cast<T*>(y), p, outer, n, inner);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("LpNormalization");
}

}  // namespace kiln::cuda
