// Element math of the CUDA QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear kernels
// (src/backends/cuda/misc_quantize.cu), callable on the host and the device like cast_convert.h,
// so tests/unit/cuda_quantize_host_test.cc checks it against the CPU kernels in every build.
//
// It reproduces src/backends/cpu/misc_quantize.cc bit for bit: values are read as double the way
// misc::to_doubles reads them, rounded to the `precision` dtype with the CPU's to_precision,
// rounded half to even (nearbyint in the default rounding mode), clamped to the target's range,
// and written as convert_tensor / emit_doubles would.
#pragma once

#include "backends/cuda/cast_convert.h"

namespace kiln::cuda::quant {

// Maps element i of x to the index of its scale and zero point (ScaleMap of the CPU kernel).
struct ScaleMap {
  enum Kind : uint8_t { kTensor, kAxis, kBlocked } kind = kTensor;
  int64_t dim = 1, inner = 1, block = 1, scale_dim = 1;

  KILN_HD int64_t index(int64_t i) const {
    switch (kind) {
      case kTensor:
        return 0;
      case kAxis:
        return (i / inner) % dim;
      case kBlocked: {
        const int64_t o = i / (dim * inner), a = (i / inner) % dim, in = i % inner;
        return (o * scale_dim + a / block) * inner + in;
      }
    }
    return 0;
  }
};

// A value rounded to the precision of `t` (float32, float16, bfloat16; float64 leaves it).
KILN_HD double to_precision(double v, DType t) {
  switch (t) {
    case DType::kFloat32:
      return cvt::widen(cvt::narrow(v));
    case DType::kFloat16:
      return cvt::widen(cvt::half_to_f32(cvt::f32_to_half(cvt::narrow(v))));
    case DType::kBFloat16:
      return cvt::widen(cvt::bf16_to_f32(cvt::f32_to_bf16(cvt::narrow(v))));
    default:
      return v;
  }
}

// x / scale in `prec`, as the CPU computes it before rounding.
KILN_HD double scaled(double x, double scale, DType prec) {
  return to_precision(cvt::div64(to_precision(x, prec), to_precision(scale, prec)), prec);
}

// Integer targets: round half to even, add the zero point, clamp to [lo, hi]; NaN gives 0.
KILN_HD int64_t quantize_int(double x, double scale, double zp, DType prec, int64_t lo,
                             int64_t hi) {
  double r = nearbyint(scaled(x, scale, prec)) + zp;
  if (cvt::is_nan64(r)) r = 0;
  const double l = static_cast<double>(lo), h = static_cast<double>(hi);
  r = r < l ? l : (h < r ? h : r);
  return static_cast<int64_t>(r);
}

// Float8 / float4 / e8m0 targets: the float the CPU then casts (with `saturate`).
KILN_HD float quantize_float(double x, double scale, double zp, DType prec) {
  return cvt::narrow(cvt::add64(scaled(x, scale, prec), zp));
}

// (x - zp) * scale, rounded to float unless the scale is float64.
KILN_HD double dequantize(double x, double zp, double scale, bool f64) {
  const double y = cvt::mul64(cvt::sub64(x, zp), scale);
  return f64 ? y : cvt::widen(cvt::narrow(y));
}

// Everything a QuantizeLinear or DequantizeLinear kernel reads, by value.
struct QuantArgs {
  const void* x = nullptr;
  const void* scale = nullptr;
  const void* zp = nullptr;  // null: zero
  void* y = nullptr;
  DType xt = DType::kUndefined, st = DType::kUndefined, zt = DType::kUndefined,
        yt = DType::kUndefined;
  int64_t n = 0;  // elements of x and y
  ScaleMap map;
  // QuantizeLinear
  DType prec = DType::kFloat32;
  bool int_out = false;
  int64_t lo = 0, hi = 0;
  cvt::CastParams cast;  // float targets: saturate (e8m0 rounds up, as convert_tensor does)
};

// Output units: elements, or bytes of a packed (4-/2-bit) output.
KILN_HD int64_t units_of(const QuantArgs& a) {
  return cvt::cast_units(a.yt, a.n);
}

KILN_HD uint64_t quantize_element(const QuantArgs& a, int64_t i) {
  const int64_t s = a.map.index(i);
  const double x = cvt::load_value(a.x, a.xt, i).as_double();
  const double sc = cvt::load_value(a.scale, a.st, s).as_double();
  const double zp = a.zp != nullptr ? cvt::load_value(a.zp, a.zt, s).as_double() : 0.0;
  if (a.int_out) return static_cast<uint64_t>(quantize_int(x, sc, zp, a.prec, a.lo, a.hi));
  cvt::Value v;
  v.kind = cvt::Value::kF32;
  v.f = quantize_float(x, sc, zp, a.prec);
  return cvt::encode_value(v, a.yt, a.cast);
}

KILN_HD uint64_t dequantize_element(const QuantArgs& a, int64_t i) {
  const int64_t s = a.map.index(i);
  const double x = cvt::load_value(a.x, a.xt, i).as_double();
  const double sc = cvt::load_value(a.scale, a.st, s).as_double();
  const double zp = a.zp != nullptr ? cvt::load_value(a.zp, a.zt, s).as_double() : 0.0;
  cvt::Value v;
  v.kind = cvt::Value::kF64;
  v.d = dequantize(x, zp, sc, a.st == DType::kFloat64);
  return cvt::encode_value(v, a.yt, cvt::CastParams{});
}

// Writes output unit u (an element, or one byte of a packed output: one thread per byte).
KILN_HD void quantize_unit(const QuantArgs& a, int64_t u) {
  const int bits = cvt::element_bits(a.yt);
  if (bits >= 8) {
    cvt::store_bits(a.y, a.yt, u, quantize_element(a, u));
    return;
  }
  static_cast<uint8_t*>(a.y)[u] =
      cvt::pack_byte(u, a.n, bits, [&](int64_t i) { return quantize_element(a, i); });
}
KILN_HD void dequantize_unit(const QuantArgs& a, int64_t u) {
  cvt::store_bits(a.y, a.yt, u, dequantize_element(a, u));  // outputs are float16 or wider
}

// ---- DynamicQuantizeLinear (float32 to uint8) ----

// min(0, x...) and max(0, x...) as the CPU folds them (std::min / std::max: NaN never enters,
// and -0 never replaces the initial +0).
KILN_HD float fold_min(float acc, float v) {
  return v < acc ? v : acc;
}
KILN_HD float fold_max(float acc, float v) {
  return acc < v ? v : acc;
}

struct DynamicParams {
  float scale = 0.f;
  float zp = 0.f;  // an integer in [0, 255]
};

KILN_HD DynamicParams dynamic_params(float mn, float mx) {
  DynamicParams p;
  p.scale = (mx - mn) / 255.f;
  float z = p.scale == 0.f ? 0.f : nearbyintf(0.f - mn / p.scale);
  p.zp = z < 0.f ? 0.f : (255.f < z ? 255.f : z);
  return p;
}

// One element. The CPU refuses NaN and infinite inputs; here they give 0 (a NaN quotient) or
// clamp (the GPU cannot report an error without waiting for the stream).
KILN_HD uint8_t dynamic_quantize(float x, DynamicParams p) {
  const float v = p.scale == 0.f ? p.zp : nearbyintf(x / p.scale) + p.zp;
  if (cvt::is_nan32(v)) return 0;
  return static_cast<uint8_t>(v < 0.f ? 0.f : (255.f < v ? 255.f : v));
}

}  // namespace kiln::cuda::quant
