// GELU written out as primitive ops, replaced by Gelu (opset 20). The forms exporters write:
//   erf:  x * 0.5 * (1 + Erf(x / sqrt(2)))             (Div by sqrt(2) or Mul by 1/sqrt(2))
//   tanh: x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))   (x^3 as Pow(x, 3) or
//         x * x * x)
// with the product of x, 0.5 and (1 + ...) in any association: ((x * 0.5) * A), ((x * A) * 0.5),
// (x * (0.5 * A)), and Div by 2 for the last Mul by 0.5; each Add may be a two-input Sum. Constants
// are checked to 1e-4 (relative). Every intermediate must be read only inside the pattern; x must
// be a float tensor of known rank and each constant a single element of rank at most x's (so that
// no broadcast changes the shape).
#include <cmath>
#include <string>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::Uses;

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kKappa = 0.044715;

// The other input of two-input node n (besides v) is a scalar near `want`, of rank at most
// `ref`'s (the pattern's x).
bool has_const(const ir::Node* n, const ir::Value* v, double want, const ir::Value* ref) {
  const ir::Value* c = match::other_input(n, v);
  double got = 0;
  return c != nullptr && c != v && match::scalar_for(c, ref, &got) && match::near(got, want);
}

// Mul(v, want) in either order, or (allow_div) Div(v, 1 / want).
bool is_scale_of(const ir::Node* n, const ir::Value* v, double want, bool allow_div,
                 const ir::Value* ref) {
  if (match::is_op(n, "Mul", 2)) return has_const(n, v, want, ref);
  if (allow_div && match::is_op(n, "Div", 2) && n->inputs[0] == v) {
    double got = 0;
    return match::scalar_for(n->inputs[1], ref, &got) && match::near(got, 1.0 / want);
  }
  return false;
}

struct Tail {
  std::vector<const ir::Node*> nodes;
  const ir::Node* last = nullptr;
};

// From A = 1 + f(x) (read once): the product x * 0.5 * A. Returns false when it is not there.
bool match_tail(const Uses& uses, const ir::Value* x, const ir::Value* a, Tail* t) {
  ir::Node* m1 = uses.sole_reader(a);
  if (!match::is_op(m1, "Mul", 2)) return false;
  const ir::Value* o = match::other_input(m1, a);
  if (o == nullptr || o == a) return false;
  const ir::Value* m1_out = m1->outputs[0];
  double v = 0;
  if (o == x) {  // (x * A) * 0.5  or  (x * A) / 2
    ir::Node* m2 = uses.sole_reader(m1_out);
    if (!is_scale_of(m2, m1_out, 0.5, true, x)) return false;
    t->nodes = {m1, m2};
    t->last = m2;
    return true;
  }
  if (match::scalar_for(o, x, &v) && match::near(v, 0.5)) {  // (0.5 * A) * x
    ir::Node* m2 = uses.sole_reader(m1_out);
    if (!match::is_op(m2, "Mul", 2) || match::other_input(m2, m1_out) != x) return false;
    t->nodes = {m1, m2};
    t->last = m2;
    return true;
  }
  ir::Node* half = match::producer(o, "Mul");  // (x * 0.5) * A
  if (match::is_op(half, "Mul", 2) && has_const(half, x, 0.5, x) && uses.only_by(o, {m1})) {
    t->nodes = {half, m1};
    t->last = m1;
    return true;
  }
  return false;
}

// 1 + v (Add in either order), read once; returns the Add.
ir::Node* plus_one(const Uses& uses, const ir::Value* v, const ir::Value* x) {
  ir::Node* add = uses.sole_reader(v);
  if (!match::is_add2(add)) return nullptr;
  const ir::Value* c = match::other_input(add, v);
  double one = 0;
  if (c == nullptr || c == v || !match::scalar_for(c, x, &one) || !match::near(one, 1.0)) {
    return nullptr;
  }
  return add;
}

struct Match {
  const ir::Value* x = nullptr;
  bool tanh = false;
  std::vector<const ir::Node*> nodes;
  const ir::Node* last = nullptr;
};

// Erf(x / sqrt(2)) → ... ; `erf` is the Erf node.
bool match_erf(const Uses& uses, const ir::Node* erf, Match* m) {
  if (!match::is_op(erf, "Erf", 1)) return false;
  const ir::Value* in = erf->inputs[0];
  ir::Node* s = in->producer;
  if (s == nullptr || !uses.only_by(in, {erf})) return false;
  const ir::Value* x = nullptr;
  if (match::is_op(s, "Div", 2)) {
    x = s->inputs[0];
  } else if (match::is_op(s, "Mul", 2)) {
    double v = 0;
    x = match::scalar_for(s->inputs[1], s->inputs[0], &v) ? s->inputs[0] : s->inputs[1];
  } else {
    return false;
  }
  if (!match::is_float_ranked(x) || !is_scale_of(s, x, 1.0 / kSqrt2, true, x)) return false;
  ir::Node* add = plus_one(uses, erf->outputs[0], x);
  Tail t;
  if (add == nullptr || !match_tail(uses, x, add->outputs[0], &t)) return false;
  m->x = x;
  m->tanh = false;
  m->nodes = {s, erf, add};
  m->nodes.insert(m->nodes.end(), t.nodes.begin(), t.nodes.end());
  m->last = t.last;
  return true;
}

// x^3 as Pow(x, 3), x * (x * x) or (x * x) * x; `cube` produces it. Appends its nodes.
bool match_cube(const Uses& uses, const ir::Node* cube, const ir::Value* x,
                std::vector<const ir::Node*>* nodes) {
  if (match::is_op(cube, "Pow", 2) && cube->inputs[0] == x) {
    double v = 0;
    if (!match::scalar_for(cube->inputs[1], x, &v) || v != 3.0) return false;
    nodes->push_back(cube);
    return true;
  }
  if (!match::is_op(cube, "Mul", 2)) return false;
  const ir::Value* sq = match::other_input(cube, x);
  ir::Node* sq_node = match::producer(sq, "Mul");
  if (sq == nullptr || sq == x || !match::is_op(sq_node, "Mul", 2) || sq_node->inputs[0] != x ||
      sq_node->inputs[1] != x || !uses.only_by(sq, {cube})) {
    return false;
  }
  nodes->push_back(sq_node);
  nodes->push_back(cube);
  return true;
}

// Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)) → ... ; `th` is the Tanh node.
bool match_tanh(const Uses& uses, const ir::Node* th, Match* m) {
  if (!match::is_op(th, "Tanh", 1)) return false;
  const ir::Value* in = th->inputs[0];
  ir::Node* scale = match::producer(in, "Mul");
  if (!match::is_op(scale, "Mul", 2) || !uses.only_by(in, {th})) return false;
  // The inner sum is the Mul's non-constant input.
  double v = 0;
  const bool c_first = match::scalar_for(scale->inputs[0], scale->inputs[1], &v);
  const ir::Value* inner = c_first ? scale->inputs[1] : scale->inputs[0];
  ir::Node* sum = inner->producer;
  if (!match::is_add2(sum) || !uses.only_by(inner, {scale})) return false;
  for (int side = 0; side < 2; ++side) {
    const ir::Value* x = sum->inputs[static_cast<size_t>(side)];
    const ir::Value* k = sum->inputs[static_cast<size_t>(1 - side)];
    if (!match::is_float_ranked(x) || !has_const(scale, inner, kSqrt2OverPi, x)) continue;
    ir::Node* kmul = match::producer(k, "Mul");
    if (!match::is_op(kmul, "Mul", 2) || !uses.only_by(k, {sum})) continue;
    const bool k_first = match::scalar_for(kmul->inputs[0], x, &v);
    const ir::Value* cube = k_first ? kmul->inputs[1] : kmul->inputs[0];
    if (!has_const(kmul, cube, kKappa, x) || !uses.only_by(cube, {kmul})) continue;
    std::vector<const ir::Node*> nodes;
    if (!match_cube(uses, cube->producer, x, &nodes)) continue;
    ir::Node* add = plus_one(uses, th->outputs[0], x);
    Tail t;
    if (add == nullptr || !match_tail(uses, x, add->outputs[0], &t)) continue;
    nodes.insert(nodes.end(), {kmul, sum, scale, th, add});
    nodes.insert(nodes.end(), t.nodes.begin(), t.nodes.end());
    m->x = x;
    m->tanh = true;
    m->nodes = std::move(nodes);
    m->last = t.last;
    return true;
  }
  return false;
}

}  // namespace

StatusOr<bool> fuse_gelu(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Match> found;
  for (const auto& np : graph.nodes()) {
    Match m;
    if (!match_erf(uses, np.get(), &m) && !match_tanh(uses, np.get(), &m)) continue;
    if (claims.any(m.nodes)) continue;
    // The result must keep x's type: every constant was checked not to broadcast it.
    const ir::Value* y = m.last->outputs[0];
    if (y->type.is_tensor() && y->type.dtype != m.x->type.dtype) continue;
    claims.take(m.nodes);
    found.push_back(std::move(m));
  }
  std::vector<match::Replacement> reps;
  for (const Match& m : found) {
    ir::Node* g = graph.add_node("Gelu", "", m.last->name + "/gelu");
    g->opset = 20;
    g->inputs = {const_cast<ir::Value*>(m.x)};
    g->outputs = {m.last->outputs[0]};
    ir::Attribute a;
    a.name = "approximate";
    a.type = ir::AttrType::kString;
    a.s = m.tanh ? "tanh" : "none";
    g->attrs.push_back(std::move(a));
    reps.push_back({m.last, m.nodes, {g}});
  }
  if (reps.empty()) return false;
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
