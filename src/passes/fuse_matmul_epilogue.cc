// MatMul/Gemm + bias + activation into kiln.FusedMatMul (cuBLASLt epilogues on the GPU).
//
// Patterns (every value one float dtype: float32, float16 or bfloat16):
//   MatMul(A, W) -> Add(., bias) -> [Relu | Gelu]      A rank >= 2, W rank 2, bias constant [N]
//   MatMul(A, W) -> Relu | Gelu                           or [1, N]; Add in either operand order
//   Gemm(A, B[, C]) -> Relu | Gelu                        transA 0, alpha 1, beta 1 (with C),
//                                                         C constant [N] or [1, N]
// An intermediate value (the MatMul's or Gemm's output, the Add's output when an activation
// follows) must have exactly one reader and be neither a graph output nor named by a subgraph;
// the last value keeps its name and type. Gelu with approximate "tanh" becomes "GeluTanh".
// A Gemm without an activation stays a Gemm: its CUDA kernel already adds C in the epilogue.
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "ops/fused_matmul.h"
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::int_attr;
using match::string_attr;

using ops::MatMulActivation;

struct Match {
  ir::Node* gemm = nullptr;  // the MatMul or Gemm
  ir::Node* add = nullptr;   // the bias Add (MatMul only), or null
  ir::Node* act = nullptr;   // the activation, or null
  ir::Value* a = nullptr;
  ir::Value* b = nullptr;
  ir::Value* bias = nullptr;  // constant [N] or [1, N], or null
  bool trans_b = false;
  MatMulActivation activation = MatMulActivation::kNone;
};

// Who reads what: input slots per value, graph outputs and names read by subgraphs.
class Uses {
 public:
  explicit Uses(const ir::Graph& g) {
    for (const auto& n : g.nodes()) {
      for (const ir::Value* v : n->inputs) {
        if (v) ++reads_[v];
      }
      for (const ir::Attribute& a : n->attrs) {
        if (a.g) a.g->collect_outer_scope_names(&outer_);
        for (const auto& sub : a.graphs)
          if (sub) sub->collect_outer_scope_names(&outer_);
      }
    }
    for (const ir::Value* v : g.outputs) pinned_.insert(v->name);
    pinned_.insert(outer_.begin(), outer_.end());
  }
  // True when `v` is read by exactly one input slot and by nothing else.
  bool single_internal_use(const ir::Value* v) const {
    if (v == nullptr || pinned_.count(v->name)) return false;
    auto it = reads_.find(v);
    return it != reads_.end() && it->second == 1;
  }

 private:
  std::unordered_map<const ir::Value*, int> reads_;
  std::vector<std::string> outer_;
  std::unordered_set<std::string> pinned_;
};

bool is_onnx_op(const ir::Node& n, const char* op) {
  return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx");
}

bool is_fusable_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// A tensor value of dtype `dt` with a known rank.
bool typed(const ir::Value* v, DType dt) {
  return v != nullptr && v->type.is_tensor() && v->type.dtype == dt && v->type.shape.rank_known;
}

// The only node reading `v` (with the single-use check done), or null.
ir::Node* sole_reader(const ir::Graph& g, const Uses& uses, const ir::Value* v) {
  if (!uses.single_internal_use(v)) return nullptr;
  std::vector<ir::Node*> readers = g.consumers(v);
  return readers.size() == 1 ? readers[0] : nullptr;
}

// The activation `n` computes, when it is one FusedMatMul can apply to a `dt` value.
std::optional<MatMulActivation> activation_of(const ir::Node& n, DType dt) {
  if (n.num_inputs() != 1 || !n.has_output(0) || n.outputs.size() != 1) return std::nullopt;
  if (!typed(n.outputs[0], dt)) return std::nullopt;
  if (is_onnx_op(n, "Relu")) return MatMulActivation::kRelu;
  if (is_onnx_op(n, "Gelu")) {
    Status err;
    const std::string a = n.attr_string("approximate", "none", &err);
    if (!err.ok()) return std::nullopt;
    if (a == "none") return MatMulActivation::kGelu;
    if (a == "tanh") return MatMulActivation::kGeluTanh;
  }
  return std::nullopt;
}

// A constant bias of N values of dtype `dt`, shaped [N] or [1, N].
bool is_bias(const ir::Value* v, DType dt, int64_t n) {
  if (v == nullptr || !v->constant || v->is_graph_input || v->is_outer_scope) return false;
  const Tensor& t = *v->constant;
  if (t.dtype() != dt || t.numel() != n) return false;
  return t.rank() == 1 || (t.rank() == 2 && t.dim(0) == 1);
}

// Follows `v` (the GEMM's or the Add's output) into an activation reading it alone.
void take_activation(const ir::Graph& g, const Uses& uses, ir::Value* v, DType dt, Match* m) {
  ir::Node* r = sole_reader(g, uses, v);
  if (r == nullptr) return;
  if (std::optional<MatMulActivation> act = activation_of(*r, dt)) {
    m->act = r;
    m->activation = *act;
  }
}

std::optional<Match> match_matmul(const ir::Graph& g, const Uses& uses, ir::Node* mm) {
  if (mm->num_inputs() != 2 || mm->inputs.size() != 2 || mm->outputs.size() != 1 ||
      !mm->has_output(0)) {
    return std::nullopt;
  }
  ir::Value* a = mm->inputs[0];
  ir::Value* b = mm->inputs[1];
  ir::Value* y = mm->outputs[0];
  if (a == nullptr || !a->type.is_tensor()) return std::nullopt;
  const DType dt = a->type.dtype;
  if (!is_fusable_dtype(dt) || !typed(a, dt) || !typed(b, dt) || !typed(y, dt)) return std::nullopt;
  if (a->type.shape.rank() < 2 || b->type.shape.rank() != 2) return std::nullopt;
  const ir::Dim& n = b->type.shape.dims[1];
  if (!n.known()) return std::nullopt;
  Match m;
  m.gemm = mm;
  m.a = a;
  m.b = b;
  ir::Node* r = sole_reader(g, uses, y);
  if (r == nullptr) return std::nullopt;
  if (is_onnx_op(*r, "Add") && r->num_inputs() == 2 && r->outputs.size() == 1 && r->has_output(0) &&
      typed(r->outputs[0], dt)) {
    const int other = r->inputs[0] == y ? 1 : 0;
    if (r->inputs[static_cast<size_t>(1 - other)] != y) return std::nullopt;
    if (!is_bias(r->inputs[static_cast<size_t>(other)], dt, n.value)) return std::nullopt;
    m.add = r;
    m.bias = r->inputs[static_cast<size_t>(other)];
    take_activation(g, uses, r->outputs[0], dt, &m);
    return m;
  }
  take_activation(g, uses, y, dt, &m);
  if (m.act == nullptr) return std::nullopt;
  return m;
}

std::optional<Match> match_gemm(const ir::Graph& g, const Uses& uses, ir::Node* gemm) {
  if (gemm->opset < 7 || gemm->num_inputs() < 2 || gemm->outputs.size() != 1 ||
      !gemm->has_output(0) || !gemm->has_input(0) || !gemm->has_input(1)) {
    return std::nullopt;
  }
  Status err;
  const int64_t trans_a = gemm->attr_int("transA", 0, &err);
  const int64_t trans_b = gemm->attr_int("transB", 0, &err);
  const float alpha = gemm->attr_float("alpha", 1.f, &err);
  const float beta = gemm->attr_float("beta", 1.f, &err);
  if (!err.ok() || trans_a != 0 || alpha != 1.f) return std::nullopt;
  ir::Value* a = gemm->inputs[0];
  ir::Value* b = gemm->inputs[1];
  ir::Value* y = gemm->outputs[0];
  const DType dt = a->type.dtype;
  if (!is_fusable_dtype(dt) || !typed(a, dt) || !typed(b, dt) || !typed(y, dt)) return std::nullopt;
  if (a->type.shape.rank() != 2 || b->type.shape.rank() != 2) return std::nullopt;
  const ir::Dim& n = b->type.shape.dims[trans_b != 0 ? 0 : 1];
  if (!n.known()) return std::nullopt;
  Match m;
  m.gemm = gemm;
  m.a = a;
  m.b = b;
  m.trans_b = trans_b != 0;
  if (gemm->has_input(2)) {
    if (beta != 1.f || !is_bias(gemm->inputs[2], dt, n.value)) return std::nullopt;
    m.bias = gemm->inputs[2];
  }
  take_activation(g, uses, y, dt, &m);
  if (m.act == nullptr) return std::nullopt;
  return m;
}

// The bias as a [N] value: itself, or a reshaped copy of a [1, N] constant.
ir::Value* flat_bias(ir::Graph& g, ir::Value* bias) {
  if (bias == nullptr || bias->constant->rank() == 1) return bias;
  const int64_t n = bias->constant->numel();
  ir::Value* flat = g.new_value(bias->name + "_flat");
  flat->constant = std::make_shared<const Tensor>(bias->constant->reshaped({n}));
  flat->type = ir::TypeInfo::tensor(bias->constant->dtype(), ir::Shape::of({n}));
  return flat;
}

// Turns the MatMul/Gemm node into the FusedMatMul writing the chain's last value; returns the
// nodes that are now dead.
void rewrite(ir::Graph& g, const Match& m, std::unordered_set<const ir::Node*>* dead) {
  ir::Node* last = m.act ? m.act : (m.add ? m.add : m.gemm);
  ir::Value* out = last->outputs[0];
  ir::Value* bias = flat_bias(g, m.bias);
  ir::Node* f = m.gemm;
  f->op_type = ops::kFusedMatMul;
  f->domain = ir::kKilnDomain;
  f->opset = 1;
  f->inputs = {m.a, m.b};
  if (bias) f->inputs.push_back(bias);
  f->outputs = {out};
  f->attrs.clear();
  f->attrs.push_back(string_attr("activation", ops::matmul_activation_name(m.activation)));
  f->attrs.push_back(int_attr("trans_b", m.trans_b ? 1 : 0));
  if (m.add) dead->insert(m.add);
  if (m.act) dead->insert(m.act);
}

StatusOr<bool> fuse_in(ir::Graph& graph) {
  bool changed = false;
  for (auto& n : graph.mutable_nodes()) {
    for (ir::Attribute& a : n->attrs) {
      if (a.g) {
        KILN_ASSIGN_OR_RETURN(bool c, fuse_in(*a.g));
        changed |= c;
      }
      for (auto& sub : a.graphs) {
        if (!sub) continue;
        KILN_ASSIGN_OR_RETURN(bool c, fuse_in(*sub));
        changed |= c;
      }
    }
  }
  const Uses uses(graph);
  std::vector<Match> matches;
  for (const auto& n : graph.nodes()) {
    std::optional<Match> m;
    if (is_onnx_op(*n, "MatMul")) {
      m = match_matmul(graph, uses, n.get());
    } else if (is_onnx_op(*n, "Gemm")) {
      m = match_gemm(graph, uses, n.get());
    }
    if (m) matches.push_back(*m);
  }
  if (matches.empty()) return changed;
  std::unordered_set<const ir::Node*> dead;
  for (const Match& m : matches) rewrite(graph, m, &dead);
  graph.remove_nodes_if([&](const ir::Node& n) { return dead.count(&n) > 0; });
  graph.remove_unused_values();
  return true;
}

}  // namespace

StatusOr<bool> fuse_matmul_epilogue(ir::Graph& graph) {
  return fuse_in(graph);
}

}  // namespace kiln::passes
