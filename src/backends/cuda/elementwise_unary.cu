// CUDA kernels of the unary elementwise ops: math functions, activations, logic and bitwise
// negation. One kernel template per element type with the op as a runtime code; float16 and
// bfloat16 compute in float, double in double. Semantics follow the CPU reference kernels
// (src/backends/cpu/elementwise_unary.cc): Round is half to even, Relu/Clip let NaN through,
// Abs/Neg of the most negative integer wrap, integer Shrink computes in double and truncates.
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

enum UnOp : int {
  // any numeric type
  kRelu,
  kAbs,
  kNeg,
  kSign,
  kShrink,
  // integers only
  kBitNot,
  // bool only
  kNot,
  // float only
  kSigmoid,
  kTanh,
  kErf,
  kGeluErf,
  kGeluTanh,
  kExp,
  kLog,
  kSqrt,
  kReciprocal,
  kFloor,
  kCeil,
  kRound,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
  kLeakyRelu,
  kElu,
  kSelu,
  kCelu,
  kHardSigmoid,
  kHardSwish,
  kSoftplus,
  kSoftsign,
  kThresholdedRelu,
  kMish,
  kSwish,
  // float in, bool out
  kIsNaN,
  kIsInf,
};

struct Params {
  float alpha = 0.f, beta = 0.f, gamma = 0.f;
  int flags = 0;  // IsInf: bit 0 detect_positive, bit 1 detect_negative
};

template <typename C>
__host__ __device__ __forceinline__ C sigmoid_c(C x) {
  if (x >= C(0)) return C(1) / (C(1) + exp(-x));
  const C e = exp(x);
  return e / (C(1) + e);
}
template <typename C>
__host__ __device__ __forceinline__ C softplus_c(C x) {
  return x > C(0) ? x + log1p(exp(-x)) : log1p(exp(x));
}

template <typename C>
__host__ __device__ __forceinline__ C float_op(int op, C x, const Params& p) {
  const C a = static_cast<C>(p.alpha);
  switch (op) {
    case kRelu:
      return x < C(0) ? C(0) : x;
    case kAbs:
      return fabs(x);
    case kNeg:
      return -x;
    case kSign:
      return isnan(x) ? x : static_cast<C>((x > C(0)) - (x < C(0)));
    case kShrink: {
      const C lambd = static_cast<C>(p.beta);
      if (x < -lambd) return x + a;
      if (x > lambd) return x - a;
      return C(0);
    }
    case kSigmoid:
      return sigmoid_c(x);
    case kTanh:
      return tanh(x);
    case kErf:
      return erf(x);
    case kGeluErf:
      return C(0.5) * x * (C(1) + erf(x * C(0.7071067811865476)));
    case kGeluTanh: {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + tanh(k * (x + C(0.044715) * x * x * x)));
    }
    case kExp:
      return exp(x);
    case kLog:
      return log(x);
    case kSqrt:
      return sqrt(x);
    case kReciprocal:
      return C(1) / x;
    case kFloor:
      return floor(x);
    case kCeil:
      return ceil(x);
    case kRound:
      return rint(x);  // half to even
    case kSin:
      return sin(x);
    case kCos:
      return cos(x);
    case kTan:
      return tan(x);
    case kAsin:
      return asin(x);
    case kAcos:
      return acos(x);
    case kAtan:
      return atan(x);
    case kSinh:
      return sinh(x);
    case kCosh:
      return cosh(x);
    case kAsinh:
      return asinh(x);
    case kAcosh:
      return acosh(x);
    case kAtanh:
      return atanh(x);
    case kLeakyRelu:
      return x < C(0) ? a * x : x;
    case kElu:
      return x < C(0) ? a * expm1(x) : x;
    case kSelu: {
      const C g = static_cast<C>(p.gamma);
      return x <= C(0) ? g * (a * exp(x) - a) : g * x;
    }
    case kCelu:
      return fmax(C(0), x) + fmin(C(0), a * expm1(x / a));
    case kHardSigmoid:
      return fmax(C(0), fmin(C(1), a * x + static_cast<C>(p.beta)));
    case kHardSwish:
      return x * fmax(C(0), fmin(C(1), x / C(6) + C(0.5)));
    case kSoftplus:
      return softplus_c(x);
    case kSoftsign:
      return x / (C(1) + fabs(x));
    case kThresholdedRelu:
      return x > a ? x : C(0);
    case kMish:
      return x * tanh(softplus_c(x));
    case kSwish:
      return x * sigmoid_c(a * x);
    default:
      return x;
  }
}

template <typename T>
__host__ __device__ __forceinline__ T int_op(int op, T x, const Params& p) {
  switch (op) {
    case kRelu:
      return is_negative(x) ? T(0) : x;
    case kAbs:
      return is_negative(x) ? wrap_sub(T(0), x) : x;
    case kNeg:
      return wrap_sub(T(0), x);
    case kSign:
      return static_cast<T>((x > T(0)) - (is_negative(x) ? 1 : 0));
    case kBitNot:
      return static_cast<T>(~x);
    case kShrink: {
      const double v = static_cast<double>(x);
      const double lambd = p.beta;
      double r = 0.0;
      if (v < -lambd) {
        r = v + static_cast<double>(p.alpha);
      } else if (v > lambd) {
        r = v - static_cast<double>(p.alpha);
      }
      r = trunc(r);
      if (!(r > static_cast<double>(std::numeric_limits<T>::lowest()))) {
        return std::numeric_limits<T>::lowest();
      }
      if (!(r < static_cast<double>(std::numeric_limits<T>::max()))) {
        return std::numeric_limits<T>::max();
      }
      return static_cast<T>(r);
    }
    default:
      return x;
  }
}

template <typename T>
__global__ void unary_kernel(const T* x, void* out, int64_t n, int op, Params p) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    if constexpr (std::is_same_v<T, bool>) {
      static_cast<bool*>(out)[i] = !x[i];  // Not
    } else if constexpr (kFloatLike<T>) {
      const Compute<T> v = load_c(x, i);
      if (op == kIsNaN) {
        static_cast<bool*>(out)[i] = isnan(v);
      } else if (op == kIsInf) {
        static_cast<bool*>(out)[i] =
            isinf(v) && ((v > Compute<T>(0)) ? (p.flags & 1) != 0 : (p.flags & 2) != 0);
      } else {
        static_cast<T*>(out)[i] = to_t<T>(float_op<Compute<T>>(op, v, p));
      }
    } else {
      static_cast<T*>(out)[i] = int_op<T>(op, x[i], p);
    }
  }
}

// Which dtypes an op takes.
enum : int { kF = 1, kSigned = 2, kUnsigned = 4, kB = 8 };
constexpr int kNum = kF | kSigned | kUnsigned;

struct UnInfo {
  const char* name;
  int op;
  int types;
};

constexpr UnInfo kUnOps[] = {
    {"Relu", kRelu, kNum},
    {"Abs", kAbs, kNum},
    {"Neg", kNeg, kF | kSigned},
    {"Sign", kSign, kNum},
    {"Shrink", kShrink, kNum},
    {"BitwiseNot", kBitNot, kSigned | kUnsigned},
    {"Not", kNot, kB},
    {"Sigmoid", kSigmoid, kF},
    {"Tanh", kTanh, kF},
    {"Erf", kErf, kF},
    {"Gelu", kGeluErf, kF},
    {"Exp", kExp, kF},
    {"Log", kLog, kF},
    {"Sqrt", kSqrt, kF},
    {"Reciprocal", kReciprocal, kF},
    {"Floor", kFloor, kF},
    {"Ceil", kCeil, kF},
    {"Round", kRound, kF},
    {"Sin", kSin, kF},
    {"Cos", kCos, kF},
    {"Tan", kTan, kF},
    {"Asin", kAsin, kF},
    {"Acos", kAcos, kF},
    {"Atan", kAtan, kF},
    {"Sinh", kSinh, kF},
    {"Cosh", kCosh, kF},
    {"Asinh", kAsinh, kF},
    {"Acosh", kAcosh, kF},
    {"Atanh", kAtanh, kF},
    {"LeakyRelu", kLeakyRelu, kF},
    {"Elu", kElu, kF},
    {"Selu", kSelu, kF},
    {"Celu", kCelu, kF},
    {"HardSigmoid", kHardSigmoid, kF},
    {"HardSwish", kHardSwish, kF},
    {"Softplus", kSoftplus, kF},
    {"Softsign", kSoftsign, kF},
    {"ThresholdedRelu", kThresholdedRelu, kF},
    {"Mish", kMish, kF},
    {"Swish", kSwish, kF},
    {"IsNaN", kIsNaN, kF},
    {"IsInf", kIsInf, kF},
};

const UnInfo* find_un(const std::string& name) {
  for (const UnInfo& o : kUnOps) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

bool un_dtype_ok(int types, DType t) {
  if (is_float_dtype(t)) return (types & kF) != 0;
  switch (t) {
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
      return (types & kSigned) != 0;
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64:
      return (types & kUnsigned) != 0;
    case DType::kBool:
      return (types & kB) != 0;
    default:
      return false;
  }
}

std::string unary_supports(const ir::Node& node) {
  const UnInfo* o = find_un(node.op_type);
  if (o == nullptr) return "unknown op";
  if (!node.has_input(0)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!un_dtype_ok(o->types, t)) return std::string("dtype ") + dtype_name(t);
  const DType want = (o->op == kIsNaN || o->op == kIsInf) ? DType::kBool : t;
  const DType out = output_dtype(node, 0);
  if (out != DType::kUndefined && out != want) return "unexpected output dtype";
  if (o->op == kGeluErf) {
    const std::string a = node.attr_string("approximate", "none");
    if (a != "none" && a != "tanh") return "bad approximate";
  }
  if (o->op == kCelu) {
    const float alpha = node.attr_float("alpha", 1.f);
    if (alpha == 0.f || !std::isfinite(alpha)) return "bad alpha";
  }
  return {};
}

Status unary_run(KernelContext& ctx) {
  const UnInfo* o = find_un(ctx.node().op_type);
  if (o == nullptr) return ctx.unsupported("unknown op");
  const DeviceTensor& x = ctx.input(0);
  if (!un_dtype_ok(o->types, x.dtype)) return ctx.unsupported_type(x.dtype);
  int op = o->op;
  Params p;
  switch (op) {
    case kShrink:
      p.alpha = ctx.attr_float("bias", 0.f);
      p.beta = ctx.attr_float("lambd", 0.5f);
      break;
    case kGeluErf: {
      const std::string a = ctx.attr_string("approximate", "none");
      if (a == "tanh") {
        op = kGeluTanh;
      } else if (a != "none") {
        return ctx.invalid("attribute 'approximate' must be \"none\" or \"tanh\", got \"" + a +
                           "\"");
      }
      break;
    }
    case kLeakyRelu:
      p.alpha = ctx.attr_float("alpha", 0.01f);
      break;
    case kThresholdedRelu:
    case kElu:
    case kSwish:
      p.alpha = ctx.attr_float("alpha", 1.f);
      break;
    case kCelu:
      p.alpha = ctx.attr_float("alpha", 1.f);
      if (p.alpha == 0.f || !std::isfinite(p.alpha)) {
        return ctx.invalid("attribute 'alpha' must be finite and non-zero");
      }
      break;
    case kSelu:
      p.alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
      p.gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
      break;
    case kHardSigmoid:
      p.alpha = ctx.attr_float("alpha", 0.2f);
      p.beta = ctx.attr_float("beta", 0.5f);
      break;
    case kIsInf:
      p.flags = (ctx.attr_int("detect_positive", 1) != 0 ? 1 : 0) |
                (ctx.attr_int("detect_negative", 1) != 0 ? 2 : 0);
      break;
    default:
      break;
  }
  const DType out_dt = (op == kIsNaN || op == kIsInf) ? DType::kBool : x.dtype;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, out_dt, x.shape));
  const int64_t n = x.numel();
  if (n == 0) return Status::Ok();
  const Launch l = launch_for(n);
  const bool ok = dispatch_all<true>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    unary_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->data, n, op, p);
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return ctx.check_launch(o->name);
}

}  // namespace

void register_ew_unary_kernels(KernelRegistry& r) {
  for (const UnInfo& o : kUnOps) {
    KernelDef d;
    d.domain = "";
    d.op_type = o.name;
    d.supports = &unary_supports;
    d.run = &unary_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
