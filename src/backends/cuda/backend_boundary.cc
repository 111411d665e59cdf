// The CUDA side of src/backend/cuda_backend.h.
#include "backend/cuda_backend.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernel.h"

namespace kiln::backend {

bool cuda_built() {
  return true;
}

StatusOr<GpuInfo> cuda_device() {
  KILN_ASSIGN_OR_RETURN(cuda::DeviceInfo d, cuda::query_device());
  GpuInfo g;
  g.sm = d.sm;
  g.name = d.name;
  g.cuda_runtime = d.cuda_runtime;
  g.cuda_driver = d.cuda_driver;
  g.cudnn = d.cudnn;
  g.cublaslt = d.cublaslt;
  g.total_memory = d.total_memory;
  return g;
}

std::string cuda_supports(const ir::Node& node) {
  const cuda::KernelDef* def = cuda::KernelRegistry::global().find(node.domain, node.op_type);
  if (def == nullptr) return "no CUDA kernel for " + node.op_type;
  if (def->supports == nullptr) return {};
  return def->supports(node);
}

std::vector<int> cuda_host_inputs(const ir::Node& node) {
  std::vector<int> out;
  const cuda::KernelDef* def = cuda::KernelRegistry::global().find(node.domain, node.op_type);
  if (def == nullptr) return out;
  for (int i = 0; i < static_cast<int>(node.inputs.size()); ++i)
    if (def->is_host_input(i)) out.push_back(i);
  return out;
}

Status cuda_embed(ir::Node& node, int sm) {
  const cuda::KernelDef* def = cuda::KernelRegistry::global().find(node.domain, node.op_type);
  if (def == nullptr || def->embed == nullptr) return Status::Ok();
  return def->embed(node, sm);
}

bool cuda_synchronizes(const ir::Node& node) {
  const cuda::KernelDef* def = cuda::KernelRegistry::global().find(node.domain, node.op_type);
  return def != nullptr && def->synchronizes;
}

}  // namespace kiln::backend
