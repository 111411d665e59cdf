// fold_patch_conv: a patch-embedding Conv (kernel == stride, no padding, image channels) becomes
// Reshape → Transpose → Reshape → MatMul (+ Add) → Transpose with the same output; other
// convolutions stay.
#include <random>

#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fold_patch_conv", passes::fold_patch_conv};

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Spec {
  int64_t c = 3, h = 8, w = 12, m = 5, p = 4, q = 4;
  int64_t stride_h = 4, stride_w = 4;
  bool bias = true;
  std::vector<int64_t> pads = {0, 0, 0, 0};
  int64_t group = 1;
};

// x [2, C, H, W] → Conv → y; returns the Conv's output.
ir::Value* conv_graph(Builder& b, const Spec& s) {
  ir::Value* x = b.input("x", {2, s.c, s.h, s.w});
  const size_t wn = static_cast<size_t>(s.m * (s.c / s.group) * s.p * s.q);
  std::vector<ir::Value*> ins = {
      x, b.constant("W", {s.m, s.c / s.group, s.p, s.q}, random_values(wn, 3))};
  if (s.bias) ins.push_back(b.constant("B", {s.m}, random_values(static_cast<size_t>(s.m), 4)));
  ir::Value* y =
      b.node("Conv", ins, "y",
             {attr_ints("kernel_shape", {s.p, s.q}), attr_ints("strides", {s.stride_h, s.stride_w}),
              attr_ints("pads", s.pads), attr_int("group", s.group)});
  b.output(y);
  return y;
}

TEST(FoldPatchConv, ViTPatchEmbeddingBecomesAMatMul) {
  for (bool bias : {true, false}) {
    Builder b;
    Spec s;
    s.bias = bias;
    ir::Value* y = conv_graph(b, s);
    check_pass(b, kPass);
    EXPECT_EQ(b.count("Conv"), 0);
    EXPECT_EQ(b.count("MatMul"), 1);
    EXPECT_EQ(b.count("Add"), bias ? 1 : 0);
    EXPECT_EQ(b.count("Transpose"), 2);
    EXPECT_EQ(b.count("Reshape"), 2);
    // The graph output is still the same value, now made by the last Transpose.
    ASSERT_NE(y->producer, nullptr);
    EXPECT_EQ(y->producer->op_type, "Transpose");
    EXPECT_EQ(y->type.shape.to_string(), "[2,5,2,3]");
    const ir::Node* mm = b.find("MatMul");
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->inputs[1]->type.shape.to_string(), "[48,5]");  // C*p*q x M
  }
}

TEST(FoldPatchConv, RectangularPatchesAndOneChannel) {
  Builder b;
  Spec s;
  s.c = 1;
  s.h = 6;
  s.w = 10;
  s.p = 3;
  s.q = 5;
  s.stride_h = 3;
  s.stride_w = 5;
  conv_graph(b, s);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Conv"), 0);
}

TEST(FoldPatchConv, SymbolicBatch) {
  Builder b;
  ir::Value* x = b.input_dims(
      "x", {ir::Dim::named("batch"), ir::Dim::of(3), ir::Dim::of(8), ir::Dim::of(8)}, {3, 3, 8, 8});
  ir::Value* y = b.node("Conv", {x, b.constant("W", {4, 3, 4, 4}, random_values(4 * 3 * 16, 5))},
                        "y", {attr_ints("kernel_shape", {4, 4}), attr_ints("strides", {4, 4})});
  b.output(y);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Conv"), 0);
  EXPECT_EQ(y->type.shape.to_string(), "[batch,4,2,2]");
}

TEST(FoldPatchConv, OtherConvolutionsStay) {
  std::vector<Spec> keep(6);
  keep[0].stride_w = 2;         // overlapping windows
  keep[1].pads = {1, 1, 1, 1};  // padding
  keep[2].c = 8;                // many channels: a strided convolution as it is
  keep[3].c = 4;                // grouped
  keep[3].group = 2;
  keep[3].m = 4;
  keep[4].w = 10;  // W not divisible by the patch
  keep[5].p = 1;   // 1x1
  keep[5].q = 1;
  keep[5].stride_h = keep[5].stride_w = 1;
  for (size_t i = 0; i < keep.size(); ++i) {
    Builder b;
    conv_graph(b, keep[i]);
    check_pass(b, kPass);
    EXPECT_EQ(b.count("Conv"), 1) << i;
  }
}

}  // namespace
}  // namespace kiln
