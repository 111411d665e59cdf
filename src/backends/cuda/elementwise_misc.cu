// CUDA kernels of the elementwise ops with special operands: Where (three-way broadcast, any
// element type of 1 to 8 bytes, moved as bytes), Clip (attributes before opset 11, optional
// scalar host inputs from opset 11) and the variadic Sum, Mean, Max, Min (any number of
// broadcasting inputs, up to 8 per launch; more chain through the output).
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

// ---- Where ----

template <typename E>
__global__ void where_kernel(const bool* c, const E* x, const E* y, E* out, int64_t n, bool same,
                             BroadcastMap mc, BroadcastMap mx, BroadcastMap my) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    if (same) {
      out[i] = c[i] ? x[i] : y[i];
    } else {
      out[i] = c[mc.offset(i)] ? x[mx.offset(i)] : y[my.offset(i)];
    }
  }
}

int plain_bytes(DType t) {
  if (is_float_dtype(t) || is_int_dtype(t) || t == DType::kBool) return dtype_bits(t) / 8;
  return 0;
}

std::string where_supports(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1) || !node.has_input(2)) return "missing input";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  if (input_dtype(node, 0) != DType::kBool) return "condition is not bool";
  const DType t = input_dtype(node, 1);
  if (input_dtype(node, 2) != t) return "X and Y differ in dtype";
  if (plain_bytes(t) == 0) return std::string("dtype ") + dtype_name(t);
  return {};
}

Status where_run(KernelContext& ctx) {
  const DeviceTensor& c = ctx.input(0);
  const DeviceTensor& x = ctx.input(1);
  const DeviceTensor& y = ctx.input(2);
  if (c.dtype != DType::kBool) return ctx.invalid("condition must be bool");
  if (x.dtype != y.dtype) return ctx.invalid("X and Y have different dtypes");
  if (c.rank() > kMaxRank || x.rank() > kMaxRank || y.rank() > kMaxRank) {
    return ctx.unsupported("rank > 8");
  }
  StatusOr<std::vector<int64_t>> s1 = broadcast_shapes(c.shape, x.shape);
  if (!s1.ok()) return ctx.invalid(s1.status().message());
  StatusOr<std::vector<int64_t>> s2 = broadcast_shapes(*s1, y.shape);
  if (!s2.ok()) return ctx.invalid(s2.status().message());
  const std::vector<int64_t>& shape = *s2;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * out, ctx.allocate(0, x.dtype, shape));
  const int64_t n = numel_of(shape);
  if (n == 0) return Status::Ok();
  const bool same = c.numel() == n && x.numel() == n && y.numel() == n;
  const BroadcastMap mc = collapsed_map(c.shape, shape);
  const BroadcastMap mx = collapsed_map(x.shape, shape);
  const BroadcastMap my = collapsed_map(y.shape, shape);
  const Launch l = launch_for(n);
  const bool* pc = c.as<bool>();
  switch (plain_bytes(x.dtype)) {
    case 1:
      where_kernel<uint8_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          pc, x.as<uint8_t>(), y.as<uint8_t>(), out->as<uint8_t>(), n, same, mc, mx, my);
      break;
    case 2:
      where_kernel<uint16_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          pc, x.as<uint16_t>(), y.as<uint16_t>(), out->as<uint16_t>(), n, same, mc, mx, my);
      break;
    case 4:
      where_kernel<uint32_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          pc, x.as<uint32_t>(), y.as<uint32_t>(), out->as<uint32_t>(), n, same, mc, mx, my);
      break;
    case 8:
      where_kernel<uint64_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          pc, x.as<uint64_t>(), y.as<uint64_t>(), out->as<uint64_t>(), n, same, mc, mx, my);
      break;
    default:
      return ctx.unsupported_type(x.dtype);
  }
  return ctx.check_launch("Where");
}

// ---- Clip ----

template <typename T>
__global__ void clip_kernel(const T* x, T* y, int64_t n, Compute<T> lo, Compute<T> hi) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    Compute<T> v = load_c(x, i);
    v = v < lo ? lo : v;  // NaN passes through
    v = v > hi ? hi : v;
    y[i] = to_t<T>(v);
  }
}

std::string clip_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t) && !is_int_dtype(t)) return std::string("dtype ") + dtype_name(t);
  for (int i = 1; i <= 2; ++i) {
    if (node.has_input(i) && input_dtype(node, i) != t) return "min/max dtype differs from X";
  }
  if (output_dtype(node, 0) != DType::kUndefined && output_dtype(node, 0) != t) {
    return "unexpected output dtype";
  }
  return {};
}

// Reads a one-element host tensor as C.
template <typename C>
C host_scalar(const Tensor& t) {
  if constexpr (std::is_floating_point_v<C>) {
    return static_cast<C>(t.get_double(0));
  } else if constexpr (std::is_same_v<C, uint64_t>) {
    return static_cast<C>(t.data<uint64_t>()[0]);
  } else {
    return static_cast<C>(t.get_int64(0));
  }
}

Status clip_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  Status st = Status::Ok();
  const bool ok = dispatch_all<false>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = Compute<T>;
    C lo = std::numeric_limits<C>::lowest();
    C hi = std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    }
    if (ctx.opset() > 0 && ctx.opset() < 11) {
      if constexpr (std::is_floating_point_v<C>) {
        lo = static_cast<C>(ctx.attr_float("min", std::numeric_limits<float>::lowest()));
        hi = static_cast<C>(ctx.attr_float("max", std::numeric_limits<float>::max()));
      }
    } else {
      for (int i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        const Tensor& t = ctx.host_input(i);
        if (t.dtype() != x.dtype || t.numel() != 1) {
          set_status(st, ctx.invalid(std::string(i == 1 ? "min" : "max") + " must be a " +
                                     dtype_name(x.dtype) + " scalar, got " + t.type_string()));
          return;
        }
        (i == 1 ? lo : hi) = host_scalar<C>(t);
      }
    }
    StatusOr<DeviceTensor*> y = ctx.allocate(0, x.dtype, x.shape);
    if (!y.ok()) {
      set_status(st, y.status());
      return;
    }
    const int64_t n = x.numel();
    if (n == 0) return;
    const Launch l = launch_for(n);
    clip_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), (*y)->as<T>(), n, lo, hi);
    set_status(st, ctx.check_launch("Clip"));
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return st;
}

// ---- variadic Sum / Mean / Max / Min ----

enum VarOp : int { kVSum, kVMean, kVMax, kVMin };
constexpr int kMaxVarInputs = 8;

template <typename T>
struct VarArgs {
  const T* in[kMaxVarInputs];
  BroadcastMap map[kMaxVarInputs];
  bool same[kMaxVarInputs];
  int count;
};

template <typename T>
__global__ void variadic_kernel(VarArgs<T> args, T* out, int64_t n, int op, float mean_div) {
  using C = Compute<T>;
  KILN_GRID_STRIDE_LOOP(i, n) {
    C acc = load_c(args.in[0], args.same[0] ? i : args.map[0].offset(i));
    for (int k = 1; k < args.count; ++k) {
      const C v = load_c(args.in[k], args.same[k] ? i : args.map[k].offset(i));
      if (op == kVMax) {
        if constexpr (std::is_floating_point_v<C>) {
          acc = (acc > v || isnan(acc)) ? acc : v;  // NaN propagates
        } else {
          acc = acc > v ? acc : v;
        }
      } else if (op == kVMin) {
        if constexpr (std::is_floating_point_v<C>) {
          acc = (acc < v || isnan(acc)) ? acc : v;
        } else {
          acc = acc < v ? acc : v;
        }
      } else {
        if constexpr (std::is_floating_point_v<C>) {
          acc += v;
        } else {
          acc = wrap_add(acc, v);
        }
      }
    }
    if constexpr (std::is_floating_point_v<C>) {
      if (op == kVMean && mean_div != 0.f) acc = acc / static_cast<C>(mean_div);
    }
    out[i] = to_t<T>(acc);
  }
}

int var_code(const std::string& op) {
  if (op == "Sum") return kVSum;
  if (op == "Mean") return kVMean;
  if (op == "Max") return kVMax;
  return kVMin;
}

std::string variadic_supports(const ir::Node& node) {
  const int n = static_cast<int>(node.inputs.size());
  if (n < 1) return "no inputs";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  const DType t = input_dtype(node, 0);
  const int code = var_code(node.op_type);
  const bool ints_ok = code == kVMax || code == kVMin;
  if (!is_float_dtype(t) && !(ints_ok && is_int_dtype(t))) {
    return std::string("dtype ") + dtype_name(t);
  }
  for (int i = 0; i < n; ++i) {
    if (!node.has_input(i)) return "missing input";
    if (input_dtype(node, i) != t) return "inputs differ in dtype";
  }
  return {};
}

Status variadic_run(KernelContext& ctx) {
  const int n_in = ctx.num_inputs();
  if (n_in < 1) return ctx.invalid("needs at least one input");
  const int code = var_code(ctx.node().op_type);
  std::vector<int64_t> shape;
  for (int i = 0; i < n_in; ++i) {
    if (!ctx.has_input(i)) return ctx.invalid("input " + std::to_string(i) + " is missing");
    const DeviceTensor& t = ctx.input(i);
    if (t.dtype != ctx.input(0).dtype) return ctx.invalid("inputs have different dtypes");
    if (t.rank() > kMaxRank) return ctx.unsupported("rank > 8");
    if (i == 0) {
      shape = t.shape;
      continue;
    }
    StatusOr<std::vector<int64_t>> s = broadcast_shapes(shape, t.shape);
    if (!s.ok()) return ctx.invalid(s.status().message());
    shape = *s;
  }
  const DType dt = ctx.input(0).dtype;
  if (!is_float_dtype(dt) && !((code == kVMax || code == kVMin) && is_int_dtype(dt))) {
    return ctx.unsupported_type(dt);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, shape));
  const int64_t n = numel_of(shape);
  if (n == 0) return Status::Ok();
  const Launch l = launch_for(n);
  bool ok = true;
  // Chunks of up to 8 inputs; every chunk after the first also reads the running output.
  int next = 0;
  bool first = true;
  while (next < n_in) {
    const int room = first ? kMaxVarInputs : kMaxVarInputs - 1;
    const int take = std::min(room, n_in - next);
    const bool last = next + take == n_in;
    ok = dispatch_all<false>(dt, [&](auto tag) {
      using T = decltype(tag);
      VarArgs<T> args{};
      int k = 0;
      if (!first) {
        args.in[k] = y->as<T>();
        args.same[k] = true;
        ++k;
      }
      for (int j = 0; j < take; ++j, ++k) {
        const DeviceTensor& t = ctx.input(next + j);
        args.in[k] = t.as<T>();
        args.same[k] = t.numel() == n;
        if (!args.same[k]) args.map[k] = collapsed_map(t.shape, shape);
      }
      args.count = k;
      const int op = (code == kVMean && !last) ? kVSum : code;
      variadic_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
          args, y->as<T>(), n, op, code == kVMean ? static_cast<float>(n_in) : 0.f);
    });
    if (!ok) return ctx.unsupported_type(dt);
    KILN_RETURN_IF_ERROR(ctx.check_launch(ctx.node().op_type.c_str()));
    next += take;
    first = false;
  }
  return Status::Ok();
}

}  // namespace

void register_ew_misc_kernels(KernelRegistry& r) {
  KernelDef w;
  w.op_type = "Where";
  w.supports = &where_supports;
  w.run = &where_run;
  r.add(w);
  KernelDef c;
  c.op_type = "Clip";
  c.supports = &clip_supports;
  c.run = &clip_run;
  c.host_inputs = 0b110;
  r.add(c);
  for (const char* name : {"Sum", "Mean", "Max", "Min"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &variadic_supports;
    d.run = &variadic_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
