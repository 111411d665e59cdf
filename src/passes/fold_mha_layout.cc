// Sequence-first multi-head attention (nn.MultiheadAttention as torchvision's ViT exports it)
// folded into Attention's 3-D form. The export computes, per layer, from x [B, S, E]:
//   qkv = Proj(Transpose(x, 1,0,2))                      [S, B, 3E]  (row-wise projection)
//   r   = Reshape(qkv) [S, B, 3, E] → Unsqueeze / Transpose / Squeeze → [3, S, B, E]
//   g_i = Gather(r, i, axis 0)                           [S, B, E]
//   Q_i = Reshape(Transpose(Reshape(g_i, [S, B*H, D]), 1,0,2), [B, H, S, D])
//   Y   = Attention(Q_0, Q_1, Q_2)                       [B, H, S, D]
//   out = Transpose(Reshape(OutProj(Reshape(Transpose(Y, 2,0,1,3), [S*B, E])), [S, B, N]), 1,0,2)
// A row-wise projection commutes with permutations of the leading dims, so the same values come
// from Proj(x) [B, S, 3E] → Split(-1) → 3-D Attention (q/kv_num_heads = H) → OutProj on
// [B, S, E]: every transpose and copy of the chain goes away.
// Each step is proven on the index map it applies (the Unsqueeze/Transpose/Squeeze/Gather part
// tracks which axis of [S, B, 3, E] every axis is), the dims must be provable (known or the same
// symbol), and every intermediate may be read only inside the group or by shape computations
// whose results reach nothing but the group's Reshape targets (those go with the group).
#include <algorithm>
#include <unordered_set>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::int_attr;
using match::typed_value;

using match::same_dim;
using match::Uses;

bool is_default(const ir::Node* n) {
  return n->domain.empty() || n->domain == "ai.onnx";
}

// The first input of n (null when n is null or has none).
const ir::Value* in0(const ir::Node* n) {
  return n != nullptr && !n->inputs.empty() ? n->inputs[0] : nullptr;
}

bool is_node(const ir::Node* n, std::string_view op) {
  return n != nullptr && n->op_type == op && is_default(n) && n->outputs.size() == 1 &&
         n->outputs[0] != nullptr;
}

const std::vector<ir::Dim>* dims_of(const ir::Value* v, int rank) {
  if (v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known) return nullptr;
  if (v->type.shape.rank() != rank) return nullptr;
  return &v->type.shape.dims;
}

bool perm_is(const ir::Node* t, std::vector<int64_t> want) {
  Status st;
  return is_node(t, "Transpose") && t->num_inputs() == 1 && t->attr_ints("perm", {}, &st) == want &&
         st.ok();
}

// The int values of a constant 0-D or 1-D int64/int32 tensor.
bool const_ints(const ir::Value* v, std::vector<int64_t>* out, int* rank = nullptr) {
  if (v == nullptr || v->constant == nullptr || v->is_graph_input) return false;
  const Tensor& t = *v->constant;
  if (t.rank() > 1) return false;
  if (rank != nullptr) *rank = t.rank();
  out->clear();
  if (t.dtype() == DType::kInt64) {
    for (int64_t i = 0; i < t.numel(); ++i) out->push_back(t.data<int64_t>()[i]);
  } else if (t.dtype() == DType::kInt32) {
    for (int64_t i = 0; i < t.numel(); ++i) out->push_back(t.data<int32_t>()[i]);
  } else {
    return false;
  }
  return true;
}

// Unsqueeze/Squeeze axes: the input (opset 13+) or the attribute.
bool axes_of(const ir::Node* n, std::vector<int64_t>* axes) {
  if (n->num_inputs() == 2) return const_ints(n->inputs[1], axes);
  if (n->num_inputs() != 1) return false;
  Status st;
  *axes = n->attr_ints("axes", {}, &st);
  return st.ok() && !axes->empty();
}

// The projection of the packed Q/K/V or of the output: MatMul with a 2-D B, kiln.FusedMatMul,
// or (output side, 2-D) Gemm that FusedMatMul can express. Row-wise over the leading dims.
enum class Proj { kNone, kMatMul, kFused, kGemm };
Proj proj_kind(const ir::Node* n) {
  if (n == nullptr || n->outputs.size() != 1 || n->outputs[0] == nullptr) return Proj::kNone;
  if (n->domain == ir::kKilnDomain && n->op_type == "FusedMatMul" && n->num_inputs() >= 2) {
    return dims_of(n->inputs[1], 2) ? Proj::kFused : Proj::kNone;
  }
  if (!is_default(n)) return Proj::kNone;
  if (n->op_type == "MatMul" && n->num_inputs() == 2) {
    return dims_of(n->inputs[1], 2) ? Proj::kMatMul : Proj::kNone;
  }
  if (n->op_type == "Gemm" && (n->num_inputs() == 2 || n->num_inputs() == 3)) {
    Status st;
    if (n->attr_int("transA", 0, &st) != 0 || n->attr_float("alpha", 1.f, &st) != 1.f) {
      return Proj::kNone;
    }
    const int64_t tb = n->attr_int("transB", 0, &st);
    if (!st.ok() || (tb != 0 && tb != 1) || !dims_of(n->inputs[1], 2)) return Proj::kNone;
    if (n->num_inputs() == 3) {
      if (n->attr_float("beta", 1.f, &st) != 1.f || !st.ok()) return Proj::kNone;
      const auto* c = dims_of(n->inputs[2], 1);
      const auto* w = dims_of(n->inputs[1], 2);
      if (c == nullptr || !same_dim((*c)[0], (*w)[tb ? 0 : 1])) return Proj::kNone;
    }
    return Proj::kGemm;
  }
  return Proj::kNone;
}

struct Group {
  const ir::Node* attention = nullptr;
  ir::Value* x = nullptr;  // [B, S, E_in]
  const ir::Node* in_proj = nullptr;
  const ir::Node* out_proj = nullptr;
  ir::Value* out = nullptr;  // the final Transpose's output [B, S, N]
  int64_t e = 0, heads = 0, dv = 0;
  int index[3] = {0, 0, 0};  // which third of qkv feeds Q, K, V
  std::vector<const ir::Node*> nodes;
};

// Axis labels of the [S, B, 3, E] view: 0..3 that axis, -1 an inserted size-1 axis.
using Labels = std::vector<int>;

// Follows Unsqueeze / Transpose / Squeeze from r ([S, B, 3, E]) to the value the Gathers read;
// every step is applied to the labels. Returns that value, or null.
ir::Value* follow_view(const Uses& uses, ir::Value* r, Labels* labels, Group* g) {
  *labels = {0, 1, 2, 3};
  ir::Value* v = r;
  for (int step = 0; step < 8; ++step) {
    const auto& rd = uses.readers(v);
    if (uses.pinned(v) || rd.empty()) return nullptr;
    const ir::Node* n = rd[0];
    const int rank = static_cast<int>(labels->size());
    if (rd.size() == 1 && is_node(n, "Unsqueeze") && n->inputs[0] == v) {
      std::vector<int64_t> axes;
      if (!axes_of(n, &axes)) return nullptr;
      const int out_rank = rank + static_cast<int>(axes.size());
      std::vector<bool> ins(static_cast<size_t>(out_rank), false);
      for (int64_t a : axes) {
        if (a < 0) a += out_rank;
        if (a < 0 || a >= out_rank || ins[static_cast<size_t>(a)]) return nullptr;
        ins[static_cast<size_t>(a)] = true;
      }
      Labels next;
      size_t k = 0;
      for (int i = 0; i < out_rank; ++i) next.push_back(ins[size_t(i)] ? -1 : (*labels)[k++]);
      *labels = next;
    } else if (rd.size() == 1 && is_node(n, "Squeeze") && n->inputs[0] == v) {
      std::vector<int64_t> axes;
      if (!axes_of(n, &axes)) return nullptr;
      std::vector<bool> drop(static_cast<size_t>(rank), false);
      for (int64_t a : axes) {
        if (a < 0) a += rank;
        if (a < 0 || a >= rank || drop[size_t(a)] || (*labels)[size_t(a)] != -1) return nullptr;
        drop[static_cast<size_t>(a)] = true;
      }
      Labels next;
      for (int i = 0; i < rank; ++i)
        if (!drop[size_t(i)]) next.push_back((*labels)[size_t(i)]);
      *labels = next;
    } else if (rd.size() == 1 && is_node(n, "Transpose") && n->num_inputs() == 1) {
      Status st;
      const std::vector<int64_t> perm = n->attr_ints("perm", {}, &st);
      if (!st.ok() || static_cast<int>(perm.size()) != rank) return nullptr;
      std::vector<bool> seen(static_cast<size_t>(rank), false);
      Labels next;
      for (int64_t p : perm) {
        if (p < 0 || p >= rank || seen[size_t(p)]) return nullptr;
        seen[size_t(p)] = true;
        next.push_back((*labels)[size_t(p)]);
      }
      *labels = next;
    } else {
      return v;  // the Gathers (checked by the caller)
    }
    g->nodes.push_back(n);
    v = n->outputs[0];
  }
  return nullptr;
}

// Q/K/V input `in` of the Attention: Reshape [B, H, S, D] ← Transpose(1,0,2) ← Reshape
// [S, B*H, D] ← Gather(view, i, axis a). Fills *gather and the heads/D; checks B, S against x.
bool match_input(const Uses& uses, const ir::Node* a, ir::Value* in, const ir::Dim& b,
                 const ir::Dim& s, int64_t e, Group* g, const ir::Node** gather, int64_t* heads) {
  ir::Node* r4 = match::producer(in, "Reshape");
  if (!is_node(r4, "Reshape") || r4->num_inputs() != 2 || !uses.only_by(in, {a})) return false;
  const auto* d4 = dims_of(in, 4);
  ir::Node* t = match::producer(r4->inputs[0], "Transpose");
  if (d4 == nullptr || !perm_is(t, {1, 0, 2}) || !uses.only_by(r4->inputs[0], {r4})) return false;
  ir::Node* r3 = match::producer(t->inputs[0], "Reshape");
  if (!is_node(r3, "Reshape") || r3->num_inputs() != 2 || !uses.only_by(t->inputs[0], {t})) {
    return false;
  }
  const auto* d3 = dims_of(t->inputs[0], 3);
  if (d3 == nullptr || !same_dim((*d3)[0], s) || !(*d3)[2].known()) return false;
  const int64_t d = (*d3)[2].value;
  if (d <= 0 || e % d != 0) return false;
  // [S, B, E] → [S, B*H, D] (the element count fixes the middle dim) → [B*H, S, D] → [B, H, S, D].
  *heads = e / d;
  if (!same_dim((*d4)[0], b) || !match::dim_is((*d4)[1], *heads) || !same_dim((*d4)[2], s) ||
      !match::dim_is((*d4)[3], d)) {
    return false;
  }
  ir::Node* ga = match::producer(r3->inputs[0], "Gather");
  if (!is_node(ga, "Gather") || ga->num_inputs() != 2 || !uses.only_by(r3->inputs[0], {r3})) {
    return false;
  }
  *gather = ga;
  g->nodes.insert(g->nodes.end(), {r4, t, r3});
  return true;
}

bool match_group(const Uses& uses, const ir::Node* a, Group* g) {
  if (a->op_type != "Attention" || !is_default(a) || a->opset < 23) return false;
  if (a->num_inputs() < 3 || a->num_inputs() > 4) return false;
  if (a->has_attr("q_num_heads") || a->has_attr("kv_num_heads")) return false;
  for (size_t o = 1; o < a->outputs.size(); ++o)
    if (a->outputs[o] != nullptr) return false;
  if (a->outputs.empty() || a->outputs[0] == nullptr) return false;
  g->attention = a;
  g->nodes = {a};

  // Walk back from Q to the packed projection to learn x, B, S and E.
  const ir::Node* r4 = match::producer(a->inputs[0], "Reshape");
  const ir::Node* t0 = match::producer(in0(r4), "Transpose");
  const ir::Node* r3 = match::producer(in0(t0), "Reshape");
  const ir::Node* ga0 = match::producer(in0(r3), "Gather");
  if (ga0 == nullptr || ga0->num_inputs() != 2 || ga0->inputs[0] == nullptr) return false;
  const ir::Node* view = ga0->inputs[0]->producer;
  ir::Value* qkv = nullptr;
  for (int k = 0; k < 8 && view != nullptr && qkv == nullptr; ++k) {
    if (is_node(view, "Reshape")) {
      if (view->num_inputs() != 2 || view->inputs[0] == nullptr) return false;
      qkv = view->inputs[0];
      break;
    }
    if (!is_node(view, "Unsqueeze") && !is_node(view, "Squeeze") && !is_node(view, "Transpose")) {
      return false;
    }
    if (view->inputs.empty() || view->inputs[0] == nullptr) return false;
    view = view->inputs[0]->producer;
  }
  if (qkv == nullptr) return false;
  const ir::Node* r2 = view;
  const ir::Node* pin = qkv->producer;
  const Proj kin = proj_kind(pin);
  if ((kin != Proj::kMatMul && kin != Proj::kFused) || pin->inputs[0] == nullptr) return false;
  const ir::Node* xt = match::producer(pin->inputs[0], "Transpose");
  if (!perm_is(xt, {1, 0, 2}) || pin->outputs[0] != qkv) return false;
  g->x = xt->inputs[0];
  g->in_proj = pin;
  const auto* dx = dims_of(g->x, 3);
  const auto* dq = dims_of(qkv, 3);
  const auto* dr = dims_of(r2->outputs[0], 4);
  if (dx == nullptr || dq == nullptr || dr == nullptr || r2->num_inputs() != 2) return false;
  const ir::Dim b = (*dx)[0], s = (*dx)[1];
  // qkv [S, B, 3E] → [S, B, 3, E].
  if (!same_dim((*dq)[0], s) || !same_dim((*dq)[1], b) || !(*dq)[2].known()) return false;
  if (!same_dim((*dr)[0], s) || !same_dim((*dr)[1], b) || !match::dim_is((*dr)[2], 3) ||
      !(*dr)[3].known() || (*dr)[3].value * 3 != (*dq)[2].value || (*dr)[3].value <= 0) {
    return false;
  }
  g->e = (*dr)[3].value;
  g->nodes.insert(g->nodes.end(), {xt, pin, r2});

  Labels labels;
  ir::Value* packed = follow_view(uses, r2->outputs[0], &labels, g);
  if (packed == nullptr) return false;
  // The packed value must be read by exactly the three Gathers of this Attention.
  const ir::Node* gathers[3] = {nullptr, nullptr, nullptr};
  for (int i = 0; i < 3; ++i) {
    int64_t h = 0;
    if (!match_input(uses, a, a->inputs[size_t(i)], b, s, g->e, g, &gathers[i], &h)) return false;
    if (gathers[i]->inputs[0] != packed) return false;
    if (i == 0) g->heads = h;
    if (h != g->heads) return false;
  }
  std::vector<const ir::Node*> distinct;
  for (const ir::Node* ga : gathers)
    if (std::find(distinct.begin(), distinct.end(), ga) == distinct.end()) distinct.push_back(ga);
  if (uses.pinned(packed) || uses.readers(packed).size() != distinct.size()) return false;
  for (const ir::Node* ga : distinct) {
    Status st;
    int64_t axis = ga->attr_int("axis", 0, &st);
    const int rank = static_cast<int>(labels.size());
    if (axis < 0) axis += rank;
    std::vector<int64_t> idx;
    int idx_rank = -1;
    if (!st.ok() || axis < 0 || axis >= rank || labels[size_t(axis)] != 2) return false;
    if (!const_ints(ga->inputs[1], &idx, &idx_rank) || idx_rank != 0 || idx.size() != 1) {
      return false;
    }
    // The remaining axes must be S, B, E in that order: the Gather yields qkv's i-th third.
    Labels rest;
    for (int k = 0; k < rank; ++k)
      if (k != axis) rest.push_back(labels[size_t(k)]);
    if (rest != Labels{0, 1, 3}) return false;
    int64_t i = idx[0] < 0 ? idx[0] + 3 : idx[0];
    if (i < 0 || i > 2) return false;
    for (int k = 0; k < 3; ++k)
      if (gathers[k] == ga) g->index[k] = static_cast<int>(i);
    g->nodes.push_back(ga);
  }

  // Output: Transpose(2,0,1,3) → Reshape [S*B, H*Dv] → OutProj → Reshape [S, B, N] →
  // Transpose(1,0,2).
  ir::Value* y = a->outputs[0];
  const auto* dy = dims_of(y, 4);
  ir::Node* to = uses.sole_reader(y);
  if (dy == nullptr || !perm_is(to, {2, 0, 1, 3}) || !(*dy)[3].known()) return false;
  if (!same_dim((*dy)[0], b) || !match::dim_is((*dy)[1], g->heads) || !same_dim((*dy)[2], s)) {
    return false;
  }
  g->dv = (*dy)[3].value;
  ir::Node* rm = uses.sole_reader(to->outputs[0]);
  if (!is_node(rm, "Reshape") || rm->num_inputs() != 2 || rm->inputs[0] != to->outputs[0]) {
    return false;
  }
  const auto* dm = dims_of(rm->outputs[0], 2);
  if (dm == nullptr || !match::dim_is((*dm)[1], g->heads * g->dv)) return false;
  ir::Node* po = uses.sole_reader(rm->outputs[0]);
  if (proj_kind(po) == Proj::kNone || po->inputs[0] != rm->outputs[0]) return false;
  for (size_t k = 1; k < po->inputs.size(); ++k)
    if (po->inputs[k] == rm->outputs[0]) return false;
  const auto* dp = dims_of(po->outputs[0], 2);
  ir::Node* rs = uses.sole_reader(po->outputs[0]);
  if (dp == nullptr || !(*dp)[1].known() || !is_node(rs, "Reshape") || rs->num_inputs() != 2 ||
      rs->inputs[0] != po->outputs[0]) {
    return false;
  }
  const auto* ds = dims_of(rs->outputs[0], 3);
  if (ds == nullptr || !same_dim((*ds)[0], s) || !same_dim((*ds)[1], b) ||
      !match::dim_is((*ds)[2], (*dp)[1].value)) {
    return false;
  }
  ir::Node* tf = uses.sole_reader(rs->outputs[0]);
  if (!perm_is(tf, {1, 0, 2}) || tf->inputs[0] != rs->outputs[0]) return false;
  g->out_proj = po;
  g->out = tf->outputs[0];
  g->nodes.insert(g->nodes.end(), {to, rm, po, rs, tf});
  return true;
}

// Intermediates of the group must be read only by group nodes, or by side computations (Shape
// and the arithmetic on it) whose results reach nothing but the group's Reshape targets. Those
// nodes are added to g->nodes (they go with the group). False when anything else reads them.
bool close_group(const Uses& uses, Group* g) {
  std::unordered_set<const ir::Node*> group(g->nodes.begin(), g->nodes.end());
  std::unordered_set<const ir::Node*> side;
  std::vector<const ir::Node*> work;
  auto visit = [&](const ir::Value* v, bool from_group) {
    if (v == nullptr) return true;
    if (from_group && v == g->out) return true;
    if (uses.pinned(v)) return false;
    for (ir::Node* r : uses.readers(v)) {
      if (group.count(r)) {
        if (from_group) continue;  // a group value read inside the group
        // A side value may only be a group Reshape's target shape.
        if (!is_node(r, "Reshape") || r->inputs[0] == v) return false;
        continue;
      }
      if (side.insert(r).second) work.push_back(r);
      if (side.size() > 256) return false;
    }
    return true;
  };
  for (const ir::Node* n : g->nodes)
    for (const ir::Value* v : n->outputs)
      if (!visit(v, true)) return false;
  while (!work.empty()) {
    const ir::Node* n = work.back();
    work.pop_back();
    for (const ir::Value* v : n->outputs)
      if (!visit(v, false)) return false;
  }
  g->nodes.insert(g->nodes.end(), side.begin(), side.end());
  return true;
}

}  // namespace

StatusOr<bool> fold_mha_layout(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<match::Replacement> reps;
  std::vector<Group> found;
  for (const auto& np : graph.nodes()) {
    Group g;
    if (!match_group(uses, np.get(), &g) || !close_group(uses, &g) || claims.any(g.nodes)) {
      continue;
    }
    claims.take(g.nodes);
    found.push_back(std::move(g));
  }
  for (Group& g : found) {  // nodes are added after the walk over the graph's nodes
    const auto& dx = g.x->type.shape.dims;
    const DType dt = g.in_proj->outputs[0]->type.dtype;
    const ir::Node* a = g.attention;
    std::vector<ir::Node*> added;
    // Proj(x) [B, S, 3E].
    ir::Node* p = graph.add_node(g.in_proj->op_type, g.in_proj->domain, g.in_proj->name + "/bse");
    p->opset = g.in_proj->opset;
    p->attrs = g.in_proj->attrs;
    p->inputs = g.in_proj->inputs;
    p->inputs[0] = g.x;
    p->outputs = {typed_value(graph, g.in_proj->outputs[0]->name + "/bse", dt,
                              {dx[0], dx[1], ir::Dim::of(3 * g.e)})};
    added.push_back(p);
    // Split into Q, K, V [B, S, E].
    ir::Node* sp = graph.add_node("Split", "", a->name + "/qkv_split");
    sp->opset = a->opset;
    sp->inputs = {p->outputs[0]};
    sp->attrs = {int_attr("axis", -1), int_attr("num_outputs", 3)};
    for (int i = 0; i < 3; ++i) {
      sp->outputs.push_back(typed_value(graph, a->name + "/qkv" + std::to_string(i), dt,
                                        {dx[0], dx[1], ir::Dim::of(g.e)}));
    }
    added.push_back(sp);
    // 3-D Attention.
    ir::Node* n = graph.add_node("Attention", a->domain, a->name + "/bse");
    n->opset = a->opset;
    for (int i = 0; i < 3; ++i) n->inputs.push_back(sp->outputs[size_t(g.index[i])]);
    if (a->num_inputs() == 4) n->inputs.push_back(a->inputs[3]);
    n->outputs = {typed_value(graph, a->outputs[0]->name + "/bse", dt,
                              {dx[0], dx[1], ir::Dim::of(g.heads * g.dv)})};
    n->attrs = a->attrs;
    n->attrs.push_back(int_attr("q_num_heads", g.heads));
    n->attrs.push_back(int_attr("kv_num_heads", g.heads));
    added.push_back(n);
    // OutProj on [B, S, H*Dv], writing the group's output.
    const ir::Node* po = g.out_proj;
    ir::Node* q = nullptr;
    if (po->op_type == "Gemm" && po->domain != ir::kKilnDomain) {
      q = graph.add_node("FusedMatMul", ir::kKilnDomain, po->name + "/bse");
      q->opset = 1;
      q->inputs = po->inputs;
      q->attrs = {int_attr("trans_b", po->attr_int("transB", 0))};
      ir::Attribute act;
      act.name = "activation";
      act.type = ir::AttrType::kString;
      q->attrs.push_back(act);
    } else {
      q = graph.add_node(po->op_type, po->domain, po->name + "/bse");
      q->opset = po->opset;
      q->inputs = po->inputs;
      q->attrs = po->attrs;
    }
    q->inputs[0] = n->outputs[0];
    q->outputs = {g.out};
    added.push_back(q);
    // The group's last node (the final Transpose) comes after everything the new nodes read.
    reps.push_back(match::Replacement{g.out->producer, g.nodes, added});
  }
  if (reps.empty()) return false;
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
