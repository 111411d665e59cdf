// CUDA kernels: one registry of KernelDefs, registered per op family from
// src/backends/cuda/<family>.{cc,cu} through register_<family>_kernels().
//
// A kernel def answers "can you run this node?" at build time from the node's inferred types
// (supports), and runs it at execution time on the context's stream (run). Inputs a kernel needs
// on the host (shape-like tensors: Reshape's shape, Slice's starts, ...) are listed in host_inputs;
// the executor hands them over as host Tensors and every other input as a DeviceTensor.
// Kernels never synchronize the stream and never allocate device memory other than through the
// context, so a run can be captured into a CUDA graph.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cudnnContext* cudnnHandle_t;

namespace kiln::cuda {

// A dense row-major tensor in device memory. Not owning.
struct DeviceTensor {
  void* data = nullptr;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int64_t numel() const;
  uint64_t nbytes() const { return dtype_storage_bytes(dtype, static_cast<uint64_t>(numel())); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// What the executor provides to a running kernel (implemented by the executor).
class KernelServices {
 public:
  virtual ~KernelServices() = default;
  // Device memory for output `i` of the running node, valid until the output's last use.
  virtual StatusOr<DeviceTensor*> allocate_output(int i, DType dtype,
                                                  std::vector<int64_t> shape) = 0;
  // Output i shares input j's bytes, with a new shape of the same byte size.
  virtual Status alias_output(int i, int j, std::vector<int64_t> shape) = 0;
  // Scratch memory valid until the kernel returns (stream-ordered); fails beyond the
  // configured workspace limit.
  virtual StatusOr<void*> workspace(uint64_t bytes) = 0;
  virtual uint64_t workspace_limit() const = 0;
  virtual cudaStream_t stream() const = 0;
  virtual cublasLtHandle_t cublaslt() = 0;
  virtual cudnnHandle_t cudnn() = 0;
};

class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::vector<const DeviceTensor*> device_inputs,
                std::vector<const Tensor*> host_inputs, KernelServices* services, int64_t tactic,
                bool allow_tf32);

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return node_.opset; }
  cudaStream_t stream() const { return services_->stream(); }
  cublasLtHandle_t cublaslt() { return services_->cublaslt(); }
  cudnnHandle_t cudnn() { return services_->cudnn(); }
  // The tactic the builder chose for this node (-1: the kernel's default). Tunable kernels
  // read it as an encoded algorithm (backend/tactic.h) and fall back to their default when it
  // does not apply at the run shape.
  int64_t tactic() const { return tactic_; }
  // Build-time tuning: when set, a tunable kernel appends the tactics it can run at this run's
  // shapes (its default first; at most one list per run) and runs as usual.
  std::vector<int64_t>* tactic_candidates() const { return candidates_; }
  void set_tactic_candidates(std::vector<int64_t>* c) { candidates_ = c; }
  // FP32 math may use TF32 tensor cores.
  bool allow_tf32() const { return allow_tf32_; }

  int num_inputs() const { return static_cast<int>(device_inputs_.size()); }
  bool has_input(int i) const;
  // A device input (for indices not declared host inputs).
  const DeviceTensor& input(int i) const;
  // A host input (for indices the kernel def declares in host_inputs).
  const Tensor& host_input(int i) const;

  int num_outputs() const { return static_cast<int>(node_.outputs.size()); }
  bool wants_output(int i) const { return node_.has_output(i); }
  StatusOr<DeviceTensor*> allocate(int i, DType dtype, std::vector<int64_t> shape) {
    return services_->allocate_output(i, dtype, std::move(shape));
  }
  Status alias(int i, int j, std::vector<int64_t> shape) {
    return services_->alias_output(i, j, std::move(shape));
  }
  StatusOr<void*> workspace(uint64_t bytes) { return services_->workspace(bytes); }
  uint64_t workspace_limit() const { return services_->workspace_limit(); }

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
  const Tensor* attr_tensor(std::string_view name) {
    return node_.attr_tensor(name, &attr_status_);
  }
  const Status& attr_status() const { return attr_status_; }

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
  // Checks the last kernel launch (cudaGetLastError) and names the node on failure.
  Status check_launch(const char* what) const;

 private:
  const ir::Node& node_;
  std::vector<const DeviceTensor*> device_inputs_;
  std::vector<const Tensor*> host_inputs_;
  KernelServices* services_;
  int64_t tactic_;
  bool allow_tf32_;
  std::vector<int64_t>* candidates_ = nullptr;
  Status attr_status_;
};

// Why the CUDA backend cannot run `node` ("" when it can). Reads the node's inferred input and
// output types (node.inputs[i]->type); dims may be symbolic.
using SupportsFn = std::string (*)(const ir::Node& node);
using RunFn = Status (*)(KernelContext& ctx);
// Build-time work for a node placed on the GPU of compute capability `sm` (e.g. 90), kept in the
// node's attributes so it travels in the engine (kiln.Pointwise compiles its kernel here).
using EmbedFn = Status (*)(ir::Node& node, int sm);

struct KernelDef {
  std::string_view domain;  // "" for the default ONNX domain
  std::string_view op_type;
  SupportsFn supports = nullptr;
  RunFn run = nullptr;
  // Bit i set: input i is read on the host (a shape-like int tensor such as Reshape's shape).
  uint64_t host_inputs = 0;
  // The kernel waits on the stream (an output whose size depends on data, as in NonZero): the
  // run cannot be captured into a CUDA graph.
  bool synchronizes = false;
  // The kernel takes tactics (KernelContext::tactic, tactic_candidates): the builder times its
  // candidates and keeps the fastest correct one.
  bool tunable = false;
  EmbedFn embed = nullptr;
  bool is_host_input(int i) const { return i >= 0 && i < 64 && ((host_inputs >> i) & 1u) != 0; }
};

class KernelRegistry {
 public:
  static const KernelRegistry& global();
  void add(const KernelDef& def);
  const KernelDef* find(std::string_view domain, std::string_view op_type) const;
  std::vector<std::string> names() const;

 private:
  std::unordered_map<std::string, KernelDef> defs_;
};

// Helpers for supports(): dtype of input/output i ("undefined" when absent or unknown).
DType input_dtype(const ir::Node& node, int i);
DType output_dtype(const ir::Node& node, int i);
// "" when every present input and output tensor has one of `allowed` dtypes, else the reason.
std::string require_dtypes(const ir::Node& node, std::initializer_list<DType> allowed);

void register_elementwise_kernels(KernelRegistry& r);
void register_reduction_kernels(KernelRegistry& r);
void register_nn_kernels(KernelRegistry& r);
void register_tensor_kernels(KernelRegistry& r);
void register_misc_kernels(KernelRegistry& r);
void register_fused_kernels(KernelRegistry& r);

}  // namespace kiln::cuda
