// Evaluates nodes whose inputs are all constants with the CPU reference kernels, and turns
// Shape (and Size) of statically shaped tensors into constants, as well as every small integer
// value that type inference's shape values know to be plain integers (Gather(Shape(x), -1) of a
// static dim, and arithmetic on it: exports compute attention scales from the head size so). Folded
// outputs become constant values; the nodes go away. Nondeterministic ops, nodes with subgraphs,
// non-tensor outputs and results larger than kMaxFoldedBytes are left alone.
#include <algorithm>
#include <unordered_set>

#include "backends/cpu/executor.h"
#include "ops/shape_value.h"
#include "ops/type_inference.h"
#include "passes/pass_manager.h"

namespace kiln::passes {
namespace {

constexpr uint64_t kMaxFoldedBytes = uint64_t{64} << 20;

bool is_nondeterministic(const ir::Node& n) {
  static const std::unordered_set<std::string> kOps = {"RandomUniform",     "RandomNormal",
                                                       "RandomUniformLike", "RandomNormalLike",
                                                       "Bernoulli",         "Multinomial"};
  return n.domain.empty() && kOps.count(n.op_type) > 0;
}

bool has_subgraph(const ir::Node& n) {
  for (const ir::Attribute& a : n.attrs) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

// Shape/Size of a tensor whose shape is fully known.
bool fold_shape_of(ir::Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return false;
  if (n.op_type != "Shape" && n.op_type != "Size") return false;
  const ir::TypeInfo& t = n.inputs[0]->type;
  if (!t.is_tensor() || !t.shape.fully_known()) return false;
  std::vector<int64_t> dims = t.shape.values();
  Tensor result;
  if (n.op_type == "Size") {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    result = Tensor::scalar<int64_t>(count);
  } else {
    const int64_t rank = static_cast<int64_t>(dims.size());
    int64_t start = n.attr_int("start", 0), end = n.attr_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    std::vector<int64_t> sel;
    for (int64_t i = start; i < end; ++i) sel.push_back(dims[static_cast<size_t>(i)]);
    result = Tensor::from_vector<int64_t>({static_cast<int64_t>(sel.size())}, sel);
  }
  ir::Value* out = n.outputs[0];
  out->constant = std::make_shared<Tensor>(std::move(result));
  out->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of(out->constant->shape()));
  return true;
}

// A node whose only output has a shape value of plain integers (in the table in use).
bool fold_shape_value(ir::Node& n) {
  if (n.outputs.size() != 1 || !n.has_output(0) || n.outputs[0]->constant) return false;
  std::optional<Tensor> t = ops::shape_value_tensor(*n.outputs[0]);
  if (!t) return false;
  ir::Value* out = n.outputs[0];
  out->constant = std::make_shared<Tensor>(std::move(*t));
  out->type = ir::TypeInfo::tensor(out->constant->dtype(), ir::Shape::of(out->constant->shape()));
  return true;
}

StatusOr<bool> fold_constants_in(ir::Graph& graph, bool shape_values) {
  bool changed = false;
  std::unordered_set<std::string> graph_inputs;
  for (const ir::Value* v : graph.inputs) graph_inputs.insert(v->name);
  std::unordered_set<const ir::Node*> folded;
  for (auto& np : graph.mutable_nodes()) {
    ir::Node& n = *np;
    for (ir::Attribute& a : n.attrs) {
      if (a.g) {
        KILN_ASSIGN_OR_RETURN(bool c, fold_constants_in(*a.g, false));
        changed |= c;
      }
      for (auto& g : a.graphs) {
        if (!g) continue;
        KILN_ASSIGN_OR_RETURN(bool c, fold_constants_in(*g, false));
        changed |= c;
      }
    }
    if (fold_shape_of(n)) {
      folded.insert(&n);
      continue;
    }
    if (is_nondeterministic(n) || has_subgraph(n)) continue;
    if (shape_values && fold_shape_value(n)) {
      folded.insert(&n);
      continue;
    }
    bool all_constant = true;
    for (const ir::Value* v : n.inputs) {
      // Graph inputs with a default (initializer) can be overridden at run time.
      if (v && (!v->constant || v->is_graph_input || v->is_outer_scope)) all_constant = false;
    }
    if (!all_constant) continue;
    std::vector<Datum> values;
    values.reserve(n.inputs.size());
    std::vector<const Datum*> inputs;
    for (const ir::Value* v : n.inputs) values.push_back(v ? Datum::of(*v->constant) : Datum());
    for (size_t i = 0; i < values.size(); ++i) inputs.push_back(n.inputs[i] ? &values[i] : nullptr);
    StatusOr<std::vector<Datum>> r = cpu::evaluate_node(n, inputs, kMaxFoldedBytes);
    // Unsupported, too large or failing: leave it for run time, which reports any error when
    // (and only if) the node actually runs: it may sit in a branch that never does.
    if (!r.ok()) continue;
    bool tensors = true;
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i] && !(*r)[i].is_tensor()) tensors = false;
    }
    if (!tensors) continue;
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      ir::Value* out = n.outputs[i];
      if (!out) continue;
      out->constant = std::make_shared<Tensor>((*r)[i].tensor);
      out->type =
          ir::TypeInfo::tensor(out->constant->dtype(), ir::Shape::of(out->constant->shape()));
    }
    folded.insert(&n);
  }
  if (folded.empty()) return changed;
  graph.remove_nodes_if([&](const ir::Node& n) { return folded.count(&n) > 0; });
  graph.remove_unused_values();
  return true;
}

}  // namespace

StatusOr<bool> fold_constants(ir::Graph& graph) {
  // Shape values come from a fresh inference of the whole graph (subgraphs are folded as part
  // of their top-level graph's run, without them).
  ops::ShapeValueTable shape_values;
  const bool top = graph.parent == nullptr;
  const bool have_values = top && ops::infer_graph_types(graph).ok();
  return fold_constants_in(graph, have_values);
}

}  // namespace kiln::passes
