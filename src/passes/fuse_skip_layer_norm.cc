// Residual Add + LayerNormalization over the last axis → kiln.SkipLayerNorm (ops/fused_norm.h):
//   LayerNormalization(Add(a, b), scale, bias)   a, b of one float dtype and provably one shape
// The Add's output may have other readers (pre-norm transformers add it to the next residual):
// the fused node then also produces it as its Sum output. Matched only when the LayerNorm's
// Mean/InvStdDev outputs are absent, Scale and B are 1-D constants of the last dim's length and
// the Add has no broadcasting, so the fused kernel computes exactly what the two nodes did.
#include "ops/fused_norm.h"
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::Uses;

bool float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// Two values of one float dtype and provably the same shape (same sizes or symbols).
bool same_typed(const ir::Value* a, const ir::Value* b) {
  const ir::TypeInfo& ta = a->type;
  const ir::TypeInfo& tb = b->type;
  if (!ta.is_tensor() || !tb.is_tensor() || ta.dtype != tb.dtype || !float_dtype(ta.dtype)) {
    return false;
  }
  if (!ta.shape.rank_known || !tb.shape.rank_known || ta.shape.rank() != tb.shape.rank() ||
      ta.shape.rank() < 1) {
    return false;
  }
  for (int d = 0; d < ta.shape.rank(); ++d) {
    if (!match::same_dim(ta.shape.dims[static_cast<size_t>(d)],
                         tb.shape.dims[static_cast<size_t>(d)])) {
      return false;
    }
  }
  return true;
}

// A 1-D constant of length `len` (a known dim) and dtype `dt`.
bool row_param(const ir::Value* v, const ir::Dim& len, DType dt) {
  return v != nullptr && v->constant && !v->is_graph_input && len.known() &&
         v->constant->dtype() == dt && v->constant->rank() == 1 && v->constant->dim(0) == len.value;
}

struct Match {
  const ir::Node* add = nullptr;
  const ir::Node* ln = nullptr;
  bool keep_sum = false;
};

bool match_skip(const Uses& uses, const ir::Node* ln, Match* m) {
  if (!match::is_op(ln, "LayerNormalization", 2) && !match::is_op(ln, "LayerNormalization", 3)) {
    return false;
  }
  for (size_t o = 1; o < ln->outputs.size(); ++o)
    if (ln->outputs[o] != nullptr) return false;
  ir::Value* x = ln->inputs[0];
  ir::Node* add = match::producer(x, "Add");
  if (!match::is_op(add, "Add", 2)) return false;
  const ir::Value* a = add->inputs[0];
  const ir::Value* b = add->inputs[1];
  if (a == nullptr || b == nullptr || !same_typed(a, b) || !same_typed(a, x)) return false;
  const int rank = x->type.shape.rank();
  Status st;
  int64_t axis = ln->attr_int("axis", -1, &st);
  if (!st.ok()) return false;
  if (axis < 0) axis += rank;
  if (axis != rank - 1) return false;
  const ir::Dim& len = x->type.shape.dims.back();
  const DType dt = x->type.dtype;
  if (!row_param(ln->inputs[1], len, dt)) return false;
  if (ln->num_inputs() == 3 && ln->inputs[2] != nullptr && !row_param(ln->inputs[2], len, dt)) {
    return false;
  }
  m->add = add;
  m->ln = ln;
  m->keep_sum = !uses.only_by(x, {ln});
  return true;
}

}  // namespace

StatusOr<bool> fuse_skip_layer_norm(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Match> found;
  for (const auto& np : graph.nodes()) {
    Match m;
    if (!match_skip(uses, np.get(), &m) || claims.any({m.add, m.ln})) continue;
    claims.take({m.add, m.ln});
    found.push_back(m);
  }
  if (found.empty()) return false;
  std::vector<match::Replacement> reps;
  for (const Match& m : found) {  // nodes are added after the walk over the graph's nodes
    ir::Node* n = graph.add_node(ops::kSkipLayerNorm, ir::kKilnDomain, m.ln->name + "/skip");
    n->opset = 1;
    n->inputs = {m.add->inputs[0], m.add->inputs[1], m.ln->inputs[1]};
    if (m.ln->num_inputs() == 3 && m.ln->inputs[2] != nullptr) n->inputs.push_back(m.ln->inputs[2]);
    n->outputs = {m.ln->outputs[0]};
    if (m.keep_sum) n->outputs.push_back(m.add->outputs[0]);
    ir::Attribute eps;
    eps.name = "epsilon";
    eps.type = ir::AttrType::kFloat;
    eps.f = m.ln->attr_float("epsilon", 1e-5f);
    n->attrs = {eps};
    // At the Add's place: Scale and B are constants, and the Sum's other readers follow the Add.
    reps.push_back(match::Replacement{m.add, {m.add, m.ln}, {n}});
  }
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
