#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

std::string key_of(std::string_view domain, std::string_view op) {
  std::string k(domain == "ai.onnx" ? std::string_view() : domain);
  k += ':';
  k += op;
  return k;
}

}  // namespace

InferContext::InferContext(const ir::Node& node, std::vector<const ir::TypeInfo*> input_types,
                           std::vector<const Tensor*> input_constants)
    : node_(node),
      input_types_(std::move(input_types)),
      input_constants_(std::move(input_constants)),
      outputs_(node.outputs.size()) {}

bool InferContext::has_input(int i) const {
  return node_.has_input(i);
}

const ir::TypeInfo& InferContext::input_type(int i) const {
  static const ir::TypeInfo kUnknown;
  if (i < 0 || i >= num_inputs() || input_types_[static_cast<size_t>(i)] == nullptr)
    return kUnknown;
  return *input_types_[static_cast<size_t>(i)];
}

const Tensor* InferContext::input_constant(int i) const {
  if (i < 0 || i >= static_cast<int>(input_constants_.size())) return nullptr;
  return input_constants_[static_cast<size_t>(i)];
}

void InferContext::set_output(int i, ir::TypeInfo t) {
  if (i >= 0 && i < num_outputs()) outputs_[static_cast<size_t>(i)] = std::move(t);
}

const OpRegistry& OpRegistry::global() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_elementwise_ops(r);
    register_reduction_ops(r);
    register_nn_ops(r);
    register_tensor_ops(r);
    register_control_ops(r);
    register_ml_ops(r);
    register_misc_ops(r);
    register_fused_ops(r);
    return r;
  }();
  return registry;
}

void OpRegistry::add(OpDef def) {
  std::string k = key_of(def.domain, def.op_type);
  defs_[k] = std::move(def);
}

const OpDef* OpRegistry::find(std::string_view domain, std::string_view op_type) const {
  auto it = defs_.find(key_of(domain, op_type));
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<const OpDef*> OpRegistry::all() const {
  std::vector<const OpDef*> v;
  for (const auto& [k, d] : defs_) v.push_back(&d);
  return v;
}

Status infer_node(const OpDef& def, InferContext& ctx) {
  const ir::Node& node = ctx.node();
  const int nin = node.num_inputs();
  if (nin < def.min_inputs || nin > def.max_inputs) {
    return ctx.fail("has " + std::to_string(nin) + " inputs, expected " +
                    (def.max_inputs == kVariadic
                         ? "at least " + std::to_string(def.min_inputs)
                         : std::to_string(def.min_inputs) + ".." + std::to_string(def.max_inputs)));
  }
  const int nout = static_cast<int>(node.outputs.size());
  if (nout < def.min_outputs || nout > def.max_outputs) {
    return ctx.fail("has " + std::to_string(nout) + " outputs, expected " +
                    std::to_string(def.min_outputs) + ".." + std::to_string(def.max_outputs));
  }
  if (def.infer == nullptr) return Status::Ok();
  KILN_RETURN_IF_ERROR(def.infer(ctx));
  return ctx.status();
}

}  // namespace kiln::ops
