// The CUDA boundary of a CPU-only build: no GPU, nothing placed on one.
#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "runtime/engine_data.h"

namespace kiln::backend {

bool cuda_built() {
  return false;
}

StatusOr<GpuInfo> cuda_device() {
  return Status(StatusCode::kDeviceMismatch,
                "this Kiln was built without CUDA (configure with -DKILN_CUDA=ON on a machine "
                "with the CUDA toolkit)");
}

std::string cuda_supports(const ir::Node&) {
  return "this Kiln was built without CUDA";
}
std::vector<int> cuda_host_inputs(const ir::Node&) {
  return {};
}
bool cuda_synchronizes(const ir::Node&) {
  return false;
}

Status cuda_embed(ir::Node&, int) {
  return Status::Ok();
}

}  // namespace kiln::backend

namespace kiln::backend {

StatusOr<std::shared_ptr<const void>> create_cuda_program(const runtime::EngineData&) {
  return cuda_device().status();
}

StatusOr<std::unique_ptr<ExecutionContext>> create_cuda_context(
    std::shared_ptr<const runtime::EngineData>) {
  return cuda_device().status();
}

StatusOr<uint64_t> cuda_trial_run(
    std::shared_ptr<const runtime::EngineData>,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>&) {
  return cuda_device().status();
}

StatusOr<TuningResult> cuda_tune(std::shared_ptr<const runtime::EngineData>,
                                 const std::vector<InputShapes>&, int, TimingCache*) {
  return cuda_device().status();
}

StatusOr<std::vector<Datum>> cuda_run_values(std::shared_ptr<const runtime::EngineData>,
                                             const std::vector<std::pair<std::string, Datum>>&) {
  return cuda_device().status();
}

}  // namespace kiln::backend
