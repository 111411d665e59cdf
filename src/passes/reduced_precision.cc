// Reduced precision (--fp16 / --bf16): compute nodes whose float32 math is safe in 16 bits run in
// the target type; their float32 weights are converted once, at build time. Graph inputs and
// outputs keep their float32 types (Casts at the edges), as do inputs that are not data (Resize
// scales, Pad's pads ...), every node not listed below, and nodes with subgraphs. Kernels keep
// float accumulation inside normalizations, softmax and reductions.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "ops/fused_pointwise.h"
#include "passes/pass_manager.h"

namespace kiln::passes {
namespace {

// Ops that run in the reduced type, with the inputs that are data (converted); -1: all inputs.
// Kiln-domain ops are listed by op type too (their names do not clash with ONNX ops).
const std::map<std::string, std::vector<int>>& converted_ops() {
  static const std::map<std::string, std::vector<int>> ops = {
      {"Conv", {-1}},
      {"ConvTranspose", {-1}},
      {"MatMul", {-1}},
      {"Gemm", {-1}},
      {"Einsum", {-1}},
      {"Add", {-1}},
      {"Sub", {-1}},
      {"Mul", {-1}},
      {"Div", {-1}},
      {"Sum", {-1}},
      {"Max", {-1}},
      {"Min", {-1}},
      {"Relu", {-1}},
      {"LeakyRelu", {-1}},
      {"PRelu", {-1}},
      {"Sigmoid", {-1}},
      {"HardSigmoid", {-1}},
      {"HardSwish", {-1}},
      {"Tanh", {-1}},
      {"Erf", {-1}},
      {"Gelu", {-1}},
      {"Neg", {-1}},
      {"Abs", {-1}},
      {"Sqrt", {-1}},
      {"Clip", {-1}},
      {"Softmax", {-1}},
      {"LayerNormalization", {-1}},
      {"BatchNormalization", {-1}},
      {"InstanceNormalization", {-1}},
      {"GroupNormalization", {-1}},
      {"RMSNormalization", {-1}},
      {"MaxPool", {0}},
      {"AveragePool", {0}},
      {"GlobalAveragePool", {0}},
      {"GlobalMaxPool", {0}},
      {"Concat", {-1}},
      {"Split", {0}},
      {"Reshape", {0}},
      {"Flatten", {0}},
      {"Squeeze", {0}},
      {"Unsqueeze", {0}},
      {"Transpose", {0}},
      {"Slice", {0}},
      {"Gather", {0}},
      {"Expand", {0}},
      {"Tile", {0}},
      {"Pad", {0, 2}},
      {"Resize", {0}},
      {"Where", {1, 2}},
      {"Identity", {0}},
      {"Dropout", {0}},
      {"ReduceMean", {0}},
      {"ReduceMax", {0}},
      {"ReduceMin", {0}},
      {"Attention", {0, 1, 2, 3, 4, 5}},
      // Kiln's fused ops (domain "kiln").
      {"FusedConv", {0, 1, 2, 3}},
      {"FusedMatMul", {0, 1, 2}},
      {"SkipLayerNorm", {-1}},
      {"PackedAttention", {0, 1}},
      // Pointwise: every float32 value of the program becomes `target` (see below).
      {"Pointwise", {-1}},
  };
  return ops;
}

bool is_data_input(const std::vector<int>& spec, int i) {
  for (int s : spec)
    if (s == -1 || s == i) return true;
  return false;
}

bool has_subgraph(const ir::Node& n) {
  for (const ir::Attribute& a : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

bool is_f32(const ir::Value* v) {
  return v != nullptr && v->type.is_tensor() && v->type.dtype == DType::kFloat32;
}

// The default-domain opset for a Cast next to `n`: n's own, or the graph's when n is a kiln op.
int64_t default_domain_opset(const ir::Graph& graph, const ir::Node& n) {
  if (n.domain != ir::kKilnDomain) return n.opset;
  for (const char* d : {"", "ai.onnx"}) {
    auto it = graph.opsets.find(d);
    if (it != graph.opsets.end()) return std::max<int64_t>(it->second, 13);
  }
  return 13;
}

// A kiln.Pointwise runs reduced unless its program has float32 math that stays float32 when
// unfused (Exp, Log, Pow, Reciprocal are not in converted_ops: their range or accuracy needs it).
bool pointwise_reducible(const ir::Node& n) {
  StatusOr<ops::PwProgram> p = ops::parse_pw_program(n);
  if (!p.ok()) return false;
  for (const ops::PwInstr& in : p->instrs) {
    if (in.dtype != DType::kFloat32) continue;
    if (in.op == ops::PwOp::kExp || in.op == ops::PwOp::kLog || in.op == ops::PwOp::kPow ||
        in.op == ops::PwOp::kReciprocal) {
      return false;
    }
  }
  return true;
}

// A float32 constant bound for `target`: finite values beyond float16's range clamp to
// ±65504 instead of becoming ±inf (exported masks use float32's lowest value as "minus
// infinity"; as fp16 infinity, 0 * mask would turn into NaN). bfloat16 has float32's range.
Tensor saturated_for(const Tensor& t, DType target) {
  if (target != DType::kFloat16 || t.dtype() != DType::kFloat32) return t;
  constexpr float kMax = 65504.f;
  const float* p = t.data<float>();
  bool any = false;
  for (int64_t i = 0; i < t.numel() && !any; ++i)
    any = std::isfinite(p[i]) && std::fabs(p[i]) > kMax;
  if (!any) return t;
  Tensor c = Tensor::from_vector<float>(std::vector<int64_t>(t.shape().begin(), t.shape().end()),
                                        std::vector<float>(p, p + t.numel()));
  float* q = c.mutable_data<float>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    if (std::isfinite(q[i]) && std::fabs(q[i]) > kMax) q[i] = q[i] > 0 ? kMax : -kMax;
  }
  return c;
}

}  // namespace

StatusOr<bool> lower_precision(ir::Graph& graph, DType target) {
  if (target != DType::kFloat16 && target != DType::kBFloat16) {
    return invalid_argument("reduced precision targets float16 or bfloat16");
  }
  // Names read by subgraphs through outer scope keep their type: the subgraphs expect it.
  std::vector<std::string> outer;
  graph.collect_outer_scope_names(&outer);
  std::set<std::string> pinned(outer.begin(), outer.end());

  // 1. Which nodes run reduced: listed ops, default (or Kiln's) domain, no subgraphs, and every
  //    float input they convert and every output is float32 (a node mixing in float64 stays as
  //    it is).
  std::unordered_map<const ir::Node*, const std::vector<int>*> reduced;
  for (const auto& np : graph.nodes()) {
    const ir::Node& n = *np;
    const bool known_domain =
        n.domain.empty() || n.domain == "ai.onnx" || n.domain == ir::kKilnDomain;
    if (!known_domain || has_subgraph(n)) continue;
    auto it = converted_ops().find(n.op_type);
    if (it == converted_ops().end()) continue;
    bool any_f32 = false, ok = true;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ir::Value* v = n.inputs[i];
      if (v == nullptr || !is_data_input(it->second, static_cast<int>(i))) continue;
      if (!v->type.is_tensor()) ok = false;
      if (is_f32(v)) any_f32 = true;
      if (v->type.dtype == DType::kFloat64 || v->type.dtype == DType::kFloat16 ||
          v->type.dtype == DType::kBFloat16) {
        ok = false;
      }
    }
    for (const ir::Value* v : n.outputs) {
      if (v && pinned.count(v->name)) ok = false;
    }
    if (ok && any_f32 && n.domain == ir::kKilnDomain && n.op_type == ops::kPointwise) {
      ok = pointwise_reducible(n);
    }
    if (ok && any_f32) reduced[&n] = &it->second;
  }
  if (reduced.empty()) return false;

  // 2. Outputs of reduced nodes become `target`; remember who produced what. A reduced
  //    kiln.Pointwise computes every float32 instruction of its program in `target` instead (as
  //    the unfused chain would; comparisons of converted inputs then compare `target` values).
  for (const auto& [n, spec] : reduced) {
    for (ir::Value* v : n->outputs)
      if (is_f32(v)) v->type.dtype = target;
  }
  for (auto& np : graph.mutable_nodes()) {
    if (np->domain != ir::kKilnDomain || np->op_type != ops::kPointwise) continue;
    if (!reduced.count(np.get())) continue;
    KILN_ASSIGN_OR_RETURN(ops::PwProgram p, ops::parse_pw_program(*np));
    for (ops::PwInstr& in : p.instrs)
      if (in.dtype == DType::kFloat32) in.dtype = target;
    ops::encode_pw_program(p, np.get());
  }

  // 3. Each reduced node's converted float32 inputs: constants are converted (once; a copy when
  //    other nodes still read the float32 one), other values get a Cast in front.
  std::unordered_map<const ir::Value*, ir::Value*> cast_of;  // float32 value → its reduced copy
  std::vector<std::pair<size_t, ir::Node*>> inserts;         // (position, Cast) to add
  auto consumers_all_reduced = [&](const ir::Value* v) {
    if (pinned.count(v->name)) return false;
    for (const ir::Value* o : graph.outputs)
      if (o == v) return false;
    for (ir::Node* c : graph.consumers(v)) {
      auto it = reduced.find(c);
      if (it == reduced.end()) return false;
      for (size_t i = 0; i < c->inputs.size(); ++i)
        if (c->inputs[i] == v && !is_data_input(*it->second, static_cast<int>(i))) return false;
    }
    return true;
  };
  std::vector<ir::Node*> order;
  for (auto& np : graph.mutable_nodes()) order.push_back(np.get());
  for (ir::Node* n : order) {
    auto it = reduced.find(n);
    if (it == reduced.end()) continue;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      ir::Value* v = n->inputs[i];
      if (!is_f32(v) || !is_data_input(*it->second, static_cast<int>(i))) continue;
      auto c = cast_of.find(v);
      if (c != cast_of.end()) {
        n->inputs[i] = c->second;
        continue;
      }
      if (v->constant && !v->is_graph_input) {
        KILN_ASSIGN_OR_RETURN(Tensor t,
                              convert_tensor(saturated_for(*v->constant, target), target));
        if (consumers_all_reduced(v)) {
          v->constant = std::make_shared<const Tensor>(std::move(t));
          v->type.dtype = target;
          cast_of[v] = v;
          continue;
        }
        ir::Value* copy = graph.new_value(v->name + "_" + dtype_name(target));
        copy->type = v->type;
        copy->type.dtype = target;
        copy->constant = std::make_shared<const Tensor>(std::move(t));
        cast_of[v] = copy;
        n->inputs[i] = copy;
        continue;
      }
      ir::Value* out = graph.new_value(v->name + "_" + dtype_name(target));
      out->type = v->type;
      out->type.dtype = target;
      ir::Node* cast = graph.add_node("Cast", "", "cast_to_" + out->name);
      cast->opset = default_domain_opset(graph, *n);
      cast->inputs = {v};
      cast->outputs = {out};
      ir::Attribute to;
      to.name = "to";
      to.type = ir::AttrType::kInt;
      to.i = static_cast<int64_t>(target);
      cast->attrs.push_back(to);
      cast_of[v] = out;
      n->inputs[i] = out;
    }
  }

  // 4. Reduced values read by float32 consumers (other nodes, graph outputs): Cast back.
  std::unordered_map<const ir::Value*, ir::Value*> back_of;
  auto back = [&](ir::Value* v) -> ir::Value* {
    auto it = back_of.find(v);
    if (it != back_of.end()) return it->second;
    ir::Value* out = graph.new_value(v->name + "_float32");
    out->type = v->type;
    out->type.dtype = DType::kFloat32;
    ir::Node* cast = graph.add_node("Cast", "", "cast_back_" + v->name);
    cast->opset = v->producer ? v->producer->opset : 13;
    if (cast->opset < 13) cast->opset = 13;
    cast->inputs = {v};
    cast->outputs = {out};
    ir::Attribute to;
    to.name = "to";
    to.type = ir::AttrType::kInt;
    to.i = static_cast<int64_t>(DType::kFloat32);
    cast->attrs.push_back(to);
    back_of[v] = out;
    return out;
  };
  for (ir::Node* n : order) {
    if (reduced.count(n)) continue;
    // Shape and Size read only the shape, which the reduced value shares: no Cast back.
    const bool default_domain = n->domain.empty() || n->domain == "ai.onnx";
    if (default_domain && (n->op_type == "Shape" || n->op_type == "Size")) continue;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      ir::Value* v = n->inputs[i];
      if (v && v->type.is_tensor() && v->type.dtype == target && v->producer &&
          reduced.count(v->producer)) {
        n->inputs[i] = back(v);
      }
    }
  }
  // Reduced nodes reading a reduced value at a non-data input (rare): give them float32.
  for (ir::Node* n : order) {
    auto it = reduced.find(n);
    if (it == reduced.end()) continue;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      ir::Value* v = n->inputs[i];
      if (v && !is_data_input(*it->second, static_cast<int>(i)) && v->type.dtype == target &&
          v->producer && reduced.count(v->producer)) {
        n->inputs[i] = back(v);
      }
    }
  }
  // Graph outputs keep their names and float32 type: the producer writes a renamed reduced
  // value, and a Cast writes the original.
  for (size_t k = 0; k < graph.outputs.size(); ++k) {
    ir::Value* v = graph.outputs[k];
    if (!(v->type.is_tensor() && v->type.dtype == target && v->producer &&
          reduced.count(v->producer))) {
      continue;
    }
    ir::Node* p = v->producer;
    ir::Value* inner = graph.new_value(v->name + "_" + dtype_name(target));
    inner->type = v->type;
    for (ir::Value*& o : p->outputs)
      if (o == v) o = inner;
    for (ir::Node* c : graph.consumers(v)) {
      for (ir::Value*& in : c->inputs)
        if (in == v) in = inner;
    }
    v->type.dtype = DType::kFloat32;
    ir::Node* cast = graph.add_node("Cast", "", "cast_out_" + v->name);
    cast->opset = std::max<int64_t>(p->opset, 13);
    cast->inputs = {inner};
    cast->outputs = {v};
    ir::Attribute to;
    to.name = "to";
    to.type = ir::AttrType::kInt;
    to.i = static_cast<int64_t>(DType::kFloat32);
    cast->attrs.push_back(to);
  }
  // Topological order: every Cast right after its input's producer (or first, for inputs).
  {
    std::vector<std::unique_ptr<ir::Node>>& nodes = graph.mutable_nodes();
    std::vector<std::unique_ptr<ir::Node>> casts, rest;
    size_t original = order.size();
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (i >= original) {
        casts.push_back(std::move(nodes[i]));
      } else {
        rest.push_back(std::move(nodes[i]));
      }
    }
    std::unordered_map<const ir::Node*, std::vector<std::unique_ptr<ir::Node>>> after;
    std::vector<std::unique_ptr<ir::Node>> front;
    for (auto& c : casts) {
      const ir::Node* p = c->inputs[0]->producer;
      if (p == nullptr) {
        front.push_back(std::move(c));
      } else {
        after[p].push_back(std::move(c));
      }
    }
    nodes.clear();
    for (auto& c : front) nodes.push_back(std::move(c));
    for (auto& n : rest) {
      const ir::Node* key = n.get();
      nodes.push_back(std::move(n));
      auto it = after.find(key);
      if (it != after.end())
        for (auto& c : it->second) nodes.push_back(std::move(c));
    }
    graph.relink();
  }
  graph.remove_unused_values();
  return true;
}

}  // namespace kiln::passes
