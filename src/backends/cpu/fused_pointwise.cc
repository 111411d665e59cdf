// CPU reference kernel of kiln.Pointwise: an interpreter of the program (ops/fused_pointwise.cc)
// over blocks of output elements. Values of float32/float16/bfloat16 instructions live in float
// registers, int32/int64/bool ones in int64 registers. Each instruction uses the formula of the
// unfused CPU kernel (the same float functions: exp_vec, tanh_vec, std::erf ...), and a
// float16/bfloat16 result is rounded to its type right after the instruction, as the unfused
// graph stores it; int32 results wrap to 32 bits. The fused node therefore equals the unfused
// graph bit for bit.
#include <cmath>
#include <limits>

#include "backends/cpu/elementwise_math.h"
#include "backends/cpu/elementwise_util.h"
#include "ops/fused_pointwise.h"
#include "ops/shape_util.h"

namespace kiln::cpu {
namespace {

using ops::PwInstr;
using ops::PwOp;
using ops::PwProgram;

constexpr int64_t kBlock = 256;

bool is_float_class(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// Float to integer as Cast does: truncate, NaN is 0, clamp to int64, then wrap to the width.
int64_t float_to_int(float f, DType to) {
  if (to == DType::kBool) return f != 0.f ? 1 : 0;  // NaN is true
  if (std::isnan(f)) return 0;
  const double t = std::trunc(static_cast<double>(f));
  int64_t i;
  if (t <= -9223372036854775808.0) {
    i = std::numeric_limits<int64_t>::min();
  } else if (t >= 9223372036854775808.0) {
    i = std::numeric_limits<int64_t>::max();
  } else {
    i = static_cast<int64_t>(t);
  }
  if (to == DType::kInt32) return static_cast<int32_t>(static_cast<uint32_t>(i));
  return i;
}

float round_to(float f, DType t) {
  if (t == DType::kFloat16) return half_to_float(float_to_half(f));
  if (t == DType::kBFloat16) return bfloat16_to_float(float_to_bfloat16(f));
  return f;
}

int64_t wrap_to(uint64_t v, DType t) {
  if (t == DType::kInt32) return static_cast<int32_t>(static_cast<uint32_t>(v));
  if (t == DType::kBool) return v != 0 ? 1 : 0;
  return static_cast<int64_t>(v);
}

// One block of registers per thread: float and int64 slots for inputs and instructions.
struct Regs {
  std::vector<float> f;
  std::vector<int64_t> i;
  float* fs(int32_t s) { return f.data() + static_cast<size_t>(s) * kBlock; }
  int64_t* is(int32_t s) { return i.data() + static_cast<size_t>(s) * kBlock; }
};

void run_float(const PwInstr& in, Regs& r, int32_t slot, const std::vector<DType>& slot_dt,
               int64_t n) {
  float* y = r.fs(slot);
  auto F = [&](size_t k) { return r.fs(in.args[k]); };
  switch (in.op) {
    case PwOp::kAdd: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = a[j] + b[j];
      break;
    }
    case PwOp::kSub: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = a[j] - b[j];
      break;
    }
    case PwOp::kMul: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = a[j] * b[j];
      break;
    }
    case PwOp::kDiv: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = a[j] / b[j];
      break;
    }
    case PwOp::kMax: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = (a[j] > b[j] || std::isnan(a[j])) ? a[j] : b[j];
      break;
    }
    case PwOp::kMin: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = (a[j] < b[j] || std::isnan(a[j])) ? a[j] : b[j];
      break;
    }
    case PwOp::kPow: {
      const float *a = F(0), *b = F(1);
      for (int64_t j = 0; j < n; ++j) y[j] = b[j] == 2.f ? a[j] * a[j] : std::pow(a[j], b[j]);
      break;
    }
    case PwOp::kNeg:
      for (int64_t j = 0; j < n; ++j) y[j] = -F(0)[j];
      break;
    case PwOp::kAbs:
      for (int64_t j = 0; j < n; ++j) y[j] = std::fabs(F(0)[j]);
      break;
    case PwOp::kRelu:
      for (int64_t j = 0; j < n; ++j) y[j] = F(0)[j] < 0.f ? 0.f : F(0)[j];
      break;
    case PwOp::kSigmoid:
      for (int64_t j = 0; j < n; ++j) y[j] = ew::sigmoid_vec(F(0)[j]);
      break;
    case PwOp::kTanh:
      for (int64_t j = 0; j < n; ++j) y[j] = ew::tanh_vec(F(0)[j]);
      break;
    case PwOp::kErf:
      for (int64_t j = 0; j < n; ++j) y[j] = std::erf(F(0)[j]);
      break;
    case PwOp::kExp:
      for (int64_t j = 0; j < n; ++j) y[j] = ew::exp_vec(F(0)[j]);
      break;
    case PwOp::kLog:
      for (int64_t j = 0; j < n; ++j) y[j] = std::log(F(0)[j]);
      break;
    case PwOp::kSqrt:
      for (int64_t j = 0; j < n; ++j) y[j] = std::sqrt(F(0)[j]);
      break;
    case PwOp::kReciprocal:
      for (int64_t j = 0; j < n; ++j) y[j] = 1.f / F(0)[j];
      break;
    case PwOp::kGelu:
      for (int64_t j = 0; j < n; ++j) {
        const float x = F(0)[j];
        y[j] = 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f));
      }
      break;
    case PwOp::kGeluTanh:
      for (int64_t j = 0; j < n; ++j) {
        const float x = F(0)[j];
        const float k = 0.7978845608028654f;
        y[j] = 0.5f * x * (1.f + ew::tanh_vec(k * (x + 0.044715f * x * x * x)));
      }
      break;
    case PwOp::kClip: {
      const float* x = F(0);
      const float* lo = in.args[1] >= 0 ? F(1) : nullptr;
      const float* hi = in.args[2] >= 0 ? F(2) : nullptr;
      const float inf = std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        const float l = lo ? lo[j] : -inf, h = hi ? hi[j] : inf;
        float v = x[j] < l ? l : x[j];  // NaN passes through
        y[j] = v > h ? h : v;
      }
      break;
    }
    case PwOp::kWhere: {
      const int64_t* c = r.is(in.args[0]);
      const float *a = F(1), *b = F(2);
      for (int64_t j = 0; j < n; ++j) y[j] = c[j] != 0 ? a[j] : b[j];
      break;
    }
    case PwOp::kCast: {
      const DType from = slot_dt[static_cast<size_t>(in.args[0])];
      if (is_float_class(from)) {
        const float* a = F(0);
        for (int64_t j = 0; j < n; ++j) y[j] = a[j];
      } else {
        const int64_t* a = r.is(in.args[0]);
        if (in.dtype == DType::kFloat32) {
          for (int64_t j = 0; j < n; ++j) y[j] = static_cast<float>(a[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) {
            y[j] = double_to_float_round_odd(static_cast<double>(a[j]));
          }
        }
      }
      break;
    }
    case PwOp::kEqual:
    case PwOp::kLess:
    case PwOp::kGreater:
    case PwOp::kNot:
    case PwOp::kAnd:
    case PwOp::kOr:
    case PwOp::kIsNaN:
      break;  // integer-class results (check_pw_types)
  }
  if (in.dtype != DType::kFloat32) {
    for (int64_t j = 0; j < n; ++j) y[j] = round_to(y[j], in.dtype);
  }
}

void run_int(const PwInstr& in, Regs& r, int32_t slot, const std::vector<DType>& slot_dt,
             int64_t n) {
  int64_t* y = r.is(slot);
  auto I = [&](size_t k) { return r.is(in.args[k]); };
  const DType d = in.dtype;
  const bool float_args = !in.args.empty() && in.args[0] >= 0 &&
                          is_float_class(slot_dt[static_cast<size_t>(in.args[0])]);
  auto U = [](int64_t v) { return static_cast<uint64_t>(v); };
  switch (in.op) {
    case PwOp::kAdd:
      for (int64_t j = 0; j < n; ++j) y[j] = wrap_to(U(I(0)[j]) + U(I(1)[j]), d);
      break;
    case PwOp::kSub:
      for (int64_t j = 0; j < n; ++j) y[j] = wrap_to(U(I(0)[j]) - U(I(1)[j]), d);
      break;
    case PwOp::kMul:
      for (int64_t j = 0; j < n; ++j) y[j] = wrap_to(U(I(0)[j]) * U(I(1)[j]), d);
      break;
    case PwOp::kNeg:
      for (int64_t j = 0; j < n; ++j) y[j] = wrap_to(0 - U(I(0)[j]), d);
      break;
    case PwOp::kAbs:
      for (int64_t j = 0; j < n; ++j) y[j] = I(0)[j] < 0 ? wrap_to(0 - U(I(0)[j]), d) : I(0)[j];
      break;
    case PwOp::kMax:
      for (int64_t j = 0; j < n; ++j) y[j] = std::max(I(0)[j], I(1)[j]);
      break;
    case PwOp::kMin:
      for (int64_t j = 0; j < n; ++j) y[j] = std::min(I(0)[j], I(1)[j]);
      break;
    case PwOp::kWhere: {
      const int64_t *c = I(0), *a = I(1), *b = I(2);
      for (int64_t j = 0; j < n; ++j) y[j] = c[j] != 0 ? a[j] : b[j];
      break;
    }
    case PwOp::kCast:
      if (float_args) {
        const float* a = r.fs(in.args[0]);
        for (int64_t j = 0; j < n; ++j) y[j] = float_to_int(a[j], d);
      } else {
        for (int64_t j = 0; j < n; ++j) y[j] = wrap_to(U(I(0)[j]), d);
      }
      break;
    case PwOp::kEqual:
    case PwOp::kLess:
    case PwOp::kGreater: {
      if (float_args) {
        const float *a = r.fs(in.args[0]), *b = r.fs(in.args[1]);
        for (int64_t j = 0; j < n; ++j) {
          y[j] = in.op == PwOp::kEqual  ? a[j] == b[j]
                 : in.op == PwOp::kLess ? a[j] < b[j]
                                        : a[j] > b[j];
        }
      } else {
        const int64_t *a = I(0), *b = I(1);
        for (int64_t j = 0; j < n; ++j) {
          y[j] = in.op == PwOp::kEqual  ? a[j] == b[j]
                 : in.op == PwOp::kLess ? a[j] < b[j]
                                        : a[j] > b[j];
        }
      }
      break;
    }
    case PwOp::kNot:
      for (int64_t j = 0; j < n; ++j) y[j] = I(0)[j] == 0;
      break;
    case PwOp::kAnd:
      for (int64_t j = 0; j < n; ++j) y[j] = I(0)[j] != 0 && I(1)[j] != 0;
      break;
    case PwOp::kOr:
      for (int64_t j = 0; j < n; ++j) y[j] = I(0)[j] != 0 || I(1)[j] != 0;
      break;
    case PwOp::kIsNaN: {
      const float* a = r.fs(in.args[0]);
      for (int64_t j = 0; j < n; ++j) y[j] = std::isnan(a[j]);
      break;
    }
    case PwOp::kDiv:
    case PwOp::kRelu:
    case PwOp::kSigmoid:
    case PwOp::kTanh:
    case PwOp::kErf:
    case PwOp::kExp:
    case PwOp::kLog:
    case PwOp::kSqrt:
    case PwOp::kReciprocal:
    case PwOp::kPow:
    case PwOp::kClip:
    case PwOp::kGelu:
    case PwOp::kGeluTanh:
      break;  // float-class results (check_pw_types)
  }
}

// Loads n elements of input t at the given element offsets into its register slot.
void load(const Tensor& t, const int64_t* off, int64_t n, Regs& r, int32_t slot) {
  switch (t.dtype()) {
    case DType::kFloat32: {
      const float* p = t.data<float>();
      for (int64_t j = 0; j < n; ++j) r.fs(slot)[j] = p[off[j]];
      return;
    }
    case DType::kFloat16: {
      const uint16_t* p = t.data<uint16_t>();
      for (int64_t j = 0; j < n; ++j) r.fs(slot)[j] = half_to_float(p[off[j]]);
      return;
    }
    case DType::kBFloat16: {
      const uint16_t* p = t.data<uint16_t>();
      for (int64_t j = 0; j < n; ++j) r.fs(slot)[j] = bfloat16_to_float(p[off[j]]);
      return;
    }
    case DType::kInt32: {
      const int32_t* p = t.data<int32_t>();
      for (int64_t j = 0; j < n; ++j) r.is(slot)[j] = p[off[j]];
      return;
    }
    case DType::kInt64: {
      const int64_t* p = t.data<int64_t>();
      for (int64_t j = 0; j < n; ++j) r.is(slot)[j] = p[off[j]];
      return;
    }
    case DType::kBool: {
      const uint8_t* p = t.data<uint8_t>();
      for (int64_t j = 0; j < n; ++j) r.is(slot)[j] = p[off[j]] != 0;
      return;
    }
    default:
      return;  // rejected before the loop
  }
}

void store(Tensor* t, int64_t lo, int64_t n, Regs& r, int32_t slot) {
  switch (t->dtype()) {
    case DType::kFloat32: {
      float* p = t->mutable_data<float>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = r.fs(slot)[j];
      return;
    }
    case DType::kFloat16: {
      uint16_t* p = t->mutable_data<uint16_t>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = float_to_half(r.fs(slot)[j]);
      return;
    }
    case DType::kBFloat16: {
      uint16_t* p = t->mutable_data<uint16_t>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = float_to_bfloat16(r.fs(slot)[j]);
      return;
    }
    case DType::kInt32: {
      int32_t* p = t->mutable_data<int32_t>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = static_cast<int32_t>(r.is(slot)[j]);
      return;
    }
    case DType::kInt64: {
      int64_t* p = t->mutable_data<int64_t>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = r.is(slot)[j];
      return;
    }
    case DType::kBool: {
      uint8_t* p = t->mutable_data<uint8_t>() + lo;
      for (int64_t j = 0; j < n; ++j) p[j] = r.is(slot)[j] != 0 ? 1 : 0;
      return;
    }
    default:
      return;
  }
}

Status pointwise_kernel(KernelContext& ctx) {
  StatusOr<PwProgram> parsed = ops::parse_pw_program(ctx.node());
  if (!parsed.ok()) return parsed.status();
  const PwProgram& p = *parsed;
  std::vector<DType> slot_dt;
  std::vector<int64_t> full;
  for (int i = 0; i < p.num_inputs; ++i) {
    if (!ctx.has_input(i)) {
      slot_dt.push_back(DType::kUndefined);
      continue;
    }
    const Tensor& t = ctx.tensor(i);
    if (!ops::pw_dtype_supported(t.dtype())) return ctx.unsupported_type(t.dtype());
    slot_dt.push_back(t.dtype());
    StatusOr<std::vector<int64_t>> b = broadcast_shapes(full, t.shape());
    if (!b.ok()) return ctx.invalid(b.status().message());
    full = std::move(b).value();
  }
  {
    Status s = ops::check_pw_types(p, slot_dt);
    if (!s.ok()) return ctx.invalid(s.message());
  }
  for (const PwInstr& in : p.instrs) slot_dt.push_back(in.dtype);
  KILN_ASSIGN_OR_RETURN(int64_t numel, checked_numel(full, "Pointwise output"));
  // Every output spans the whole iteration space (the pass only fuses such chains); an output
  // whose operands broadcast to less is not handled here.
  std::vector<Tensor*> outs;
  for (size_t o = 0; o < p.outputs.size(); ++o) {
    KILN_ASSIGN_OR_RETURN(
        Tensor * y,
        ctx.allocate(static_cast<int>(o), p.instrs[static_cast<size_t>(p.outputs[o])].dtype, full));
    outs.push_back(y);
  }
  // Which inputs each output depends on: all of them must broadcast to `full` together.
  {
    std::vector<std::vector<int64_t>> shapes;
    for (int i = 0; i < p.num_inputs; ++i) {
      shapes.push_back(ctx.has_input(i) ? ctx.tensor(i).shape() : std::vector<int64_t>{});
    }
    for (const PwInstr& in : p.instrs) {
      std::vector<int64_t> s;
      for (int32_t a : in.args) {
        if (a < 0) continue;
        StatusOr<std::vector<int64_t>> b = broadcast_shapes(s, shapes[static_cast<size_t>(a)]);
        if (!b.ok()) return ctx.invalid(b.status().message());
        s = std::move(b).value();
      }
      shapes.push_back(std::move(s));
    }
    for (int32_t o : p.outputs) {
      if (shapes[static_cast<size_t>(p.num_inputs + o)] != full) {
        return ctx.unsupported("an output does not span the broadcast of all inputs");
      }
    }
  }
  if (numel == 0) return Status::Ok();

  // Element strides of each input over `full` (0 along broadcast dims).
  const int rank = static_cast<int>(full.size());
  std::vector<std::vector<int64_t>> strides(static_cast<size_t>(p.num_inputs));
  std::vector<bool> contiguous(static_cast<size_t>(p.num_inputs), false);
  for (int i = 0; i < p.num_inputs; ++i) {
    if (!ctx.has_input(i)) continue;
    const std::vector<int64_t>& s = ctx.tensor(i).shape();
    std::vector<int64_t>& st = strides[static_cast<size_t>(i)];
    st.assign(static_cast<size_t>(rank), 0);
    int64_t acc = 1;
    for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
      const int fd = rank - static_cast<int>(s.size()) + d;
      st[static_cast<size_t>(fd)] = s[static_cast<size_t>(d)] == 1 ? 0 : acc;
      acc *= s[static_cast<size_t>(d)];
    }
    contiguous[static_cast<size_t>(i)] = ctx.tensor(i).numel() == numel;
  }
  const size_t slots = static_cast<size_t>(p.num_inputs) + p.instrs.size();
  ew::parallel_range(numel, 8 * static_cast<int64_t>(p.instrs.size()), [&](int64_t lo, int64_t hi) {
    Regs r;
    r.f.resize(slots * kBlock);
    r.i.resize(slots * kBlock);
    std::vector<int64_t> off(kBlock);
    std::vector<int64_t> coord(static_cast<size_t>(rank));
    for (int64_t b0 = lo; b0 < hi; b0 += kBlock) {
      const int64_t n = std::min(kBlock, hi - b0);
      for (int i = 0; i < p.num_inputs; ++i) {
        if (!ctx.has_input(i)) continue;
        const std::vector<int64_t>& st = strides[static_cast<size_t>(i)];
        if (contiguous[static_cast<size_t>(i)]) {
          for (int64_t j = 0; j < n; ++j) off[static_cast<size_t>(j)] = b0 + j;
        } else {
          int64_t rem = b0, o = 0;
          for (int d = rank - 1; d >= 0; --d) {
            coord[static_cast<size_t>(d)] = rem % full[static_cast<size_t>(d)];
            rem /= full[static_cast<size_t>(d)];
            o += coord[static_cast<size_t>(d)] * st[static_cast<size_t>(d)];
          }
          for (int64_t j = 0; j < n; ++j) {
            off[static_cast<size_t>(j)] = o;
            for (int d = rank - 1; d >= 0; --d) {  // next coordinate
              const size_t u = static_cast<size_t>(d);
              o += st[u];
              if (++coord[u] < full[u]) break;
              o -= st[u] * full[u];
              coord[u] = 0;
            }
          }
        }
        load(ctx.tensor(i), off.data(), n, r, i);
      }
      for (size_t k = 0; k < p.instrs.size(); ++k) {
        const PwInstr& in = p.instrs[k];
        const int32_t slot = p.num_inputs + static_cast<int32_t>(k);
        if (is_float_class(in.dtype)) {
          run_float(in, r, slot, slot_dt, n);
        } else {
          run_int(in, r, slot, slot_dt, n);
        }
      }
      for (size_t o = 0; o < outs.size(); ++o)
        store(outs[o], b0, n, r, p.num_inputs + p.outputs[o]);
    }
  });
  return Status::Ok();
}

}  // namespace

void register_fused_pointwise_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kPointwise, pointwise_kernel);
}

}  // namespace kiln::cpu
