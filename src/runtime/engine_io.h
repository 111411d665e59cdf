// Engine files ↔ EngineData: what the builder writes and the runtime reads, on top of the
// container and graph codec of src/engine.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/engine_data.h"

namespace kiln::engine {
struct TargetInfo;
}

namespace kiln::runtime {

// The target this process runs on for `device` ("cpu" needs nothing; "cuda" asks the GPU).
StatusOr<engine::TargetInfo> current_target(Device device);

// Serializes a built engine: the optimized model plus `data`'s device, options, profiles,
// steps and memory figures.
StatusOr<std::vector<uint8_t>> serialize_engine(const EngineData& data,
                                                const engine::TargetInfo& target);

// Reads an engine file (verified by EngineFile) into EngineData and prepares the backend.
StatusOr<std::shared_ptr<EngineData>> load_engine_data(
    std::shared_ptr<const engine::EngineFile> file);

// Builds the backend state of `data` (CPU executor or CUDA program).
Status prepare_backend(EngineData& data);

// The JSON `kiln inspect` shows for an engine.
std::string describe_engine(const EngineData& data, const engine::TargetInfo& target,
                            const std::string& kiln_version, uint64_t file_size);

}  // namespace kiln::runtime
