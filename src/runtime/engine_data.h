// What a loaded engine holds (runtime-internal; no CUDA types): the decoded graph, where each
// node runs, the profiles, and the backend state built from them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "ir/graph.h"
#include "kiln/kiln.h"

namespace kiln::engine {
class EngineFile;
}

namespace kiln::runtime {

// One node of the engine (main graph and subgraphs, in preorder: see collect_nodes).
struct StepRecord {
  std::string name;
  std::string op;
  Device device = Device::kCpu;
  std::string kernel;  // "cuda:Conv", "cpu:Conv", "host:Shape"
  int64_t tactic = -1;
  // Per optimization profile when the tuning chose differently per profile (empty: `tactic`
  // everywhere; else entry p is used for runs whose shapes fall in profile p).
  std::vector<int64_t> profile_tactics;
  std::string precision;  // dtype the node computes in, e.g. "float16"
  std::string note;       // why it runs on the CPU in a CUDA engine, when it does
};

struct BuildOptions {
  bool tf32 = true;
  bool fp16 = false;
  bool bf16 = false;
  uint64_t workspace_bytes = uint64_t{1} << 30;
  int opt_level = 3;
  bool strict = false;
};

struct EngineData {
  std::shared_ptr<const engine::EngineFile> file;  // keeps the mapping alive
  std::unique_ptr<ir::Model> model;
  Device device = Device::kCpu;
  BuildOptions options;
  std::vector<OptimizationProfile> profiles;
  std::vector<StepRecord> steps;
  std::vector<const ir::Node*> nodes;  // preorder, parallel to steps
  std::vector<TensorInfo> inputs, outputs;
  uint64_t peak_activation_bytes = 0;
  uint64_t weight_bytes = 0;
  std::string describe;  // JSON for `kiln inspect`

  std::unique_ptr<cpu::Executor> cpu;        // CPU engines
  std::shared_ptr<const void> cuda_program;  // CUDA engines (a cuda::Program)
};

// Every node of `g` in preorder: a node, then the nodes of its subgraphs, then the next node.
void collect_nodes(const ir::Graph& g, std::vector<const ir::Node*>* out);

TensorInfo tensor_info_of(const ir::Value& v);

// Checks one input's shape against the model's static dims and the engine's profiles; the
// error names the input, the dimension and the allowed range.
Status check_input_shape(const EngineData& data, const TensorInfo& info,
                         const std::vector<int64_t>& shape);
// Checks that all bound inputs fit one profile together (when the engine has profiles).
Status check_profile_fit(const EngineData& data,
                         const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes);
// The first profile that holds all `shapes` (0 when there is none or the engine has none).
int profile_index(const EngineData& data,
                  const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes);

// Copies a HostTensor into a kiln::Tensor after checking dtype and byte size.
StatusOr<Tensor> tensor_from_host(const std::string& name, const HostTensor& h);
HostTensor host_from_tensor(const Tensor& t);

}  // namespace kiln::runtime
