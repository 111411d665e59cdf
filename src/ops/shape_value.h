// Shape values: the elements of small 0-D/1-D integer tensors computed from shapes (exports with
// dynamic dims build Reshape targets as Concat(Unsqueeze(Gather(Shape(x), 0)), [12, 64]) and the
// like). Each element is a SymInt: coeff times a product of dim symbols, or unknown. Graph
// inference follows them through Shape, Size, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast,
// Identity, Reshape (to 0-D/1-D), Add/Sub/Mul/Div, Equal, Where and ConstantOfShape, and
// Reshape, Expand, Tile, ConstantOfShape and Range read them to give their outputs symbolic dims.
//
// A product of symbols becomes one dim symbol in canonical form ("12*batch", "batch*seq"), and a
// dim symbol of that form reads back as the product, so Reshape's -1 cancels symbolically.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ops/op_registry.h"

namespace kiln::ops {

// One element of a shape value: coeff times a product of dim symbols ("batch"), or unknown.
struct SymInt {
  bool known = false;
  int64_t coeff = 0;
  std::vector<std::string> syms;  // sorted, repeats allowed; empty for a plain integer

  static SymInt of(int64_t v) { return SymInt{true, v, {}}; }
  static SymInt unknown() { return SymInt{}; }
  bool is_int() const { return known && syms.empty(); }
  bool operator==(const SymInt& o) const {
    return known == o.known && (!known || (coeff == o.coeff && syms == o.syms));
  }
};

// Shape values hold at most this many elements.
inline constexpr int64_t kMaxShapeValue = 64;

// The shape values of one graph inference run (src/ops/type_inference.cc), by value. The first
// table made on a thread is the one in use until it goes away; nested ones (subgraphs) share it.
class ShapeValueTable {
 public:
  ShapeValueTable();
  ~ShapeValueTable();
  ShapeValueTable(const ShapeValueTable&) = delete;
  ShapeValueTable& operator=(const ShapeValueTable&) = delete;
  // Records (or, with nullopt, forgets) v's shape value; no-op without a table in use.
  static void set(const ir::Value* v, std::optional<std::vector<SymInt>> value);
  static const std::vector<SymInt>* get(const ir::Value* v);

 private:
  bool owner_ = false;
};

// Elements of input i when it is a small 0-D/1-D integer tensor known at build time: a constant,
// or a shape value inference followed; else nullopt.
std::optional<std::vector<SymInt>> input_shape_value(const InferContext& ctx, int i);

// The element a shape dim reads as (a symbol like "2*batch" reads as the product).
SymInt sym_of_dim(const ir::Dim& d);
// The dim an element describes: a size, a (canonical product) symbol, or unknown when it is
// unknown or not a valid size.
ir::Dim dim_of_sym(const SymInt& s);
// Products and exact quotients of elements; unknown when they cannot be represented.
SymInt sym_mul(const SymInt& a, const SymInt& b);
SymInt sym_div_exact(const SymInt& a, const SymInt& b);
// Product of dims as one element (unknown when any dim is unknown).
SymInt sym_product(const std::vector<ir::Dim>& dims);

// v's shape value (in the table in use) as a tensor of v's dtype (int64, int32 or bool) when its
// elements are all plain integers, as Gather(Shape(x), 1) of a static dim is: inference then
// reads it as it reads a constant (Slice's ends, Expand's shape), and constant folding makes it
// one.
std::optional<Tensor> shape_value_tensor(const ir::Value& v);

// The shape value of output 0 of the node whose inference ran in ctx (its output types are set),
// or nullopt when the output is not one or inference cannot follow it.
std::optional<std::vector<SymInt>> infer_shape_value(const InferContext& ctx);

}  // namespace kiln::ops
