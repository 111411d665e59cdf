// CUDA kernels of the tensor family: GridSample (N-D: nearest, linear, cubic; zeros, border and
// reflection padding) and AffineGrid, computed in double per output element as the CPU
// reference does (src/backends/cpu/tensor_sample.cc). Coordinate formulas use explicitly
// rounded operations so that no multiply-add is fused differently from the plain formula.
#include <cstdint>

#include "backends/cuda/common.cuh"
#include "backends/cuda/tensor_internal.h"

namespace kiln::cuda::tensor {
namespace {

__device__ __forceinline__ double denormalize(double g, int64_t size, bool align) {
  if (align) return __dmul_rn(__dadd_rn(g, 1.0) / 2.0, static_cast<double>(size - 1));
  return __dadd_rn(__dmul_rn(__dadd_rn(g, 1.0), static_cast<double>(size)), -1.0) / 2.0;
}

__device__ double reflect(double x, double twice_low, double twice_high) {
  if (twice_low == twice_high) return 0.0;
  const double lo = twice_low / 2.0;
  const double span = (twice_high - twice_low) / 2.0;
  x = fabs(x - lo);
  const double extra = fmod(x, span);
  const double flips = floor(x / span);
  return fmod(flips, 2.0) == 0.0 ? extra + lo : span - extra + lo;
}

__device__ __forceinline__ double clampd(double v, double lo, double hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

__device__ double pad_coordinate(double x, int64_t size, GridPad pad, bool align) {
  const double hi = static_cast<double>(size - 1);
  switch (pad) {
    case GridPad::kZeros:
      return x;
    case GridPad::kBorder:
      return clampd(x, 0.0, hi);
    case GridPad::kReflection:
      x = align ? reflect(x, 0.0, 2.0 * hi)
                : reflect(x, -1.0, 2.0 * static_cast<double>(size) - 1.0);
      return clampd(x, 0.0, hi);
  }
  return x;
}

__device__ __forceinline__ double cubic_w(double t) {
  const double a = -0.75;
  t = fabs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0.0;
}

template <typename T>
__device__ __forceinline__ double load_d(const T* x, int64_t i) {
  if constexpr (sizeof(T) == 8) {
    return x[i];
  } else {
    return static_cast<double>(load_f<T>(x, i));
  }
}

template <typename T>
__device__ __forceinline__ void store_d(T* y, int64_t i, double v) {
  if constexpr (sizeof(T) == 8) {
    y[i] = v;
  } else {
    y[i] = from_f<T>(static_cast<float>(v));
  }
}

// Value at integer position p (zeros outside).
template <typename T>
__device__ __forceinline__ double sample_at(const GridPlan& p, const T* x, int64_t base,
                                            const int64_t* pos) {
  int64_t off = 0;
  for (int d = 0; d < p.sd; ++d) {
    if (pos[d] < 0 || pos[d] >= p.in_sp[d]) return 0.0;
    off = off * p.in_sp[d] + pos[d];
  }
  return load_d<T>(x, base + off);
}

template <typename T>
__global__ void grid_sample_kernel(GridPlan p, const T* __restrict__ x, const T* __restrict__ grid,
                                   T* __restrict__ y, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t o = i % p.out_count;
    const int64_t bc = i / p.out_count;
    const int64_t b = bc / p.c;
    const int64_t base = bc * p.in_count;
    double coord[kMaxGridDims];
    int64_t pos[kMaxGridDims];
    bool finite = true;
    const int64_t g = (b * p.out_count + o) * p.sd;
    for (int k = 0; k < p.sd; ++k) {
      const int d = p.sd - 1 - k;  // grid[..., k] indexes spatial dim sd - 1 - k
      const double v = load_d<T>(grid, g + k);
      if (!isfinite(v)) finite = false;
      coord[d] = denormalize(v, p.in_sp[d], p.align);
    }
    double value = 0.0;
    if (!finite || p.in_count == 0) {
      value = 0.0;
    } else if (p.mode != GridMode::kCubic) {
      for (int d = 0; d < p.sd; ++d)
        coord[d] = pad_coordinate(coord[d], p.in_sp[d], p.pad, p.align);
      if (p.mode == GridMode::kNearest) {
        for (int d = 0; d < p.sd; ++d)
          pos[d] = static_cast<int64_t>(rint(clampd(coord[d], -1e15, 1e15)));
        value = sample_at<T>(p, x, base, pos);
      } else {
        for (int corner = 0; corner < (1 << p.sd); ++corner) {
          double w = 1.0;
          for (int d = 0; d < p.sd; ++d) {
            const double f = floor(clampd(coord[d], -1e15, 1e15));
            const double frac = coord[d] - f;
            const bool hi = (corner >> d) & 1;
            pos[d] = static_cast<int64_t>(f) + (hi ? 1 : 0);
            w *= hi ? frac : 1.0 - frac;
          }
          if (w != 0.0) value += w * sample_at<T>(p, x, base, pos);
        }
      }
    } else {
      int taps = 1;
      for (int d = 0; d < p.sd; ++d) taps *= 4;
      for (int tap = 0; tap < taps; ++tap) {
        double w = 1.0;
        int code = tap;
        for (int d = 0; d < p.sd; ++d) {
          const int offset = code % 4 - 1;
          code /= 4;
          const double f = floor(clampd(coord[d], -1e15, 1e15));
          w *= cubic_w(static_cast<double>(offset) - (coord[d] - f));
          double q = f + offset;
          if (p.pad != GridPad::kZeros) q = pad_coordinate(q, p.in_sp[d], p.pad, p.align);
          pos[d] = static_cast<int64_t>(q);
        }
        if (w != 0.0) value += w * sample_at<T>(p, x, base, pos);
      }
    }
    store_d<T>(y, i, value);
  }
}

// AffineGrid: y[b, spatial..., r] = sum_k theta[b, r, k] * v_k with v = (x, y[, z], 1) built
// from the normalized base coordinates of the spatial position.
template <typename T>
__global__ void affine_grid_kernel(AffinePlan p, const T* __restrict__ theta, T* __restrict__ y,
                                   int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int r = static_cast<int>(i % p.sd);
    const int64_t q = i / p.sd;
    const int64_t o = q % p.count, b = q / p.count;
    double v[kMaxGridDims + 1];
    int64_t rem = o;
    for (int d = p.sd - 1; d >= 0; --d) {
      const int64_t pos = rem % p.sp[d];
      rem /= p.sp[d];
      const int64_t s = p.sp[d];
      double c;
      if (p.align) {
        c = s <= 1 ? -1.0 : -1.0 + 2.0 * static_cast<double>(pos) / static_cast<double>(s - 1);
      } else {
        c = __dadd_rn(2.0 * static_cast<double>(pos), 1.0) / static_cast<double>(s) - 1.0;
      }
      v[p.sd - 1 - d] = c;  // x is the last spatial dim
    }
    v[p.sd] = 1.0;
    double acc = 0.0;
    for (int k = 0; k <= p.sd; ++k) {
      acc = __dadd_rn(acc, __dmul_rn(load_d<T>(theta, (b * p.sd + r) * (p.sd + 1) + k), v[k]));
    }
    store_d<T>(y, i, acc);
  }
}

}  // namespace

void launch_grid_sample(const GridPlan& p, DType dt, const void* x, const void* grid, void* y,
                        int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    grid_sample_kernel<T><<<l.grid, l.block, 0, s>>>(
        p, static_cast<const T*>(x), static_cast<const T*>(grid), static_cast<T*>(y), n);
  });
}

void launch_affine_grid(const AffinePlan& p, DType dt, const void* theta, void* y, int64_t n,
                        cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    affine_grid_kernel<T>
        <<<l.grid, l.block, 0, s>>>(p, static_cast<const T*>(theta), static_cast<T*>(y), n);
  });
}

}  // namespace kiln::cuda::tensor
