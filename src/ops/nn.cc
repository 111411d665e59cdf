// Op definitions of the nn family: arity and type/shape inference. Unknown input dims give
// unknown output dims; batch/channel dims pass through symbolically.
#include <algorithm>

#include "ops/einsum_spec.h"
#include "ops/nn_window.h"
#include "ops/op_registry.h"
#include "ops/shape_util.h"

namespace kiln::ops {
namespace {

using ir::Dim;
using ir::Shape;
using ir::TypeInfo;

bool known_tensor(const InferContext& ctx, int i) {
  return ctx.has_input(i) && ctx.input_type(i).is_tensor();
}
bool known_rank(const InferContext& ctx, int i) {
  return known_tensor(ctx, i) && ctx.input_type(i).shape.rank_known;
}
DType dtype_of(const InferContext& ctx, int i) {
  return known_tensor(ctx, i) ? ctx.input_type(i).dtype : DType::kUndefined;
}
Dim dim_of(const InferContext& ctx, int input, int d) {
  if (!known_rank(ctx, input)) return Dim::unknown();
  const Shape& s = ctx.input_type(input).shape;
  if (d < 0 || d >= s.rank()) return Dim::unknown();
  return s.dims[static_cast<size_t>(d)];
}

// Output of a sliding-window op over input `x` (N, C, spatial...): (N, channels, out...).
// `weight` (>= 0) gives the kernel sizes from dims 2.. of that input.
Status infer_window(InferContext& ctx, int x, int weight, Dim channels, DType dtype,
                    WindowOptions opts, int output = 0) {
  if (!known_rank(ctx, x)) {
    ctx.set_output(output, TypeInfo::tensor(dtype));
    return Status::Ok();
  }
  const Shape& xs = ctx.input_type(x).shape;
  if (xs.rank() < 3) return ctx.fail("input X must have rank >= 3, got " + xs.to_string());
  const int n = xs.rank() - 2;
  if (weight >= 0) {
    if (known_rank(ctx, weight)) {
      const Shape& ws = ctx.input_type(weight).shape;
      if (ws.rank() != xs.rank()) {
        return ctx.fail("weight rank " + std::to_string(ws.rank()) + " differs from input rank " +
                        std::to_string(xs.rank()));
      }
      for (int i = 0; i < n; ++i) {
        opts.kernel_from_weight.push_back(ws.dims[static_cast<size_t>(i + 2)].value);
      }
    } else {
      opts.kernel_from_weight.assign(static_cast<size_t>(n), -1);
    }
  }
  KILN_ASSIGN_OR_RETURN(Window w, read_window(ctx.node(), n, opts));
  Shape out;
  out.rank_known = true;
  out.dims.push_back(xs.dims[0]);
  out.dims.push_back(channels);
  for (int i = 0; i < n; ++i) {
    const Dim& d = xs.dims[static_cast<size_t>(i + 2)];
    if (!d.known() || w.kernel[static_cast<size_t>(i)] < 0) {
      out.dims.push_back(Dim::unknown());
      continue;
    }
    KILN_ASSIGN_OR_RETURN(int64_t o, window_output(ctx.node(), w, i, d.value));
    out.dims.push_back(Dim::of(o));
  }
  ctx.set_output(output, TypeInfo::tensor(dtype, out));
  return Status::Ok();
}

Status infer_conv_integer(InferContext& ctx) {
  return infer_window(ctx, 0, 1, dim_of(ctx, 1, 0), DType::kInt32, {});
}
Status infer_qlinear_conv(InferContext& ctx) {
  return infer_window(ctx, 0, 3, dim_of(ctx, 3, 0), dtype_of(ctx, 7), {});
}
Status infer_deform_conv(InferContext& ctx) {
  WindowOptions o;
  o.allow_auto_pad = false;
  return infer_window(ctx, 0, 1, dim_of(ctx, 1, 0), dtype_of(ctx, 0), o);
}

Status infer_conv_transpose(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  if (!known_rank(ctx, 0)) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  const Shape& xs = ctx.input_type(0).shape;
  if (xs.rank() < 3) return ctx.fail("input X must have rank >= 3");
  const int n = xs.rank() - 2;
  WindowOptions opts;
  opts.allow_output_padding = true;
  Dim channels = Dim::unknown();
  if (known_rank(ctx, 1)) {
    const Shape& ws = ctx.input_type(1).shape;
    if (ws.rank() != xs.rank()) return ctx.fail("weight rank differs from input rank");
    for (int i = 0; i < n; ++i)
      opts.kernel_from_weight.push_back(ws.dims[static_cast<size_t>(i + 2)].value);
    const int64_t group = ctx.attr_int("group", 1);
    if (ws.dims[1].known() && group >= 1) channels = Dim::of(ws.dims[1].value * group);
  } else {
    opts.kernel_from_weight.assign(static_cast<size_t>(n), -1);
  }
  KILN_ASSIGN_OR_RETURN(Window w, read_window(ctx.node(), n, opts));
  std::vector<int64_t> output_shape = ctx.attr_ints("output_shape");
  if (!output_shape.empty() && static_cast<int>(output_shape.size()) != n) {
    if (static_cast<int>(output_shape.size()) == n + 2) {
      output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
    } else {
      return ctx.fail("output_shape has the wrong length");
    }
  }
  Shape out;
  out.rank_known = true;
  out.dims = {xs.dims[0], channels};
  for (int i = 0; i < n; ++i) {
    const Dim& d = xs.dims[static_cast<size_t>(i + 2)];
    const int64_t req = output_shape.empty() ? -1 : output_shape[static_cast<size_t>(i)];
    if (req >= 0 && !output_shape.empty()) {
      out.dims.push_back(Dim::of(req));
      continue;
    }
    if (!d.known() || w.kernel[static_cast<size_t>(i)] < 0) {
      out.dims.push_back(Dim::unknown());
      continue;
    }
    KILN_ASSIGN_OR_RETURN(int64_t o, conv_transpose_output(ctx.node(), w, i, d.value, req));
    out.dims.push_back(Dim::of(o));
  }
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

Status infer_global_pool(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  if (!known_rank(ctx, 0)) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  Shape s = ctx.input_type(0).shape;
  if (s.rank() < 2) return ctx.fail("input must have rank >= 2");
  for (size_t i = 2; i < s.dims.size(); ++i) s.dims[i] = Dim::of(1);
  ctx.set_output(0, TypeInfo::tensor(dt, s));
  return Status::Ok();
}

Status infer_max_unpool(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  if (ctx.has_input(2)) {
    const Tensor* os = ctx.input_constant(2);
    if (os == nullptr) {
      Shape s = known_rank(ctx, 0) ? Shape::of_rank(ctx.input_type(0).shape.rank())
                                   : Shape::unknown_rank();
      ctx.set_output(0, TypeInfo::tensor(dt, s));
      return Status::Ok();
    }
    std::vector<int64_t> v;
    for (int64_t i = 0; i < os->numel(); ++i) v.push_back(os->get_int64(i));
    for (int64_t x : v)
      if (x < 0) return ctx.fail("output_shape has a negative dim");
    ctx.set_output(0, TypeInfo::tensor(dt, Shape::of(v)));
    return Status::Ok();
  }
  if (!known_rank(ctx, 0)) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  const Shape& xs = ctx.input_type(0).shape;
  if (xs.rank() < 3) return ctx.fail("input X must have rank >= 3");
  const int n = xs.rank() - 2;
  KILN_ASSIGN_OR_RETURN(Window w, read_window(ctx.node(), n, {}));
  Shape out;
  out.rank_known = true;
  out.dims = {xs.dims[0], xs.dims[1]};
  for (int i = 0; i < n; ++i) {
    const Dim& d = xs.dims[static_cast<size_t>(i + 2)];
    if (!d.known()) {
      out.dims.push_back(Dim::unknown());
      continue;
    }
    int64_t o = 0;
    if (d.value < 1 || __builtin_mul_overflow(d.value - 1, w.strides[static_cast<size_t>(i)], &o)) {
      return ctx.fail("unpooled size overflows");
    }
    o += w.kernel[static_cast<size_t>(i)] - w.pads[static_cast<size_t>(i)] -
         w.pads[static_cast<size_t>(i + n)];
    if (o < 0) return ctx.fail("output size would be negative");
    out.dims.push_back(Dim::of(o));
  }
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

Status infer_roi_align(InferContext& ctx) {
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  if (oh < 1 || ow < 1) return ctx.fail("output_height/output_width must be >= 1");
  Shape s;
  s.rank_known = true;
  s.dims = {dim_of(ctx, 1, 0), dim_of(ctx, 0, 1), Dim::of(oh), Dim::of(ow)};
  ctx.set_output(0, TypeInfo::tensor(dtype_of(ctx, 0), s));
  return Status::Ok();
}

Status infer_max_roi_pool(InferContext& ctx) {
  const std::vector<int64_t> ps = ctx.attr_ints("pooled_shape");
  if (ps.size() != 2 || ps[0] < 1 || ps[1] < 1)
    return ctx.fail("pooled_shape must be 2 positive ints");
  Shape s;
  s.rank_known = true;
  s.dims = {dim_of(ctx, 1, 0), dim_of(ctx, 0, 1), Dim::of(ps[0]), Dim::of(ps[1])};
  ctx.set_output(0, TypeInfo::tensor(dtype_of(ctx, 0), s));
  return Status::Ok();
}

Status infer_col2im(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  const Tensor* image = ctx.input_constant(1);
  const Tensor* block = ctx.input_constant(2);
  int n = -1;
  if (image)
    n = static_cast<int>(image->numel());
  else if (known_rank(ctx, 1) && dim_of(ctx, 1, 0).known())
    n = static_cast<int>(dim_of(ctx, 1, 0).value);
  if (n < 0) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  Shape s = Shape::of_rank(n + 2);
  s.dims[0] = dim_of(ctx, 0, 0);
  if (image) {
    for (int i = 0; i < n; ++i) s.dims[static_cast<size_t>(i + 2)] = Dim::of(image->get_int64(i));
  }
  if (block && dim_of(ctx, 0, 1).known()) {
    int64_t prod = 1;
    for (int64_t i = 0; i < block->numel(); ++i) prod *= std::max<int64_t>(1, block->get_int64(i));
    if (prod > 0 && dim_of(ctx, 0, 1).value % prod == 0) {
      s.dims[1] = Dim::of(dim_of(ctx, 0, 1).value / prod);
    }
  }
  ctx.set_output(0, TypeInfo::tensor(dt, s));
  return Status::Ok();
}

// numpy matmul shape rule.
Status infer_matmul_like(InferContext& ctx, int a, int b, DType dt) {
  if (!known_rank(ctx, a) || !known_rank(ctx, b)) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  Shape sa = ctx.input_type(a).shape, sb = ctx.input_type(b).shape;
  if (sa.rank() == 0 || sb.rank() == 0) return ctx.fail("MatMul operands must have rank >= 1");
  const bool a1 = sa.rank() == 1, b1 = sb.rank() == 1;
  if (a1) sa.dims.insert(sa.dims.begin(), Dim::of(1));
  if (b1) sb.dims.push_back(Dim::of(1));
  const Dim& ka = sa.dims[sa.dims.size() - 1];
  const Dim& kb = sb.dims[sb.dims.size() - 2];
  if (ka.known() && kb.known() && ka.value != kb.value) {
    return ctx.fail("inner dims differ: " + ctx.input_type(a).shape.to_string() + " x " +
                    ctx.input_type(b).shape.to_string());
  }
  Shape ba, bb;
  ba.rank_known = bb.rank_known = true;
  ba.dims.assign(sa.dims.begin(), sa.dims.end() - 2);
  bb.dims.assign(sb.dims.begin(), sb.dims.end() - 2);
  auto batch = broadcast_shapes(ba, bb);
  if (!batch.ok()) return ctx.fail("batch dims do not broadcast");
  Shape out = batch.value();
  if (!a1) out.dims.push_back(sa.dims[sa.dims.size() - 2]);
  if (!b1) out.dims.push_back(sb.dims[sb.dims.size() - 1]);
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

Status infer_matmul(InferContext& ctx) {
  return infer_matmul_like(ctx, 0, 1, dtype_of(ctx, 0));
}
Status infer_matmul_integer(InferContext& ctx) {
  return infer_matmul_like(ctx, 0, 1, DType::kInt32);
}
Status infer_qlinear_matmul(InferContext& ctx) {
  return infer_matmul_like(ctx, 0, 3, dtype_of(ctx, 7));
}

Status infer_gemm(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  Shape s = Shape::of_rank(2);
  if (known_rank(ctx, 0)) {
    if (ctx.input_type(0).shape.rank() != 2) return ctx.fail("A must have rank 2");
    s.dims[0] = dim_of(ctx, 0, ta ? 1 : 0);
  }
  if (known_rank(ctx, 1)) {
    if (ctx.input_type(1).shape.rank() != 2) return ctx.fail("B must have rank 2");
    s.dims[1] = dim_of(ctx, 1, tb ? 0 : 1);
  }
  const Dim ka = dim_of(ctx, 0, ta ? 0 : 1), kb = dim_of(ctx, 1, tb ? 1 : 0);
  if (ka.known() && kb.known() && ka.value != kb.value) return ctx.fail("inner dims differ");
  ctx.set_output(0, TypeInfo::tensor(dt, s));
  return Status::Ok();
}

Status infer_einsum(InferContext& ctx) {
  const std::string eq = ctx.attr_string("equation");
  DType dt = dtype_of(ctx, 0);
  std::vector<int> ranks;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!known_rank(ctx, i)) {
      ctx.set_output(0, TypeInfo::tensor(dt));
      return Status::Ok();
    }
    ranks.push_back(ctx.input_type(i).shape.rank());
  }
  auto spec = parse_einsum(eq, ranks);
  if (!spec.ok()) return ctx.fail(spec.status().message());
  std::vector<Dim> label_dim(static_cast<size_t>(spec->num_labels), Dim::unknown());
  for (size_t i = 0; i < spec->inputs.size(); ++i) {
    const Shape& s = ctx.input_type(static_cast<int>(i)).shape;
    for (size_t d = 0; d < spec->inputs[i].size(); ++d) {
      Dim& ld = label_dim[static_cast<size_t>(spec->inputs[i][d])];
      const Dim& x = s.dims[d];
      if (!x.known()) continue;
      if (ld.known() && ld.value != x.value && ld.value != 1 && x.value != 1) {
        return ctx.fail("einsum: label sizes disagree");
      }
      if (!ld.known() || ld.value == 1) ld = x;
    }
  }
  Shape out;
  out.rank_known = true;
  for (int l : spec->output) out.dims.push_back(label_dim[static_cast<size_t>(l)]);
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

Status infer_causal_conv(InferContext& ctx) {
  const DType dt = dtype_of(ctx, 0);
  Shape in = known_rank(ctx, 0) ? ctx.input_type(0).shape : Shape::of_rank(3);
  if (in.rank() != 3) return ctx.fail("input must have rank 3");
  ctx.set_output(0, TypeInfo::tensor(dt, in));
  if (ctx.num_outputs() > 1) {
    Shape st = Shape::of_rank(3);
    st.dims[0] = in.dims[0];
    st.dims[1] = in.dims[1];
    const Dim k = dim_of(ctx, 1, 2);
    if (k.known()) st.dims[2] = Dim::of(std::max<int64_t>(0, k.value - 1));
    ctx.set_output(1, TypeInfo::tensor(dt, st));
  }
  return Status::Ok();
}

void add(OpRegistry& r, const char* op, int min_in, int max_in, int min_out, int max_out,
         InferFn fn) {
  r.add(make_op_def("", op, min_in, max_in, min_out, max_out, fn));
}

}  // namespace

Status infer_pool(InferContext& ctx) {
  WindowOptions o;
  const std::string& op = ctx.node().op_type;
  o.allow_ceil_mode = op != "LpPool" || ctx.opset() >= 18;
  o.allow_dilations = true;
  KILN_RETURN_IF_ERROR(infer_window(ctx, 0, -1, dim_of(ctx, 0, 1), dtype_of(ctx, 0), o));
  if (ctx.num_outputs() > 1) {
    TypeInfo t = ctx.outputs()[0];
    t.dtype = DType::kInt64;
    ctx.set_output(1, t);
  }
  return Status::Ok();
}

Status infer_conv(InferContext& ctx) {
  return infer_window(ctx, 0, 1, dim_of(ctx, 1, 0), dtype_of(ctx, 0), {});
}

void register_nn_ops(OpRegistry& r) {
  add(r, "Conv", 2, 3, 1, 1, infer_conv);
  add(r, "ConvInteger", 2, 4, 1, 1, infer_conv_integer);
  add(r, "QLinearConv", 8, 9, 1, 1, infer_qlinear_conv);
  add(r, "ConvTranspose", 2, 3, 1, 1, infer_conv_transpose);
  add(r, "DeformConv", 3, 5, 1, 1, infer_deform_conv);
  add(r, "Col2Im", 3, 3, 1, 1, infer_col2im);
  add(r, "CausalConvWithState", 2, 4, 1, 2, infer_causal_conv);
  add(r, "MatMul", 2, 2, 1, 1, infer_matmul);
  add(r, "MatMulInteger", 2, 4, 1, 1, infer_matmul_integer);
  add(r, "QLinearMatMul", 8, 8, 1, 1, infer_qlinear_matmul);
  add(r, "Gemm", 2, 3, 1, 1, infer_gemm);
  add(r, "MaxPool", 1, 1, 1, 2, infer_pool);
  add(r, "AveragePool", 1, 1, 1, 1, infer_pool);
  add(r, "LpPool", 1, 1, 1, 1, infer_pool);
  add(r, "GlobalAveragePool", 1, 1, 1, 1, infer_global_pool);
  add(r, "GlobalMaxPool", 1, 1, 1, 1, infer_global_pool);
  add(r, "GlobalLpPool", 1, 1, 1, 1, infer_global_pool);
  add(r, "MaxUnpool", 2, 3, 1, 1, infer_max_unpool);
  add(r, "RoiAlign", 3, 3, 1, 1, infer_roi_align);
  add(r, "MaxRoiPool", 2, 2, 1, 1, infer_max_roi_pool);
  add(r, "Einsum", 1, kVariadic, 1, 1, infer_einsum);
}

}  // namespace kiln::ops
