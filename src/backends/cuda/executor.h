// Runs a placed graph on one GPU: nodes placed on the GPU run their CUDA kernels on the context's
// stream, the rest run the CPU reference kernels, with copies between host and device where a
// value crosses. Activations come from one arena planned by liveness (the first run at a new
// input shape records the allocations, later runs reuse the plan); runs can be captured into CUDA
// graphs and replayed per input shape.
//
// Program: immutable and shared by all contexts of an engine (graph, placement, weights on the
// device). Executor: one per execution context (stream, arena, library handles, bindings).
#pragma once

#include <cuda_runtime_api.h>

#include <shared_mutex>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/executor.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// Held shared by device calls of Kiln's contexts and exclusively by a CUDA-graph capture
// (executor.cc): a capture is not invalidated by another thread's device calls.
std::shared_mutex& device_api_mutex();
// Names the subgraphs of `n` read from enclosing scopes.
void collect_outer_names(const ir::Node& n, std::vector<std::string>* names);

struct NodeChoice {
  bool gpu = false;
  bool host_math = false;  // a shape computation on the host: its results depend on shapes only
  int64_t tactic = -1;
  std::vector<int64_t> profile_tactics;  // per optimization profile (empty: `tactic` for all)
};

struct ProgramOptions {
  uint64_t workspace_bytes = uint64_t{1} << 30;
  bool allow_tf32 = true;
  uint64_t max_tensor_bytes = kDefaultMaxTensorBytes;
};

class Program {
 public:
  // `graph` must outlive the program. Nodes missing from `choices` run on the CPU.
  static StatusOr<std::shared_ptr<const Program>> create(
      const ir::Graph& graph, std::unordered_map<const ir::Node*, NodeChoice> choices,
      ProgramOptions options);
  ~Program();

  struct Step {
    const ir::Node* node = nullptr;
    const ir::Graph* graph = nullptr;  // the graph the node is in
    const KernelDef* gpu = nullptr;    // null: runs on the CPU
    cpu::KernelFn cpu = nullptr;
    const ops::OpDef* def = nullptr;
    int64_t tactic = -1;
    std::vector<int64_t> profile_tactics;  // per optimization profile (empty: `tactic`)
    int64_t tactic_for(int profile) const {
      return profile >= 0 && profile < static_cast<int>(profile_tactics.size())
                 ? profile_tactics[static_cast<size_t>(profile)]
                 : tactic;
    }
    bool metadata_only = false;  // Shape / Size: read shapes, never data
    bool gpu_if = false;         // If: condition read on the host, branch run by this executor
    bool gpu_loop = false;  // Loop: trip count and condition on the host, body by this executor
    bool gpu_scan =
        false;  // Scan (opset 9+): slices and stacks on the device, body by the executor
    bool host_math = false;  // shape computation on the host (allowed inside CUDA graph capture)
    std::vector<std::string> release_after;
  };
  struct GraphPlan {
    std::vector<Step> steps;
  };

  const ir::Graph& graph() const { return *graph_; }
  const GraphPlan* plan(const ir::Graph* g) const;
  const DeviceTensor* weight(const ir::Value* v) const;
  // The constant an outer-scope reference of a subgraph names (null when it names a computed
  // value). Resolved through the enclosing graphs when the program is made.
  const ir::Value* outer_constant(const ir::Value* v) const;
  const ProgramOptions& options() const { return options_; }
  const cpu::Executor& cpu_executor() const { return *cpu_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  int gpu_steps() const { return gpu_steps_; }
  int cpu_steps() const { return cpu_steps_; }

 private:
  Program() = default;
  Status prepare(const ir::Graph& g, const std::unordered_map<const ir::Node*, NodeChoice>& c);
  Status upload_weights();

  const ir::Graph* graph_ = nullptr;
  ProgramOptions options_;
  std::unordered_map<const ir::Graph*, GraphPlan> plans_;
  std::unique_ptr<cpu::Executor> cpu_;
  std::unordered_map<const ir::Value*, DeviceTensor> weights_;
  std::unordered_map<const ir::Value*, const ir::Value*> outer_constants_;
  void* weight_memory_ = nullptr;
  uint64_t weight_bytes_ = 0;
  int gpu_steps_ = 0, cpu_steps_ = 0;
};

// One input of a run: a host tensor, or a tensor already on the device.
struct RunInput {
  std::string name;
  const Tensor* host = nullptr;
  const Datum* value = nullptr;  // a host value of any kind (sequences, optionals), if set
  DeviceTensor device;           // used when host is null
};

// One output of a run: on the device (tensors made by GPU kernels) or on the host.
struct RunOutput {
  std::string name;
  bool on_device = false;
  DeviceTensor device;
  Datum host;
};

struct StepTime {
  const ir::Node* node = nullptr;
  bool gpu = false;
  double ms = 0;           // GPU time of the step's work (gpu_timed) or host wall time
  double host_ms = 0;      // host time to enqueue (or run) the step
  bool gpu_timed = false;  // ms was measured by events with the stream held
};

struct RunStats {
  int host_syncs = 0;  // waits for the stream before a CPU step or a host-side input
  int copies_to_host = 0;
  int copies_to_device = 0;
  int dynamic_allocations = 0;  // allocations outside the planned arena
  bool graph_replayed = false;
  bool graph_captured = false;
  std::string graph_refusal;  // why the run was not captured (when capture was asked for)
};

// Build-time tactic tuning (tuner.h). In tuning mode the executor hands each GPU step whose
// kernel is tunable to a StepTuner, which may run the kernel several times on the step's real
// inputs and picks the run whose outputs the graph goes on with.
class TunableStep {
 public:
  virtual ~TunableStep() = default;
  virtual const ir::Node& node() const = 0;
  // The step's device inputs (null for absent or host inputs).
  virtual const std::vector<const DeviceTensor*>& inputs() const = 0;
  // Runs the kernel once with `tactic` into fresh outputs; returns the run's id. With
  // `candidates`, the kernel lists the tactics it can run at these shapes (default first).
  virtual StatusOr<int> run(int64_t tactic, std::vector<int64_t>* candidates) = 0;
  // The device outputs of a run (null for outputs the node does not use).
  virtual std::vector<const DeviceTensor*> outputs(int run) const = 0;
  // Frees a run's outputs.
  virtual void drop(int run) = 0;
  // The run whose outputs become the step's (required once before tune returns).
  virtual void finish(int run) = 0;
  virtual cudaStream_t stream() const = 0;
};

class StepTuner {
 public:
  virtual ~StepTuner() = default;
  virtual Status tune(TunableStep& step) = 0;
};

class Executor {
 public:
  static StatusOr<std::unique_ptr<Executor>> create(std::shared_ptr<const Program> program);
  ~Executor();

  cudaStream_t stream() const;
  // Runs the main graph on `stream` (null: the executor's own). Returns when everything is
  // enqueued; outputs on the device are valid once the stream reaches this point, and until the
  // next run. Host outputs are complete on return.
  Status run(const std::vector<RunInput>& inputs, cudaStream_t stream = nullptr);
  const std::vector<RunOutput>& outputs() const;
  const RunStats& stats() const;

  // Capture each input shape's run into a CUDA graph (from its second run on) and replay it.
  void set_cuda_graph(bool on);
  // Time each step alone (synchronizes around every step; no graph replay while on): GPU time
  // with the stream held while the step is enqueued, and the host's enqueue time.
  void set_profiling(bool on);
  const std::vector<StepTime>& profile() const;
  // Tuning mode (null: off): tunable GPU steps go through `tuner`; no CUDA graphs while on.
  void set_tuner(StepTuner* tuner);
  // The optimization profile the next runs' input shapes fall in: steps use its tactics.
  void set_profile(int profile);
  // Arena bytes of the largest plan so far.
  uint64_t arena_bytes() const;

  struct Impl;

 private:
  Executor() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cuda
