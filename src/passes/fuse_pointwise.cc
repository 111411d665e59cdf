// Fuses chains of elementwise ops into kiln.Pointwise nodes (ops/fused_pointwise.cc), one kernel
// per chain on the GPU (generated with NVRTC) instead of one per op.
//
// A group is a connected set of supported nodes (see `describe`) whose outputs all have the same
// shape S (provably: equal known sizes or equal symbols); its external inputs broadcast into S,
// so every fused output spans the whole iteration space (no reduction). Smaller intermediates
// join only when nothing outside the group reads them (they are recomputed per element). Values a
// group produces that are read outside it, or are graph outputs, become the fused node's outputs.
// Nodes are visited in graph order and join the group of a producer only when no node outside the
// groups reads one of their values before the joining node: the fused node takes the place of the
// group's last node, so every reader still comes after it, and no path leaves the group and comes
// back (no cycle). Groups of fewer than two nodes, or with more than kMaxInputs external inputs,
// are left alone. Values named by subgraphs (outer scope) are never fused.
#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "ops/fused_pointwise.h"
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using ops::PwOp;

constexpr size_t kMaxInputs = 16;

// A supported node: its instruction (operand values; null for absent Clip bounds).
struct Desc {
  PwOp op = PwOp::kAdd;
  DType dtype = DType::kUndefined;
  std::vector<ir::Value*> args;
};

bool is_default_domain(const ir::Node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

// A tensor value with a known dtype and rank whose dims are known sizes or named symbols.
bool shaped(const ir::Value* v) {
  if (v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known) return false;
  if (!ops::pw_dtype_supported(v->type.dtype)) return false;
  for (const ir::Dim& d : v->type.shape.dims)
    if (!d.known() && d.symbol.empty()) return false;
  return true;
}

bool same_shape(const ir::Shape& a, const ir::Shape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i)
    if (!match::same_dim(a.dims[static_cast<size_t>(i)], b.dims[static_cast<size_t>(i)]))
      return false;
  return true;
}

// `x` broadcasts into `s` without growing it.
bool broadcasts_into(const ir::Shape& x, const ir::Shape& s) {
  if (x.rank() > s.rank()) return false;
  for (int i = 0; i < x.rank(); ++i) {
    const ir::Dim& d = x.dims[static_cast<size_t>(i)];
    const ir::Dim& t = s.dims[static_cast<size_t>(s.rank() - x.rank() + i)];
    if (!match::dim_is(d, 1) && !match::same_dim(d, t)) return false;
  }
  return true;
}

bool is_scalar_constant(const ir::Value* v) {
  return v != nullptr && v->constant && !v->is_graph_input && v->constant->numel() == 1;
}

std::optional<PwOp> simple_op(const std::string& t) {
  static const std::unordered_map<std::string, PwOp> kOps = {
      {"Add", PwOp::kAdd},     {"Sub", PwOp::kSub},
      {"Mul", PwOp::kMul},     {"Div", PwOp::kDiv},
      {"Neg", PwOp::kNeg},     {"Abs", PwOp::kAbs},
      {"Relu", PwOp::kRelu},   {"Sigmoid", PwOp::kSigmoid},
      {"Tanh", PwOp::kTanh},   {"Erf", PwOp::kErf},
      {"Exp", PwOp::kExp},     {"Log", PwOp::kLog},
      {"Sqrt", PwOp::kSqrt},   {"Reciprocal", PwOp::kReciprocal},
      {"Pow", PwOp::kPow},     {"Cast", PwOp::kCast},
      {"Where", PwOp::kWhere}, {"Equal", PwOp::kEqual},
      {"Less", PwOp::kLess},   {"Greater", PwOp::kGreater},
      {"Not", PwOp::kNot},     {"And", PwOp::kAnd},
      {"Or", PwOp::kOr},       {"IsNaN", PwOp::kIsNaN},
      {"Clip", PwOp::kClip},   {"Gelu", PwOp::kGelu},
      {"Max", PwOp::kMax},     {"Min", PwOp::kMin},
  };
  auto it = kOps.find(t);
  if (it == kOps.end()) return std::nullopt;
  return it->second;
}

// The node as an instruction, when the fused kernel computes exactly what it does.
std::optional<Desc> describe(const ir::Node& n) {
  if (!is_default_domain(n) || n.outputs.size() != 1 || !n.has_output(0)) return std::nullopt;
  for (const ir::Attribute& a : n.attrs)
    if (a.g || !a.graphs.empty()) return std::nullopt;
  std::optional<PwOp> op = simple_op(n.op_type);
  if (!op) return std::nullopt;
  Desc d;
  d.op = *op;
  d.dtype = n.outputs[0]->type.dtype;
  if (!shaped(n.outputs[0])) return std::nullopt;
  const int arity = ops::pw_arity(d.op);
  if (d.op == PwOp::kClip) {
    if (n.opset < 11 || n.num_inputs() < 1 || n.inputs.size() > 3) return std::nullopt;
    for (size_t i = 0; i < 3; ++i) {
      ir::Value* v = i < n.inputs.size() ? n.inputs[i] : nullptr;
      if (i > 0 && v != nullptr && !is_scalar_constant(v)) return std::nullopt;
      d.args.push_back(v);
    }
    if (d.args[0] == nullptr) return std::nullopt;
  } else {
    if (static_cast<int>(n.inputs.size()) != arity) return std::nullopt;
    for (ir::Value* v : n.inputs) {
      if (v == nullptr) return std::nullopt;
      d.args.push_back(v);
    }
  }
  for (ir::Value* v : d.args)
    if (v != nullptr && !shaped(v)) return std::nullopt;
  Status err;
  if (d.op == PwOp::kPow) {
    if (!is_scalar_constant(d.args[1]) || d.args[0]->type.dtype != DType::kFloat32 ||
        d.args[1]->type.dtype != DType::kFloat32) {
      return std::nullopt;
    }
  } else if (d.op == PwOp::kCast) {
    if (n.attr_int("saturate", 1, &err) != 1 || !err.ok()) return std::nullopt;
    const int64_t to = n.attr_int("to", -1, &err);
    if (!err.ok() || to != static_cast<int64_t>(d.dtype)) return std::nullopt;
  } else if (d.op == PwOp::kGelu) {
    const std::string a = n.attr_string("approximate", "none", &err);
    if (!err.ok() || (a != "none" && a != "tanh")) return std::nullopt;
    if (a == "tanh") d.op = PwOp::kGeluTanh;
  } else if (!n.attrs.empty()) {
    return std::nullopt;  // e.g. legacy broadcast attributes
  }
  std::vector<DType> dts;
  for (ir::Value* v : d.args) dts.push_back(v ? v->type.dtype : DType::kUndefined);
  ops::PwProgram p;
  p.num_inputs = static_cast<int>(dts.size());
  ops::PwInstr in;
  in.op = d.op;
  in.dtype = d.dtype;
  for (size_t i = 0; i < d.args.size(); ++i)
    in.args.push_back(d.args[i] ? static_cast<int32_t>(i) : -1);
  p.instrs.push_back(in);
  if (!ops::check_pw_types(p, dts).ok()) return std::nullopt;
  // Float-only math on float32/16: the unfused kernels of these compute in float too.
  return d;
}

struct Group {
  std::vector<ir::Node*> nodes;  // in graph order
  ir::Shape shape;
  bool alive = true;
};

class Fuser {
 public:
  explicit Fuser(ir::Graph& g) : g_(g), uses_(g) {
    std::vector<std::string> outer;
    g.collect_outer_scope_names(&outer);
    for (const std::string& name : outer)
      if (const ir::Value* v = g.find_value(name)) outer_.insert(v);
    for (const ir::Value* v : g.outputs) graph_out_.insert(v);
  }

  bool run() {
    size_t idx = 0;
    for (const auto& np : g_.nodes()) pos_[np.get()] = idx++;
    for (const auto& np : g_.nodes()) visit(np.get());
    bool changed = false;
    std::unordered_set<const ir::Node*> dead;
    for (Group& gr : groups_) {
      if (!gr.alive || gr.nodes.size() < 2) continue;
      changed |= rewrite(gr, &dead);
    }
    if (!changed) return false;
    g_.remove_nodes_if([&](const ir::Node& n) { return dead.count(&n) > 0; });
    g_.remove_unused_values();
    return true;
  }

 private:
  void visit(ir::Node* n) {
    std::optional<Desc> d = describe(*n);
    if (!d || outer_.count(n->outputs[0])) return;
    for (ir::Value* v : d->args)
      if (v && outer_.count(v)) return;
    const ir::Shape& s = n->outputs[0]->type.shape;
    for (ir::Value* v : d->args)
      if (v && !broadcasts_into(v->type.shape, s)) return;
    desc_[n] = *d;
    // Groups of this node's producers with the same shape.
    std::vector<int> cand;
    for (ir::Value* v : d->args) {
      if (v == nullptr) continue;
      auto it = group_of_value_.find(v);
      if (it == group_of_value_.end()) continue;
      const int gi = it->second;
      if (!same_shape(groups_[static_cast<size_t>(gi)].shape, s) && !absorbable(gi, n)) continue;
      if (std::find(cand.begin(), cand.end(), gi) == cand.end()) cand.push_back(gi);
    }
    std::vector<int> chosen;
    if (!cand.empty() && can_join(cand, n)) {
      chosen = cand;
    } else {
      for (int gi : cand) {
        if (can_join({gi}, n)) {
          chosen = {gi};
          break;
        }
      }
    }
    int target;
    if (chosen.empty()) {
      groups_.push_back(Group{{}, s, true});
      target = static_cast<int>(groups_.size()) - 1;
    } else {
      target = chosen[0];
      for (size_t k = 1; k < chosen.size(); ++k) {
        Group& o = groups_[static_cast<size_t>(chosen[k])];
        for (ir::Node* m : o.nodes) {
          group_of_node_[m] = target;
          for (ir::Value* v : m->outputs) group_of_value_[v] = target;
        }
        Group& t = groups_[static_cast<size_t>(target)];
        t.nodes.insert(t.nodes.end(), o.nodes.begin(), o.nodes.end());
        o.nodes.clear();
        o.alive = false;
      }
    }
    Group& t = groups_[static_cast<size_t>(target)];
    t.shape = s;  // absorbed smaller groups take n's shape
    t.nodes.push_back(n);
    std::sort(t.nodes.begin(), t.nodes.end(),
              [&](const ir::Node* a, const ir::Node* b) { return pos_[a] < pos_[b]; });
    group_of_node_[n] = target;
    group_of_value_[n->outputs[0]] = target;
  }

  // A group of a smaller shape (e.g. a mask computed at [B, 1, 1, S]) whose values only n and
  // the group itself read: it joins n's group and is recomputed for every element of n's shape,
  // none of its values becoming an output.
  bool absorbable(int gi, const ir::Node* n) const {
    const Group& g = groups_[static_cast<size_t>(gi)];
    if (!broadcasts_into(g.shape, n->outputs[0]->type.shape)) return false;
    std::unordered_set<const ir::Node*> members(g.nodes.begin(), g.nodes.end());
    for (const ir::Node* m : g.nodes) {
      const ir::Value* v = m->outputs[0];
      if (graph_out_.count(v)) return false;
      for (const ir::Node* r : uses_.readers(v))
        if (r != n && !members.count(r)) return false;
    }
    return true;
  }

  // Merging groups `gs` with n is safe: no outside reader of their values comes before n, and
  // the merged group has at most kMaxInputs inputs.
  bool can_join(const std::vector<int>& gs, ir::Node* n) const {
    std::unordered_set<const ir::Node*> members{n};
    for (int gi : gs)
      for (ir::Node* m : groups_[static_cast<size_t>(gi)].nodes) members.insert(m);
    for (const ir::Node* m : members) {
      if (m == n) continue;
      for (const ir::Node* r : uses_.readers(m->outputs[0]))
        if (!members.count(r) && pos_.at(r) < pos_.at(n)) return false;
    }
    std::vector<const ir::Value*> ins;
    for (const ir::Node* m : members)
      for (const ir::Value* v : desc_.at(m).args) {
        if (v == nullptr) continue;
        const ir::Node* p = producer_in(v, members);
        if (p == nullptr && std::find(ins.begin(), ins.end(), v) == ins.end()) ins.push_back(v);
      }
    return ins.size() <= kMaxInputs;
  }

  const ir::Node* producer_in(const ir::Value* v,
                              const std::unordered_set<const ir::Node*>& members) const {
    auto it = group_of_value_.find(v);
    if (it == group_of_value_.end()) return nullptr;
    for (const ir::Node* m : members)
      if (m->outputs[0] == v) return m;
    return nullptr;
  }

  bool rewrite(Group& gr, std::unordered_set<const ir::Node*>* dead) {
    std::unordered_set<const ir::Node*> members(gr.nodes.begin(), gr.nodes.end());
    std::unordered_map<const ir::Value*, int32_t> ref;  // value → instruction index
    std::vector<ir::Value*> inputs;
    ops::PwProgram p;
    // Inputs first (refs need num_inputs), in order of first use.
    for (ir::Node* m : gr.nodes)
      for (ir::Value* v : desc_.at(m).args) {
        if (v == nullptr || producer_in(v, members) != nullptr) continue;
        if (std::find(inputs.begin(), inputs.end(), v) == inputs.end()) inputs.push_back(v);
      }
    p.num_inputs = static_cast<int>(inputs.size());
    std::vector<ir::Value*> outputs;
    for (ir::Node* m : gr.nodes) {
      const Desc& d = desc_.at(m);
      ops::PwInstr in;
      in.op = d.op;
      in.dtype = d.dtype;
      for (ir::Value* v : d.args) {
        if (v == nullptr) {
          in.args.push_back(-1);
        } else if (auto it = ref.find(v); it != ref.end()) {
          in.args.push_back(p.num_inputs + it->second);
        } else {
          const auto k = std::find(inputs.begin(), inputs.end(), v) - inputs.begin();
          in.args.push_back(static_cast<int32_t>(k));
        }
      }
      const int32_t idx = static_cast<int32_t>(p.instrs.size());
      ir::Value* out = m->outputs[0];
      ref[out] = idx;
      p.instrs.push_back(std::move(in));
      bool used_outside = graph_out_.count(out) > 0;
      for (const ir::Node* r : uses_.readers(out))
        if (!members.count(r)) used_outside = true;
      if (used_outside) {
        outputs.push_back(out);
        p.outputs.push_back(idx);
      }
    }
    if (outputs.empty()) return false;  // dead code: left to eliminate_dead_nodes
    ir::Node* last = gr.nodes.back();
    const std::string name = last->name;
    for (ir::Node* m : gr.nodes)
      if (m != last) dead->insert(m);
    last->op_type = std::string(ops::kPointwise);
    last->domain = ir::kKilnDomain;
    last->opset = 1;
    last->name = name.empty() ? "pointwise" : name + "/pointwise";
    last->inputs = inputs;
    last->outputs = outputs;
    last->attrs.clear();
    ops::encode_pw_program(p, last);
    return true;
  }

  ir::Graph& g_;
  match::Uses uses_;
  std::unordered_set<const ir::Value*> outer_, graph_out_;
  std::unordered_map<const ir::Node*, size_t> pos_;
  std::unordered_map<const ir::Node*, Desc> desc_;
  std::vector<Group> groups_;
  std::unordered_map<const ir::Node*, int> group_of_node_;
  std::unordered_map<const ir::Value*, int> group_of_value_;
};

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
  Fuser f(graph);
  changed |= f.run();
  return changed;
}

}  // namespace

StatusOr<bool> fuse_pointwise(ir::Graph& graph) {
  return fuse_in(graph);
}

}  // namespace kiln::passes
