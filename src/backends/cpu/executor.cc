#include "backends/cpu/executor.h"

#include <chrono>
#include <exception>
#include <new>
#include <unordered_set>

namespace kiln::cpu {
namespace {

bool node_supported(const ir::Node& n) {
  return ops::OpRegistry::global().find(n.domain, n.op_type) != nullptr &&
         KernelRegistry::global().find(n.domain, n.op_type) != nullptr;
}

void collect_unsupported(const ir::Graph& g, std::vector<const ir::Node*>* out) {
  for (const auto& n : g.nodes()) {
    if (!node_supported(*n)) out->push_back(n.get());
    for (const ir::Attribute& a : n->attrs) {
      if (a.g) collect_unsupported(*a.g, out);
      for (const auto& sg : a.graphs)
        if (sg) collect_unsupported(*sg, out);
    }
  }
}

// Checks that a fed value matches the declared type of a graph input.
Status check_feed(const ir::Value& input, const Datum& d) {
  const ir::TypeInfo& t = input.type;
  if (t.kind != ir::TypeInfo::Kind::kTensor) return Status::Ok();
  if (!d.is_tensor()) {
    return invalid_argument("input '" + input.name + "' expects a tensor, got " + d.describe());
  }
  const Tensor& x = d.tensor;
  if (t.dtype != DType::kUndefined && x.dtype() != t.dtype) {
    return invalid_argument("input '" + input.name + "' expects " + t.to_string() + ", got " +
                            x.type_string());
  }
  if (t.shape.rank_known) {
    bool ok = t.shape.rank() == x.rank();
    for (int i = 0; ok && i < x.rank(); ++i) {
      const ir::Dim& dim = t.shape.dims[static_cast<size_t>(i)];
      if (dim.known() && dim.value != x.dim(i)) ok = false;
    }
    if (!ok) {
      return invalid_argument("input '" + input.name + "' expects " + t.to_string() + ", got " +
                              x.type_string());
    }
  }
  return Status::Ok();
}

// Required inputs (the first min_inputs of an op) must be given: kernels read them unchecked.
Status check_required_inputs(const ir::Node& node, const ops::OpDef& def,
                             const std::vector<const Datum*>& inputs) {
  if (def.leading_inputs_optional) return Status::Ok();
  for (int i = 0; i < def.min_inputs; ++i) {
    if (i >= static_cast<int>(inputs.size()) || inputs[static_cast<size_t>(i)] == nullptr ||
        inputs[static_cast<size_t>(i)]->kind == Datum::Kind::kAbsent) {
      return node.error(StatusCode::kInvalidModel,
                        "required input " + std::to_string(i) + " is missing");
    }
  }
  return Status::Ok();
}

}  // namespace

const Datum* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent) {
    auto it = s->values.find(name);
    if (it != s->values.end()) return &it->second;
  }
  return nullptr;
}

std::vector<const ir::Node*> find_unsupported_nodes(const ir::Graph& graph) {
  std::vector<const ir::Node*> out;
  collect_unsupported(graph, &out);
  return out;
}

StatusOr<std::unique_ptr<Executor>> Executor::create(const ir::Graph& graph, Options options) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->main_ = &graph;
  ex->options_ = options;
  std::vector<const ir::Node*> unsupported;
  KILN_RETURN_IF_ERROR(ex->prepare(graph, &unsupported));
  if (!unsupported.empty()) {
    std::string msg = std::to_string(unsupported.size()) + " node(s) have no CPU kernel:";
    size_t shown = 0;
    for (const ir::Node* n : unsupported) {
      if (shown++ == 10) {
        msg += " ...";
        break;
      }
      msg += " " + n->label() + (n->domain.empty() ? "" : " (domain " + n->domain + ")");
    }
    return unsupported_op(msg);
  }
  return ex;
}

Status Executor::prepare(const ir::Graph& graph, std::vector<const ir::Node*>* unsupported) {
  Plan plan;
  // Last step reading each local value; graph outputs are never released.
  std::unordered_map<std::string, size_t> last_use;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ir::Node& n = *nodes[i];
    for (const ir::Value* v : n.inputs) {
      if (v && !v->is_outer_scope) last_use[v->name] = i;
    }
    // Values read by subgraphs through outer-scope names stay alive until this node is done.
    for (const ir::Attribute& a : n.attrs) {
      std::vector<std::string> names;
      if (a.g) a.g->collect_outer_scope_names(&names);
      for (const auto& sg : a.graphs)
        if (sg) sg->collect_outer_scope_names(&names);
      for (const auto& nm : names) last_use[nm] = i;
    }
    for (const ir::Value* v : n.outputs) {
      if (v && !last_use.count(v->name)) last_use[v->name] = i;
    }
  }
  std::unordered_set<std::string> keep;
  for (const ir::Value* v : graph.outputs)
    if (v) keep.insert(v->name);
  {
    std::vector<std::string> outer_names;
    for (const auto& n : nodes) {
      for (const ir::Attribute& a : n->attrs) {
        if (a.g) a.g->collect_outer_scope_names(&outer_names);
        for (const auto& sg : a.graphs)
          if (sg) sg->collect_outer_scope_names(&outer_names);
      }
    }
    std::unordered_set<std::string> wanted(outer_names.begin(), outer_names.end());
    for (const auto& v : graph.values()) {
      if (v->constant && !v->is_graph_input && wanted.count(v->name)) {
        plan.scoped_constants.push_back(v.get());
      }
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ir::Node& n = *nodes[i];
    Step s{&n,
           ops::OpRegistry::global().find(n.domain, n.op_type),
           KernelRegistry::global().find(n.domain, n.op_type),
           {}};
    if (s.def == nullptr || s.kernel == nullptr) unsupported->push_back(&n);
    plan.steps.push_back(std::move(s));
    for (const ir::Attribute& a : n.attrs) {
      if (a.g) KILN_RETURN_IF_ERROR(prepare(*a.g, unsupported));
      for (const auto& sg : a.graphs)
        if (sg) KILN_RETURN_IF_ERROR(prepare(*sg, unsupported));
    }
  }
  for (const auto& [name, step] : last_use) {
    if (!keep.count(name)) plan.steps[step].release_after.push_back(name);
  }
  plans_[&graph] = std::move(plan);
  return Status::Ok();
}

StatusOr<std::vector<Datum>> Executor::run(const std::vector<std::pair<std::string, Datum>>& feeds,
                                           std::vector<std::pair<const ir::Node*, double>>* times) {
  std::vector<Datum> inputs(main_->inputs.size());
  std::vector<bool> given(main_->inputs.size(), false);
  for (const auto& [name, d] : feeds) {
    bool found = false;
    for (size_t i = 0; i < main_->inputs.size(); ++i) {
      if (main_->inputs[i]->name == name) {
        KILN_RETURN_IF_ERROR(check_feed(*main_->inputs[i], d));
        inputs[i] = d;
        given[i] = true;
        found = true;
      }
    }
    if (!found) return invalid_argument("the model has no input named '" + name + "'");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (given[i]) continue;
    const ir::Value* v = main_->inputs[i];
    if (v->constant) {
      inputs[i] = Datum::of(*v->constant);
    } else {
      return invalid_argument("input '" + v->name + "' (" + v->type.to_string() +
                              ") was not given");
    }
  }
  return run_graph(*main_, std::move(inputs), nullptr, times);
}

StatusOr<std::vector<Datum>> Executor::run_graph(
    const ir::Graph& graph, std::vector<Datum> inputs, const Scope* parent,
    std::vector<std::pair<const ir::Node*, double>>* times) {
  auto it = plans_.find(&graph);
  if (it == plans_.end()) return internal_error("graph '" + graph.name + "' was not prepared");
  if (inputs.size() != graph.inputs.size()) {
    return invalid_model("graph '" + graph.name + "' takes " + std::to_string(graph.inputs.size()) +
                         " inputs, was given " + std::to_string(inputs.size()));
  }
  Scope scope;
  scope.parent = parent;
  for (const ir::Value* v : it->second.scoped_constants) {
    scope.values[v->name] = Datum::of(*v->constant);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    scope.values[graph.inputs[i]->name] = std::move(inputs[i]);
  }
  for (const Step& step : it->second.steps) {
    if (times == nullptr) {
      KILN_RETURN_IF_ERROR(run_step(step, scope));
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(run_step(step, scope));
    times->emplace_back(
        step.node,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<Datum> outputs;
  outputs.reserve(graph.outputs.size());
  for (const ir::Value* v : graph.outputs) {
    const Datum* d = scope.find(v->name);
    if (d != nullptr) {
      outputs.push_back(*d);
    } else if (v->constant) {
      outputs.push_back(Datum::of(*v->constant));
    } else {
      return invalid_model("graph output '" + v->name + "' was never computed");
    }
  }
  return outputs;
}

Status Executor::run_step(const Step& step, Scope& scope) {
  const ir::Node& node = *step.node;
  static const Datum kAbsent;
  std::vector<Datum> constants;
  constants.reserve(node.inputs.size());
  std::vector<const Datum*> inputs(node.inputs.size(), &kAbsent);
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const ir::Value* v = node.inputs[i];
    if (v == nullptr) continue;
    const Datum* d = scope.find(v->name);
    if (d == nullptr && v->constant) {
      constants.push_back(Datum::of(*v->constant));
      d = &constants.back();
    }
    if (d == nullptr) {
      return node.error(StatusCode::kInvalidModel,
                        "input '" + v->name + "' has not been computed before this node");
    }
    if (step.def->tensor_only && !d->is_tensor() && d->kind != Datum::Kind::kAbsent) {
      return node.error(StatusCode::kInvalidModel, "input " + std::to_string(i) + " ('" + v->name +
                                                       "') is " + datum_kind_phrase(d->kind) +
                                                       ", expected a tensor");
    }
    inputs[i] = d;
  }
  KILN_RETURN_IF_ERROR(check_required_inputs(node, *step.def, inputs));
  KernelContext ctx(node, std::move(inputs), this, &scope, options_.max_tensor_bytes);
  Status st;
  try {
    st = step.kernel(ctx);
  } catch (const std::bad_alloc&) {
    st = node.error(StatusCode::kOutOfMemory, "ran out of host memory");
  } catch (const std::exception& e) {
    st = node.error(StatusCode::kInternal, std::string("kernel threw: ") + e.what());
  }
  if (st.ok() && !ctx.attr_status().ok()) st = ctx.attr_status();
  if (!st.ok()) return st;
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const ir::Value* v = node.outputs[i];
    if (v == nullptr) continue;
    Datum& d = ctx.outputs()[i];
    if (d.kind == Datum::Kind::kAbsent) {
      return node.error(StatusCode::kInternal, "kernel produced no value for output " +
                                                   std::to_string(i) + " ('" + v->name + "')");
    }
    scope.values[v->name] = std::move(d);
  }
  for (const std::string& name : step.release_after) scope.values.erase(name);
  return Status::Ok();
}

// ---- KernelContext ----

KernelContext::KernelContext(const ir::Node& node, std::vector<const Datum*> inputs,
                             Executor* executor, const Scope* scope, uint64_t max_tensor_bytes)
    : node_(node),
      inputs_(std::move(inputs)),
      outputs_(node.outputs.size()),
      executor_(executor),
      scope_(scope),
      max_tensor_bytes_(max_tensor_bytes) {}

bool KernelContext::has_input(int i) const {
  return i >= 0 && i < num_inputs() &&
         inputs_[static_cast<size_t>(i)]->kind != Datum::Kind::kAbsent;
}

const Datum& KernelContext::input(int i) const {
  static const Datum kAbsent;
  if (i < 0 || i >= num_inputs()) return kAbsent;
  return *inputs_[static_cast<size_t>(i)];
}

const Tensor& KernelContext::tensor(int i) const {
  const Datum& d = input(i);
  KILN_CHECK(d.is_tensor());
  return d.tensor;
}

int64_t KernelContext::max_loop_iterations() const {
  return executor_ != nullptr ? executor_->options().max_loop_iterations
                              : kDefaultMaxLoopIterations;
}

StatusOr<Tensor> KernelContext::scratch(DType dtype, std::vector<int64_t> shape,
                                        std::string_view what) const {
  StatusOr<Tensor> t = Tensor::create(dtype, std::move(shape), max_tensor_bytes_);
  if (!t.ok()) {
    Status st = t.take_status();
    return Status(st.code(), node_.label() + " " + std::string(what) + ": " + st.message());
  }
  return t;
}

StatusOr<Tensor*> KernelContext::allocate(int i, DType dtype, std::vector<int64_t> shape) {
  if (i < 0 || i >= num_outputs()) {
    return node_.error(StatusCode::kInternal,
                       "output index " + std::to_string(i) + " out of range");
  }
  StatusOr<Tensor> t = Tensor::create(dtype, std::move(shape), max_tensor_bytes_);
  if (!t.ok()) {
    Status st = t.take_status();
    return Status(st.code(), node_.label() + " output " + std::to_string(i) + ": " + st.message());
  }
  outputs_[static_cast<size_t>(i)] = Datum::of(std::move(t).value());
  return &outputs_[static_cast<size_t>(i)].tensor;
}

void KernelContext::set_output(int i, Datum d) {
  if (i >= 0 && i < num_outputs()) outputs_[static_cast<size_t>(i)] = std::move(d);
}

Status KernelContext::unsupported_type(DType t) const {
  return node_.error(StatusCode::kUnsupportedDType,
                     std::string("does not support dtype ") + dtype_name(t));
}

StatusOr<std::vector<Datum>> KernelContext::run_subgraph(const ir::Graph& graph,
                                                         std::vector<Datum> inputs) {
  if (executor_ == nullptr) {
    return node_.error(StatusCode::kInternal, "cannot run a subgraph outside an executor");
  }
  StatusOr<std::vector<Datum>> r = executor_->run_graph(graph, std::move(inputs), scope_);
  if (!r.ok())
    return r.take_status().with_context(node_.label() + " subgraph '" + graph.name + "'");
  return r;
}

// ---- KernelRegistry ----

const KernelRegistry& KernelRegistry::global() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    register_elementwise_kernels(r);
    register_reduction_kernels(r);
    register_nn_kernels(r);
    register_tensor_kernels(r);
    register_control_kernels(r);
    register_ml_kernels(r);
    register_misc_kernels(r);
    register_fused_kernels(r);
    return r;
  }();
  return registry;
}

void KernelRegistry::add(std::string_view domain, std::string_view op_type, KernelFn fn) {
  std::string k(domain == "ai.onnx" ? std::string_view() : domain);
  kernels_[k + ":" + std::string(op_type)] = fn;
}

KernelFn KernelRegistry::find(std::string_view domain, std::string_view op_type) const {
  std::string k(domain == "ai.onnx" ? std::string_view() : domain);
  auto it = kernels_.find(k + ":" + std::string(op_type));
  return it == kernels_.end() ? nullptr : it->second;
}

std::vector<std::string> KernelRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [k, f] : kernels_) v.push_back(k);
  return v;
}

}  // namespace kiln::cpu

namespace kiln::cpu {

StatusOr<std::vector<Datum>> evaluate_node(const ir::Node& node,
                                           const std::vector<const Datum*>& inputs,
                                           uint64_t max_tensor_bytes) {
  for (const ir::Attribute& a : node.attrs) {
    if (a.g || !a.graphs.empty()) {
      return node.error(StatusCode::kInternal, "nodes with subgraphs cannot be evaluated alone");
    }
  }
  const ops::OpDef* def = ops::OpRegistry::global().find(node.domain, node.op_type);
  KernelFn fn = KernelRegistry::global().find(node.domain, node.op_type);
  if (def == nullptr || fn == nullptr) {
    return node.error(StatusCode::kUnsupportedOp, "has no CPU kernel");
  }
  static const Datum kAbsent;
  std::vector<const Datum*> ins(inputs.size(), &kAbsent);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) ins[i] = inputs[i];
    if (def->tensor_only && ins[i]->kind != Datum::Kind::kAbsent && !ins[i]->is_tensor()) {
      return node.error(StatusCode::kInvalidModel,
                        "input " + std::to_string(i) + " is not a tensor");
    }
  }
  KILN_RETURN_IF_ERROR(check_required_inputs(node, *def, ins));
  KernelContext ctx(node, std::move(ins), nullptr, nullptr, max_tensor_bytes);
  Status st;
  try {
    st = fn(ctx);
  } catch (const std::bad_alloc&) {
    st = node.error(StatusCode::kOutOfMemory, "ran out of host memory");
  } catch (const std::exception& e) {
    st = node.error(StatusCode::kInternal, std::string("kernel threw: ") + e.what());
  }
  if (st.ok() && !ctx.attr_status().ok()) st = ctx.attr_status();
  if (!st.ok()) return st;
  return std::move(ctx.outputs());
}

}  // namespace kiln::cpu
