// CUDA kernel of Resize/Upsample: nearest (every nearest_mode), linear and cubic (with
// exclude_outside and antialias) over any set of dims, every coordinate transformation mode.
// Taps are computed per output element in double exactly as the CPU reference computes them
// (src/backends/cpu/tensor_resize.cc); coordinate formulas use explicitly rounded operations so
// that no multiply-add is fused differently from the plain formula.
#include <cstdint>

#include "backends/cuda/common.cuh"
#include "backends/cuda/tensor_internal.h"

namespace kiln::cuda::tensor {
namespace {

__device__ double original_coordinate(const ResizePlan& p, double x, double scale, int64_t in,
                                      int64_t out, double roi_start, double roi_end) {
  const double din = static_cast<double>(in), dout = static_cast<double>(out);
  switch (p.coord) {
    case CoordMode::kHalfPixel:
      return __dadd_rn(__ddiv_rn(__dadd_rn(x, 0.5), scale), -0.5);
    case CoordMode::kHalfPixelSymmetric: {
      const double adjustment = __ddiv_rn(dout, __dmul_rn(scale, din));
      const double center = din / 2.0;
      const double offset = __dmul_rn(center, __dadd_rn(1.0, -adjustment));
      return __dadd_rn(__dadd_rn(offset, __ddiv_rn(__dadd_rn(x, 0.5), scale)), -0.5);
    }
    case CoordMode::kPytorchHalfPixel:
      return out > 1 ? __dadd_rn(__ddiv_rn(__dadd_rn(x, 0.5), scale), -0.5) : 0.0;
    case CoordMode::kAlignCorners: {
      const double resized = __dmul_rn(scale, din);
      return out == 1 || resized == 1.0
                 ? 0.0
                 : __ddiv_rn(__dmul_rn(x, static_cast<double>(in - 1)), __dadd_rn(resized, -1.0));
    }
    case CoordMode::kAsymmetric:
      return __ddiv_rn(x, scale);
    case CoordMode::kTfHalfPixelForNn:
      return __ddiv_rn(__dadd_rn(x, 0.5), scale);
    case CoordMode::kTfCropAndResize: {
      const double in1 = static_cast<double>(in - 1);
      if (out > 1) {
        const double a = __dmul_rn(roi_start, in1);
        const double b = __ddiv_rn(__dmul_rn(__dmul_rn(x, __dadd_rn(roi_end, -roi_start)), in1),
                                   static_cast<double>(out - 1));
        return __dadd_rn(a, b);
      }
      return __dmul_rn(__dmul_rn(0.5, __dadd_rn(roi_start, roi_end)), in1);
    }
  }
  return 0.0;
}

__device__ __forceinline__ double cubic_weight(double t, double a) {
  t = fabs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0.0;
}

// Taps of one dim for one output coordinate: indices xi + start + k for k < count (clamped),
// weights from ratio (normalized by sum when norm is set).
struct DimTaps {
  int64_t xi;
  double ratio;
  double s;
  int64_t start;
  int64_t count;
  double sum;
  int64_t nearest;  // nearest mode: the chosen index
};

__device__ __forceinline__ int64_t clamp_i(int64_t i, int64_t in) {
  return i < 0 ? 0 : (i >= in ? in - 1 : i);
}

__device__ __forceinline__ double tap_weight(const ResizePlan& p, const DimTaps& t, int64_t k) {
  const int64_t i = t.start + k;
  const double u = (static_cast<double>(i) - t.ratio) * t.s;
  if (p.mode == ResizeMode::kLinear) {
    const double w = 1.0 - fabs(u);
    return w < 0.0 ? 0.0 : (w > 1.0 ? 1.0 : w);
  }
  return cubic_weight(u, p.cubic_a);
}

// Returns false when the coordinate is outside (extrapolation value).
__device__ bool dim_taps(const ResizePlan& p, int d, int64_t x, DimTaps* t) {
  const int64_t in = p.in_dims[d], out = p.out_dims[d];
  const double xo = original_coordinate(p, static_cast<double>(x), p.scales[d], in, out,
                                        p.roi_start[d], p.roi_end[d]);
  if (p.coord == CoordMode::kTfCropAndResize && (xo < 0 || xo > static_cast<double>(in - 1))) {
    return false;
  }
  if (!isfinite(xo)) return false;
  double base = floor(xo);
  double ratio = xo - base;
  if (ratio == 0.0) {
    base -= 1.0;
    ratio = 1.0;
  }
  base = base < -4.0e18 ? -4.0e18 : (base > 4.0e18 ? 4.0e18 : base);
  t->xi = static_cast<int64_t>(base);
  t->ratio = ratio;
  if (p.mode == ResizeMode::kNearest) {
    bool right = false;
    if (ratio == 1.0) {
      right = true;
    } else {
      switch (p.nearest) {
        case NearestMode::kRoundPreferFloor:
          right = ratio > 0.5;
          break;
        case NearestMode::kRoundPreferCeil:
          right = ratio >= 0.5;
          break;
        case NearestMode::kFloor:
          right = false;
          break;
        case NearestMode::kCeil:
          right = true;
          break;
      }
    }
    t->nearest = clamp_i(right ? t->xi + 1 : t->xi, in);
    return true;
  }
  const bool linear = p.mode == ResizeMode::kLinear;
  const double scale = p.scales[d];
  t->s = p.antialias ? (scale < 1.0 ? scale : 1.0) : 1.0;
  t->start = linear ? static_cast<int64_t>(floor(-1.0 / t->s) + 1)
                    : static_cast<int64_t>(floor(-2.0 / t->s) + 1);
  t->count = 2 - 2 * t->start;  // start..(1 - start) inclusive
  t->sum = 1.0;
  if (p.exclude_outside || p.antialias) {
    double sum = 0.0;
    for (int64_t k = 0; k < t->count; ++k) {
      const int64_t idx = t->xi + t->start + k;
      double w = tap_weight(p, *t, k);
      if (p.exclude_outside && (idx < 0 || idx >= in)) w = 0.0;
      sum += w;
    }
    t->sum = sum;
  }
  return true;
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
    y[i] = from_f<T>(static_cast<float>(v));  // double -> float -> T, as the CPU does
  }
}

// Nearest: pure selection, any element type.
template <typename U>
__global__ void resize_nearest_kernel(ResizePlan p, const U* __restrict__ x, U* __restrict__ y,
                                      int64_t n, U extrapolation) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t rem = i, off = 0, stride = 1;
    bool outside = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t o = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      int64_t src = o;
      if (p.resized[d]) {
        DimTaps t;
        if (!dim_taps(p, d, o, &t)) {
          outside = true;
          break;
        }
        src = t.nearest;
      }
      off += src * stride;
      stride *= p.in_dims[d];
    }
    y[i] = outside ? extrapolation : x[off];
  }
}

template <typename T>
__global__ void resize_interp_kernel(ResizePlan p, const T* __restrict__ x, T* __restrict__ y,
                                     int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    DimTaps taps[kRank];
    int64_t fixed = 0;  // offset of the non-resized dims
    int64_t strides[kRank];
    int64_t rem = i, stride = 1;
    bool outside = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t o = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      strides[d] = stride;
      if (p.resized[d]) {
        if (!dim_taps(p, d, o, &taps[d])) {
          outside = true;
          break;
        }
      } else {
        fixed += o * stride;
      }
      stride *= p.in_dims[d];
    }
    if (outside) {
      store_d<T>(y, i, p.extrapolation);
      continue;
    }
    const bool norm = p.exclude_outside || p.antialias;
    int64_t cur[kRank] = {};
    double acc = 0.0;
    while (true) {
      double w = 1.0;
      int64_t off = fixed;
      for (int d = 0; d < p.rank; ++d) {
        if (!p.resized[d]) continue;
        const DimTaps& t = taps[d];
        const int64_t idx = t.xi + t.start + cur[d];
        double wd = tap_weight(p, t, cur[d]);
        if (p.exclude_outside && (idx < 0 || idx >= p.in_dims[d])) wd = 0.0;
        if (norm && t.sum != 0.0) wd /= t.sum;
        w *= wd;
        off += clamp_i(idx, p.in_dims[d]) * strides[d];
      }
      acc += w * load_d<T>(x, off);
      int d = p.rank - 1;
      for (; d >= 0; --d) {
        if (!p.resized[d]) continue;
        if (++cur[d] < taps[d].count) break;
        cur[d] = 0;
      }
      if (d < 0) break;
    }
    store_d<T>(y, i, acc);
  }
}

template <typename U>
void nearest_t(const ResizePlan& p, const void* x, void* y, int64_t n, U extrapolation,
               cudaStream_t s) {
  const Launch l = launch_for(n);
  resize_nearest_kernel<U><<<l.grid, l.block, 0, s>>>(p, static_cast<const U*>(x),
                                                      static_cast<U*>(y), n, extrapolation);
}

// The extrapolation value's bits in dtype dt (float types only; 0 for the others).
uint64_t extrapolation_bits(DType dt, double v) {
  switch (dt) {
    case DType::kFloat32: {
      const float f = static_cast<float>(v);
      uint32_t b;
      memcpy(&b, &f, 4);
      return b;
    }
    case DType::kFloat64: {
      uint64_t b;
      memcpy(&b, &v, 8);
      return b;
    }
    case DType::kFloat16:
      return float_to_half(static_cast<float>(v));
    case DType::kBFloat16:
      return float_to_bfloat16(static_cast<float>(v));
    default:
      return value_bits(dt, v);
  }
}

}  // namespace

void launch_resize(const ResizePlan& p, DType dt, const void* x, void* y, int64_t n,
                   cudaStream_t s) {
  if (n <= 0) return;
  if (p.mode == ResizeMode::kNearest) {
    const uint64_t e = extrapolation_bits(dt, p.extrapolation);
    switch (dtype_bits(dt)) {
      case 8:
        nearest_t<uint8_t>(p, x, y, n, static_cast<uint8_t>(e), s);
        return;
      case 16:
        nearest_t<uint16_t>(p, x, y, n, static_cast<uint16_t>(e), s);
        return;
      case 32:
        nearest_t<uint32_t>(p, x, y, n, static_cast<uint32_t>(e), s);
        return;
      default:
        nearest_t<unsigned long long>(p, x, y, n, static_cast<unsigned long long>(e), s);
        return;
    }
  }
  const Launch l = launch_for(n);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    resize_interp_kernel<T>
        <<<l.grid, l.block, 0, s>>>(p, static_cast<const T*>(x), static_cast<T*>(y), n);
  });
}

}  // namespace kiln::cuda::tensor
