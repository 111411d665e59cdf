// lower_precision (--fp16 / --bf16): constants beyond float16's range saturate instead of
// becoming infinities, so an exported "(1 - mask) * float32_lowest" stays finite (0 * -inf would
// be NaN).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/type_inference.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

TEST(ReducedPrecision, ConstantsBeyondHalfRangeSaturate) {
  pattern_test::Builder b;
  ir::Value* x = b.input("x", {2, 3});
  ir::Value* lowest = b.constant("lowest", {3}, {-3.4028234663852886e38f, 1.5f, 1e5f});
  ir::Value* y = b.node("Mul", {x, lowest}, "y");
  b.output(y);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  auto changed = passes::lower_precision(b.g, DType::kFloat16);
  ASSERT_TRUE(changed.ok()) << changed.status().to_string();
  const ir::Node* mul = b.find("Mul");
  ASSERT_NE(mul, nullptr);
  const ir::Value* c = mul->inputs[1];
  ASSERT_TRUE(c->constant);
  ASSERT_EQ(c->constant->dtype(), DType::kFloat16);
  Tensor back = *c->constant;
  auto f = convert_tensor(back, DType::kFloat32);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data<float>()[0], -65504.f);
  EXPECT_EQ(f->data<float>()[1], 1.5f);
  EXPECT_EQ(f->data<float>()[2], 65504.f);
  // A zero input times the saturated mask stays 0, not NaN, when run in float16.
  auto out = pattern_test::run_cpu(
      b.g, {{"x", Datum::of(Tensor::from_vector<float>({2, 3}, {0, 0, 0, 1, 1, 1}))}});
  ASSERT_EQ(out.size(), 1u);
  for (float v : out[0]) EXPECT_FALSE(std::isnan(v));
}

TEST(ReducedPrecision, InfinitiesStayInfinite) {
  pattern_test::Builder b;
  ir::Value* x = b.input("x", {2});
  ir::Value* inf = b.constant("inf", {2}, {-INFINITY, INFINITY});
  b.output(b.node("Add", {x, inf}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
  auto f = convert_tensor(*b.find("Add")->inputs[1]->constant, DType::kFloat32);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(std::isinf(f->data<float>()[0]) && f->data<float>()[0] < 0);
  EXPECT_TRUE(std::isinf(f->data<float>()[1]) && f->data<float>()[1] > 0);
}

// Shape and Size read only the shape: they take the reduced value itself, with no Cast back to
// float32 (exported transformers read Shape of every activation).
TEST(ReducedPrecision, ShapeReadsTheReducedValue) {
  pattern_test::Builder b;
  ir::Value* x = b.input("x", {2, 3});
  ir::Value* r = b.node("Relu", {x}, "r");
  ir::Value* s = b.node("Shape", {r}, "s");
  b.output(b.node("Reshape", {r, s}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
  ASSERT_TRUE(ir::verify_graph(b.g).ok());
  const ir::Node* shape = b.find("Shape");
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->inputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(shape->inputs[0]->producer, b.find("Relu"));
  const auto out = pattern_test::run_cpu(
      b.g, {{"x", Datum::of(Tensor::from_vector<float>({2, 3}, {-1, 2, -3, 4, 5, -6}))}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (std::vector<float>{0, 2, 0, 4, 5, 0}));
}

}  // namespace
}  // namespace kiln
