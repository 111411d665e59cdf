// CUDA kernels of Cast, CastLike and BitCast. Two cast kernels; the source and target dtypes
// are runtime codes:
//
// Between the plain dtypes (float32/16, bfloat16, float64, 8- to 64-bit integers, bool),
// conversions follow convert_tensor (src/core/tensor_convert.cc), the CPU kernel's:
//  - float to integer: truncate toward zero; NaN gives 0; values beyond int64 clamp to int64's
//    range (uint64: to [0, 2^64-1] above 2^63), then wrap to the target width.
//  - to bool: x != 0 (NaN is true).
//  - double and integers to float16/bfloat16: round to float with round-to-odd, then to nearest
//    even (one correct rounding); float to float16/bfloat16: round to nearest even.
//  - integers to float/double: one rounding; integer to integer: wraps.
// Pairs with a float8 type, float8e8m0, float4e2m1 or a 4-/2-bit integer on either side run the
// element-wise path of convert_tensor, reproduced bit for bit in cast_convert.h (Cast's
// `saturate` and `round_mode` attributes included). Packed (4-/2-bit) outputs are written a
// byte per thread. Strings and complex numbers are refused (they run on the CPU).
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "backends/cuda/cast_convert.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

// A loaded element: a floating value or an integer (signed or unsigned 64-bit).
struct Elem {
  double f;
  int64_t i;
  int kind;  // 0 float-like source; 1 signed integer / bool; 2 unsigned integer
  bool from_double;
};

__host__ __device__ __forceinline__ Elem load_elem(const void* p, DType dt, int64_t i) {
  Elem e{0.0, 0, 0, false};
  switch (dt) {
    case DType::kFloat32:
      e.f = static_cast<const float*>(p)[i];
      break;
    case DType::kFloat64:
      e.f = static_cast<const double*>(p)[i];
      e.from_double = true;
      break;
    case DType::kFloat16:
      e.f = __half2float(static_cast<const __half*>(p)[i]);
      break;
    case DType::kBFloat16:
      e.f = __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
      break;
    case DType::kInt8:
      e.i = static_cast<const int8_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kInt16:
      e.i = static_cast<const int16_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kInt32:
      e.i = static_cast<const int32_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kInt64:
      e.i = static_cast<const int64_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kUInt8:
      e.i = static_cast<const uint8_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kUInt16:
      e.i = static_cast<const uint16_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kUInt32:
      e.i = static_cast<const uint32_t*>(p)[i];
      e.kind = 1;
      break;
    case DType::kUInt64:
      e.i = static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
      e.kind = 2;
      break;
    case DType::kBool:
      e.i = static_cast<const uint8_t*>(p)[i] != 0 ? 1 : 0;
      e.kind = 1;
      break;
    default:
      break;
  }
  return e;
}

// Double to float rounding to odd (see double_to_float_round_odd in src/core/dtype.cc).
__host__ __device__ __forceinline__ float round_odd_float(double d) {
  float f = static_cast<float>(d);
  if (!isfinite(d) || static_cast<double>(f) == d) return f;
  if (isinf(f)) return copysignf(3.402823466e+38f, f);
  if (fabs(static_cast<double>(f)) > fabs(d)) f = nextafterf(f, 0.f);  // truncate toward 0
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  u |= 1u;
  memcpy(&f, &u, sizeof(u));
  return f;
}

// Float to a 64-bit integer pattern: truncate, NaN 0, clamp beyond int64 (uint64 target: the
// unsigned range above 2^63).
__host__ __device__ __forceinline__ uint64_t fp_to_bits(double v, bool to_u64) {
  if (isnan(v)) return 0;
  const double t = trunc(v);
  if (to_u64) {
    if (t >= 18446744073709551616.0) return ~uint64_t{0};
    if (t >= 9223372036854775808.0) return static_cast<uint64_t>(t);
  }
  int64_t i;
  if (t <= -9223372036854775808.0) {
    i = INT64_MIN;
  } else if (t >= 9223372036854775808.0) {
    i = INT64_MAX;
  } else {
    i = static_cast<int64_t>(t);
  }
  return static_cast<uint64_t>(i);
}

// A value rounded to float for float16/bfloat16 targets.
__host__ __device__ __forceinline__ float narrow_source(const Elem& e) {
  if (e.kind == 0) return e.from_double ? round_odd_float(e.f) : static_cast<float>(e.f);
  const double d =
      e.kind == 2 ? static_cast<double>(static_cast<uint64_t>(e.i)) : static_cast<double>(e.i);
  return round_odd_float(d);
}

__host__ __device__ __forceinline__ void store_elem(void* p, DType dt, int64_t i, const Elem& e) {
  const bool fl = e.kind == 0;
  const uint64_t u = static_cast<uint64_t>(e.i);
  auto int_bits = [&](bool to_u64) -> uint64_t { return fl ? fp_to_bits(e.f, to_u64) : u; };
  switch (dt) {
    case DType::kFloat32:
      static_cast<float*>(p)[i] =
          fl ? static_cast<float>(e.f)
             : (e.kind == 2 ? static_cast<float>(u) : static_cast<float>(e.i));
      break;
    case DType::kFloat64:
      static_cast<double*>(p)[i] =
          fl ? e.f : (e.kind == 2 ? static_cast<double>(u) : static_cast<double>(e.i));
      break;
    case DType::kFloat16:
      static_cast<__half*>(p)[i] = __float2half_rn(narrow_source(e));
      break;
    case DType::kBFloat16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(narrow_source(e));
      break;
    case DType::kInt8:
      static_cast<int8_t*>(p)[i] = static_cast<int8_t>(int_bits(false));
      break;
    case DType::kInt16:
      static_cast<int16_t*>(p)[i] = static_cast<int16_t>(int_bits(false));
      break;
    case DType::kInt32:
      static_cast<int32_t*>(p)[i] = static_cast<int32_t>(int_bits(false));
      break;
    case DType::kInt64:
      static_cast<int64_t*>(p)[i] = static_cast<int64_t>(int_bits(false));
      break;
    case DType::kUInt8:
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(int_bits(false));
      break;
    case DType::kUInt16:
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(int_bits(false));
      break;
    case DType::kUInt32:
      static_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(int_bits(false));
      break;
    case DType::kUInt64:
      static_cast<uint64_t*>(p)[i] = int_bits(true);
      break;
    case DType::kBool:
      static_cast<uint8_t*>(p)[i] = (fl ? (e.f != 0.0) : (e.i != 0)) ? 1 : 0;
      break;
    default:
      break;
  }
}

__global__ void cast_kernel(const void* x, DType from, void* y, DType to, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    store_elem(y, to, i, load_elem(x, from, i));
  }
}

// Any pair with a float8, e8m0, float4 or 4-/2-bit integer side: one thread per output unit
// (an element, or a byte of a packed output).
__global__ void cast_ext_kernel(const void* x, DType from, void* y, DType to, int64_t n,
                                int64_t units, cvt::CastParams o) {
  KILN_GRID_STRIDE_LOOP(u, units) {
    cvt::cast_unit(x, from, y, to, n, u, o);
  }
}

bool plain(DType t) {
  return is_float_dtype(t) || is_int_dtype(t) || t == DType::kBool;
}
// Numeric dtypes the element-wise path handles (everything but strings and complex numbers).
bool castable(DType t) {
  return cvt::element_bits(t) > 0;
}

// Cast's saturate and round_mode (cast_options of the CPU kernel). False for a round_mode the
// CPU rejects.
bool cast_params(const ir::Node& node, cvt::CastParams* o) {
  o->saturate = node.attr_int("saturate", 1) != 0;
  const std::string mode = node.attr_string("round_mode", "up");
  if (mode == "up") {
    o->e8m0_round = E8M0Round::kUp;
  } else if (mode == "down") {
    o->e8m0_round = E8M0Round::kDown;
  } else if (mode == "nearest") {
    o->e8m0_round = E8M0Round::kNearest;
  } else {
    return false;
  }
  return true;
}

// Cast's `to`: an int dtype from opset 6, a type name in Cast-1. -1 when missing or invalid.
int64_t cast_target(const ir::Node& node) {
  const ir::Attribute* a = node.attr("to");
  if (a == nullptr) return -1;
  if (a->type == ir::AttrType::kString) {
    static constexpr std::pair<const char*, int64_t> kNames[] = {
        {"FLOAT", 1},   {"UINT8", 2},   {"INT8", 3},    {"UINT16", 4},   {"INT16", 5},
        {"INT32", 6},   {"INT64", 7},   {"STRING", 8},  {"BOOL", 9},     {"FLOAT16", 10},
        {"DOUBLE", 11}, {"UINT32", 12}, {"UINT64", 13}, {"BFLOAT16", 16}};
    for (const auto& [name, v] : kNames) {
      if (a->s == name) return v;
    }
    return -1;
  }
  if (a->type != ir::AttrType::kInt) return -1;
  return a->i;
}

DType target_of(const ir::Node& node) {
  if (node.op_type == "CastLike") return input_dtype(node, 1);
  const int64_t to = cast_target(node);
  if (to <= 0 || to > kMaxDType || !is_valid_dtype(static_cast<int>(to))) return DType::kUndefined;
  return static_cast<DType>(to);
}

std::string cast_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  const DType from = input_dtype(node, 0);
  const DType to = target_of(node);
  if (!castable(from)) return std::string("source dtype ") + dtype_name(from);
  if (!castable(to)) return std::string("target dtype ") + dtype_name(to);
  cvt::CastParams o;
  if (!cast_params(node, &o)) return "round_mode not up, down or nearest";
  return {};
}

Status cast_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DType to = DType::kUndefined;
  if (ctx.node().op_type == "CastLike") {
    to = ctx.input(1).dtype;
  } else {
    to = target_of(ctx.node());
  }
  if (to == DType::kUndefined) return ctx.invalid("attribute 'to' is missing or not a valid dtype");
  if (!castable(x.dtype)) return ctx.unsupported_type(x.dtype);
  if (!castable(to)) return ctx.unsupported_type(to);
  cvt::CastParams o;
  if (!cast_params(ctx.node(), &o)) {
    return ctx.invalid("attribute 'round_mode' must be \"up\", \"down\" or \"nearest\"");
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, to, x.shape));
  const int64_t n = x.numel();
  if (n == 0) return Status::Ok();
  if (to == x.dtype) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(y->data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    return Status::Ok();
  }
  if (plain(x.dtype) && plain(to)) {
    const Launch l = launch_for(n);
    cast_kernel<<<l.grid, l.block, 0, ctx.stream()>>>(x.data, x.dtype, y->data, to, n);
    return ctx.check_launch("Cast");
  }
  const int64_t units = cvt::cast_units(to, n);
  const Launch l = launch_for(units);
  cast_ext_kernel<<<l.grid, l.block, 0, ctx.stream()>>>(x.data, x.dtype, y->data, to, n, units, o);
  return ctx.check_launch("Cast");
}

// ---- BitCast: same bytes, another dtype of the same width ----

DType bitcast_target(const ir::Node& node) {
  const int64_t to = node.attr_int("to", -1);
  if (to <= 0 || to > kMaxDType || !is_valid_dtype(static_cast<int>(to))) return DType::kUndefined;
  return static_cast<DType>(to);
}

std::string bitcast_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  const DType from = input_dtype(node, 0);
  const DType to = bitcast_target(node);
  if (!castable(from)) return std::string("source dtype ") + dtype_name(from);
  if (!castable(to)) return std::string("target dtype ") + dtype_name(to);
  if (dtype_bits(from) != dtype_bits(to)) return "bit widths differ";
  return {};
}

Status bitcast_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DType to = bitcast_target(ctx.node());
  if (to == DType::kUndefined) return ctx.invalid("attribute 'to' is missing or not a valid dtype");
  if (!castable(x.dtype) || !castable(to) || dtype_bits(x.dtype) != dtype_bits(to)) {
    return ctx.invalid(std::string("cannot bitcast ") + dtype_name(x.dtype) + " to " +
                       dtype_name(to));
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, to, x.shape));
  if (x.nbytes() == 0) return Status::Ok();
  KILN_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(y->data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
  return Status::Ok();
}

}  // namespace

void register_ew_cast_kernels(KernelRegistry& r) {
  KernelDef b;
  b.op_type = "BitCast";
  b.supports = &bitcast_supports;
  b.run = &bitcast_run;
  r.add(b);
  for (const char* name : {"Cast", "CastLike"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &cast_supports;
    d.run = &cast_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
