// LayerNormalization and RMSNormalization written out as primitive ops, replaced by the ops.
//   LayerNorm: d = x - ReduceMean(x); v = ReduceMean(d^2); n = d / Sqrt(v + eps)
//              [* gamma] [+ beta]                         → LayerNormalization (opset 17)
//   RMSNorm:   n = x / Sqrt(ReduceMean(x^2) + eps) [* gamma] → RMSNormalization (opset 23)
// d^2 is Pow(d, 2) or Mul(d, d); the division is Div(d, s), or Mul by Reciprocal(s) or by
// Div(1, s). Both ReduceMeans reduce the same trailing axes (attribute or, from opset 18, a
// constant input) with keepdims = 1. gamma and beta are constants of x's dtype that broadcast to
// x without changing its shape and vary only over the normalized dims; without gamma the new op
// gets a Scale of ones. Each Add may be a two-input Sum. Every intermediate must be read only
// inside the pattern; the match stops before a Mul/Add whose input is read elsewhere, and the fused
// op then writes that input.
#include <algorithm>
#include <string>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::Uses;

// The first reduced axis of a ReduceMean over the trailing axes of its rank-`rank` input, with
// keepdims = 1; -1 when it is anything else.
int trailing_axis(const ir::Node* n, int rank) {
  if (n == nullptr || !n->domain.empty() || n->op_type != "ReduceMean" || n->outputs.size() != 1) {
    return -1;
  }
  Status st;
  if (n->attr_int("keepdims", 1, &st) != 1 || !st.ok()) return -1;
  std::vector<int64_t> axes;
  if (n->num_inputs() == 2) {
    const ir::Value* a = n->inputs[1];
    if (!a->constant || a->is_graph_input || a->constant->dtype() != DType::kInt64 ||
        a->constant->rank() != 1) {
      return -1;
    }
    for (int64_t i = 0; i < a->constant->numel(); ++i) axes.push_back(a->constant->get_int64(i));
  } else if (n->num_inputs() == 1) {
    axes = n->attr_ints("axes", {}, &st);
    if (!st.ok()) return -1;
  } else {
    return -1;
  }
  if (axes.empty()) return -1;  // all axes, or none with noop_with_empty_axes
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return -1;
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] != rank - static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i)) return -1;
  }
  return static_cast<int>(axes.front());
}

// Pow(v, 2) or Mul(v, v).
bool is_square_of(const ir::Node* n, const ir::Value* v) {
  if (match::is_op(n, "Mul", 2)) return n->inputs[0] == v && n->inputs[1] == v;
  if (!match::is_op(n, "Pow", 2) || n->inputs[0] != v) return false;
  double e = 0;
  return match::scalar_for(n->inputs[1], v, &e) && e == 2.0;
}

// gamma/beta: a constant of x's dtype whose broadcast leaves x's shape as is and that varies only
// over the dims from `axis` on.
bool is_affine_param(const ir::Value* p, const ir::Value* x, int axis) {
  if (p == nullptr || !p->constant || p->is_graph_input || p->constant->dtype() != x->type.dtype) {
    return false;
  }
  const Tensor& t = *p->constant;
  const int xr = x->type.shape.rank();
  if (t.rank() > xr) return false;
  for (int d = 0; d < t.rank(); ++d) {
    const int xd = xr - t.rank() + d;
    const int64_t pd = t.dim(d);
    if (pd == 1) continue;
    if (xd < axis || !match::dim_is(x->type.shape.dims[static_cast<size_t>(xd)], pd)) return false;
  }
  return true;
}

struct Match {
  bool rms = false;
  ir::Value* x = nullptr;
  int axis = 0;
  double eps = 0;
  ir::Value* gamma = nullptr;
  ir::Value* beta = nullptr;
  std::vector<const ir::Node*> nodes;
  const ir::Node* last = nullptr;
};

// From the Sqrt(ReduceMean(sq) + eps) side: `sq_out` = the square, read once by a ReduceMean over
// the trailing axes from `axis`. Fills eps and returns the Sqrt node, or null.
const ir::Node* match_denominator(const Uses& uses, const ir::Value* sq_out, const ir::Value* x,
                                  int axis, Match* m) {
  ir::Node* rm = uses.sole_reader(sq_out);
  if (trailing_axis(rm, x->type.shape.rank()) != axis || rm->inputs[0] != sq_out) return nullptr;
  ir::Node* add = uses.sole_reader(rm->outputs[0]);
  if (!match::is_add2(add)) return nullptr;
  const ir::Value* eps = match::other_input(add, rm->outputs[0]);
  if (eps == nullptr || eps == rm->outputs[0] || !match::scalar_for(eps, x, &m->eps) ||
      m->eps < 0 || eps->constant->dtype() != x->type.dtype) {
    return nullptr;
  }
  ir::Node* sqrt = uses.sole_reader(add->outputs[0]);
  if (!match::is_op(sqrt, "Sqrt", 1)) return nullptr;
  m->nodes.insert(m->nodes.end(), {rm, add, sqrt});
  return sqrt;
}

// The division of `num` by the Sqrt's output: Div(num, s), Mul(num, Reciprocal(s)) or
// Mul(num, Div(1, s)). `num_node` must be the node reading num for it. Returns the last node.
const ir::Node* match_division(const Uses& uses, const ir::Node* sqrt, const ir::Value* num,
                               const ir::Value* x, Match* m) {
  const ir::Value* s = sqrt->outputs[0];
  ir::Node* r = uses.sole_reader(s);
  if (match::is_op(r, "Div", 2) && r->inputs[0] == num && r->inputs[1] == s) {
    m->nodes.push_back(r);
    return r;
  }
  double one = 0;
  const bool reciprocal =
      match::is_op(r, "Reciprocal", 1) || (match::is_op(r, "Div", 2) && r->inputs[1] == s &&
                                           match::scalar_for(r->inputs[0], x, &one) && one == 1.0);
  if (!reciprocal) return nullptr;
  ir::Node* mul = uses.sole_reader(r->outputs[0]);
  if (!match::is_op(mul, "Mul", 2) || match::other_input(mul, r->outputs[0]) != num) return nullptr;
  m->nodes.insert(m->nodes.end(), {r, mul});
  return mul;
}

// Optional * gamma then (LayerNorm) + beta after the normalized value of node `last`.
void match_affine(const Uses& uses, const ir::Node* last, bool with_beta, Match* m) {
  m->last = last;
  ir::Node* mul = uses.sole_reader(last->outputs[0]);
  if (!match::is_op(mul, "Mul", 2)) return;
  ir::Value* g = match::other_input(mul, last->outputs[0]);
  if (!is_affine_param(g, m->x, m->axis)) return;
  m->gamma = g;
  m->nodes.push_back(mul);
  m->last = mul;
  if (!with_beta) return;
  ir::Node* add = uses.sole_reader(mul->outputs[0]);
  if (!match::is_add2(add)) return;
  ir::Value* b = match::other_input(add, mul->outputs[0]);
  if (!is_affine_param(b, m->x, m->axis)) return;
  m->beta = b;
  m->nodes.push_back(add);
  m->last = add;
}

// LayerNorm, from its Sub node.
bool match_layer_norm(const Uses& uses, const ir::Node* sub, Match* m) {
  if (!match::is_op(sub, "Sub", 2)) return false;
  ir::Value* x = sub->inputs[0];
  const ir::Value* mean = sub->inputs[1];
  const ir::Value* d = sub->outputs[0];
  if (!match::is_float_ranked(x) || x->type.shape.rank() == 0) return false;
  ir::Node* rm = mean->producer;
  const int axis = trailing_axis(rm, x->type.shape.rank());
  if (axis < 0 || rm->inputs[0] != x || !uses.only_by(mean, {sub})) return false;
  m->x = x;
  m->axis = axis;
  // d is read by the square and by the division.
  const std::vector<ir::Node*>& readers = uses.readers(d);
  if (readers.size() != 2 || uses.pinned(d)) return false;
  for (int first = 0; first < 2; ++first) {
    const ir::Node* sq = readers[static_cast<size_t>(first)];
    if (!is_square_of(sq, d)) continue;
    m->nodes = {rm, sub, sq};
    const ir::Node* sqrt = match_denominator(uses, sq->outputs[0], x, axis, m);
    if (sqrt == nullptr) continue;
    const ir::Node* div = match_division(uses, sqrt, d, x, m);
    if (div == nullptr || div != readers[static_cast<size_t>(1 - first)]) continue;
    match_affine(uses, div, true, m);
    return true;
  }
  return false;
}

// RMSNorm, from its square node.
bool match_rms_norm(const Uses& uses, const ir::Node* sq, Match* m) {
  if (sq == nullptr || sq->inputs.empty()) return false;
  ir::Value* x = sq->inputs[0];
  if (!is_square_of(sq, x) || !match::is_float_ranked(x) || x->type.shape.rank() == 0) return false;
  const ir::Node* rm = uses.sole_reader(sq->outputs[0]);
  const int axis = trailing_axis(rm, x->type.shape.rank());
  if (axis < 0) return false;
  m->rms = true;
  m->x = x;
  m->axis = axis;
  m->nodes = {sq};
  const ir::Node* sqrt = match_denominator(uses, sq->outputs[0], x, axis, m);
  if (sqrt == nullptr) return false;
  const ir::Node* div = match_division(uses, sqrt, x, x, m);
  if (div == nullptr) return false;
  match_affine(uses, div, false, m);
  return true;
}

// A Scale of ones for a norm without gamma: the normalized shape when known, else one element.
ir::Value* ones_scale(ir::Graph& graph, const Match& m) {
  std::vector<int64_t> shape;
  const ir::Shape& xs = m.x->type.shape;
  for (int d = m.axis; d < xs.rank(); ++d) {
    const ir::Dim& dim = xs.dims[static_cast<size_t>(d)];
    if (!dim.known()) {
      shape = {1};
      break;
    }
    shape.push_back(dim.value);
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  StatusOr<Tensor> t = convert_tensor(
      Tensor::from_vector<float>(shape, std::vector<float>(static_cast<size_t>(n), 1.f)),
      m.x->type.dtype);
  if (!t.ok()) return nullptr;
  ir::Value* v = graph.new_value(m.x->name + "_norm_scale");
  v->constant = std::make_shared<const Tensor>(std::move(*t));
  v->type = ir::TypeInfo::tensor(m.x->type.dtype, ir::Shape::of(shape));
  return v;
}

}  // namespace

StatusOr<bool> fuse_layer_norm(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Match> found;
  // LayerNorms first: the RMSNorm pattern is a part of them (with x - mean as its x).
  for (int rms = 0; rms < 2; ++rms) {
    for (const auto& np : graph.nodes()) {
      Match m;
      if (!(rms ? match_rms_norm(uses, np.get(), &m) : match_layer_norm(uses, np.get(), &m))) {
        continue;
      }
      const ir::Value* y = m.last->outputs[0];
      if (claims.any(m.nodes) || (y->type.is_tensor() && y->type.dtype != m.x->type.dtype)) {
        continue;
      }
      // A norm over an empty row would divide by zero in the written-out form: keep it.
      bool empty_row = false;
      for (size_t d = static_cast<size_t>(m.axis); d < m.x->type.shape.dims.size(); ++d) {
        empty_row |= match::dim_is(m.x->type.shape.dims[d], 0);
      }
      if (empty_row) continue;
      claims.take(m.nodes);
      found.push_back(std::move(m));
    }
  }
  std::vector<match::Replacement> reps;
  for (Match& m : found) {
    ir::Value* scale = m.gamma != nullptr ? m.gamma : ones_scale(graph, m);
    if (scale == nullptr) continue;
    ir::Node* n = graph.add_node(m.rms ? "RMSNormalization" : "LayerNormalization", "",
                                 m.last->name + (m.rms ? "/rms_norm" : "/layer_norm"));
    n->opset = m.rms ? 23 : 17;
    n->inputs = {m.x, scale};
    if (m.beta != nullptr) n->inputs.push_back(m.beta);
    n->outputs = {m.last->outputs[0]};
    ir::Attribute axis;
    axis.name = "axis";
    axis.type = ir::AttrType::kInt;
    axis.i = m.axis;
    ir::Attribute eps;
    eps.name = "epsilon";
    eps.type = ir::AttrType::kFloat;
    eps.f = static_cast<float>(m.eps);
    n->attrs = {axis, eps};
    reps.push_back({m.last, m.nodes, {n}});
  }
  if (reps.empty()) return false;
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
