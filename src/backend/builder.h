// The builder's internal entry: the built engine as EngineData, before serialization (the
// conformance runner and tests use it; build_engine serializes it).
#pragma once

#include <memory>
#include <string>

#include "kiln/builder.h"
#include "runtime/engine_data.h"

namespace kiln::backend {

StatusOr<std::shared_ptr<runtime::EngineData>> build_engine_data(const std::string& onnx_path,
                                                                 const BuilderConfig& config,
                                                                 BuildReport* report = nullptr);

}  // namespace kiln::backend
