// Op definitions (inference) of the tensor family's shape ops: Reshape, Flatten, Squeeze,
// Unsqueeze, Transpose, Concat, Split, Slice, Shape, Size, Identity, Constant, ConstantOfShape,
// Range, EyeLike, Expand, Tile, Pad, CenterCropPad, Dropout.
#include <algorithm>
#include <cmath>

#include "ops/shape_util.h"
#include "ops/shape_value.h"
#include "ops/tensor_util.h"

namespace kiln::ops::tensor_detail {
namespace {

using ir::Dim;
using ir::Shape;

// Target of a shape input: its constant or shape-value elements.
std::optional<std::vector<SymInt>> sym_target(InferContext& ctx, int i) {
  if (auto c = const_ints(ctx, i)) {
    std::vector<SymInt> v;
    for (int64_t x : *c) v.push_back(SymInt::of(x));
    return v;
  }
  return input_shape_value(ctx, i);
}

std::string sym_target_string(const std::vector<SymInt>& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) s += ',';
    s += t[i].is_int() ? std::to_string(t[i].coeff) : dim_of_sym(t[i]).to_string();
  }
  return s + "]";
}

Status infer_reshape(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  std::optional<std::vector<SymInt>> target;
  if (ctx.opset() < 5) {
    target.emplace();
    for (int64_t x : ctx.attr_ints("shape")) target->push_back(SymInt::of(x));
  } else {
    target = sym_target(ctx, 1);
  }
  if (!target) {
    const Shape* s = ranked_shape(ctx, 1);
    if (s && s->rank() == 1 && s->dims[0].known()) {
      set_tensor(ctx, 0, dt, Shape::of_rank(static_cast<int>(s->dims[0].value)));
    } else {
      set_tensor(ctx, 0, dt, Shape::unknown_rank());
    }
    return Status::Ok();
  }
  const bool allowzero = ctx.opset() >= 14 && ctx.attr_int("allowzero", 0) != 0;
  const Shape* in = ranked_shape(ctx, 0);
  Shape out = Shape::of_rank(static_cast<int>(target->size()));
  int infer_at = -1;
  bool others_known = true;  // every dim but the -1 is a size or symbolic product
  SymInt others = SymInt::of(1);
  for (size_t i = 0; i < target->size(); ++i) {
    const SymInt& t = (*target)[i];
    if (!t.known) {
      others_known = false;
      continue;
    }
    if (t.is_int()) {
      const int64_t v = t.coeff;
      if (v == -1) {
        if (infer_at >= 0) return ctx.fail("shape has more than one -1");
        infer_at = static_cast<int>(i);
        continue;
      }
      if (v < -1) return ctx.fail("shape has a negative dimension " + std::to_string(v));
      if (v == 0 && !allowzero) {
        if (in == nullptr || i >= static_cast<size_t>(in->rank())) {
          if (in != nullptr)
            return ctx.fail("shape copies dimension " + std::to_string(i) +
                            " that the input does not have");
          others_known = false;
          continue;
        }
        out.dims[i] = in->dims[i];
      } else {
        out.dims[i] = Dim::of(v);
      }
    } else {
      out.dims[i] = dim_of_sym(t);
    }
    const SymInt d = sym_of_dim(out.dims[i]);
    if (d.known) {
      others = sym_mul(others, d);
      if (!others.known) others_known = false;
    } else {
      others_known = false;
    }
  }
  if (infer_at >= 0 && in != nullptr && others_known) {
    const SymInt total = sym_product(in->dims);
    if (total.is_int() && others.is_int() && others.coeff != 0 && total.coeff % others.coeff != 0) {
      return ctx.fail("cannot reshape " + in->to_string() + " to " + sym_target_string(*target));
    }
    if (total.known && others.known && !(others.is_int() && others.coeff == 0)) {
      out.dims[static_cast<size_t>(infer_at)] = dim_of_sym(sym_div_exact(total, others));
    }
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_flatten(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, dt, Shape::of_rank(2));
    return Status::Ok();
  }
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += in->rank();
  if (axis < 0 || axis > in->rank()) return ctx.fail("axis is out of range");
  Shape out = Shape::of_rank(2);
  out.dims[0] = dim_product(in->dims, 0, static_cast<size_t>(axis));
  out.dims[1] = dim_product(in->dims, static_cast<size_t>(axis), in->dims.size());
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

std::optional<std::vector<int64_t>> axes_of(InferContext& ctx, int input, int first_input_opset) {
  if (ctx.opset() < first_input_opset) {
    if (!ctx.node().has_attr("axes")) return std::vector<int64_t>{};
    return ctx.attr_ints("axes");
  }
  if (!ctx.has_input(input)) return std::vector<int64_t>{};
  return const_ints(ctx, input);
}

Status infer_squeeze(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  auto axes = axes_of(ctx, 1, 13);
  if (in == nullptr || !axes) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  std::vector<bool> drop(static_cast<size_t>(in->rank()), false);
  if (axes->empty()) {
    for (int i = 0; i < in->rank(); ++i) {
      const Dim& d = in->dims[static_cast<size_t>(i)];
      if (!d.known()) {
        set_tensor(ctx, 0, dt, Shape::unknown_rank());
        return Status::Ok();
      }
      drop[static_cast<size_t>(i)] = d.value == 1;
    }
  } else {
    for (int64_t a : *axes) {
      StatusOr<int> ax = normalize_axis(a, in->rank());
      if (!ax.ok()) return ctx.fail(ax.status().message());
      const Dim& d = in->dims[static_cast<size_t>(*ax)];
      if (d.known() && d.value != 1) {
        return ctx.fail("cannot squeeze axis " + std::to_string(a) + " of size " +
                        std::to_string(d.value));
      }
      drop[static_cast<size_t>(*ax)] = true;
    }
  }
  Shape out;
  out.rank_known = true;
  for (int i = 0; i < in->rank(); ++i) {
    if (!drop[static_cast<size_t>(i)]) out.dims.push_back(in->dims[static_cast<size_t>(i)]);
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_unsqueeze(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  auto axes = axes_of(ctx, 1, 13);
  if (in == nullptr || !axes) {
    const Shape* as = ranked_shape(ctx, 1);
    if (in != nullptr && as != nullptr && as->rank() == 1 && as->dims[0].known()) {
      set_tensor(ctx, 0, dt, Shape::of_rank(in->rank() + static_cast<int>(as->dims[0].value)));
    } else {
      set_tensor(ctx, 0, dt, Shape::unknown_rank());
    }
    return Status::Ok();
  }
  const int out_rank = in->rank() + static_cast<int>(axes->size());
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int64_t a : *axes) {
    StatusOr<int> ax = normalize_axis(a, out_rank);
    if (!ax.ok()) return ctx.fail(ax.status().message());
    if (inserted[static_cast<size_t>(*ax)]) return ctx.fail("axes has duplicates");
    inserted[static_cast<size_t>(*ax)] = true;
  }
  Shape out = Shape::of_rank(out_rank);
  size_t k = 0;
  for (int i = 0; i < out_rank; ++i) {
    out.dims[static_cast<size_t>(i)] =
        inserted[static_cast<size_t>(i)] ? Dim::of(1) : in->dims[k++];
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_transpose(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    const auto perm = ctx.attr_ints("perm");
    set_tensor(
        ctx, 0, dt,
        perm.empty() ? Shape::unknown_rank() : Shape::of_rank(static_cast<int>(perm.size())));
    return Status::Ok();
  }
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (!ctx.node().has_attr("perm")) {
    for (int i = in->rank() - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != in->rank()) return ctx.fail("perm does not match the rank");
  Shape out = Shape::of_rank(in->rank());
  std::vector<bool> seen(perm.size(), false);
  for (size_t i = 0; i < perm.size(); ++i) {
    StatusOr<int> p = normalize_axis(perm[i], in->rank(), "perm entry");
    if (!p.ok()) return ctx.fail(p.status().message());
    if (seen[static_cast<size_t>(*p)]) return ctx.fail("perm is not a permutation");
    seen[static_cast<size_t>(*p)] = true;
    out.dims[i] = in->dims[static_cast<size_t>(*p)];
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_concat(InferContext& ctx) {
  DType dt = DType::kUndefined;
  const Shape* first = nullptr;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (dt == DType::kUndefined) dt = input_dtype(ctx, i);
    if (first == nullptr) first = ranked_shape(ctx, i);
  }
  if (first == nullptr) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  const int rank = first->rank();
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", ctx.opset() < 4 ? 1 : 0), rank);
  if (!axis.ok()) return ctx.fail(axis.status().message());
  Shape out = Shape::of_rank(rank);
  int64_t sum = 0;
  bool sum_known = true;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Shape* s = ranked_shape(ctx, i);
    if (s == nullptr) {
      sum_known = false;
      continue;
    }
    if (s->rank() != rank) return ctx.fail("inputs have different ranks");
    for (int d = 0; d < rank; ++d) {
      const Dim& x = s->dims[static_cast<size_t>(d)];
      if (d == *axis) {
        if (x.known() && x.value <= INT64_MAX - sum) {
          sum += x.value;
        } else {
          sum_known = false;
        }
        continue;
      }
      Dim& o = out.dims[static_cast<size_t>(d)];
      if (!o.known() && x.known())
        o = x;
      else if (!o.known() && o.symbol.empty())
        o = x;
      else if (o.known() && x.known() && o.value != x.value) {
        return ctx.fail("inputs differ in dimension " + std::to_string(d));
      }
    }
  }
  if (sum_known) out.dims[static_cast<size_t>(*axis)] = Dim::of(sum);
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_split(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  const int n = ctx.num_outputs();
  for (int i = 0; i < n; ++i) set_tensor(ctx, i, dt, in ? Shape::of_rank(in->rank()) : Shape());
  if (in == nullptr) return Status::Ok();
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", 0), in->rank());
  if (!axis.ok()) return ctx.fail(axis.status().message());
  std::optional<std::vector<int64_t>> split;
  const Tensor* split_const = ctx.input_constant(1);
  if (ctx.has_input(1) && !(split_const != nullptr && split_const->numel() == 0)) {
    split = const_ints(ctx, 1);
    if (!split) {
      for (int i = 0; i < n; ++i) {
        Shape s = *in;
        s.dims[static_cast<size_t>(*axis)] = Dim::unknown();
        set_tensor(ctx, i, dt, s);
      }
      return Status::Ok();
    }
  } else if (ctx.opset() < 13 && ctx.node().has_attr("split")) {
    split = ctx.attr_ints("split");
  }
  const Dim& d = in->dims[static_cast<size_t>(*axis)];
  if (!split) {
    if (!d.known()) {
      for (int i = 0; i < n; ++i) {
        Shape s = *in;
        s.dims[static_cast<size_t>(*axis)] = Dim::unknown();
        set_tensor(ctx, i, dt, s);
      }
      return Status::Ok();
    }
    const int64_t chunk = n == 0 ? 0 : (d.value + n - 1) / n;
    split = std::vector<int64_t>();
    int64_t left = d.value;
    for (int i = 0; i < n; ++i) {
      split->push_back(std::min(chunk, left));
      left -= split->back();
    }
  }
  if (static_cast<int>(split->size()) != n) {
    return ctx.fail("split has " + std::to_string(split->size()) + " entries for " +
                    std::to_string(n) + " outputs");
  }
  int64_t total = 0;
  for (int64_t v : *split) {
    if (v < 0) return ctx.fail("split has a negative entry");
    if (v > INT64_MAX - total) return ctx.fail("split entries overflow int64");
    total += v;
  }
  if (d.known() && total != d.value) {
    return ctx.fail("split sums to " + std::to_string(total) + ", axis has " +
                    std::to_string(d.value));
  }
  for (int i = 0; i < n; ++i) {
    Shape s = *in;
    s.dims[static_cast<size_t>(*axis)] = Dim::of((*split)[static_cast<size_t>(i)]);
    set_tensor(ctx, i, dt, s);
  }
  return Status::Ok();
}

Status infer_slice(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  std::optional<std::vector<int64_t>> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.attr_ints("starts");
    ends = ctx.attr_ints("ends");
    axes = ctx.attr_ints("axes");
    steps = std::vector<int64_t>();
  } else {
    starts = const_ints(ctx, 1);
    ends = const_ints(ctx, 2);
    axes = ctx.has_input(3) ? const_ints(ctx, 3) : std::vector<int64_t>();
    steps = ctx.has_input(4) ? const_ints(ctx, 4) : std::vector<int64_t>();
  }
  Shape out = *in;
  if (!axes) {
    for (auto& d : out.dims) d = Dim::unknown();
    set_tensor(ctx, 0, dt, std::move(out));
    return Status::Ok();
  }
  if (axes->empty()) {
    size_t n = starts ? starts->size() : ends ? ends->size() : 0;
    if (!starts && !ends) {
      for (auto& d : out.dims) d = Dim::unknown();
      set_tensor(ctx, 0, dt, std::move(out));
      return Status::Ok();
    }
    for (size_t i = 0; i < n; ++i) axes->push_back(static_cast<int64_t>(i));
  }
  for (size_t i = 0; i < axes->size(); ++i) {
    StatusOr<int> ax = normalize_axis((*axes)[i], in->rank());
    if (!ax.ok()) return ctx.fail(ax.status().message());
    Dim& o = out.dims[static_cast<size_t>(*ax)];
    const Dim& d = in->dims[static_cast<size_t>(*ax)];
    if (!starts || !ends || !steps || !d.known() || i >= starts->size() || i >= ends->size()) {
      o = Dim::unknown();
      continue;
    }
    const int64_t step = steps->empty() ? 1 : (i < steps->size() ? (*steps)[i] : 1);
    if (step == 0) return ctx.fail("slice step is 0");
    int64_t first = 0;
    o = Dim::of(slice_extent((*starts)[i], (*ends)[i], step, d.value, &first));
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_shape(InferContext& ctx) {
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, DType::kInt64, Shape::of_rank(1));
    return Status::Ok();
  }
  const int64_t r = in->rank();
  int64_t start = ctx.opset() >= 15 ? ctx.attr_int("start", 0) : 0;
  int64_t end = ctx.opset() >= 15 ? ctx.attr_int("end", r) : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  set_tensor(ctx, 0, DType::kInt64, Shape::of({std::max<int64_t>(0, end - start)}));
  return Status::Ok();
}

Status infer_size(InferContext& ctx) {
  set_tensor(ctx, 0, DType::kInt64, Shape::of({}));
  return Status::Ok();
}

Status infer_identity(InferContext& ctx) {
  const ir::TypeInfo& t = ctx.input_type(0);
  if (t.kind != ir::TypeInfo::Kind::kUnknown)
    ctx.set_output(0, t);
  else
    pass_through(ctx, 0, 0);
  return Status::Ok();
}

Status infer_constant(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  if (n.attrs.size() != 1) return ctx.fail("needs exactly one value attribute");
  const ir::Attribute& a = n.attrs[0];
  if (a.name == "value" || a.name == "sparse_value") {
    if (!a.t.defined()) {
      if (a.type == ir::AttrType::kSparseTensor && a.tensors.size() == 2) {
        set_tensor(ctx, 0, a.tensors[0].dtype(), Shape::of(a.ints));
        return Status::Ok();
      }
      return ctx.fail("attribute '" + a.name + "' holds no tensor");
    }
    set_tensor(ctx, 0, a.t.dtype(), Shape::of(a.t.shape()));
  } else if (a.name == "value_float") {
    set_tensor(ctx, 0, DType::kFloat32, Shape::of({}));
  } else if (a.name == "value_floats") {
    set_tensor(ctx, 0, DType::kFloat32, Shape::of({static_cast<int64_t>(a.floats.size())}));
  } else if (a.name == "value_int") {
    set_tensor(ctx, 0, DType::kInt64, Shape::of({}));
  } else if (a.name == "value_ints") {
    set_tensor(ctx, 0, DType::kInt64, Shape::of({static_cast<int64_t>(a.ints.size())}));
  } else if (a.name == "value_string") {
    set_tensor(ctx, 0, DType::kString, Shape::of({}));
  } else if (a.name == "value_strings") {
    set_tensor(ctx, 0, DType::kString, Shape::of({static_cast<int64_t>(a.strings.size())}));
  } else {
    return ctx.fail("unknown attribute '" + a.name + "'");
  }
  return Status::Ok();
}

Status infer_constant_of_shape(InferContext& ctx) {
  const Tensor* value = ctx.node().attr_tensor("value");
  const DType dt = value != nullptr && value->defined() ? value->dtype() : DType::kFloat32;
  if (auto shape = const_ints(ctx, 0)) {
    for (int64_t d : *shape) {
      if (d < 0) return ctx.fail("shape has a negative dimension");
    }
    set_tensor(ctx, 0, dt, Shape::of(*shape));
    return Status::Ok();
  }
  if (auto sv = input_shape_value(ctx, 0)) {
    Shape out = Shape::of_rank(static_cast<int>(sv->size()));
    for (size_t i = 0; i < sv->size(); ++i) {
      if ((*sv)[i].is_int() && (*sv)[i].coeff < 0)
        return ctx.fail("shape has a negative dimension");
      out.dims[i] = dim_of_sym((*sv)[i]);
    }
    set_tensor(ctx, 0, dt, std::move(out));
    return Status::Ok();
  }
  const Shape* s = ranked_shape(ctx, 0);
  if (s != nullptr && s->rank() == 1 && s->dims[0].known()) {
    set_tensor(ctx, 0, dt, Shape::of_rank(static_cast<int>(s->dims[0].value)));
  } else {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
  }
  return Status::Ok();
}

Status infer_range(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  Shape out = Shape::of_rank(1);
  auto start = const_scalar(ctx, 0), limit = const_scalar(ctx, 1), delta = const_scalar(ctx, 2);
  if (start && limit && delta && *delta != 0) {
    const double n = std::ceil((*limit - *start) / *delta);
    if (is_integer(dt)) {
      const Tensor* a = ctx.input_constant(0);
      const Tensor* b = ctx.input_constant(1);
      const Tensor* c = ctx.input_constant(2);
      const int64_t s = a->get_int64(0), l = b->get_int64(0), d = c->get_int64(0);
      // Integer ranges count exactly (doubles lose precision past 2^53).
      __int128 diff = static_cast<__int128>(l) - s;
      __int128 cnt =
          d > 0
              ? (diff > 0 ? (diff + d - 1) / d : 0)
              : (diff < 0 ? (-diff + (-static_cast<__int128>(d)) - 1) / (-static_cast<__int128>(d))
                          : 0);
      if (cnt <= INT64_MAX) out.dims[0] = Dim::of(static_cast<int64_t>(cnt));
    } else if (n <= 0 || std::isnan(n)) {
      out.dims[0] = Dim::of(0);
    } else if (n < 9.2e18) {
      out.dims[0] = Dim::of(static_cast<int64_t>(n));
    }
  }
  if (!out.dims[0].known() && is_integer(dt)) {
    auto s = input_shape_value(ctx, 0), l = input_shape_value(ctx, 1),
         d = input_shape_value(ctx, 2);
    if (s && l && d && s->size() == 1 && l->size() == 1 && d->size() == 1 && (*s)[0].is_int() &&
        (*s)[0].coeff == 0 && (*d)[0].is_int() && (*d)[0].coeff == 1 && !(*l)[0].is_int()) {
      out.dims[0] = dim_of_sym((*l)[0]);
    }
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_eye_like(InferContext& ctx) {
  DType dt = input_dtype(ctx, 0);
  if (ctx.node().has_attr("dtype")) {
    const int64_t v = ctx.attr_int("dtype", 0);
    if (v == 0 || !is_valid_dtype(static_cast<int>(v)))
      return ctx.fail("dtype is not a valid type");
    dt = static_cast<DType>(v);
  }
  const Shape* in = ranked_shape(ctx, 0);
  if (in != nullptr && in->rank() != 2) return ctx.fail("input must be 2-D");
  set_tensor(ctx, 0, dt, in ? *in : Shape::of_rank(2));
  return Status::Ok();
}

Status infer_expand(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  auto shape = const_ints(ctx, 1);
  if (shape && in) {
    Shape target = Shape::of(*shape);
    for (size_t i = 0; i < shape->size(); ++i) {
      if ((*shape)[i] < 0) return ctx.fail("shape has a negative dimension");
    }
    StatusOr<Shape> out = broadcast_shapes(*in, target);
    if (!out.ok()) return ctx.fail(out.status().message());
    set_tensor(ctx, 0, dt, std::move(out).value());
    return Status::Ok();
  }
  auto sv = input_shape_value(ctx, 1);
  if (sv && in) {
    Shape target = Shape::of_rank(static_cast<int>(sv->size()));
    for (size_t i = 0; i < sv->size(); ++i) {
      if ((*sv)[i].is_int() && (*sv)[i].coeff < 0)
        return ctx.fail("shape has a negative dimension");
      target.dims[i] = dim_of_sym((*sv)[i]);
    }
    StatusOr<Shape> out = broadcast_shapes(*in, target);
    if (!out.ok()) return ctx.fail(out.status().message());
    set_tensor(ctx, 0, dt, std::move(out).value());
    return Status::Ok();
  }
  const Shape* s = ranked_shape(ctx, 1);
  if (in && s && s->rank() == 1 && s->dims[0].known()) {
    set_tensor(ctx, 0, dt,
               Shape::of_rank(std::max<int>(in->rank(), static_cast<int>(s->dims[0].value))));
  } else {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
  }
  return Status::Ok();
}

Status infer_tile(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  Shape out = Shape::of_rank(in->rank());
  if (auto reps = const_ints(ctx, 1)) {
    if (static_cast<int>(reps->size()) != in->rank()) {
      return ctx.fail("repeats has " + std::to_string(reps->size()) + " entries for rank " +
                      std::to_string(in->rank()));
    }
    for (int i = 0; i < in->rank(); ++i) {
      const int64_t r = (*reps)[static_cast<size_t>(i)];
      if (r < 0) return ctx.fail("repeats has a negative entry");
      const Dim& d = in->dims[static_cast<size_t>(i)];
      if (d.known() && (r == 0 || d.value <= INT64_MAX / r))
        out.dims[static_cast<size_t>(i)] = Dim::of(d.value * r);
      else if (r == 1)
        out.dims[static_cast<size_t>(i)] = d;
    }
  } else if (auto sv = input_shape_value(ctx, 1);
             sv && static_cast<int>(sv->size()) == in->rank()) {
    for (int i = 0; i < in->rank(); ++i) {
      const SymInt& r = (*sv)[static_cast<size_t>(i)];
      out.dims[static_cast<size_t>(i)] =
          dim_of_sym(sym_mul(sym_of_dim(in->dims[static_cast<size_t>(i)]), r));
    }
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_pad(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  const int rank = in->rank();
  std::optional<std::vector<int64_t>> pads =
      ctx.opset() < 11 ? std::optional(ctx.attr_ints(ctx.opset() < 2 ? "paddings" : "pads"))
                       : const_ints(ctx, 1);
  std::optional<std::vector<int64_t>> axes =
      ctx.opset() >= 18 && ctx.has_input(3) ? const_ints(ctx, 3) : std::vector<int64_t>();
  Shape out = Shape::of_rank(rank);
  if (pads && axes) {
    if (axes->empty()) {
      for (int i = 0; i < rank; ++i) axes->push_back(i);
    }
    const size_t na = axes->size();
    if (pads->size() != 2 * na) {
      return ctx.fail("pads has " + std::to_string(pads->size()) + " entries, expected " +
                      std::to_string(2 * na));
    }
    std::vector<int64_t> total(static_cast<size_t>(rank), 0);
    for (size_t k = 0; k < na; ++k) {
      StatusOr<int> ax = normalize_axis((*axes)[k], rank);
      if (!ax.ok()) return ctx.fail(ax.status().message());
      constexpr int64_t kLimit = int64_t{1} << 60;
      const int64_t a = (*pads)[k], b = (*pads)[k + na];
      if (a > kLimit || a < -kLimit || b > kLimit || b < -kLimit)
        return ctx.fail("pads are out of range");
      total[static_cast<size_t>(*ax)] = a + b;
    }
    for (int i = 0; i < rank; ++i) {
      const Dim& d = in->dims[static_cast<size_t>(i)];
      const int64_t t = total[static_cast<size_t>(i)];
      if (d.known()) {
        if (d.value > (int64_t{1} << 61)) continue;  // leave absurd declared sizes unknown
        if (d.value + t < 0) return ctx.fail("pads make a dimension negative");
        out.dims[static_cast<size_t>(i)] = Dim::of(d.value + t);
      } else if (t == 0) {
        out.dims[static_cast<size_t>(i)] = d;
      }
    }
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_center_crop_pad(InferContext& ctx) {
  const DType dt = input_dtype(ctx, 0);
  const Shape* in = ranked_shape(ctx, 0);
  if (in == nullptr) {
    set_tensor(ctx, 0, dt, Shape::unknown_rank());
    return Status::Ok();
  }
  const int rank = in->rank();
  Shape out = *in;
  std::vector<int64_t> axes = ctx.attr_ints("axes");
  if (!ctx.node().has_attr("axes")) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  auto shape = const_ints(ctx, 1);
  for (size_t k = 0; k < axes.size(); ++k) {
    StatusOr<int> ax = normalize_axis(axes[k], rank);
    if (!ax.ok()) return ctx.fail(ax.status().message());
    if (shape && shape->size() != axes.size()) {
      return ctx.fail("shape has " + std::to_string(shape->size()) + " entries for " +
                      std::to_string(axes.size()) + " axes");
    }
    out.dims[static_cast<size_t>(*ax)] = shape ? Dim::of((*shape)[k]) : Dim::unknown();
  }
  set_tensor(ctx, 0, dt, std::move(out));
  return Status::Ok();
}

Status infer_dropout(InferContext& ctx) {
  pass_through(ctx, 0, 0);
  if (ctx.num_outputs() > 1) {
    const ir::TypeInfo& t = ctx.input_type(0);
    const DType mask_dt = ctx.opset() >= 10 ? DType::kBool : input_dtype(ctx, 0);
    set_tensor(ctx, 1, mask_dt, t.is_tensor() ? t.shape : Shape());
  }
  return Status::Ok();
}

}  // namespace

void register_tensor_shape_ops(OpRegistry& r) {
  r.add({"", "Reshape", 1, 2, 1, 1, true, infer_reshape});
  r.add({"", "Flatten", 1, 1, 1, 1, true, infer_flatten});
  r.add({"", "Squeeze", 1, 2, 1, 1, true, infer_squeeze});
  r.add({"", "Unsqueeze", 1, 2, 1, 1, true, infer_unsqueeze});
  r.add({"", "Transpose", 1, 1, 1, 1, true, infer_transpose});
  r.add({"", "Concat", 1, kVariadic, 1, 1, true, infer_concat});
  r.add({"", "Split", 1, 2, 1, kVariadic, true, infer_split});
  r.add({"", "Slice", 1, 5, 1, 1, true, infer_slice});
  r.add({"", "Shape", 1, 1, 1, 1, true, infer_shape});
  r.add({"", "Size", 1, 1, 1, 1, true, infer_size});
  r.add({"", "Identity", 1, 1, 1, 1, false, infer_identity});
  r.add({"", "Constant", 0, 0, 1, 1, true, infer_constant});
  r.add({"", "ConstantOfShape", 1, 1, 1, 1, true, infer_constant_of_shape});
  r.add({"", "Range", 3, 3, 1, 1, true, infer_range});
  r.add({"", "EyeLike", 1, 1, 1, 1, true, infer_eye_like});
  r.add({"", "Expand", 2, 2, 1, 1, true, infer_expand});
  r.add({"", "Tile", 2, 3, 1, 1, true, infer_tile});
  r.add({"", "Pad", 1, 4, 1, 1, true, infer_pad});
  r.add({"", "CenterCropPad", 2, 2, 1, 1, true, infer_center_crop_pad});
  r.add({"", "Dropout", 1, 3, 1, 2, true, infer_dropout});
}

}  // namespace kiln::ops::tensor_detail
