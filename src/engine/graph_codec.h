// Binary encoding of an ir::Model: the engine file's graph and weights sections.
// Layout: docs/engine-format.md ("Graph section", "Weights section").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::engine {

// Version of the graph section encoding (its first field); bumped with the engine format.
inline constexpr uint32_t kGraphCodecVersion = 1;
// Non-string tensors of at least this many bytes go to the weights section.
inline constexpr uint64_t kMinWeightBytes = 64;
// Alignment of every tensor payload inside the weights section (and of the section in memory).
inline constexpr uint64_t kWeightAlignment = 64;
// Deepest nesting of subgraphs and of sequence/optional/map types the decoder accepts.
inline constexpr int kMaxCodecDepth = 64;

struct EncodedModel {
  std::vector<uint8_t> graph;    // the graph section: everything but large constant payloads
  std::vector<uint8_t> weights;  // constant payloads, each at a 64-byte aligned offset
};

// Encodes model metadata (ir_version, opsets, producer, doc, metadata_props, source path), the
// main graph and every subgraph (attributes of type GRAPH/GRAPHS), recursively: values (name,
// TypeInfo, flags, constants), graph inputs/outputs, nodes in order (op_type, domain, name,
// opset, inputs/outputs by value index, null for omitted) and every attribute field. Non-string
// tensors (constants and attribute tensors) of >= 64 bytes go to `weights` at 64-byte aligned
// offsets, stored once when several tensors share the same bytes; smaller ones and string tensors
// are inline in `graph`. The encoding is deterministic: decode then encode gives the same bytes.
StatusOr<EncodedModel> encode_model(const ir::Model& model);

// Decodes. Large tensors become zero-copy Tensor::view()s into `weights` kept alive by `owner`
// (`weights` must be 64-byte aligned in memory). Every length, count, index and offset is
// bounds-checked and the result is verified (ir::verify_graph); any inconsistency is an
// kInvalidModel error "engine file: graph section: ...".
StatusOr<std::unique_ptr<ir::Model>> decode_model(std::span<const uint8_t> graph,
                                                  std::span<const uint8_t> weights,
                                                  std::shared_ptr<const void> owner);

}  // namespace kiln::engine
