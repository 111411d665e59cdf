// Placement: which backend runs each node. A CUDA build places a node on the GPU when the CUDA
// backend supports its dtypes and shapes; otherwise on the CPU, and says why. Shape computations
// (small integer tensors computed from constants and shapes) run on the host by design, as do
// Shape and Size, which read only shapes.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/builder.h"
#include "runtime/engine_data.h"

namespace kiln::backend {

// The note of nodes placed on the host as shape computations (not a fallback).
inline constexpr const char* kShapeComputationNote = "shape computation on the host";

struct PlacementResult {
  std::vector<runtime::StepRecord> steps;  // preorder (runtime::collect_nodes)
  std::vector<std::string> fallbacks;      // "[Op 'name' #i]: reason"
  int top_level = 0;
  int top_level_on_device = 0;
};

// Places every node of `graph` (subgraphs too) for `device`.
PlacementResult place_nodes(const ir::Graph& graph, Device device);

}  // namespace kiln::backend
