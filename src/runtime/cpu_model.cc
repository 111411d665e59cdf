#include "runtime/cpu_model.h"

#include "onnx/importer.h"
#include "passes/pass_manager.h"

namespace kiln {

StatusOr<CpuModel> load_cpu_model(const std::string& path, const CpuModelOptions& options) {
  CpuModel m;
  onnx::LoadOptions lo;
  lo.max_tensor_bytes = options.max_tensor_bytes;
  KILN_ASSIGN_OR_RETURN(m.model, onnx::load_model(path, lo));
  if (options.optimize) {
    KILN_RETURN_IF_ERROR_CTX(passes::PassManager::default_pipeline().run(*m.model->graph), path);
    // The fusions too, as engines get them: conformance runs then check them on every case.
    KILN_RETURN_IF_ERROR_CTX(passes::PassManager::fusion_pipeline().run(*m.model->graph), path);
  }
  cpu::Executor::Options eo;
  eo.max_tensor_bytes = options.max_tensor_bytes;
  StatusOr<std::unique_ptr<cpu::Executor>> ex = cpu::Executor::create(*m.model->graph, eo);
  if (!ex.ok()) return ex.take_status().with_context(path);
  m.executor = std::move(ex).value();
  return m;
}

}  // namespace kiln
