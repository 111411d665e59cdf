// Runs a graph on the CPU with the reference kernels, node by node in topological order.
// Intermediate values are released after their last use.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ops/op_registry.h"

namespace kiln::cpu {

struct Scope {
  const Scope* parent = nullptr;
  std::unordered_map<std::string, Datum> values;
  // Looks `name` up here, then in enclosing scopes.
  const Datum* find(const std::string& name) const;
};

inline constexpr int64_t kDefaultMaxLoopIterations = 100'000'000;

class Executor {
 public:
  struct Options {
    uint64_t max_tensor_bytes = kDefaultMaxTensorBytes;
    // Most iterations one Loop node may run; a Loop whose trip count asks for more without a
    // condition that could stop it sooner is refused before its first iteration.
    int64_t max_loop_iterations = kDefaultMaxLoopIterations;
  };
  const Options& options() const { return options_; }

  // Prepares `graph` (which must outlive the executor): every node, in subgraphs too, needs an
  // op definition and a CPU kernel, else the error lists the nodes that have none.
  static StatusOr<std::unique_ptr<Executor>> create(const ir::Graph& graph, Options options);
  static StatusOr<std::unique_ptr<Executor>> create(const ir::Graph& graph) {
    return create(graph, Options());
  }

  // Feeds by graph input name; returns the graph outputs in order. Inputs with a constant
  // (an initializer) may be left out. With `times`, the wall time of every main-graph node is
  // appended to it (a node with subgraphs includes them).
  StatusOr<std::vector<Datum>> run(
      const std::vector<std::pair<std::string, Datum>>& feeds,
      std::vector<std::pair<const ir::Node*, double>>* times = nullptr);

  // Runs `graph` (the main graph or a subgraph prepared by create) with positional inputs.
  StatusOr<std::vector<Datum>> run_graph(
      const ir::Graph& graph, std::vector<Datum> inputs, const Scope* parent,
      std::vector<std::pair<const ir::Node*, double>>* times = nullptr);

 private:
  struct Step {
    const ir::Node* node;
    const ops::OpDef* def;
    KernelFn kernel;
    std::vector<std::string> release_after;  // local values whose last use is this step
  };
  struct Plan {
    std::vector<Step> steps;
    // Constants read by subgraphs through outer-scope names: put in the scope when the graph
    // runs, since subgraphs resolve such names through scopes only.
    std::vector<const ir::Value*> scoped_constants;
  };

  Executor() = default;
  Status prepare(const ir::Graph& graph, std::vector<const ir::Node*>* unsupported);
  Status run_step(const Step& step, Scope& scope);

  const ir::Graph* main_ = nullptr;
  Options options_;
  std::unordered_map<const ir::Graph*, Plan> plans_;
};

// Nodes (in subgraphs too) that have no op definition or no CPU kernel.
std::vector<const ir::Node*> find_unsupported_nodes(const ir::Graph& graph);

}  // namespace kiln::cpu

namespace kiln::cpu {

// Runs one node with the given inputs (null for omitted ones) outside any graph; used by
// constant folding. Nodes with subgraph attributes are refused.
StatusOr<std::vector<Datum>> evaluate_node(const ir::Node& node,
                                           const std::vector<const Datum*>& inputs,
                                           uint64_t max_tensor_bytes = kDefaultMaxTensorBytes);

}  // namespace kiln::cpu
