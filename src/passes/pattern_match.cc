#include "passes/pattern_match.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

namespace kiln::passes::match {

Uses::Uses(const ir::Graph& graph) {
  for (const auto& n : graph.nodes()) {
    for (const ir::Value* v : n->inputs) {
      if (v == nullptr) continue;
      std::vector<ir::Node*>& r = readers_[v];
      if (r.empty() || r.back() != n.get()) r.push_back(n.get());
    }
  }
  for (const ir::Value* v : graph.outputs) pinned_.insert(v);
  std::vector<std::string> outer;
  graph.collect_outer_scope_names(&outer);
  for (const std::string& name : outer) {
    if (const ir::Value* v = graph.find_value(name)) pinned_.insert(v);
  }
}

const std::vector<ir::Node*>& Uses::readers(const ir::Value* v) const {
  static const std::vector<ir::Node*> kNone;
  auto it = readers_.find(v);
  return it == readers_.end() ? kNone : it->second;
}

bool Uses::pinned(const ir::Value* v) const {
  return pinned_.count(v) > 0;
}

bool Uses::only_by(const ir::Value* v, std::initializer_list<const ir::Node*> nodes) const {
  if (v == nullptr || pinned(v)) return false;
  for (const ir::Node* r : readers(v)) {
    if (std::find(nodes.begin(), nodes.end(), r) == nodes.end()) return false;
  }
  return true;
}

ir::Node* Uses::sole_reader(const ir::Value* v) const {
  if (v == nullptr || pinned(v)) return nullptr;
  const std::vector<ir::Node*>& r = readers(v);
  return r.size() == 1 ? r[0] : nullptr;
}

bool is_op(const ir::Node* n, std::string_view op, int inputs) {
  if (n == nullptr || !n->domain.empty() || n->op_type != op) return false;
  if (n->num_inputs() != inputs || static_cast<int>(n->inputs.size()) != inputs) return false;
  for (const ir::Value* v : n->inputs)
    if (v == nullptr) return false;
  return n->outputs.size() == 1 && n->outputs[0] != nullptr;
}

bool is_add2(const ir::Node* n) {
  return is_op(n, "Add", 2) || is_op(n, "Sum", 2);
}

ir::Node* producer(const ir::Value* v, std::string_view op) {
  if (v == nullptr || v->producer == nullptr || v->producer_output != 0) return nullptr;
  ir::Node* p = v->producer;
  if (!p->domain.empty() || p->op_type != op || p->outputs.size() != 1) return nullptr;
  return p;
}

ir::Value* other_input(const ir::Node* n, const ir::Value* v) {
  if (n == nullptr || n->inputs.size() != 2) return nullptr;
  if (n->inputs[0] == v) return n->inputs[1];
  if (n->inputs[1] == v) return n->inputs[0];
  return nullptr;
}

bool is_float_ranked(const ir::Value* v) {
  if (v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known) return false;
  const DType t = v->type.dtype;
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

bool scalar_for(const ir::Value* v, const ir::Value* x, double* out, bool nonfinite_ok) {
  if (v == nullptr || !v->constant || v->is_graph_input || x == nullptr) return false;
  const Tensor& t = *v->constant;
  if (t.numel() != 1 || !x->type.shape.rank_known || t.rank() > x->type.shape.rank()) return false;
  if (!is_floating(t.dtype()) && !is_integer(t.dtype())) return false;
  *out = t.get_double(0);
  return nonfinite_ok || std::isfinite(*out);
}

bool near(double v, double want, double rel) {
  return std::fabs(v - want) <= rel * std::fabs(want);
}

bool same_dim(const ir::Dim& a, const ir::Dim& b) {
  if (a.known() || b.known()) return a.known() && b.known() && a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}

bool dim_is(const ir::Dim& d, int64_t v) {
  return d.known() && d.value == v;
}

void splice(ir::Graph& graph, const std::vector<Replacement>& reps) {
  std::unordered_map<const ir::Node*, const Replacement*> at_anchor;
  std::unordered_set<const ir::Node*> removed, added;
  for (const Replacement& r : reps) {
    at_anchor[r.anchor] = &r;
    removed.insert(r.removed.begin(), r.removed.end());
    added.insert(r.added.begin(), r.added.end());
  }
  std::vector<std::unique_ptr<ir::Node>>& nodes = graph.mutable_nodes();
  std::unordered_map<const ir::Node*, std::unique_ptr<ir::Node>> owned;
  std::vector<const ir::Node*> order;
  for (auto& n : nodes) {
    order.push_back(n.get());
    owned[n.get()] = std::move(n);
  }
  std::vector<std::unique_ptr<ir::Node>> kept;
  for (const ir::Node* n : order) {
    if (added.count(n)) continue;  // placed at their anchor
    auto a = at_anchor.find(n);
    if (a != at_anchor.end()) {
      for (ir::Node* m : a->second->added) kept.push_back(std::move(owned[m]));
    }
    if (removed.count(n)) {
      for (ir::Value* v : n->outputs) {
        if (v && v->producer == n) {
          v->producer = nullptr;
          v->producer_output = -1;
        }
      }
      continue;
    }
    kept.push_back(std::move(owned[n]));
  }
  nodes = std::move(kept);
  graph.relink();
  graph.remove_unused_values();
}

bool Claims::any(const std::vector<const ir::Node*>& nodes) const {
  for (const ir::Node* n : nodes)
    if (taken_.count(n)) return true;
  return false;
}

void Claims::take(const std::vector<const ir::Node*>& nodes) {
  taken_.insert(nodes.begin(), nodes.end());
}

const Tensor* constant_of(const ir::Value* v) {
  if (v == nullptr || v->is_graph_input || !v->constant) return nullptr;
  return v->constant.get();
}

ir::Value* typed_value(ir::Graph& graph, std::string_view hint, DType dt,
                       std::vector<ir::Dim> dims) {
  ir::Value* v = graph.new_value(hint);
  ir::Shape sh;
  sh.rank_known = true;
  sh.dims = std::move(dims);
  v->type = ir::TypeInfo::tensor(dt, sh);
  return v;
}

ir::Value* constant_value(ir::Graph& graph, std::string_view hint, Tensor t) {
  ir::Value* v = graph.new_value(hint);
  v->type = ir::TypeInfo::tensor(t.dtype(), ir::Shape::of(t.shape()));
  v->constant = std::make_shared<const Tensor>(std::move(t));
  return v;
}

ir::Attribute int_attr(std::string_view name, int64_t v) {
  ir::Attribute a;
  a.name = std::string(name);
  a.type = ir::AttrType::kInt;
  a.i = v;
  return a;
}

ir::Attribute ints_attr(std::string_view name, std::vector<int64_t> v) {
  ir::Attribute a;
  a.name = std::string(name);
  a.type = ir::AttrType::kInts;
  a.ints = std::move(v);
  return a;
}

ir::Attribute string_attr(std::string_view name, std::string v) {
  ir::Attribute a;
  a.name = std::string(name);
  a.type = ir::AttrType::kString;
  a.s = std::move(v);
  return a;
}

}  // namespace kiln::passes::match
