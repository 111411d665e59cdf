#include <algorithm>

#include "backends/cuda/cuda_util.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

Status cuda_error(cudaError_t e, const char* what) {
  std::string msg =
      std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (e == cudaErrorMemoryAllocation) return Status(StatusCode::kOutOfMemory, msg);
  return Status(StatusCode::kInternal, msg);
}

int64_t DeviceTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

KernelContext::KernelContext(const ir::Node& node, std::vector<const DeviceTensor*> device_inputs,
                             std::vector<const Tensor*> host_inputs, KernelServices* services,
                             int64_t tactic, bool allow_tf32)
    : node_(node),
      device_inputs_(std::move(device_inputs)),
      host_inputs_(std::move(host_inputs)),
      services_(services),
      tactic_(tactic),
      allow_tf32_(allow_tf32) {
  host_inputs_.resize(device_inputs_.size(), nullptr);
}

bool KernelContext::has_input(int i) const {
  if (i < 0 || i >= num_inputs()) return false;
  return device_inputs_[static_cast<size_t>(i)] != nullptr ||
         host_inputs_[static_cast<size_t>(i)] != nullptr;
}

const DeviceTensor& KernelContext::input(int i) const {
  KILN_CHECK(i >= 0 && i < num_inputs() && device_inputs_[static_cast<size_t>(i)] != nullptr);
  return *device_inputs_[static_cast<size_t>(i)];
}

const Tensor& KernelContext::host_input(int i) const {
  KILN_CHECK(i >= 0 && i < num_inputs() && host_inputs_[static_cast<size_t>(i)] != nullptr);
  return *host_inputs_[static_cast<size_t>(i)];
}

Status KernelContext::unsupported_type(DType t) const {
  return node_.error(StatusCode::kUnsupportedDType,
                     std::string("the CUDA kernel does not support ") + dtype_name(t));
}

Status KernelContext::check_launch(const char* what) const {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return Status::Ok();
  return node_.error(StatusCode::kInternal, std::string(what) + ": " + cudaGetErrorName(e) + " (" +
                                                cudaGetErrorString(e) + ")");
}

const KernelRegistry& KernelRegistry::global() {
  static const KernelRegistry* r = [] {
    auto* reg = new KernelRegistry();
    register_elementwise_kernels(*reg);
    register_reduction_kernels(*reg);
    register_nn_kernels(*reg);
    register_tensor_kernels(*reg);
    register_misc_kernels(*reg);
    register_fused_kernels(*reg);
    return reg;
  }();
  return *r;
}

void KernelRegistry::add(const KernelDef& def) {
  defs_[std::string(def.domain) + "::" + std::string(def.op_type)] = def;
}

const KernelDef* KernelRegistry::find(std::string_view domain, std::string_view op_type) const {
  std::string key = std::string(domain == "ai.onnx" ? "" : domain) + "::" + std::string(op_type);
  auto it = defs_.find(key);
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<std::string> KernelRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : defs_) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

DType input_dtype(const ir::Node& node, int i) {
  if (!node.has_input(i)) return DType::kUndefined;
  const ir::TypeInfo& t = node.inputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() ? t.dtype : DType::kUndefined;
}

DType output_dtype(const ir::Node& node, int i) {
  if (!node.has_output(i)) return DType::kUndefined;
  const ir::TypeInfo& t = node.outputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() ? t.dtype : DType::kUndefined;
}

std::string require_dtypes(const ir::Node& node, std::initializer_list<DType> allowed) {
  auto check = [&](const ir::Value* v, const char* side, size_t i) -> std::string {
    if (v == nullptr) return {};
    if (!v->type.is_tensor()) {
      return std::string(side) + " " + std::to_string(i) + " is not a tensor";
    }
    if (std::find(allowed.begin(), allowed.end(), v->type.dtype) == allowed.end()) {
      return std::string(side) + " " + std::to_string(i) + " has dtype " +
             dtype_name(v->type.dtype);
    }
    return {};
  };
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    std::string r = check(node.inputs[i], "input", i);
    if (!r.empty()) return r;
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    std::string r = check(node.outputs[i], "output", i);
    if (!r.empty()) return r;
  }
  return {};
}

}  // namespace kiln::cuda
