// CUDA kernels of the nn family (registration), and the host side of the pooling and
// normalization kernels (geometry and parameter checks; the device code is in nn_pool.cu and
// nn_norm.cu). MatMul/Gemm live in nn_matmul.cc, Conv/ConvTranspose in nn_conv.cc.
#include <cmath>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"
#include "ops/nn_window.h"
#include "ops/shape_util.h"

namespace kiln::cuda {

std::string check_ranks(const ir::Node& node) {
  auto check = [](const ir::Value* v) {
    return v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known ||
           v->type.shape.rank() <= kMaxRank;
  };
  for (const ir::Value* v : node.inputs) {
    if (!check(v)) return "rank > 8";
  }
  for (const ir::Value* v : node.outputs) {
    if (!check(v)) return "rank > 8";
  }
  return {};
}

namespace {

bool is_float_like(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

int known_rank(const ir::Node& node, int i) {
  if (!node.has_input(i)) return -1;
  const ir::TypeInfo& t = node.inputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() && t.shape.rank_known ? t.shape.rank() : -1;
}

// ---- pooling ----

std::string pool_supports_impl(const ir::Node& node, bool global) {
  const DType t = input_dtype(node, 0);
  // MaxPool also takes int8/uint8 (a max needs no arithmetic).
  const bool int_max =
      !global && node.op_type == "MaxPool" && (t == DType::kInt8 || t == DType::kUInt8);
  if (!is_float_like(t) && !int_max) return std::string("dtype ") + dtype_name(t);
  if (output_dtype(node, 0) != t) return "output dtype differs from the input's";
  if (node.has_output(1) && output_dtype(node, 1) != DType::kInt64) return "Indices must be int64";
  for (size_t i = 2; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != nullptr) return "unexpected output";
  }
  const int r = known_rank(node, 0);
  if (global) {
    if (r >= 0 && (r < 2 || r > kMaxRank)) return "rank " + std::to_string(r);
  } else if (r >= 0 && (r < 3 || r > 5)) {
    return "rank " + std::to_string(r) + " (only 1-3 spatial dims)";
  }
  return {};
}
std::string pool_supports(const ir::Node& node) {
  return pool_supports_impl(node, false);
}
std::string global_pool_supports(const ir::Node& node) {
  return pool_supports_impl(node, true);
}

// LpPool-1 / GlobalLpPool-1 take p as a float; later versions as an int.
float read_p(KernelContext& ctx) {
  if (ctx.opset() < 2) return ctx.attr_float("p", 2.f);
  return static_cast<float>(ctx.attr_int("p", 2));
}

Status pool_run(KernelContext& ctx, PoolKind kind) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() < 3) return ctx.invalid("X must have rank >= 3");
  const int n = X.rank() - 2;
  if (n > 3) return ctx.unsupported("pooling over more than 3 spatial dims");
  ops::WindowOptions opts;
  opts.allow_ceil_mode = kind != PoolKind::kLp || ctx.opset() >= 18;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), n, opts));
  const bool cip = ctx.attr_int("count_include_pad", 0) != 0;
  const int64_t storage_order = ctx.attr_int("storage_order", 0);
  float p = 2.f;
  if (kind == PoolKind::kLp) p = read_p(ctx);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (storage_order != 0 && storage_order != 1) return ctx.invalid("storage_order must be 0 or 1");
  if (kind == PoolKind::kLp && (!(p > 0.f) || !std::isfinite(p))) {
    return ctx.invalid("p must be positive");
  }
  PoolGeom g;
  g.planes = X.dim(0) * X.dim(1);
  std::vector<int64_t> out = {X.dim(0), X.dim(1)};
  const int off = 3 - n;
  for (int i = 0; i < n; ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t o, ops::window_output(ctx.node(), w, i, X.dim(i + 2)));
    out.push_back(o);
    const size_t si = static_cast<size_t>(i);
    const int j = off + i;
    g.in[j] = X.dim(i + 2);
    g.out[j] = o;
    g.k[j] = w.kernel[si];
    g.s[j] = w.strides[si];
    g.d[j] = w.dilations[si];
    g.pb[j] = w.pads[si];
    g.pe[j] = w.pads[si + static_cast<size_t>(n)];
    if (g.k[j] < 1 || g.s[j] < 1 || g.d[j] < 1) return ctx.invalid("invalid window");
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, out));
  int64_t* idx = nullptr;
  if (kind == PoolKind::kMax && ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor * I, ctx.allocate(1, DType::kInt64, out));
    idx = I->as<int64_t>();
  }
  if (Y->numel() == 0) return Status::Ok();
  return launch_pool(ctx, X.dtype, g, kind, cip, p, storage_order == 1, X.data, Y->data, idx);
}

Status max_pool_run(KernelContext& ctx) {
  return pool_run(ctx, PoolKind::kMax);
}
Status average_pool_run(KernelContext& ctx) {
  return pool_run(ctx, PoolKind::kAvg);
}
Status lp_pool_run(KernelContext& ctx) {
  return pool_run(ctx, PoolKind::kLp);
}

Status global_pool_run(KernelContext& ctx, PoolKind kind) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() < 2) return ctx.invalid("X must have rank >= 2");
  float p = 2.f;
  if (kind == PoolKind::kLp) {
    p = read_p(ctx);
    KILN_RETURN_IF_ERROR(ctx.attr_status());
    if (!(p > 0.f) || !std::isfinite(p)) return ctx.invalid("p must be positive");
  }
  std::vector<int64_t> out = X.shape;
  int64_t size = 1;
  for (size_t i = 2; i < out.size(); ++i) {
    size *= out[i];
    out[i] = 1;
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, out));
  if (Y->numel() == 0) return Status::Ok();
  return launch_global_pool(ctx, X.dtype, kind, p, X.dim(0) * X.dim(1), size, X.data, Y->data);
}

Status global_average_pool_run(KernelContext& ctx) {
  return global_pool_run(ctx, PoolKind::kAvg);
}
Status global_max_pool_run(KernelContext& ctx) {
  return global_pool_run(ctx, PoolKind::kMax);
}
Status global_lp_pool_run(KernelContext& ctx) {
  return global_pool_run(ctx, PoolKind::kLp);
}

// ---- normalization ----

// All present inputs and output 0 share X's float-like dtype.
std::string same_float_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!is_float_like(t)) return std::string("dtype ") + dtype_name(t);
  for (int i = 0; i < static_cast<int>(node.inputs.size()); ++i) {
    if (node.has_input(i) && input_dtype(node, i) != t) {
      return "input " + std::to_string(i) + " dtype differs from X's";
    }
  }
  if (output_dtype(node, 0) != t) return "output dtype differs from X's";
  return check_ranks(node);
}

std::string batchnorm_supports(const ir::Node& node) {
  if (std::string r = same_float_supports(node); !r.empty()) return r;
  for (int i = 1; i < 5; ++i) {
    if (!node.has_input(i)) return "missing input " + std::to_string(i);
  }
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != nullptr) return "training outputs";
  }
  if (node.opset >= 14 && node.attr_int("training_mode", 0) != 0) return "training_mode";
  return {};
}

Status batchnorm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() < 2) return ctx.invalid("X must have rank >= 2");
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  const bool per_element = ctx.opset() < 9 && ctx.attr_int("spatial", 1) == 0;
  if (ctx.opset() >= 14 && ctx.attr_int("training_mode", 0) != 0) {
    return ctx.unsupported("training_mode");
  }
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  int64_t c = X.dim(1), inner = 1;
  for (int i = 2; i < X.rank(); ++i) inner *= X.dim(i);
  if (per_element) {
    c *= inner;
    inner = 1;
  }
  for (int i = 1; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.invalid("input " + std::to_string(i) + " is required");
    const DeviceTensor& p = ctx.input(i);
    if (p.dtype != X.dtype) return ctx.unsupported("parameter dtype differs from X's");
    if (p.numel() != c) {
      return ctx.invalid("parameter " + std::to_string(i) + " must have " + std::to_string(c) +
                         " elements");
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  if (Y->numel() == 0) return Status::Ok();
  return launch_batch_norm(ctx, X.dtype, X.data, Y->data, ctx.input(1).data, ctx.input(2).data,
                           ctx.input(3).data, ctx.input(4).data, eps, X.dim(0), c, inner);
}

std::string layernorm_supports(const ir::Node& node) {
  if (std::string r = same_float_supports(node); !r.empty()) return r;
  for (int i = 1; i < 3; ++i) {
    if (!node.has_output(i)) continue;
    if (node.op_type != "LayerNormalization") return "unexpected output";
    if (output_dtype(node, i) != DType::kFloat32) return "Mean/InvStdDev not float32";
  }
  for (size_t i = 3; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != nullptr) return "unexpected output";
  }
  return {};
}

// Checks that `p` broadcasts to `xs` and picks its index mode for rows starting at `axis`.
Status affine_mode(KernelContext& ctx, const DeviceTensor& p, const std::vector<int64_t>& xs,
                   int axis, int64_t len, const char* what, AffineMode* mode) {
  const int xr = static_cast<int>(xs.size());
  if (p.rank() > xr) return ctx.invalid(std::string(what) + " has a higher rank than X");
  bool per_element = true;
  for (int d = 0; d < p.rank(); ++d) {
    const int xd = xr - p.rank() + d;
    const int64_t pd = p.dim(d), xdim = xs[static_cast<size_t>(xd)];
    if (pd != 1 && pd != xdim) {
      return ctx.invalid(std::string(what) + " does not broadcast to X's shape");
    }
    if (xd < axis && pd != 1) per_element = false;
  }
  if (p.numel() != len) per_element = false;
  *mode = per_element ? AffineMode::kPerElement : AffineMode::kBroadcast;
  return Status::Ok();
}

template <bool kRms>
Status rownorm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() == 0) return ctx.invalid("X must have rank >= 1");
  const int64_t axis_attr = ctx.attr_int("axis", -1);
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  KILN_ASSIGN_OR_RETURN(int axis, normalize_axis(axis_attr, X.rank()));
  RowNormArgs a;
  a.dtype = X.dtype;
  a.rows = 1;
  a.len = 1;
  for (int i = 0; i < X.rank(); ++i) (i < axis ? a.rows : a.len) *= X.dim(i);
  a.eps = eps;
  a.rms = kRms;
  a.x = X.data;
  a.x_shape = X.shape;
  const DeviceTensor& S = ctx.input(1);
  KILN_RETURN_IF_ERROR(affine_mode(ctx, S, X.shape, axis, a.len, "Scale", &a.scale_mode));
  a.scale = S.data;
  a.scale_shape = S.shape;
  if (!kRms && ctx.has_input(2)) {
    const DeviceTensor& Bt = ctx.input(2);
    KILN_RETURN_IF_ERROR(affine_mode(ctx, Bt, X.shape, axis, a.len, "B", &a.bias_mode));
    a.bias = Bt.data;
    a.bias_shape = Bt.shape;
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  a.y = Y->data;
  // The common case (last axis, 1-D Scale/B of X's dtype, no statistics outputs) takes the
  // warp-per-row kernel that holds the row in registers.
  const bool stats = !kRms && ((ctx.num_outputs() > 1 && ctx.wants_output(1)) ||
                               (ctx.num_outputs() > 2 && ctx.wants_output(2)));
  if (!kRms && !stats && axis == X.rank() - 1 && a.scale_mode == AffineMode::kPerElement &&
      S.dtype == X.dtype && S.rank() == 1 &&
      (a.bias == nullptr || (a.bias_mode == AffineMode::kPerElement &&
                             ctx.input(2).dtype == X.dtype && ctx.input(2).rank() == 1)) &&
      (X.dtype == DType::kFloat32 || X.dtype == DType::kFloat16 || X.dtype == DType::kBFloat16)) {
    return launch_last_axis_layer_norm(ctx, X.dtype, X.data, nullptr, S.data, a.bias, Y->data,
                                       nullptr, a.rows, a.len, eps);
  }
  std::vector<int64_t> stat_shape = X.shape;
  for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
  for (int i = 1; !kRms && i < 3 && i < ctx.num_outputs(); ++i) {
    if (!ctx.wants_output(i)) continue;
    KILN_ASSIGN_OR_RETURN(DeviceTensor * o, ctx.allocate(i, DType::kFloat32, stat_shape));
    (i == 1 ? a.mean_out : a.inv_std_out) = o->as<float>();
  }
  return launch_row_norm(ctx, a);
}

Status instancenorm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() < 2) return ctx.invalid("input must have rank >= 2");
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  const int64_t c = X.dim(1);
  int64_t spatial = 1;
  for (int i = 2; i < X.rank(); ++i) spatial *= X.dim(i);
  for (int i = 1; i < 3; ++i) {
    if (ctx.input(i).numel() != c) return ctx.invalid("scale and B must have C elements");
  }
  RowNormArgs a;
  a.dtype = X.dtype;
  a.rows = X.dim(0) * c;
  a.len = spatial;
  a.eps = eps;
  a.x = X.data;
  a.x_shape = X.shape;
  a.scale = ctx.input(1).data;
  a.bias = ctx.input(2).data;
  a.scale_mode = a.bias_mode = AffineMode::kChannel;
  a.channels = c;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  a.y = Y->data;
  if (Y->numel() == 0) return Status::Ok();
  return launch_row_norm(ctx, a);
}

Status groupnorm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() < 2) return ctx.invalid("input must have rank >= 2");
  if (!ctx.node().has_attr("num_groups")) return ctx.invalid("attribute num_groups is required");
  const int64_t groups = ctx.attr_int("num_groups", 1);
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  const int64_t c = X.dim(1);
  if (groups <= 0 || c % groups != 0) return ctx.invalid("num_groups must divide the channels");
  int64_t spatial = 1;
  for (int i = 2; i < X.rank(); ++i) spatial *= X.dim(i);
  const bool per_channel = ctx.opset() >= 21;
  const int64_t np = per_channel ? c : groups;
  for (int i = 1; i < 3; ++i) {
    if (ctx.input(i).numel() != np) {
      return ctx.invalid("scale and bias must have " + std::to_string(np) + " elements");
    }
  }
  RowNormArgs a;
  a.dtype = X.dtype;
  a.rows = X.dim(0) * groups;
  a.len = (c / groups) * spatial;
  a.eps = eps;
  a.x = X.data;
  a.x_shape = X.shape;
  a.scale = ctx.input(1).data;
  a.bias = ctx.input(2).data;
  a.scale_mode = a.bias_mode = per_channel ? AffineMode::kGroupChannel : AffineMode::kGroup;
  a.groups = groups;
  a.per_group = c / groups;
  a.spatial = spatial;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  a.y = Y->data;
  if (Y->numel() == 0) return Status::Ok();
  return launch_row_norm(ctx, a);
}

std::string lpnorm_supports(const ir::Node& node) {
  if (std::string r = same_float_supports(node); !r.empty()) return r;
  const int64_t p = node.attr_int("p", 2);
  if (p != 1 && p != 2) return "p must be 1 or 2";
  return {};
}

Status lpnorm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() == 0) return ctx.invalid("input must have rank >= 1");
  const int64_t axis_attr = ctx.attr_int("axis", -1);
  const int64_t p = ctx.attr_int("p", 2);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (p != 1 && p != 2) return ctx.unsupported("p must be 1 or 2");
  KILN_ASSIGN_OR_RETURN(int axis, normalize_axis(axis_attr, X.rank()));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= X.dim(i);
  for (int i = axis + 1; i < X.rank(); ++i) inner *= X.dim(i);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  if (Y->numel() == 0) return Status::Ok();
  return launch_lp_norm(ctx, X.dtype, X.data, Y->data, static_cast<int>(p), outer, X.dim(axis),
                        inner);
}

}  // namespace

void register_pool_kernels(KernelRegistry& r) {
  r.add({"", "MaxPool", pool_supports, max_pool_run});
  r.add({"", "AveragePool", pool_supports, average_pool_run});
  r.add({"", "LpPool", pool_supports, lp_pool_run});
  r.add({"", "GlobalAveragePool", global_pool_supports, global_average_pool_run});
  r.add({"", "GlobalMaxPool", global_pool_supports, global_max_pool_run});
  r.add({"", "GlobalLpPool", global_pool_supports, global_lp_pool_run});
}

void register_norm_kernels(KernelRegistry& r) {
  r.add({"", "BatchNormalization", batchnorm_supports, batchnorm_run});
  r.add({"", "LayerNormalization", layernorm_supports, rownorm_run<false>});
  r.add({"", "RMSNormalization", layernorm_supports, rownorm_run<true>});
  r.add({"", "InstanceNormalization", same_float_supports, instancenorm_run});
  r.add({"", "GroupNormalization", same_float_supports, groupnorm_run});
  r.add({"", "LpNormalization", lpnorm_supports, lpnorm_run});
}

void register_nn_kernels(KernelRegistry& r) {
  register_matmul_kernels(r);
  register_conv_kernels(r);
  register_pool_kernels(r);
  register_norm_kernels(r);
}

}  // namespace kiln::cuda
