// ONNX → Kiln IR. The only code that knows the ONNX wire format lives in src/onnx/.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/datum.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::onnx {

struct LoadOptions {
  // Run type/shape inference after import (ops::infer_graph_types).
  bool infer_types = true;
  // Refuse any single tensor (initializer, attribute, external data) larger than this.
  uint64_t max_tensor_bytes = kDefaultMaxTensorBytes;
};

// Reads a model file (mmap'ed; initializer bytes stay zero-copy views of the mapping), resolves
// external data relative to the model's folder, inlines model-local functions, and builds the IR.
// Errors name the file and, where it applies, the node or tensor.
StatusOr<std::unique_ptr<ir::Model>> load_model(const std::string& path,
                                                const LoadOptions& options = {});
// Same, from bytes in memory (`name` is used in messages; external data resolves against
// `base_dir` when given, else is refused).
StatusOr<std::unique_ptr<ir::Model>> load_model_from_bytes(std::span<const uint8_t> bytes,
                                                           const std::string& name,
                                                           const std::string& base_dir = {},
                                                           const LoadOptions& options = {});

// Reads a serialized TensorProto, SequenceProto, OptionalProto or MapProto (the .pb files of the
// ONNX test layout). `expected` tells which message the file holds (kUnknown: TensorProto).
StatusOr<Datum> read_value_file(const std::string& path, const ir::TypeInfo& expected = {});
// Same from bytes in memory (`name` is used in messages). External data resolves against
// `base_dir` when given, else is refused; `owner` (may be null) keeps `bytes` alive for zero-copy
// views, without one the bytes must outlive the result.
StatusOr<Datum> read_value_bytes(std::span<const uint8_t> bytes, const std::string& name,
                                 const std::string& base_dir = {},
                                 std::shared_ptr<const void> owner = nullptr,
                                 const ir::TypeInfo& expected = {});
// Writes a tensor as a serialized TensorProto.
Status write_tensor_file(const std::string& path, const Tensor& tensor,
                         const std::string& name = {});

}  // namespace kiln::onnx
