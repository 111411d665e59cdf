// CPU reference kernels: one function per op, registered per op family from
// src/backends/cpu/<family>.cc through register_<family>_kernels().
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/datum.h"
#include "ir/graph.h"

namespace kiln::cpu {

class Executor;
struct Scope;

class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::vector<const Datum*> inputs, Executor* executor,
                const Scope* scope, uint64_t max_tensor_bytes);

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return node_.opset; }

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // Present: given by the node and not an absent value.
  bool has_input(int i) const;
  const Datum& input(int i) const;
  // Input i as a tensor. For tensor-only ops the executor has checked the kind.
  const Tensor& tensor(int i) const;

  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  // True when the node names output i (omitted optional outputs need not be computed).
  bool wants_output(int i) const { return node_.has_output(i); }
  // Allocates a zeroed output tensor (checks the size limit).
  StatusOr<Tensor*> allocate(int i, DType dtype, std::vector<int64_t> shape);
  // A zeroed working tensor of the kernel (an FP32 accumulator for a half-precision output, say),
  // held to the same size limit; `what` names it in errors.
  StatusOr<Tensor> scratch(DType dtype, std::vector<int64_t> shape, std::string_view what) const;
  void set_output(int i, Datum d);
  void set_output(int i, Tensor t) { set_output(i, Datum::of(std::move(t))); }
  std::vector<Datum>& outputs() { return outputs_; }
  uint64_t max_tensor_bytes() const { return max_tensor_bytes_; }
  // The executor's Loop iteration limit (the default one for a node evaluated alone).
  int64_t max_loop_iterations() const;

  // Attribute getters; a wrongly typed attribute is recorded and reported after the kernel.
  int64_t attr_int(std::string_view name, int64_t def) {
    return node_.attr_int(name, def, &attr_status_);
  }
  float attr_float(std::string_view name, float def) {
    return node_.attr_float(name, def, &attr_status_);
  }
  std::string attr_string(std::string_view name, std::string def = {}) {
    return node_.attr_string(name, std::move(def), &attr_status_);
  }
  std::vector<int64_t> attr_ints(std::string_view name, std::vector<int64_t> def = {}) {
    return node_.attr_ints(name, std::move(def), &attr_status_);
  }
  std::vector<float> attr_floats(std::string_view name, std::vector<float> def = {}) {
    return node_.attr_floats(name, std::move(def), &attr_status_);
  }
  std::vector<std::string> attr_strings(std::string_view name, std::vector<std::string> def = {}) {
    return node_.attr_strings(name, std::move(def), &attr_status_);
  }
  const Tensor* attr_tensor(std::string_view name) {
    return node_.attr_tensor(name, &attr_status_);
  }
  const ir::Graph* attr_graph(std::string_view name) {
    return node_.attr_graph(name, &attr_status_);
  }
  const Status& attr_status() const { return attr_status_; }

  // Errors naming the node.
  Status invalid(std::string_view message) const {
    return node_.error(StatusCode::kInvalidModel, message);
  }
  Status unsupported(std::string_view message) const {
    return node_.error(StatusCode::kUnsupportedAttribute, message);
  }
  Status unsupported_type(DType t) const;
  Status out_of_range(std::string_view message) const {
    return node_.error(StatusCode::kOutOfRange, message);
  }

  // Runs a subgraph (an If branch, a Loop body, ...) with `inputs` bound to its inputs in
  // order; outer-scope names resolve in the scope this node runs in.
  StatusOr<std::vector<Datum>> run_subgraph(const ir::Graph& graph, std::vector<Datum> inputs);

 private:
  const ir::Node& node_;
  std::vector<const Datum*> inputs_;
  std::vector<Datum> outputs_;
  Executor* executor_;
  const Scope* scope_;
  uint64_t max_tensor_bytes_;
  Status attr_status_;
};

using KernelFn = Status (*)(KernelContext&);

class KernelRegistry {
 public:
  static const KernelRegistry& global();
  void add(std::string_view domain, std::string_view op_type, KernelFn fn);
  KernelFn find(std::string_view domain, std::string_view op_type) const;
  std::vector<std::string> names() const;

 private:
  std::unordered_map<std::string, KernelFn> kernels_;
};

void register_elementwise_kernels(KernelRegistry& r);
void register_reduction_kernels(KernelRegistry& r);
void register_nn_kernels(KernelRegistry& r);
void register_tensor_kernels(KernelRegistry& r);
void register_control_kernels(KernelRegistry& r);
void register_ml_kernels(KernelRegistry& r);
void register_misc_kernels(KernelRegistry& r);
void register_fused_kernels(KernelRegistry& r);

}  // namespace kiln::cpu
