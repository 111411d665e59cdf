// One registry of op definitions: arity, whether non-tensor values (sequences, optionals, maps)
// flow through the op, and type/shape inference. Each op family registers its ops from its own
// file (src/ops/<family>.cc) through register_<family>_ops().
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

class InferContext {
 public:
  InferContext(const ir::Node& node, std::vector<const ir::TypeInfo*> input_types,
               std::vector<const Tensor*> input_constants);

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return node_.opset; }
  int num_inputs() const { return static_cast<int>(input_types_.size()); }
  bool has_input(int i) const;
  // Type of input i (kind kUnknown when absent or not yet known).
  const ir::TypeInfo& input_type(int i) const;
  // Value of input i when it is a constant (initializer or folded), else null.
  const Tensor* input_constant(int i) const;
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  void set_output(int i, ir::TypeInfo t);
  const std::vector<ir::TypeInfo>& outputs() const { return outputs_; }

  // Attribute getters; a wrongly typed attribute is recorded in status().
  int64_t attr_int(std::string_view name, int64_t def) {
    return node_.attr_int(name, def, &status_);
  }
  float attr_float(std::string_view name, float def) {
    return node_.attr_float(name, def, &status_);
  }
  std::string attr_string(std::string_view name, std::string def = {}) {
    return node_.attr_string(name, std::move(def), &status_);
  }
  std::vector<int64_t> attr_ints(std::string_view name, std::vector<int64_t> def = {}) {
    return node_.attr_ints(name, std::move(def), &status_);
  }
  std::vector<float> attr_floats(std::string_view name, std::vector<float> def = {}) {
    return node_.attr_floats(name, std::move(def), &status_);
  }
  const Status& status() const { return status_; }

  // Errors naming the node: fail() is kInvalidModel.
  Status fail(std::string_view message) const {
    return node_.error(StatusCode::kInvalidModel, message);
  }

 private:
  const ir::Node& node_;
  std::vector<const ir::TypeInfo*> input_types_;
  std::vector<const Tensor*> input_constants_;
  std::vector<ir::TypeInfo> outputs_;
  Status status_;
};

using InferFn = Status (*)(InferContext&);

struct OpDef {
  std::string domain;  // "" for the default ONNX domain
  std::string op_type;
  int min_inputs = 0;
  int max_inputs = 0;  // kVariadic: no upper bound
  int min_outputs = 1;
  int max_outputs = 1;
  // True when every input and output is a tensor; the executor checks this before calling the
  // kernel, so kernels of tensor-only ops may read inputs as tensors without checking.
  bool tensor_only = true;
  InferFn infer = nullptr;  // null: output types stay unknown until run time
  // The first min_inputs inputs are required (the executor checks they are given), unless the op
  // has optional inputs ahead of required ones (Loop's M and cond, Scan-8's sequence_lens).
  bool leading_inputs_optional = false;
};
inline constexpr int kVariadic = 1 << 20;

// An OpDef from its arity and inference function (the form every family registers with).
inline OpDef make_op_def(std::string domain, std::string op_type, int min_inputs, int max_inputs,
                         int min_outputs, int max_outputs, InferFn infer, bool tensor_only = true) {
  OpDef d;
  d.domain = std::move(domain);
  d.op_type = std::move(op_type);
  d.min_inputs = min_inputs;
  d.max_inputs = max_inputs;
  d.min_outputs = min_outputs;
  d.max_outputs = max_outputs;
  d.tensor_only = tensor_only;
  d.infer = infer;
  return d;
}

class OpRegistry {
 public:
  // The registry of every op Kiln knows, built on first use.
  static const OpRegistry& global();

  void add(OpDef def);
  const OpDef* find(std::string_view domain, std::string_view op_type) const;
  std::vector<const OpDef*> all() const;

 private:
  std::unordered_map<std::string, OpDef> defs_;  // key: domain + ":" + op_type
};

// Runs `def`'s inference for `node`, checking arity first. Output types land in ctx.
Status infer_node(const OpDef& def, InferContext& ctx);

// Family registration functions (one file each in src/ops/).
void register_elementwise_ops(OpRegistry& r);
void register_reduction_ops(OpRegistry& r);
void register_nn_ops(OpRegistry& r);
void register_tensor_ops(OpRegistry& r);
void register_control_ops(OpRegistry& r);
void register_ml_ops(OpRegistry& r);
void register_misc_ops(OpRegistry& r);
// Kiln's own fused ops (domain kKilnDomain), made by the fusion passes: src/ops/fused_*.cc.
void register_fused_ops(OpRegistry& r);

}  // namespace kiln::ops
