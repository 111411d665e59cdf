// Kiln's graph IR: a Graph owns Values (typed edges) and Nodes (ops) in topological order.
// Subgraphs (If/Loop/Scan bodies) are Graphs held by attributes; a subgraph names values of an
// enclosing graph through Values marked outer_scope, resolved by name when it runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln::ir {

// One dimension: a known size, a named symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // non-empty for a named unknown dim

  static Dim of(int64_t v) { return Dim{v, {}}; }
  static Dim named(std::string s) { return Dim{-1, std::move(s)}; }
  static Dim unknown() { return Dim{}; }
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  std::string to_string() const;  // "3", "batch", "?"
};

struct Shape {
  bool rank_known = false;
  std::vector<Dim> dims;

  static Shape unknown_rank() { return Shape{}; }
  static Shape of(const std::vector<int64_t>& v);
  static Shape of_rank(int rank);  // known rank, unknown dims
  int rank() const { return static_cast<int>(dims.size()); }
  bool fully_known() const;
  std::vector<int64_t> values() const;  // -1 for unknown dims
  std::string to_string() const;        // "[batch,3,?]" or "[*]" for unknown rank
};

struct TypeInfo {
  enum class Kind : uint8_t { kUnknown, kTensor, kSequence, kOptional, kMap };
  Kind kind = Kind::kUnknown;
  DType dtype = DType::kUndefined;  // tensor element type; map key type
  Shape shape;                      // tensors only
  std::shared_ptr<TypeInfo> elem;   // sequence/optional element; map value

  static TypeInfo tensor(DType t, Shape s = Shape::unknown_rank()) {
    TypeInfo ti;
    ti.kind = Kind::kTensor;
    ti.dtype = t;
    ti.shape = std::move(s);
    return ti;
  }
  static TypeInfo sequence_of(TypeInfo e);
  static TypeInfo optional_of(TypeInfo e);
  bool is_tensor() const { return kind == Kind::kTensor; }
  std::string to_string() const;  // "float32[batch,3]", "seq(float32[*])", ...
};

class Graph;
class Node;

class Value {
 public:
  std::string name;
  TypeInfo type;
  Node* producer = nullptr;  // null for graph inputs, constants and outer-scope values
  int producer_output = -1;
  std::shared_ptr<const Tensor> constant;  // initializer or folded constant
  bool is_graph_input = false;
  bool is_outer_scope = false;  // defined by an enclosing graph; looked up by name
};

enum class AttrType : uint8_t {
  kUndefined,
  kFloat,
  kInt,
  kString,
  kTensor,
  kGraph,
  kSparseTensor,
  kTypeProto,
  kFloats,
  kInts,
  kStrings,
  kTensors,
  kGraphs,
  kSparseTensors,
  kTypeProtos,
};
const char* attr_type_name(AttrType t);

struct Attribute {
  std::string name;
  AttrType type = AttrType::kUndefined;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  TypeInfo tp;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  std::vector<TypeInfo> tps;
};

// The domain of Kiln's own ops: fused operations the passes create (src/ops/fused_*.cc). Models
// never carry them; engines do.
inline constexpr const char* kKilnDomain = "kiln";

class Node {
 public:
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  std::string name;
  int64_t opset = 0;            // version of `domain` the model imports
  int index = 0;                // position in its graph, for messages
  std::vector<Value*> inputs;   // null for an omitted optional input
  std::vector<Value*> outputs;  // null for an omitted optional output
  std::vector<Attribute> attrs;

  // "[Conv 'backbone/conv1' #12]"
  std::string label() const;
  const Attribute* attr(std::string_view name) const;
  bool has_attr(std::string_view name) const { return attr(name) != nullptr; }
  // Typed attribute getters: the default when absent. A present attribute of another type makes
  // them return the default and set *error (when error is given and still OK) to an error naming
  // the node and the attribute.
  int64_t attr_int(std::string_view name, int64_t def, Status* error = nullptr) const;
  float attr_float(std::string_view name, float def, Status* error = nullptr) const;
  std::string attr_string(std::string_view name, std::string def = {},
                          Status* error = nullptr) const;
  std::vector<int64_t> attr_ints(std::string_view name, std::vector<int64_t> def = {},
                                 Status* error = nullptr) const;
  std::vector<float> attr_floats(std::string_view name, std::vector<float> def = {},
                                 Status* error = nullptr) const;
  std::vector<std::string> attr_strings(std::string_view name, std::vector<std::string> def = {},
                                        Status* error = nullptr) const;
  const Tensor* attr_tensor(std::string_view name, Status* error = nullptr) const;
  const Graph* attr_graph(std::string_view name, Status* error = nullptr) const;

  // Number of inputs actually given (trailing omitted ones excluded).
  int num_inputs() const;
  bool has_input(int i) const {
    return i >= 0 && i < static_cast<int>(inputs.size()) && inputs[static_cast<size_t>(i)];
  }
  bool has_output(int i) const {
    return i >= 0 && i < static_cast<int>(outputs.size()) && outputs[static_cast<size_t>(i)];
  }
  // An error Status whose message starts with label().
  Status error(StatusCode code, std::string_view message) const;
};

class Graph {
 public:
  std::string name;
  const Graph* parent = nullptr;  // enclosing graph of a subgraph
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::map<std::string, int64_t> opsets;  // domain → version (set on the main graph and subgraphs)

  // Values are unique by name within a graph. add_value fails (returns null) on a duplicate.
  Value* add_value(const std::string& name);
  Value* find_value(std::string_view name) const;
  // A value with a fresh name derived from `hint`.
  Value* new_value(std::string_view hint);
  Node* add_node(std::string op_type, std::string domain, std::string name);
  // Inserts before position `pos` in the node order.
  Node* insert_node(size_t pos, std::string op_type, std::string domain, std::string name);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<std::unique_ptr<Node>>& mutable_nodes() { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }

  // Removes the nodes for which `pred` is true (their output values stay, without producer).
  template <typename Pred>
  size_t remove_nodes_if(Pred pred);
  // Drops values no node, graph input or output refers to.
  void remove_unused_values();
  // Re-links producers, renumbers node indices. Call after editing node lists.
  void relink();
  // Replaces every use of `from` (node inputs, graph outputs, recursively in subgraphs through
  // outer-scope references by name is NOT done: callers keep names of such values).
  void replace_uses(Value* from, Value* to);
  // Nodes that read `v`.
  std::vector<Node*> consumers(const Value* v) const;
  // Value names referenced by subgraphs (outer-scope names), recursively.
  void collect_outer_scope_names(std::vector<std::string>* names) const;

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  int64_t fresh_counter_ = 0;
};

template <typename Pred>
size_t Graph::remove_nodes_if(Pred pred) {
  size_t before = nodes_.size();
  std::vector<std::unique_ptr<Node>> kept;
  kept.reserve(nodes_.size());
  for (auto& n : nodes_) {
    if (pred(*n)) {
      for (Value* v : n->outputs) {
        if (v && v->producer == n.get()) {
          v->producer = nullptr;
          v->producer_output = -1;
        }
      }
    } else {
      kept.push_back(std::move(n));
    }
  }
  nodes_ = std::move(kept);
  relink();
  return before - nodes_.size();
}

struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;
  std::string producer_name;
  std::string producer_version;
  std::string doc;
  std::map<std::string, std::string> metadata;
  std::string path;  // file it came from, for messages
  std::unique_ptr<Graph> graph;
};

}  // namespace kiln::ir
