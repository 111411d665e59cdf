// Scaled dot-product attention written out as primitive ops, replaced by one Attention (opset 23,
// 4-D form: Q [B, Hq, Sq, D], K [B, Hkv, Skv, D], V [B, Hkv, Skv, Dv]):
//   MatMul(Q', Kt') → [* c | / c]... → [Add(mask)] → Softmax(last axis) →
//   [Where(IsNaN(P), 0, P)] → MatMul(·, V)
// where Q' and Kt' may each carry scalar Mul/Div scales (exports of scaled_dot_product_attention
// scale Q and K by sqrt(scale) each), and Kt' is K^T: a Transpose swapping K's last two dims (or
// any 4-D Transpose: the Attention node then gets K through a Transpose with the composed perm;
// Kt' without a Transpose gets a new Transpose). The product of all scales becomes `scale`.
// Matched only where the Attention kernels compute exactly what the primitive ops do:
// Q, K, V rank 4 of one float dtype; batch dims provably equal (same size or symbol) in Q, K and
// V; K and V heads equal, Q's equal to them or K's 1 (MatMul broadcasts that like Attention's
// grouped heads); the mask of Q's dtype (or Where(keep, 0, -inf) of a bool `keep`, which becomes
// a bool mask), rank 1-4, dims 0-2 of 1 or provably the attention's,
// and its last dim provably the key length (or a known size above 1, which a valid MatMul
// forces to equal it) — the kernels pad a shorter mask with -inf where Add would broadcast it.
// Every intermediate must be read only inside the pattern (so no attention-probability output).
#include <cmath>
#include <string>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::Uses;

// Follows scalar Mul/Div nodes up from v (each output read only by the node after it), folding
// their constants into *scale. Returns the first value that is not so scaled.
ir::Value* peel_scales(const Uses& uses, ir::Value* v, const ir::Node* reader, double* scale,
                       std::vector<const ir::Node*>* nodes) {
  for (int i = 0; i < 4; ++i) {
    ir::Node* p = v->producer;
    if (p == nullptr || !uses.only_by(v, {reader})) break;
    double c = 0;
    ir::Value* src = nullptr;
    bool divide = false;
    if (match::is_op(p, "Mul", 2)) {
      if (match::scalar_for(p->inputs[1], p->inputs[0], &c)) {
        src = p->inputs[0];
      } else if (match::scalar_for(p->inputs[0], p->inputs[1], &c)) {
        src = p->inputs[1];
      }
    } else if (match::is_op(p, "Div", 2) && match::scalar_for(p->inputs[1], p->inputs[0], &c) &&
               c != 0) {
      src = p->inputs[0];
      divide = true;
    }
    if (src == nullptr || src->constant) break;
    *scale = divide ? *scale / c : *scale * c;
    nodes->push_back(p);
    reader = p;
    v = src;
  }
  return v;
}

std::vector<int64_t> transpose_perm(const ir::Node* t, int rank) {
  if (!t->has_attr("perm")) {
    std::vector<int64_t> p;
    for (int i = rank - 1; i >= 0; --i) p.push_back(i);
    return p;
  }
  Status st;
  std::vector<int64_t> p = t->attr_ints("perm", {}, &st);
  if (!st.ok() || static_cast<int>(p.size()) != rank) return {};
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& x : p) {
    if (x < -rank || x >= rank) return {};
    if (x < 0) x += rank;
    if (seen[static_cast<size_t>(x)]) return {};
    seen[static_cast<size_t>(x)] = true;
  }
  return p;
}

struct Match {
  ir::Value* q = nullptr;
  ir::Value* k_src = nullptr;   // K^T's source before its Transpose (or K^T itself)
  std::vector<int64_t> k_perm;  // perm taking k_src to K; empty: k_src is K
  ir::TypeInfo k_type;          // K's type
  ir::Value* v = nullptr;
  ir::Value* mask = nullptr;
  double scale = 1.0;
  std::vector<const ir::Node*> nodes;
  const ir::Node* last = nullptr;
};

bool rank4(const ir::TypeInfo& t, DType dt) {
  return t.is_tensor() && t.dtype == dt && t.shape.rank_known && t.shape.rank() == 4;
}

// The shape conditions under which Attention equals the primitive ops (see the file comment).
bool shapes_ok(const Match& m) {
  const DType dt = m.q->type.dtype;
  if (!match::is_float_ranked(m.q) || !rank4(m.q->type, dt) || !rank4(m.k_type, dt) ||
      !rank4(m.v->type, dt)) {
    return false;
  }
  const auto& q = m.q->type.shape.dims;
  const auto& k = m.k_type.shape.dims;
  const auto& v = m.v->type.shape.dims;
  if (!match::same_dim(q[0], k[0]) || !match::same_dim(q[0], v[0])) return false;
  if (!match::same_dim(k[1], v[1])) return false;
  if (!match::same_dim(q[1], k[1]) && !match::dim_is(k[1], 1)) return false;
  if (m.mask == nullptr) return true;
  const ir::TypeInfo& mt = m.mask->type;
  if (!mt.is_tensor() || (mt.dtype != dt && mt.dtype != DType::kBool) || !mt.shape.rank_known ||
      mt.shape.rank() < 1 || mt.shape.rank() > 4) {
    return false;
  }
  std::vector<ir::Dim> md(static_cast<size_t>(4 - mt.shape.rank()), ir::Dim::of(1));
  md.insert(md.end(), mt.shape.dims.begin(), mt.shape.dims.end());
  for (int i = 0; i < 3; ++i) {
    if (!match::dim_is(md[static_cast<size_t>(i)], 1) &&
        !match::same_dim(md[static_cast<size_t>(i)], q[static_cast<size_t>(i)])) {
      return false;
    }
  }
  const ir::Dim& last = md[3];
  if (match::same_dim(last, k[2]) || match::same_dim(last, v[2])) return true;
  return last.known() && last.value > 1 && !(k[2].known() && k[2].value != last.value);
}

// From the second MatMul (probabilities × V).
bool match_attention(const Uses& uses, const ir::Node* mm2, Match* m) {
  if (!match::is_op(mm2, "MatMul", 2)) return false;
  const ir::Value* p = mm2->inputs[0];
  if (mm2->inputs[1] == p) return false;
  // Optional guard of fully masked rows: Where(IsNaN(P), 0, P). Attention gives those rows
  // zero probabilities (the guard's result) where a bare Softmax of all -inf gives NaN.
  std::vector<const ir::Node*> guard;
  if (ir::Node* w = match::producer(p, "Where");
      match::is_op(w, "Where", 3) && uses.only_by(p, {mm2})) {
    ir::Node* isnan = match::producer(w->inputs[0], "IsNaN");
    double zero = 1;
    if (match::is_op(isnan, "IsNaN", 1) && isnan->inputs[0] == w->inputs[2] &&
        match::scalar_for(w->inputs[1], w->inputs[2], &zero) && zero == 0 &&
        uses.only_by(w->inputs[0], {w}) && uses.only_by(w->inputs[2], {isnan, w}) &&
        w->outputs[0]->type.dtype == w->inputs[2]->type.dtype) {
      guard = {w, isnan};
      p = w->inputs[2];
    }
  }
  ir::Node* sm = match::producer(p, "Softmax");
  if (sm == nullptr || !match::is_op(sm, "Softmax", 1)) return false;
  if (guard.empty() && !uses.only_by(p, {mm2})) return false;
  ir::Value* s = sm->inputs[0];
  if (!s->type.is_tensor() || !s->type.shape.rank_known || s->type.shape.rank() != 4) return false;
  Status st;
  int64_t axis = sm->attr_int("axis", sm->opset >= 13 ? -1 : 1, &st);
  if (!st.ok()) return false;
  if (axis < 0) axis += 4;
  if (axis != 3 || !uses.only_by(s, {sm})) return false;
  m->nodes = {mm2, sm};
  m->nodes.insert(m->nodes.end(), guard.begin(), guard.end());
  // Optional mask: Add(scores, mask) in either order; the scores side leads to the MatMul.
  ir::Node* add = match::producer(s, "Add");
  const ir::Node* reader = sm;
  ir::Value* scores = s;
  ir::Node* mm1 = nullptr;
  std::vector<const ir::Node*> chain;
  double scale = 1.0;
  auto try_scores = [&](ir::Value* from, const ir::Node* rd) {
    chain.clear();
    scale = 1.0;
    ir::Value* src = peel_scales(uses, from, rd, &scale, &chain);
    ir::Node* mm = match::producer(src, "MatMul");
    const ir::Node* src_reader = chain.empty() ? rd : chain.back();
    if (!match::is_op(mm, "MatMul", 2) || !uses.only_by(src, {src_reader})) return false;
    mm1 = mm;
    return true;
  };
  if (match::is_op(add, "Add", 2) && add->inputs[0] != add->inputs[1]) {
    for (int side = 0; side < 2 && mm1 == nullptr; ++side) {
      scores = add->inputs[static_cast<size_t>(side)];
      if (try_scores(scores, add)) {
        m->mask = add->inputs[static_cast<size_t>(1 - side)];
        m->nodes.push_back(add);
      }
    }
  }
  if (mm1 == nullptr && !try_scores(s, reader)) return false;
  m->nodes.insert(m->nodes.end(), chain.begin(), chain.end());
  m->nodes.push_back(mm1);
  // Q and K^T, each with optional scalar scales.
  m->q = peel_scales(uses, mm1->inputs[0], mm1, &scale, &m->nodes);
  ir::Value* kt = mm1->inputs[1];
  const ir::Node* kt_reader = mm1;
  {
    std::vector<const ir::Node*> kn;
    kt = peel_scales(uses, kt, kt_reader, &scale, &kn);
    if (!kn.empty()) kt_reader = kn.back();
    m->nodes.insert(m->nodes.end(), kn.begin(), kn.end());
  }
  if (m->q == kt || mm1->inputs[0] == mm1->inputs[1]) return false;
  // K^T = Transpose(src, perm): K = Transpose(src, perm with its last two entries swapped).
  ir::Node* t = match::producer(kt, "Transpose");
  std::vector<int64_t> perm;
  if (t != nullptr && t->num_inputs() == 1 && uses.only_by(kt, {kt_reader})) {
    perm = transpose_perm(t, 4);
  }
  if (perm.size() == 4) {
    m->nodes.push_back(t);
    std::vector<const ir::Node*> kn;
    m->k_src = peel_scales(uses, t->inputs[0], t, &scale, &kn);
    m->nodes.insert(m->nodes.end(), kn.begin(), kn.end());
    std::swap(perm[2], perm[3]);
  } else {
    m->k_src = kt;
    perm = {0, 1, 3, 2};
  }
  if (perm == std::vector<int64_t>{0, 1, 2, 3}) perm.clear();
  m->k_perm = perm;
  const ir::TypeInfo& src = m->k_src->type;
  if (!src.is_tensor() || !src.shape.rank_known || src.shape.rank() != 4) return false;
  m->k_type = src;
  for (size_t i = 0; i < perm.size(); ++i) {
    m->k_type.shape.dims[i] = src.shape.dims[static_cast<size_t>(perm[i])];
  }
  m->v = mm2->inputs[1];
  m->scale = scale;
  m->last = mm2;
  // An additive mask made as Where(keep, 0, -inf) from a bool tensor is that bool mask (True
  // takes part), which Attention reads directly; the Where goes away when nothing else reads it.
  if (m->mask != nullptr) {
    ir::Node* w = match::producer(m->mask, "Where");
    double zero = 1, neg = 0;
    if (match::is_op(w, "Where", 3) && w->inputs[0]->type.is_tensor() &&
        w->inputs[0]->type.dtype == DType::kBool &&
        match::scalar_for(w->inputs[1], w->inputs[0], &zero) && zero == 0 &&
        match::scalar_for(w->inputs[2], w->inputs[0], &neg, true) && std::isinf(neg) && neg < 0) {
      m->mask = w->inputs[0];
    }
  }
  return shapes_ok(*m);
}

}  // namespace

StatusOr<bool> fuse_attention(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Match> found;
  for (const auto& np : graph.nodes()) {
    Match m;
    if (!match_attention(uses, np.get(), &m) || claims.any(m.nodes)) continue;
    const ir::Value* y = m.last->outputs[0];
    if (y->type.is_tensor() && y->type.dtype != m.q->type.dtype) continue;
    claims.take(m.nodes);
    found.push_back(std::move(m));
  }
  std::vector<match::Replacement> reps;
  for (Match& m : found) {
    match::Replacement r{m.last, m.nodes, {}};
    ir::Value* k = m.k_src;
    if (!m.k_perm.empty()) {
      ir::Node* t = graph.add_node("Transpose", "", m.last->name + "/attention_k");
      t->opset = 13;
      k = graph.new_value(m.k_src->name + "_bhsd");
      k->type = m.k_type;
      t->inputs = {m.k_src};
      t->outputs = {k};
      ir::Attribute perm;
      perm.name = "perm";
      perm.type = ir::AttrType::kInts;
      perm.ints = m.k_perm;
      t->attrs = {perm};
      r.added.push_back(t);
    }
    ir::Node* a = graph.add_node("Attention", "", m.last->name + "/attention");
    a->opset = 23;
    a->inputs = {m.q, k, m.v};
    if (m.mask != nullptr) a->inputs.push_back(m.mask);
    a->outputs = {m.last->outputs[0]};
    ir::Attribute scale;
    scale.name = "scale";
    scale.type = ir::AttrType::kFloat;
    scale.f = static_cast<float>(m.scale);
    a->attrs = {scale};
    r.added.push_back(a);
    reps.push_back(std::move(r));
  }
  if (reps.empty()) return false;
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
