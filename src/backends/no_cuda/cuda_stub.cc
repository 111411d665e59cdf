// The CUDA boundary of a CPU-only build: no GPU, nothing placed on one.
#include "backend/cuda_backend.h"

namespace kiln::backend {

bool cuda_built() { return false; }

StatusOr<GpuInfo> cuda_device() {
  return Status(StatusCode::kDeviceMismatch,
                "this Kiln was built without CUDA (configure with -DKILN_CUDA=ON on a machine "
                "with the CUDA toolkit)");
}

std::string cuda_supports(const ir::Node&) { return "this Kiln was built without CUDA"; }
std::vector<int> cuda_host_inputs(const ir::Node&) { return {}; }
bool cuda_synchronizes(const ir::Node&) { return false; }

}  // namespace kiln::backend
