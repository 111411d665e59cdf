// The copies at the edge of a channels-last region as one kiln.CastTransposePad
// (ops/layout_copy.h):
//   [Cast(x, to float type)] → Transpose(perm) → [Pad(zeros at the end of the last axis)]
// with at least the Cast or the Pad present (a Transpose alone gains nothing). ResNet-50 under
// --fp16 starts with Cast → Transpose(0,2,3,1) → Pad(3 → 8 channels): three passes over the
// input become one. Matched only for float tensors of known rank, a constant Pad of zeros that
// pads nothing but the end of the last axis, and intermediates read only inside the chain.
#include "ops/layout_copy.h"
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::int_attr;

using match::Uses;

bool float_type(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

bool default_domain(const ir::Node* n) {
  return n->domain.empty() || n->domain == "ai.onnx";
}

// The perm of Transpose t over rank r (reversed axes when absent); empty when invalid.
std::vector<int64_t> perm_of(const ir::Node* t, int r) {
  Status st;
  std::vector<int64_t> p = t->attr_ints("perm", {}, &st);
  if (!st.ok()) return {};
  if (!t->has_attr("perm")) {
    for (int i = r - 1; i >= 0; --i) p.push_back(i);
  }
  if (static_cast<int>(p.size()) != r) return {};
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (int64_t& x : p) {
    if (x < 0) x += r;
    if (x < 0 || x >= r || seen[static_cast<size_t>(x)]) return {};
    seen[static_cast<size_t>(x)] = true;
  }
  return p;
}

// Pad p (of a rank-r input) appends zeros at the end of the last axis only: how many, else -1.
int64_t last_axis_zero_pad(const ir::Node* p, int r) {
  if (!default_domain(p) || p->opset < 11 || p->num_inputs() < 2 || p->num_inputs() > 3) return -1;
  Status st;
  const std::string mode = p->attr_string("mode", "constant", &st);
  if (!st.ok() || mode != "constant") return -1;
  const ir::Value* pads = p->inputs[1];
  if (pads == nullptr || !pads->constant || pads->is_graph_input ||
      pads->constant->dtype() != DType::kInt64 || pads->constant->numel() != 2 * r) {
    return -1;
  }
  for (int i = 0; i < 2 * r - 1; ++i) {
    if (pads->constant->get_int64(i) != 0) return -1;
  }
  const int64_t n = pads->constant->get_int64(2 * r - 1);
  if (n < 0) return -1;
  if (p->num_inputs() == 3 && p->inputs[2] != nullptr) {
    double v = 1;
    if (!match::scalar_for(p->inputs[2], p->inputs[0], &v) || v != 0) return -1;
  }
  return n;
}

struct Match {
  const ir::Node* cast = nullptr;
  const ir::Node* transpose = nullptr;
  const ir::Node* pad = nullptr;
  ir::Value* src = nullptr;
  ir::Value* out = nullptr;
  std::vector<int64_t> perm;
  int64_t to = 0;
  int64_t pad_last = 0;
};

bool match_copy(const Uses& uses, const ir::Node* t, Match* m) {
  if (!match::is_op(t, "Transpose", 1)) return false;
  ir::Value* in = t->inputs[0];
  const ir::TypeInfo& ti = in->type;
  if (!ti.is_tensor() || !float_type(ti.dtype) || !ti.shape.rank_known || ti.shape.rank() < 1 ||
      ti.shape.rank() > 8) {
    return false;
  }
  const int r = ti.shape.rank();
  m->perm = perm_of(t, r);
  if (m->perm.empty()) return false;
  m->transpose = t;
  m->src = in;
  if (ir::Node* c = match::producer(in, "Cast");
      match::is_op(c, "Cast", 1) && uses.only_by(in, {t})) {
    const ir::TypeInfo& tc = c->inputs[0]->type;
    if (tc.is_tensor() && float_type(tc.dtype)) {
      m->cast = c;
      m->src = c->inputs[0];
      m->to = static_cast<int64_t>(ti.dtype);
    }
  }
  m->out = t->outputs[0];
  if (ir::Node* p = uses.sole_reader(t->outputs[0]);
      p != nullptr && p->op_type == "Pad" && p->inputs[0] == t->outputs[0] &&
      p->outputs.size() == 1 && p->outputs[0] != nullptr) {
    const int64_t n = last_axis_zero_pad(p, r);
    if (n > 0) {
      m->pad = p;
      m->pad_last = n;
      m->out = p->outputs[0];
    }
  }
  return m->cast != nullptr || m->pad != nullptr;
}

}  // namespace

StatusOr<bool> fuse_layout_copy(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<std::pair<Match, std::vector<const ir::Node*>>> found;
  for (const auto& np : graph.nodes()) {
    Match m;
    if (!match_copy(uses, np.get(), &m)) continue;
    std::vector<const ir::Node*> nodes = {m.transpose};
    if (m.cast) nodes.push_back(m.cast);
    if (m.pad) nodes.push_back(m.pad);
    if (claims.any(nodes)) continue;
    claims.take(nodes);
    found.emplace_back(std::move(m), std::move(nodes));
  }
  if (found.empty()) return false;
  std::vector<match::Replacement> reps;
  for (auto& [m, nodes] : found) {  // nodes are added after the walk over the graph's nodes
    ir::Node* n =
        graph.add_node(ops::kCastTransposePad, ir::kKilnDomain, m.transpose->name + "/layout_copy");
    n->opset = 1;
    n->inputs = {m.src};
    n->outputs = {m.out};
    ir::Attribute perm;
    perm.name = "perm";
    perm.type = ir::AttrType::kInts;
    perm.ints = m.perm;
    n->attrs = {perm};
    if (m.cast) n->attrs.push_back(int_attr("to", m.to));
    if (m.pad) n->attrs.push_back(int_attr("pad_last", m.pad_last));
    reps.push_back(match::Replacement{m.transpose, nodes, {n}});
  }
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
