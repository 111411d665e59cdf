// Conv + residual Add + Relu into kiln.FusedConv: y = act(conv(X, W) + B + Z). Patterns:
//   Conv → Add(residual) → Relu,  Conv → Add(residual),  Conv → Relu.
// The residual is the Add's other operand when it has exactly the Conv output's dtype and shape
// (every dim known or the same named dim: no broadcasting). Nothing fuses when an intermediate
// value has another use (another node, a graph output, a subgraph's outer-scope reference). The
// fused node takes the place of the pattern's last node, where the residual is defined.
#include <unordered_map>
#include <unordered_set>

#include "ops/fused_conv.h"
#include "passes/pass_manager.h"

namespace kiln::passes {
namespace {

bool default_domain(const ir::Node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

// Same dtype and the same shape dim by dim, each dim known or a shared name.
bool same_exact_shape(const ir::TypeInfo& a, const ir::TypeInfo& b) {
  if (!a.is_tensor() || !b.is_tensor() || a.dtype != b.dtype) return false;
  if (!a.shape.rank_known || !b.shape.rank_known || a.shape.rank() != b.shape.rank()) return false;
  for (size_t i = 0; i < a.shape.dims.size(); ++i) {
    const ir::Dim& x = a.shape.dims[i];
    const ir::Dim& y = b.shape.dims[i];
    if (!(x == y) || (!x.known() && x.symbol.empty())) return false;
  }
  return true;
}

struct Uses {
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers;  // one entry per input
  std::unordered_set<std::string> pinned;  // graph outputs, outer-scope names

  // The single node reading `v` once, when nothing else uses it.
  ir::Node* sole_reader(const ir::Value* v) const {
    if (pinned.count(v->name)) return nullptr;
    auto it = readers.find(v);
    if (it == readers.end() || it->second.size() != 1) return nullptr;
    return it->second[0];
  }
};

struct Fusion {
  ir::Node* conv = nullptr;
  ir::Node* last = nullptr;         // the node whose place the fused node takes
  std::vector<ir::Node*> absorbed;  // Add / Relu nodes that go away
};

// Rewrites `conv` in place into a FusedConv when a pattern follows it. Nodes in `taken` already
// belong to another fusion.
bool match(const Uses& uses, const std::unordered_set<const ir::Node*>& taken, ir::Node& conv,
           Fusion* f) {
  if (conv.op_type != "Conv" || !default_domain(conv) || conv.outputs.size() != 1 ||
      !conv.has_output(0) || !conv.has_input(0) || !conv.has_input(1) || conv.num_inputs() > 3) {
    return false;
  }
  ir::Value* cur = conv.outputs[0];
  if (!cur->type.is_tensor() || !is_float(cur->type.dtype)) return false;
  ir::Value* z = nullptr;
  ops::ConvActivation act = ops::ConvActivation::kNone;
  f->conv = &conv;
  f->absorbed.clear();
  if (ir::Node* add = uses.sole_reader(cur); add && !taken.count(add) && add->op_type == "Add" &&
                                             default_domain(*add) && add->num_inputs() == 2 &&
                                             add->inputs.size() == 2 && add->outputs.size() == 1 &&
                                             add->has_output(0)) {
    ir::Value* other = add->inputs[0] == cur ? add->inputs[1] : add->inputs[0];
    if (other != cur && same_exact_shape(other->type, cur->type) &&
        same_exact_shape(add->outputs[0]->type, cur->type)) {
      z = other;
      cur = add->outputs[0];
      f->absorbed.push_back(add);
    }
  }
  if (ir::Node* relu = uses.sole_reader(cur);
      relu && !taken.count(relu) && relu->op_type == "Relu" && default_domain(*relu) &&
      relu->num_inputs() == 1 && relu->outputs.size() == 1 && relu->has_output(0) &&
      relu->outputs[0]->type.dtype == cur->type.dtype) {
    act = ops::ConvActivation::kRelu;
    cur = relu->outputs[0];
    f->absorbed.push_back(relu);
  }
  if (f->absorbed.empty()) return false;
  f->last = f->absorbed.back();
  conv.op_type = ops::kFusedConvOp;
  conv.domain = ir::kKilnDomain;
  conv.opset = 1;
  if (z) {
    conv.inputs.resize(4);
    conv.inputs[3] = z;
  }
  if (act == ops::ConvActivation::kRelu) {
    ir::Attribute a;
    a.name = "activation";
    a.type = ir::AttrType::kString;
    a.s = "Relu";
    conv.attrs.push_back(a);
  }
  conv.outputs[0] = cur;
  return true;
}

}  // namespace

StatusOr<bool> fuse_conv_activation(ir::Graph& graph) {
  bool changed = false;
  for (auto& n : graph.mutable_nodes()) {
    for (ir::Attribute& a : n->attrs) {
      if (a.g) {
        KILN_ASSIGN_OR_RETURN(bool c, fuse_conv_activation(*a.g));
        changed |= c;
      }
      for (auto& sg : a.graphs) {
        if (!sg) continue;
        KILN_ASSIGN_OR_RETURN(bool c, fuse_conv_activation(*sg));
        changed |= c;
      }
    }
  }
  Uses uses;
  std::vector<std::string> outer;
  graph.collect_outer_scope_names(&outer);
  uses.pinned.insert(outer.begin(), outer.end());
  for (const ir::Value* v : graph.outputs) uses.pinned.insert(v->name);
  for (const auto& n : graph.nodes())
    for (const ir::Value* v : n->inputs)
      if (v) uses.readers[v].push_back(n.get());

  std::unordered_map<const ir::Node*, ir::Node*> moved_to;  // last node → fused conv
  std::unordered_set<const ir::Node*> absorbed, moved;
  for (auto& np : graph.mutable_nodes()) {
    if (absorbed.count(np.get())) continue;
    Fusion f;
    if (!match(uses, absorbed, *np, &f)) continue;
    for (ir::Node* a : f.absorbed) absorbed.insert(a);
    moved_to[f.last] = f.conv;
    moved.insert(f.conv);
  }
  if (moved.empty()) return changed;
  // Rebuild the order: each fused conv where its pattern's last node was.
  std::vector<std::unique_ptr<ir::Node>>& nodes = graph.mutable_nodes();
  std::unordered_map<const ir::Node*, std::unique_ptr<ir::Node>> owned;
  for (auto& np : nodes)
    if (moved.count(np.get())) owned[np.get()] = std::move(np);
  std::vector<std::unique_ptr<ir::Node>> order;
  order.reserve(nodes.size());
  for (auto& np : nodes) {
    if (!np) continue;  // a moved conv
    auto it = moved_to.find(np.get());
    if (it != moved_to.end()) order.push_back(std::move(owned[it->second]));
    if (!absorbed.count(np.get())) order.push_back(std::move(np));
  }
  nodes = std::move(order);
  graph.relink();
  graph.remove_unused_values();
  return true;
}

}  // namespace kiln::passes
