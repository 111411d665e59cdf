// Element conversions of the CUDA Cast/CastLike and quantization kernels, callable on the host
// and on the device: __host__ __device__ under nvcc, plain inline functions under a host compiler
// (tests/unit/cuda_cast_host_test.cc checks them in every build, CPU-only builds included).
//
// They reproduce the CPU reference bit for bit: the scalar codecs of src/core/dtype.cc
// (float8, float4e2m1, float8e8m0, float16, bfloat16) and convert_tensor's element-wise path
// (src/core/tensor_convert.cc), NaNs included. The CPU runs on x86, where float <-> double
// conversions keep a NaN's sign and payload (quieted) and an invalid operation (0/0, inf-inf)
// gives the negative default NaN; GPU instructions return a canonical NaN instead, so NaNs are
// built here by hand rather than left to the hardware. Nothing here depends on the FP
// environment or on FMA contraction (no product feeds a sum).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"

#if defined(__CUDACC__)
#define KILN_HD __host__ __device__ __forceinline__
#else
#define KILN_HD inline
#endif

namespace kiln::cuda::cvt {

// ---- bit access ----

KILN_HD uint32_t bits32(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}
KILN_HD float float32_of(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}
KILN_HD uint64_t bits64(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}
KILN_HD double float64_of(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}
KILN_HD bool is_nan32(float f) {
  return (bits32(f) & 0x7FFFFFFFu) > 0x7F800000u;
}
KILN_HD bool is_nan64(double d) {
  return (bits64(d) & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull;
}
KILN_HD bool is_inf64(double d) {
  return (bits64(d) & 0x7FFFFFFFFFFFFFFFull) == 0x7FF0000000000000ull;
}
// std::numeric_limits<float>::quiet_NaN(): what the CPU decoders return for NaN codes.
KILN_HD float quiet_nan32() {
  return float32_of(0x7FC00000u);
}

// ---- float <-> double and arithmetic with x86's NaN results ----

// static_cast<double>(float) on x86: a NaN keeps its sign and payload and becomes quiet.
KILN_HD double widen(float f) {
  const uint32_t u = bits32(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    return float64_of((static_cast<uint64_t>(u & 0x80000000u) << 32) | 0x7FF8000000000000ull |
                      (static_cast<uint64_t>(u & 0x3FFFFFu) << 29));
  }
  return static_cast<double>(f);
}
// static_cast<float>(double) on x86 (round to nearest even; NaNs as in widen).
KILN_HD float narrow(double d) {
  if (is_nan64(d)) {
    const uint64_t u = bits64(d);
    return float32_of(static_cast<uint32_t>((u >> 32) & 0x80000000u) | 0x7FC00000u |
                      static_cast<uint32_t>((u >> 29) & 0x3FFFFFu));
  }
  return static_cast<float>(d);
}
// The NaN x86 (SSE) returns for a op b: the first NaN operand, quieted; without NaN operands
// (an invalid operation) the default NaN, whose sign bit is set.
KILN_HD double nan_result64(double a, double b) {
  if (is_nan64(a)) return float64_of(bits64(a) | 0x0008000000000000ull);
  if (is_nan64(b)) return float64_of(bits64(b) | 0x0008000000000000ull);
  return float64_of(0xFFF8000000000000ull);
}
KILN_HD float nan_result32(float a, float b) {
  if (is_nan32(a)) return float32_of(bits32(a) | 0x00400000u);
  if (is_nan32(b)) return float32_of(bits32(b) | 0x00400000u);
  return float32_of(0xFFC00000u);
}
KILN_HD double add64(double a, double b) {
  const double r = a + b;
  return is_nan64(r) ? nan_result64(a, b) : r;
}
KILN_HD double sub64(double a, double b) {
  const double r = a - b;
  return is_nan64(r) ? nan_result64(a, b) : r;
}
KILN_HD double mul64(double a, double b) {
  const double r = a * b;
  return is_nan64(r) ? nan_result64(a, b) : r;
}
KILN_HD double div64(double a, double b) {
  const double r = a / b;
  return is_nan64(r) ? nan_result64(a, b) : r;
}
KILN_HD float sub32(float a, float b) {
  const float r = a - b;
  return is_nan32(r) ? nan_result32(a, b) : r;
}
KILN_HD float add32(float a, float b) {
  const float r = a + b;
  return is_nan32(r) ? nan_result32(a, b) : r;
}
KILN_HD float div32(float a, float b) {
  const float r = a / b;
  return is_nan32(r) ? nan_result32(a, b) : r;
}

// double_to_float_round_odd: truncate to float, then set the lowest bit when inexact, so that a
// later rounding to a narrower format equals one correct rounding of the double.
KILN_HD float round_odd(double d) {
  if (is_nan64(d)) return narrow(d);
  float f = static_cast<float>(d);
  if (is_inf64(d) || static_cast<double>(f) == d) return f;
  uint32_t u = bits32(f);
  if ((u & 0x7FFFFFFFu) == 0x7F800000u) return float32_of((u & 0x80000000u) | 0x7F7FFFFFu);
  if (fabs(static_cast<double>(f)) > fabs(d)) u -= 1;  // one step toward zero (f != 0 here)
  return float32_of(u | 1u);
}

// convert_tensor's fp_to_int as a 64-bit pattern: NaN 0, truncate toward zero, clamp beyond
// int64 (uint64 targets: the unsigned range above 2^63); the caller wraps to its width.
KILN_HD uint64_t fp_to_int_bits(double v, bool to_u64) {
  if (is_nan64(v)) return 0;
  const double t = trunc(v);
  if (to_u64) {
    if (t >= 18446744073709551616.0) return ~uint64_t{0};
    if (t >= 9223372036854775808.0) return static_cast<uint64_t>(t);
  }
  if (t <= -9223372036854775808.0) return uint64_t{1} << 63;
  if (t >= 9223372036854775808.0) return (uint64_t{1} << 63) - 1;
  return static_cast<uint64_t>(static_cast<int64_t>(t));
}

// ---- float16 / bfloat16 (half_to_float, float_to_half, ... of src/core/dtype.cc) ----

KILN_HD float half_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    if (mant == 0) return float32_of(sign);
    int e = 127 - 15 + 1;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3FF;
    return float32_of(sign | (static_cast<uint32_t>(e) << 23) | (mant << 13));
  }
  if (exp == 31) return float32_of(sign | 0x7F800000u | (mant << 13));
  return float32_of(sign | ((exp + 112) << 23) | (mant << 13));
}

KILN_HD uint16_t f32_to_half(float f) {
  uint32_t x = bits32(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) return sign | 0x7C00 | (x > 0x7F800000u ? 0x200 : 0);
  if (x >= 0x477FF000u) return sign | 0x7C00;
  if (x < 0x38800000u) {  // float16 subnormal or zero: one unit is 2^-24
    const float scaled = float32_of(x) * 16777216.0f;
    return sign | static_cast<uint16_t>(nearbyintf(scaled));
  }
  const uint32_t odd = (x >> 13) & 1;
  x += 0xFFFu + odd;
  return sign | static_cast<uint16_t>((x - (112u << 23)) >> 13);
}

KILN_HD float bf16_to_f32(uint16_t b) {
  return float32_of(static_cast<uint32_t>(b) << 16);
}

KILN_HD uint16_t f32_to_bf16(float f) {
  uint32_t x = bits32(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7FFFu + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

// ---- float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), float4e2m1, float8e8m0 ----

struct Float8Format {
  int mbits;         // mantissa bits
  int bias;          // exponent bias
  uint8_t max_code;  // largest finite magnitude code
  uint8_t nan_code;  // NaN magnitude code (FNUZ: NaN is 0x80)
  bool has_inf;      // E5M2: 0x7C is infinity
  bool fnuz;         // no negative zero; 0x80 is NaN
};

KILN_HD Float8Format float8_format(DType t) {
  switch (t) {
    case DType::kFloat8E4M3FN:
      return {3, 7, 0x7E, 0x7F, false, false};
    case DType::kFloat8E4M3FNUZ:
      return {3, 8, 0x7F, 0x80, false, true};
    case DType::kFloat8E5M2:
      return {2, 15, 0x7B, 0x7E, true, false};
    default:  // kFloat8E5M2FNUZ
      return {2, 16, 0x7F, 0x80, false, true};
  }
}

KILN_HD bool is_float8(DType t) {
  return t == DType::kFloat8E4M3FN || t == DType::kFloat8E4M3FNUZ || t == DType::kFloat8E5M2 ||
         t == DType::kFloat8E5M2FNUZ;
}

// float8_to_float: NaN codes give quiet_nan32() (positive, whatever the sign bit).
KILN_HD float float8_to_f32(DType t, uint8_t v) {
  const Float8Format fmt = float8_format(t);
  const uint32_t mag = v & 0x7Fu;
  const uint32_t e = mag >> fmt.mbits, m = mag & ((1u << fmt.mbits) - 1);
  if (fmt.fnuz) {
    if (v == 0x80) return quiet_nan32();
  } else if (fmt.has_inf) {
    if (e == 31) {
      return m != 0 ? quiet_nan32()
                    : float32_of((static_cast<uint32_t>(v & 0x80) << 24) | 0x7F800000u);
    }
  } else if (mag == 0x7F) {
    return quiet_nan32();
  }
  float r;
  if (e == 0) {  // subnormal: m units of 2^(1 - bias - mbits), exact
    r = static_cast<float>(m) * float32_of(static_cast<uint32_t>(128 - fmt.bias - fmt.mbits) << 23);
  } else {
    r = float32_of((static_cast<uint32_t>(static_cast<int>(e) - fmt.bias + 127) << 23) |
                   (m << (23 - fmt.mbits)));
  }
  return (v & 0x80) ? -r : r;
}

// Code of the finite magnitude `a` (float bits, sign clear) in a small float format with
// `mbits` mantissa bits and exponent `bias` whose codes ascend with the value, rounded to
// nearest even. Codes past the format's largest finite one mean overflow (the caller checks).
KILN_HD uint32_t small_float_code(uint32_t a, int mbits, int bias) {
  const int exp = static_cast<int>(a >> 23);
  const int e = exp == 0 ? -126 : exp - 127;  // a = mant * 2^(e - 23)
  const uint32_t mant = exp == 0 ? a : ((a & 0x7FFFFFu) | 0x800000u);
  const int emin = 1 - bias;  // smallest normal exponent
  const int eff = e > emin ? e : emin;
  const int shift = 23 - mbits + (eff - e);  // a / ulp = mant >> shift
  if (shift > 24) return 0;                  // below half the smallest step
  uint32_t q = (mant >> shift) + (static_cast<uint32_t>(eff - emin) << mbits);
  const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return q;
}

// float_to_float8: `saturate` clamps out-of-range values (infinities included) to the largest
// finite value; otherwise they give infinity (E5M2) or NaN.
KILN_HD uint8_t f32_to_float8(DType t, float f, bool saturate) {
  const Float8Format fmt = float8_format(t);
  const uint32_t u = bits32(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFFu;
  const uint8_t nan_code = fmt.fnuz ? 0x80 : static_cast<uint8_t>(sign | fmt.nan_code);
  if (a > 0x7F800000u) return nan_code;
  const uint8_t over = saturate      ? static_cast<uint8_t>(sign | fmt.max_code)
                       : fmt.has_inf ? static_cast<uint8_t>(sign | 0x7C)
                                     : nan_code;
  if (a == 0x7F800000u) return over;
  const uint32_t code = small_float_code(a, fmt.mbits, fmt.bias);
  if (code > fmt.max_code) return over;
  if (code == 0 && fmt.fnuz) return 0;  // no negative zero
  return static_cast<uint8_t>(sign | code);
}

KILN_HD float float4_to_f32(uint8_t nibble) {
  const uint32_t c = nibble & 7u, e = c >> 1, m = c & 1u;
  const float r = e == 0 ? 0.5f * static_cast<float>(m) : float32_of(((e + 126) << 23) | (m << 22));
  return (nibble & 8) ? -r : r;
}

// float_to_float4e2m1: no infinity or NaN in the format; NaN encodes as 0x8 and everything out
// of range saturates (the `saturate` attribute does not apply).
KILN_HD uint8_t f32_to_float4(float f) {
  const uint32_t u = bits32(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 28) & 8);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0x8;
  if (a == 0x7F800000u) return sign | 7;
  const uint32_t code = small_float_code(a, 1, 1);
  return static_cast<uint8_t>(sign | (code > 7 ? 7 : code));
}

KILN_HD float e8m0_to_f32(uint8_t v) {
  if (v == 0xFF) return quiet_nan32();
  if (v == 0) return float32_of(0x00400000u);  // 2^-127, a float subnormal
  return float32_of(static_cast<uint32_t>(v) << 23);
}

// float_to_float8e8m0: the magnitude's power of two, the mantissa rounded by `mode`.
KILN_HD uint8_t f32_to_e8m0(float f, bool saturate, E8M0Round mode) {
  const uint32_t a = bits32(f) & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0xFF;
  if (a == 0x7F800000u) return saturate ? 0xFE : 0xFF;
  if (a == 0) return 0;
  int exp2;
  uint32_t frac;  // the bits below the leading one, left-aligned to 23 bits
  if (a >= 0x800000u) {
    exp2 = static_cast<int>(a >> 23) - 127;
    frac = a & 0x7FFFFFu;
  } else {
    int p = 22;
    while ((a & (1u << p)) == 0) --p;
    exp2 = p - 149;
    frac = (a << (23 - p)) & 0x7FFFFFu;
  }
  switch (mode) {
    case E8M0Round::kUp:
      if (frac != 0) ++exp2;
      break;
    case E8M0Round::kDown:
      break;
    case E8M0Round::kNearest:
      if (frac >= 0x400000u) ++exp2;
      break;
  }
  const int code = exp2 + 127;
  if (code < 0) return 0;
  if (code > 254) return saturate ? 0xFE : 0xFF;
  return static_cast<uint8_t>(code);
}

// ---- convert_tensor's element-wise path: any numeric dtype to any other ----

// Storage bits of an element (dtype_bits for the numeric, non-complex dtypes; 0 otherwise).
KILN_HD int element_bits(DType t) {
  switch (t) {
    case DType::kBool:
    case DType::kUInt8:
    case DType::kInt8:
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
    case DType::kFloat8E8M0:
      return 8;
    case DType::kUInt16:
    case DType::kInt16:
    case DType::kFloat16:
    case DType::kBFloat16:
      return 16;
    case DType::kInt32:
    case DType::kUInt32:
    case DType::kFloat32:
      return 32;
    case DType::kInt64:
    case DType::kUInt64:
    case DType::kFloat64:
      return 64;
    case DType::kUInt4:
    case DType::kInt4:
    case DType::kFloat4E2M1:
      return 4;
    case DType::kUInt2:
    case DType::kInt2:
      return 2;
    case DType::kUndefined:
    case DType::kString:
    case DType::kComplex64:
    case DType::kComplex128:
      return 0;
  }
  return 0;
}

// Element i of a packed sub-byte tensor (low bits first).
KILN_HD uint32_t read_bits(const void* p, int64_t i, int bits) {
  const int per_byte = 8 / bits;
  const uint8_t byte = static_cast<const uint8_t*>(p)[i / per_byte];
  return (byte >> (static_cast<int>(i % per_byte) * bits)) & ((1u << bits) - 1);
}

// One loaded element (convert_tensor's Elem): a float32 value exact for every floating source
// but float64, a double, or a 64-bit integer.
struct Value {
  enum Kind : uint8_t { kF32, kF64, kInt, kUInt } kind = kInt;
  float f = 0.f;
  double d = 0.0;
  int64_t i = 0;  // kUInt: the uint64 bits

  KILN_HD double as_double() const {
    switch (kind) {
      case kF32:
        return widen(f);
      case kF64:
        return d;
      case kInt:
        return static_cast<double>(i);
      case kUInt:
        return static_cast<double>(static_cast<uint64_t>(i));
    }
    return 0.0;
  }
  // The value rounded to odd in float: the source of every conversion to a narrower float.
  KILN_HD float as_narrow() const {
    return kind == kF32 ? narrow(widen(f)) : round_odd(as_double());
  }
  KILN_HD uint64_t as_int_bits(bool to_u64) const {
    return kind == kF32 || kind == kF64 ? fp_to_int_bits(as_double(), to_u64)
                                        : static_cast<uint64_t>(i);
  }
  KILN_HD bool nonzero() const {
    return kind == kF32 ? f != 0.f : kind == kF64 ? d != 0.0 : i != 0;
  }
};

KILN_HD Value load_value(const void* p, DType t, int64_t i) {
  Value v;
  auto fl = [&v](float f) {
    v.kind = Value::kF32;
    v.f = f;
  };
  auto in = [&v](int64_t x) {
    v.kind = Value::kInt;
    v.i = x;
  };
  switch (t) {
    case DType::kFloat32:
      fl(static_cast<const float*>(p)[i]);
      break;
    case DType::kFloat64:
      v.kind = Value::kF64;
      v.d = static_cast<const double*>(p)[i];
      break;
    case DType::kFloat16:
      fl(half_to_f32(static_cast<const uint16_t*>(p)[i]));
      break;
    case DType::kBFloat16:
      fl(bf16_to_f32(static_cast<const uint16_t*>(p)[i]));
      break;
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
      fl(float8_to_f32(t, static_cast<const uint8_t*>(p)[i]));
      break;
    case DType::kFloat8E8M0:
      fl(e8m0_to_f32(static_cast<const uint8_t*>(p)[i]));
      break;
    case DType::kFloat4E2M1:
      fl(float4_to_f32(static_cast<uint8_t>(read_bits(p, i, 4))));
      break;
    case DType::kBool:
      in(static_cast<const uint8_t*>(p)[i] != 0 ? 1 : 0);
      break;
    case DType::kInt8:
      in(static_cast<const int8_t*>(p)[i]);
      break;
    case DType::kUInt8:
      in(static_cast<const uint8_t*>(p)[i]);
      break;
    case DType::kInt16:
      in(static_cast<const int16_t*>(p)[i]);
      break;
    case DType::kUInt16:
      in(static_cast<const uint16_t*>(p)[i]);
      break;
    case DType::kInt32:
      in(static_cast<const int32_t*>(p)[i]);
      break;
    case DType::kUInt32:
      in(static_cast<const uint32_t*>(p)[i]);
      break;
    case DType::kInt64:
      in(static_cast<const int64_t*>(p)[i]);
      break;
    case DType::kUInt64:
      v.kind = Value::kUInt;
      v.i = static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
      break;
    case DType::kInt4: {
      const int x = static_cast<int>(read_bits(p, i, 4));
      in(x >= 8 ? x - 16 : x);
      break;
    }
    case DType::kUInt4:
      in(read_bits(p, i, 4));
      break;
    case DType::kInt2: {
      const int x = static_cast<int>(read_bits(p, i, 2));
      in(x >= 2 ? x - 4 : x);
      break;
    }
    case DType::kUInt2:
      in(read_bits(p, i, 2));
      break;
    case DType::kUndefined:
    case DType::kString:
    case DType::kComplex64:
    case DType::kComplex128:
      break;
  }
  return v;
}

// Options of a cast (CastOptions of src/core/tensor.h).
struct CastParams {
  bool saturate = true;
  E8M0Round e8m0_round = E8M0Round::kUp;
};

// The bit pattern of `v` converted to `to` (write_elem of convert_tensor); sub-byte results in
// the low bits. Wider patterns are truncated to the element by the caller's store.
KILN_HD uint64_t encode_value(const Value& v, DType to, CastParams o) {
  switch (to) {
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
      return f32_to_float8(to, v.as_narrow(), o.saturate);
    case DType::kFloat8E8M0:
      return f32_to_e8m0(v.as_narrow(), o.saturate, o.e8m0_round);
    case DType::kFloat4E2M1:
      return f32_to_float4(v.as_narrow());
    case DType::kInt4:
    case DType::kUInt4:
      return v.as_int_bits(false) & 0xFu;
    case DType::kInt2:
    case DType::kUInt2:
      return v.as_int_bits(false) & 0x3u;
    case DType::kFloat32:
      return bits32(narrow(v.as_double()));
    case DType::kFloat64:
      return bits64(v.as_double());
    case DType::kFloat16:
      return f32_to_half(v.as_narrow());
    case DType::kBFloat16:
      return f32_to_bf16(v.as_narrow());
    case DType::kBool:
      return v.nonzero() ? 1 : 0;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kUInt16:
    case DType::kInt32:
    case DType::kUInt32:
    case DType::kInt64:
      return v.as_int_bits(false);
    case DType::kUInt64:
      return v.kind == Value::kUInt ? static_cast<uint64_t>(v.i) : v.as_int_bits(true);
    case DType::kUndefined:
    case DType::kString:
    case DType::kComplex64:
    case DType::kComplex128:
      return 0;
  }
  return 0;
}

// Stores the low element_bits(to) bits of `bits` as element i of a tensor of at least one byte
// per element.
KILN_HD void store_bits(void* p, DType to, int64_t i, uint64_t bits) {
  switch (element_bits(to)) {
    case 8:
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(bits);
      break;
    case 16:
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(bits);
      break;
    case 32:
      static_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(bits);
      break;
    case 64:
      static_cast<uint64_t*>(p)[i] = bits;
      break;
    default:
      break;
  }
}

// Byte `b` of a packed sub-byte output of n elements: elements produced by `elem(i)` (a pattern in
// the low bits), low bits first; bits past the last element are 0. One thread writes each byte.
template <typename ElemFn>
KILN_HD uint8_t pack_byte(int64_t b, int64_t n, int bits, ElemFn elem) {
  const int per_byte = 8 / bits;
  const uint32_t mask = (1u << bits) - 1;
  uint32_t byte = 0;
  for (int k = 0; k < per_byte; ++k) {
    const int64_t i = b * per_byte + k;
    if (i >= n) break;
    byte |= (static_cast<uint32_t>(elem(i)) & mask) << (k * bits);
  }
  return static_cast<uint8_t>(byte);
}

// Cast of a whole tensor, one output unit at a time: for outputs of one byte or more, unit u is
// element u; for packed outputs, unit u is byte u. `units` says how many there are.
KILN_HD int64_t cast_units(DType to, int64_t n) {
  const int bits = element_bits(to);
  return bits >= 8 ? n : (n * bits + 7) / 8;
}
KILN_HD void cast_unit(const void* x, DType from, void* y, DType to, int64_t n, int64_t u,
                       CastParams o) {
  const int bits = element_bits(to);
  if (bits >= 8) {
    store_bits(y, to, u, encode_value(load_value(x, from, u), to, o));
    return;
  }
  static_cast<uint8_t*>(y)[u] =
      pack_byte(u, n, bits, [&](int64_t i) { return encode_value(load_value(x, from, i), to, o); });
}

}  // namespace kiln::cuda::cvt
