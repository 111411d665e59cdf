// Attention's head split and merge folded into the op. Exports feed a 4-D Attention (made by
// fuse_attention, or the model's own) with
//   Q, K, V = Transpose(Reshape(x, [B, S, H, D]), perm 0,2,1,3)   x: [B, S, H*D]
// and read its output through Transpose(perm 0,2,1,3) → Reshape to [B, S, H*Dv]. Attention's 3-D
// form (q_num_heads / kv_num_heads) reads and writes exactly those [B, S, H*D] tensors, so the
// whole group becomes one 3-D Attention: four transposes per attention fewer.
// Folded only when all three inputs and the output fold (Attention's inputs share one rank), the
// dims are provable (B and S the same size or symbol on both sides, H and D known), every
// intermediate is read only inside the group, and the node has no past key/value, no
// nonpad_kv_seqlen and no output but Y.
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::int_attr;

using match::Uses;

bool is_head_perm(const ir::Node* t) {
  Status st;
  return t->num_inputs() == 1 &&
         t->attr_ints("perm", {}, &st) == std::vector<int64_t>{0, 2, 1, 3} && st.ok();
}

bool rank_is(const ir::Value* v, int r) {
  return v != nullptr && v->type.is_tensor() && v->type.shape.rank_known &&
         v->type.shape.rank() == r;
}

// x [B, S, E] and y [B, S, H, D] with E = H * D: the heads H, else 0.
int64_t split_heads(const ir::Value* x, const ir::Value* y) {
  if (!rank_is(x, 3) || !rank_is(y, 4)) return 0;
  const auto& a = x->type.shape.dims;
  const auto& b = y->type.shape.dims;
  if (!match::same_dim(a[0], b[0]) || !match::same_dim(a[1], b[1])) return 0;
  if (!a[2].known() || !b[2].known() || !b[3].known() || b[2].value <= 0) return 0;
  return a[2].value == b[2].value * b[3].value ? b[2].value : 0;
}

struct Fold {
  const ir::Node* attention = nullptr;
  ir::Value* in3[3] = {nullptr, nullptr, nullptr};  // Q, K, V as [B, S, H*D]
  int64_t heads[3] = {0, 0, 0};
  ir::Value* out3 = nullptr;  // the output Reshape's output
  std::vector<const ir::Node*> nodes;
};

bool match_fold(const Uses& uses, const ir::Node* a, Fold* f) {
  if (a->op_type != "Attention" || !(a->domain.empty() || a->domain == "ai.onnx")) return false;
  if (a->opset < 23 || a->num_inputs() < 3 || a->num_inputs() > 4) return false;
  if (a->has_attr("q_num_heads") || a->has_attr("kv_num_heads")) return false;
  for (size_t o = 1; o < a->outputs.size(); ++o)
    if (a->outputs[o] != nullptr) return false;
  f->attention = a;
  f->nodes = {a};
  for (int i = 0; i < 3; ++i) {
    ir::Value* in = a->inputs[static_cast<size_t>(i)];
    ir::Node* t = match::producer(in, "Transpose");
    if (t == nullptr || !is_head_perm(t) || !uses.only_by(in, {a})) return false;
    ir::Node* r = match::producer(t->inputs[0], "Reshape");
    if (r == nullptr || r->num_inputs() != 2 || !uses.only_by(t->inputs[0], {t})) return false;
    const int64_t h = split_heads(r->inputs[0], t->inputs[0]);
    if (h == 0) return false;
    f->in3[i] = r->inputs[0];
    f->heads[i] = h;
    f->nodes.push_back(t);
    f->nodes.push_back(r);
  }
  if (f->heads[1] != f->heads[2] || f->heads[0] % f->heads[1] != 0) return false;
  ir::Value* y = a->outputs[0];
  ir::Node* t = uses.sole_reader(y);
  if (t == nullptr || t->op_type != "Transpose" || !is_head_perm(t)) return false;
  ir::Node* r = uses.sole_reader(t->outputs[0]);
  if (r == nullptr || r->op_type != "Reshape" || r->num_inputs() != 2 ||
      r->inputs[0] != t->outputs[0] || r->outputs.size() != 1) {
    return false;
  }
  if (split_heads(r->outputs[0], t->outputs[0]) != f->heads[0]) return false;
  f->out3 = r->outputs[0];
  f->nodes.push_back(t);
  f->nodes.push_back(r);
  return true;
}

}  // namespace

StatusOr<bool> fold_attention_heads(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Fold> found;
  for (const auto& np : graph.nodes()) {
    Fold f;
    if (!match_fold(uses, np.get(), &f) || claims.any(f.nodes)) continue;
    claims.take(f.nodes);
    found.push_back(std::move(f));
  }
  if (found.empty()) return false;
  std::vector<match::Replacement> reps;
  for (const Fold& f : found) {  // nodes are added after the walk over the graph's nodes
    const ir::Node* a = f.attention;
    ir::Node* n = graph.add_node("Attention", a->domain, a->name + "/3d");
    n->opset = a->opset;
    n->inputs = {f.in3[0], f.in3[1], f.in3[2]};
    if (a->num_inputs() == 4) n->inputs.push_back(a->inputs[3]);
    n->outputs = {f.out3};
    n->attrs = a->attrs;
    n->attrs.push_back(int_attr("q_num_heads", f.heads[0]));
    n->attrs.push_back(int_attr("kv_num_heads", f.heads[1]));
    reps.push_back(match::Replacement{f.nodes.back(), f.nodes, {n}});
  }
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
