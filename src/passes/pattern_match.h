// Helpers the pattern passes share (fuse_layer_norm, fuse_gelu, fuse_attention): who reads a
// value, the producer of a value, scalar constants, provable dim equality, and the splice that
// puts new nodes where a matched subgraph stood.
#pragma once

#include <initializer_list>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes::match {

// Readers of every value of one graph, computed once before matching.
class Uses {
 public:
  explicit Uses(const ir::Graph& graph);
  // Distinct nodes that read v (in node order).
  const std::vector<ir::Node*>& readers(const ir::Value* v) const;
  // True when v is a graph output or named by a subgraph (outer scope): it must survive.
  bool pinned(const ir::Value* v) const;
  // v is read only by `nodes` (any number of slots each) and is not pinned.
  bool only_by(const ir::Value* v, std::initializer_list<const ir::Node*> nodes) const;
  // v has exactly one reading node and is not pinned: that node, else null.
  ir::Node* sole_reader(const ir::Value* v) const;

 private:
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers_;
  std::unordered_set<const ir::Value*> pinned_;
};

// The node that produces v as its only output when it is a default-domain `op`, else null.
ir::Node* producer(const ir::Value* v, std::string_view op);
// True for a default-domain node of type `op` with exactly `inputs` inputs given and one output.
bool is_op(const ir::Node* n, std::string_view op, int inputs);
// A two-input Add, or a Sum of two inputs (the same broadcast), as ONNX function bodies write it.
bool is_add2(const ir::Node* n);
// The input of a two-input node that is not `v`, or null when v is not one of them. For a node
// reading v twice, returns v.
ir::Value* other_input(const ir::Node* n, const ir::Value* v);

// A float tensor (float16, bfloat16, float32, float64) of known rank.
bool is_float_ranked(const ir::Value* v);
// v is a constant (not a graph input that callers may override) with one element: its value.
// Broadcasting it against `x` must not change x's shape: its rank is at most x's. Infinities and
// NaN are refused unless `nonfinite_ok`.
bool scalar_for(const ir::Value* v, const ir::Value* x, double* out, bool nonfinite_ok = false);
// |v - want| <= rel * |want| (rel defaults to 1e-4).
bool near(double v, double want, double rel = 1e-4);
// Two dims are provably equal: the same known size or the same named symbol.
bool same_dim(const ir::Dim& a, const ir::Dim& b);
bool dim_is(const ir::Dim& d, int64_t v);

// A constant that a run cannot override (graph inputs with defaults can be), else null.
const Tensor* constant_of(const ir::Value* v);
// A new value of known rank typed dt[dims], named after `hint`.
ir::Value* typed_value(ir::Graph& graph, std::string_view hint, DType dt,
                       std::vector<ir::Dim> dims);
// A new constant value holding `t`.
ir::Value* constant_value(ir::Graph& graph, std::string_view hint, Tensor t);
// Attributes for nodes the passes make.
ir::Attribute int_attr(std::string_view name, int64_t v);
ir::Attribute ints_attr(std::string_view name, std::vector<int64_t> v);
ir::Attribute string_attr(std::string_view name, std::string v);

// A matched subgraph: `removed` go away; `added` (made with Graph::add_node) take the place of
// `anchor`, in order. The anchor is usually in `removed` too.
struct Replacement {
  const ir::Node* anchor = nullptr;
  std::vector<const ir::Node*> removed;
  std::vector<ir::Node*> added;
};
// Applies replacements whose node sets do not overlap, relinks and drops unused values.
void splice(ir::Graph& graph, const std::vector<Replacement>& reps);

// Tracks the nodes that matches have taken, so that no node is in two of them.
class Claims {
 public:
  bool any(const std::vector<const ir::Node*>& nodes) const;
  void take(const std::vector<const ir::Node*>& nodes);

 private:
  std::unordered_set<const ir::Node*> taken_;
};

}  // namespace kiln::passes::match
