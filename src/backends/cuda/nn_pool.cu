// Pooling kernels: MaxPool (with Indices), AveragePool and LpPool over up to 3 spatial dims (lower
// ranks padded with size-1 dims), one thread per output element; global pools with one block
// per (n, c) plane. Semantics follow the CPU reference (src/backends/cpu/pool.cc).
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
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<float>(p[i]);  // int8/uint8 MaxPool: exact in float
  } else {
    return load_f(p, i);
  }
}
template <typename T>
__device__ __forceinline__ T st(AccOf<T> v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else if constexpr (std::is_integral_v<T>) {
    // A window entirely in the padding leaves -inf: 0, as the CPU kernel gives.
    return v < -1000.f ? T(0) : static_cast<T>(v);
  } else {
    return from_f<T>(v);
  }
}

// Kernel offsets k in [lo, hi) with begin <= start + k * d < end.
__device__ __forceinline__ void kernel_range(int64_t start, int64_t d, int64_t K, int64_t begin,
                                             int64_t end, int64_t* lo, int64_t* hi) {
  const int64_t l = start >= begin ? 0 : (begin - start + d - 1) / d;
  int64_t h = end - 1 - start < 0 ? 0 : (end - 1 - start) / d + 1;
  h = h < K ? h : K;
  *lo = l < h ? l : h;
  *hi = h;
}

template <typename T>
__global__ void pool_kernel(const T* x, T* y, int64_t* indices, PoolGeom g, int kind, bool cip,
                            AccOf<T> p, bool col_major) {
  using A = AccOf<T>;
  const int64_t out_plane = g.out[0] * g.out[1] * g.out[2];
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
  const int64_t total = g.planes * out_plane;
  KILN_GRID_STRIDE_LOOP(idx, total) {
    int64_t rem = idx;
    const int64_t o2 = rem % g.out[2];
    rem /= g.out[2];
    const int64_t o1 = rem % g.out[1];
    rem /= g.out[1];
    const int64_t o0 = rem % g.out[0];
    const int64_t pl = rem / g.out[0];
    const int64_t s0 = o0 * g.s[0] - g.pb[0], s1 = o1 * g.s[1] - g.pb[1],
                  s2 = o2 * g.s[2] - g.pb[2];
    int64_t l0, h0, l1, h1, l2, h2;
    kernel_range(s0, g.d[0], g.k[0], 0, g.in[0], &l0, &h0);
    kernel_range(s1, g.d[1], g.k[1], 0, g.in[1], &l1, &h1);
    kernel_range(s2, g.d[2], g.k[2], 0, g.in[2], &l2, &h2);
    const T* xp = x + pl * in_plane;
    if (kind == 0) {
      A best = -INFINITY;
      int64_t arg = -1;
      for (int64_t k0 = l0; k0 < h0; ++k0) {
        const int64_t i0 = s0 + k0 * g.d[0];
        for (int64_t k1 = l1; k1 < h1; ++k1) {
          const int64_t i1 = s1 + k1 * g.d[1];
          const int64_t row = (i0 * g.in[1] + i1) * g.in[2];
          for (int64_t k2 = l2; k2 < h2; ++k2) {
            const int64_t i2 = s2 + k2 * g.d[2];
            const A v = ld(xp, row + i2);
            if (v > best || arg < 0) {
              best = v;
              arg = col_major ? i0 + i1 * g.in[0] + i2 * g.in[0] * g.in[1] : row + i2;
            }
          }
        }
      }
      y[idx] = st<T>(best);
      if (indices != nullptr) indices[idx] = arg < 0 ? 0 : pl * in_plane + arg;
    } else {
      A sum = 0;
      for (int64_t k0 = l0; k0 < h0; ++k0) {
        const int64_t i0 = s0 + k0 * g.d[0];
        for (int64_t k1 = l1; k1 < h1; ++k1) {
          const int64_t i1 = s1 + k1 * g.d[1];
          const int64_t row = (i0 * g.in[1] + i1) * g.in[2];
          for (int64_t k2 = l2; k2 < h2; ++k2) {
            const A v = ld(xp, row + s2 + k2 * g.d[2]);
            sum += kind == 1 ? v : pow(fabs(v), p);
          }
        }
      }
      if (kind == 1) {
        int64_t count;
        if (cip) {
          int64_t a0, b0, a1, b1, a2, b2;
          kernel_range(s0, g.d[0], g.k[0], -g.pb[0], g.in[0] + g.pe[0], &a0, &b0);
          kernel_range(s1, g.d[1], g.k[1], -g.pb[1], g.in[1] + g.pe[1], &a1, &b1);
          kernel_range(s2, g.d[2], g.k[2], -g.pb[2], g.in[2] + g.pe[2], &a2, &b2);
          count = (b0 - a0) * (b1 - a1) * (b2 - a2);
        } else {
          count = (h0 - l0) * (h1 - l1) * (h2 - l2);
        }
        y[idx] = st<T>(count > 0 ? sum / static_cast<A>(count) : A(NAN));
      } else {
        y[idx] = st<T>(pow(sum, A(1) / p));
      }
    }
  }
}

template <typename A>
__device__ A warp_reduce(A v, int kind) {
  for (int o = 16; o > 0; o >>= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    if (kind == 0) {
      v = (isnan(v) || isnan(u)) ? A(NAN) : (u > v ? u : v);
    } else {
      v += u;
    }
  }
  return v;
}

template <typename T>
__global__ void global_pool_kernel(const T* x, T* y, int kind, AccOf<T> p, int64_t planes,
                                   int64_t size) {
  using A = AccOf<T>;
  __shared__ A shared[32];
  for (int64_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
    const T* xp = x + pl * size;
    A acc = kind == 0 ? A(-INFINITY) : A(0);
    for (int64_t i = threadIdx.x; i < size; i += blockDim.x) {
      const A v = ld(xp, i);
      if (kind == 0) {
        acc = (isnan(v) || isnan(acc)) ? A(NAN) : (v > acc ? v : acc);
      } else if (kind == 1) {
        acc += v;
      } else {
        acc += pow(fabs(v), p);
      }
    }
    acc = warp_reduce(acc, kind);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      const int nw = blockDim.x >> 5;
      A t = lane < nw ? shared[lane] : (kind == 0 ? A(-INFINITY) : A(0));
      t = warp_reduce(t, kind);
      if (lane == 0) {
        A r;
        if (kind == 0) {
          r = t;
        } else if (kind == 1) {
          r = size > 0 ? t / static_cast<A>(size) : A(NAN);
        } else {
          r = pow(t, A(1) / p);
        }
        y[pl] = st<T>(r);
      }
    }
  }
}

}  // namespace

Status launch_pool(KernelContext& ctx, DType dtype, const PoolGeom& g, PoolKind kind,
                   bool count_include_pad, float p, bool col_major_indices, const void* x, void* y,
                   int64_t* indices) {
  const int64_t total = g.planes * g.out[0] * g.out[1] * g.out[2];
  if (total <= 0) return Status::Ok();
  const Launch l = launch_for(total);
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    pool_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), indices, g, static_cast<int>(kind),
        count_include_pad, static_cast<AccOf<T>>(p), col_major_indices);
  };
  bool ok = true;
  if (kind == PoolKind::kMax && dtype == DType::kInt8) {
    launch(int8_t{});
  } else if (kind == PoolKind::kMax && dtype == DType::kUInt8) {
    launch(uint8_t{});
  } else {
    ok = dispatch_float(dtype, launch);
  }
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("pool");
}

Status launch_global_pool(KernelContext& ctx, DType dtype, PoolKind kind, float p, int64_t planes,
                          int64_t size, const void* x, void* y) {
  if (planes <= 0) return Status::Ok();
  const unsigned block = size >= 1024 ? 256 : (size >= 128 ? 128 : 32);
  const unsigned grid = static_cast<unsigned>(planes < 65535LL * 16 ? planes : 65535LL * 16);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    global_pool_kernel<T><<<grid, block, 0, ctx.stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), static_cast<int>(kind),
        static_cast<AccOf<T>>(p), planes, size);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("global pool");
}

}  // namespace kiln::cuda
