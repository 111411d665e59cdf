// CUDA kernels of the broadcasting binary ops: arithmetic (Add, Sub, Mul, Div, Mod, Pow, PRelu),
// comparisons (Equal, Less, ...), logic (And, Or, Xor), bitwise ops and BitShift.
//
// One kernel template per element type; the op is a runtime code switched on inside the loop
// (uniform across the grid, so it costs a few instructions, not divergence). Shapes select one of
// three index modes: equal shapes (no index math), one side a single element, general broadcast.
//
// Integer semantics match the CPU reference kernel (src/backends/cpu/elementwise_binary.cc):
//  - Add/Sub/Mul wrap around (two's complement).
//  - Div truncates toward zero; x / 0 is 0 (no trap on the GPU); INT_MIN / -1 wraps to INT_MIN.
//  - Mod: x % 0 is 0; fmod=0 takes the sign of the divisor, fmod=1 that of the dividend.
//  - Pow with integer base and exponent is exact (wrapping); a negative exponent gives 0 except
//    for bases 1 and -1. Integer base with a float exponent: pow in double, truncated and
//    clamped to the base type's range (NaN gives 0).
//  - BitShift by a negative amount or by at least the bit width gives 0 (LEFT) or the sign fill
//    (RIGHT).
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

enum BinOp : int {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kFMod,
  kPow,
  kPRelu,
  kBitAnd,
  kBitOr,
  kBitXor,
  kShl,
  kShr,
  // bool output from here on
  kEq,
  kLt,
  kLe,
  kGt,
  kGe,
  kAnd,
  kOr,
  kXor,
};

__host__ __device__ constexpr bool bool_out(int op) {
  return op >= kEq;
}

template <typename C>
__host__ __device__ __forceinline__ C float_mod(C a, C b, bool c_fmod) {
  C r = fmod(a, b);
  if (c_fmod) return r;
  if (r == C(0)) return copysign(C(0), b);
  if ((r < C(0)) != (b < C(0))) r += b;
  return r;
}

template <typename C>
__host__ __device__ __forceinline__ C int_pow(C a, C b) {
  if constexpr (std::is_signed_v<C>) {
    if (b < 0) {
      if (a == 1) return C(1);
      if (a == -1) return (b % 2 == 0) ? C(1) : C(-1);
      return C(0);
    }
  }
  C result = 1, base = a;
  auto e = static_cast<std::make_unsigned_t<C>>(b);
  while (e != 0) {
    if (e & 1) result = wrap_mul(result, base);
    base = wrap_mul(base, base);
    e >>= 1;
  }
  return result;
}

// Arithmetic ops in the compute type C.
template <typename C>
__host__ __device__ __forceinline__ C arith(int op, C a, C b) {
  if constexpr (std::is_same_v<C, bool>) {
    return false;  // no arithmetic on bool (refused in supports)
  } else if constexpr (std::is_floating_point_v<C>) {
    switch (op) {
      case kAdd:
        return a + b;
      case kSub:
        return a - b;
      case kMul:
        return a * b;
      case kDiv:
        return a / b;
      case kMod:
        return float_mod(a, b, false);
      case kFMod:
        return float_mod(a, b, true);
      case kPow:
        return b == C(2) ? a * a : pow(a, b);
      case kPRelu:
        return a < C(0) ? a * b : a;
      default:
        return C(0);
    }
  } else {
    switch (op) {
      case kAdd:
        return wrap_add(a, b);
      case kSub:
        return wrap_sub(a, b);
      case kMul:
        return wrap_mul(a, b);
      case kDiv:
        if (b == 0) return C(0);
        if constexpr (std::is_signed_v<C>) {
          if (b == C(-1)) return wrap_sub(C(0), a);
        }
        return static_cast<C>(a / b);
      case kMod:
      case kFMod: {
        if (b == 0) return C(0);
        if constexpr (std::is_signed_v<C>) {
          if (b == C(-1)) return C(0);
          C r = static_cast<C>(a % b);
          if (op == kMod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
          return r;
        } else {
          return static_cast<C>(a % b);
        }
      }
      case kPow:
        return int_pow(a, b);
      case kPRelu:
        return is_negative(a) ? wrap_mul(a, b) : a;
      case kBitAnd:
        return static_cast<C>(a & b);
      case kBitOr:
        return static_cast<C>(a | b);
      case kBitXor:
        return static_cast<C>(a ^ b);
      case kShl: {
        constexpr int kBits = static_cast<int>(sizeof(C) * 8);
        const bool in_range =
            !is_negative(b) && static_cast<uint64_t>(b) < static_cast<uint64_t>(kBits);
        if (!in_range) return C(0);
        using U = std::make_unsigned_t<C>;
        using W = std::conditional_t<(sizeof(U) < 4), uint32_t, U>;
        return static_cast<C>(
            static_cast<U>(static_cast<W>(static_cast<U>(a)) << static_cast<int>(b)));
      }
      case kShr: {
        constexpr int kBits = static_cast<int>(sizeof(C) * 8);
        const bool in_range =
            !is_negative(b) && static_cast<uint64_t>(b) < static_cast<uint64_t>(kBits);
        if (!in_range) return is_negative(a) ? static_cast<C>(-1) : C(0);
        return static_cast<C>(a >> static_cast<int>(b));
      }
      default:
        return C(0);
    }
  }
}

template <typename C>
__host__ __device__ __forceinline__ bool compare(int op, C a, C b) {
  switch (op) {
    case kEq:
      return a == b;
    case kLt:
      return a < b;
    case kLe:
      return a <= b;
    case kGt:
      return a > b;
    case kGe:
      return a >= b;
    case kAnd:
      return static_cast<bool>(a) && static_cast<bool>(b);
    case kOr:
      return static_cast<bool>(a) || static_cast<bool>(b);
    case kXor:
      return static_cast<bool>(a) != static_cast<bool>(b);
    default:
      return false;
  }
}

// Index mode of each input: its index is the output's (kFull), 0 (kScalar), or mapped.
enum : int { kFull = 0, kScalar = 1, kMapped = 2 };

__device__ __forceinline__ int64_t input_index(int mode, const BroadcastMap& m, int64_t i) {
  if (mode == kFull) return i;
  if (mode == kScalar) return 0;
  return m.offset(i);
}

template <typename T>
__global__ void binary_kernel(const T* a, const T* b, void* out, int64_t n, int op, int mode_a,
                              int mode_b, BroadcastMap ma, BroadcastMap mb) {
  using C = Compute<T>;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const C x = load_c(a, input_index(mode_a, ma, i));
    const C y = load_c(b, input_index(mode_b, mb, i));
    if (bool_out(op)) {
      static_cast<bool*>(out)[i] = compare<C>(op, x, y);
    } else {
      static_cast<T*>(out)[i] = to_t<T>(arith<C>(op, x, y));
    }
  }
}

// Element i of a tensor of any plain numeric dtype, as double (exponents of mixed-type Pow).
__device__ __forceinline__ double load_any_double(const void* p, int dt, int64_t i) {
  switch (static_cast<DType>(dt)) {
    case DType::kFloat32:
      return static_cast<const float*>(p)[i];
    case DType::kFloat64:
      return static_cast<const double*>(p)[i];
    case DType::kFloat16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case DType::kBFloat16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::kInt8:
      return static_cast<const int8_t*>(p)[i];
    case DType::kInt16:
      return static_cast<const int16_t*>(p)[i];
    case DType::kInt32:
      return static_cast<const int32_t*>(p)[i];
    case DType::kInt64:
      return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::kUInt8:
      return static_cast<const uint8_t*>(p)[i];
    case DType::kUInt16:
      return static_cast<const uint16_t*>(p)[i];
    case DType::kUInt32:
      return static_cast<const uint32_t*>(p)[i];
    case DType::kUInt64:
      return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    default:
      return 0.0;
  }
}
__device__ __forceinline__ int64_t load_any_int(const void* p, int dt, int64_t i) {
  switch (static_cast<DType>(dt)) {
    case DType::kInt8:
      return static_cast<const int8_t*>(p)[i];
    case DType::kInt16:
      return static_cast<const int16_t*>(p)[i];
    case DType::kInt32:
      return static_cast<const int32_t*>(p)[i];
    case DType::kInt64:
      return static_cast<const int64_t*>(p)[i];
    case DType::kUInt8:
      return static_cast<const uint8_t*>(p)[i];
    case DType::kUInt16:
      return static_cast<const uint16_t*>(p)[i];
    case DType::kUInt32:
      return static_cast<const uint32_t*>(p)[i];
    case DType::kUInt64:
      return static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
    default:
      return 0;
  }
}

// Pow whose exponent dtype differs from the base's (output: the base's dtype).
template <typename T>
__global__ void pow_mixed_kernel(const T* a, const void* b, int bdt, bool b_int, bool b_unsigned,
                                 T* out, int64_t n, BroadcastMap ma, BroadcastMap mb) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t ia = ma.offset(i), ib = mb.offset(i);
    if constexpr (kFloatLike<T>) {
      const double x = static_cast<double>(load_c(a, ia));
      const double r = pow(x, load_any_double(b, bdt, ib));
      out[i] = to_t<T>(static_cast<Compute<T>>(r));
    } else {
      const T x = a[ia];
      if (b_int) {
        const int64_t e = load_any_int(b, bdt, ib);
        if (!b_unsigned && e < 0) {
          out[i] = x == T(1) ? T(1)
                   : (std::is_signed_v<T> && x == static_cast<T>(-1))
                       ? ((e % 2 == 0) ? T(1) : static_cast<T>(-1))
                       : T(0);
        } else {
          T result = 1, base = x;
          uint64_t ue = static_cast<uint64_t>(e);
          while (ue != 0) {
            if (ue & 1) result = wrap_mul(result, base);
            base = wrap_mul(base, base);
            ue >>= 1;
          }
          out[i] = result;
        }
      } else {
        double r = pow(static_cast<double>(x), load_any_double(b, bdt, ib));
        T v;
        if (isnan(r)) {
          v = 0;
        } else {
          r = trunc(r);
          if (r <= static_cast<double>(std::numeric_limits<T>::lowest())) {
            v = std::numeric_limits<T>::lowest();
          } else if (r >= static_cast<double>(std::numeric_limits<T>::max())) {
            v = std::numeric_limits<T>::max();
          } else {
            v = static_cast<T>(r);
          }
        }
        out[i] = v;
      }
    }
  }
}

struct OpInfo {
  const char* name;
  int op;
  bool floats, ints, boolean;
};

constexpr OpInfo kOps[] = {
    {"Add", kAdd, true, true, false},          {"Sub", kSub, true, true, false},
    {"Mul", kMul, true, true, false},          {"Div", kDiv, true, true, false},
    {"Mod", kMod, true, true, false},          {"Pow", kPow, true, true, false},
    {"PRelu", kPRelu, true, true, false},      {"BitwiseAnd", kBitAnd, false, true, false},
    {"BitwiseOr", kBitOr, false, true, false}, {"BitwiseXor", kBitXor, false, true, false},
    {"BitShift", kShl, false, true, false},    {"Equal", kEq, true, true, true},
    {"Less", kLt, true, true, false},          {"LessOrEqual", kLe, true, true, false},
    {"Greater", kGt, true, true, false},       {"GreaterOrEqual", kGe, true, true, false},
    {"And", kAnd, false, false, true},         {"Or", kOr, false, false, true},
    {"Xor", kXor, false, false, true},
};

const OpInfo* find_op(const std::string& name) {
  for (const OpInfo& o : kOps) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

bool dtype_ok(const OpInfo& o, DType t) {
  if (is_float_dtype(t)) return o.floats;
  if (is_int_dtype(t)) return o.ints;
  if (t == DType::kBool) return o.boolean;
  return false;
}

std::string binary_supports(const ir::Node& node) {
  const OpInfo* o = find_op(node.op_type);
  if (o == nullptr) return "unknown op";
  if (!node.has_input(0) || !node.has_input(1)) return "missing input";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  const DType a = input_dtype(node, 0), b = input_dtype(node, 1);
  if (!dtype_ok(*o, a)) return std::string("dtype ") + dtype_name(a);
  if (o->op == kPow) {
    if (a != b) {
      if (!is_float_dtype(b) && !is_int_dtype(b))
        return std::string("exponent dtype ") + dtype_name(b);
      if (!is_float_dtype(a) && a != DType::kInt32 && a != DType::kInt64) {
        return std::string("Pow base dtype ") + dtype_name(a) + " with another exponent dtype";
      }
    }
  } else if (a != b) {
    return "inputs of different dtypes";
  }
  if (o->op == kShl) {
    const std::string d = node.attr_string("direction", "");
    if (d != "LEFT" && d != "RIGHT") return "bad direction";
  }
  if (o->op == kMod) {
    const int64_t f = node.attr_int("fmod", 0);
    if (f != 0 && f != 1) return "bad fmod";
  }
  const DType want_out = bool_out(o->op) ? DType::kBool : a;
  const DType out = output_dtype(node, 0);
  if (out != DType::kUndefined && out != want_out) return "unexpected output dtype";
  return {};
}

// Index modes and maps for inputs of shapes sa and sb read as `out` (n > 0). An input with as
// many elements as the output is laid out like it (its missing and size-1 dims are the output's
// size-1 dims), so its index is the output's. Maps are built on collapsed shapes (fewer dims,
// less index math).
void plan_modes(const std::vector<int64_t>& sa, const std::vector<int64_t>& sb,
                const std::vector<int64_t>& out, int* mode_a, int* mode_b, BroadcastMap* ma,
                BroadcastMap* mb) {
  const int64_t na = numel_of(sa), nb = numel_of(sb), n = numel_of(out);
  *mode_a = na == n ? kFull : na == 1 ? kScalar : kMapped;
  *mode_b = nb == n ? kFull : nb == 1 ? kScalar : kMapped;
  if (*mode_a == kMapped) *ma = collapsed_map(sa, out);
  if (*mode_b == kMapped) *mb = collapsed_map(sb, out);
}

Status binary_run(KernelContext& ctx) {
  const OpInfo* o = find_op(ctx.node().op_type);
  if (o == nullptr) return ctx.unsupported("unknown op");
  const DeviceTensor& a = ctx.input(0);
  const DeviceTensor& b = ctx.input(1);
  if (a.rank() > kMaxRank || b.rank() > kMaxRank) return ctx.unsupported("rank > 8");
  int op = o->op;
  if (op == kMod) {
    const int64_t f = ctx.attr_int("fmod", 0);
    if (f != 0 && f != 1) return ctx.invalid("attribute 'fmod' must be 0 or 1");
    if (f == 1) op = kFMod;
  } else if (op == kShl) {
    const std::string d = ctx.attr_string("direction", "");
    if (d != "LEFT" && d != "RIGHT") {
      return ctx.invalid("attribute 'direction' must be \"LEFT\" or \"RIGHT\", got \"" + d + "\"");
    }
    if (d == "RIGHT") op = kShr;
  }
  std::vector<int64_t> sb = b.shape;
  std::vector<int64_t> out_shape;
  if (op == kPRelu) {
    // Slope broadcasts to X (unidirectional). Before opset 7 a 1-D slope of X's channel count
    // applies along axis 1.
    if (ctx.opset() > 0 && ctx.opset() < 7 && b.rank() == 1 && a.rank() >= 2 &&
        b.dim(0) == a.dim(1) && b.dim(0) != 1) {
      sb.assign(static_cast<size_t>(a.rank() - 1), 1);
      sb[0] = b.dim(0);
    }
    StatusOr<std::vector<int64_t>> bs = broadcast_shapes(a.shape, sb);
    if (!bs.ok() || *bs != a.shape) {
      return ctx.invalid("slope " + shape_to_string(b.shape) + " does not broadcast to X " +
                         shape_to_string(a.shape));
    }
    out_shape = a.shape;
  } else {
    StatusOr<std::vector<int64_t>> bs = broadcast_shapes(a.shape, sb);
    if (!bs.ok()) return ctx.invalid(bs.status().message());
    out_shape = *bs;
  }
  if (static_cast<int>(out_shape.size()) > kMaxRank) return ctx.unsupported("rank > 8");
  const DType out_dt = bool_out(op) ? DType::kBool : a.dtype;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, out_dt, out_shape));
  const int64_t n = numel_of(out_shape);
  if (n == 0) return Status::Ok();
  const Launch l = launch_for(n);
  if (a.dtype != b.dtype) {
    if (op != kPow) return ctx.invalid("inputs have different dtypes");
    const BroadcastMap ma = collapsed_map(a.shape, out_shape);
    const BroadcastMap mb = collapsed_map(sb, out_shape);
    const bool b_int = is_int_dtype(b.dtype);
    const bool b_uns = b.dtype == DType::kUInt8 || b.dtype == DType::kUInt16 ||
                       b.dtype == DType::kUInt32 || b.dtype == DType::kUInt64;
    if (!b_int && !is_float_dtype(b.dtype)) return ctx.unsupported_type(b.dtype);
    bool ok = false;
    switch (a.dtype) {
      case DType::kInt32:
        pow_mixed_kernel<int32_t><<<l.grid, l.block, 0, ctx.stream()>>>(
            a.as<int32_t>(), b.data, static_cast<int>(b.dtype), b_int, b_uns, y->as<int32_t>(), n,
            ma, mb);
        ok = true;
        break;
      case DType::kInt64:
        pow_mixed_kernel<int64_t><<<l.grid, l.block, 0, ctx.stream()>>>(
            a.as<int64_t>(), b.data, static_cast<int>(b.dtype), b_int, b_uns, y->as<int64_t>(), n,
            ma, mb);
        ok = true;
        break;
      default:
        ok = dispatch_float(a.dtype, [&](auto tag) {
          using T = decltype(tag);
          pow_mixed_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
              a.as<T>(), b.data, static_cast<int>(b.dtype), b_int, b_uns, y->as<T>(), n, ma, mb);
        });
    }
    if (!ok) return ctx.unsupported_type(a.dtype);
    return ctx.check_launch("Pow");
  }
  int mode_a = kMapped, mode_b = kMapped;
  BroadcastMap ma, mb;
  plan_modes(a.shape, sb, out_shape, &mode_a, &mode_b, &ma, &mb);
  const bool ok = dispatch_all<true>(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(a.as<T>(), b.as<T>(), y->data, n, op,
                                                           mode_a, mode_b, ma, mb);
  });
  if (!ok) return ctx.unsupported_type(a.dtype);
  return ctx.check_launch(o->name);
}

}  // namespace

void register_ew_binary_kernels(KernelRegistry& r) {
  for (const OpInfo& o : kOps) {
    KernelDef d;
    d.domain = "";
    d.op_type = o.name;
    d.supports = &binary_supports;
    d.run = &binary_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
