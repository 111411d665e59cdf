// fuse_skip_layer_norm: a residual Add and the LayerNormalization after it become one
// kiln.SkipLayerNorm, with the sum as a second output when something else reads it.
#include "ops/fused_norm.h"
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fuse_skip_layer_norm", passes::fuse_skip_layer_norm};

ir::Value* layer_norm(Builder& b, ir::Value* x, const std::string& out, int64_t axis = -1) {
  ir::Value* g = b.constant(out + "_g", {6}, {1.f, 0.5f, -1.f, 2.f, 1.5f, 0.25f});
  ir::Value* bias = b.constant(out + "_b", {6}, {0.f, 0.1f, -0.2f, 0.3f, 0.f, 1.f});
  return b.node("LayerNormalization", {x, g, bias}, out, {attr_int("axis", axis)});
}

const ir::Node* fused(const Builder& b) {
  for (const auto& n : b.g.nodes())
    if (n->domain == ir::kKilnDomain && n->op_type == ops::kSkipLayerNorm) return n.get();
  return nullptr;
}

// BERT (post-norm): LayerNorm(dense + residual).
TEST(FuseSkipLayerNorm, PostNormResidual) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 6});
  ir::Value* r = b.input("r", {2, 3, 6});
  b.output(layer_norm(b, b.node("Add", {x, r}, "sum"), "y"));
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* n = fused(b);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->outputs.size(), 1u);
  EXPECT_EQ(n->inputs[0], x);
  EXPECT_EQ(n->inputs[1], r);
  EXPECT_EQ(n->outputs[0]->name, "y");
}

// ViT (pre-norm): the sum is the residual stream the next block adds to: kept as output 1.
TEST(FuseSkipLayerNorm, PreNormKeepsTheSum) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 6});
  ir::Value* r = b.input("r", {2, 3, 6});
  ir::Value* s = b.node("Add", {x, r}, "sum");
  ir::Value* y = layer_norm(b, s, "y");
  b.output(b.node("Add", {y, s}, "next"));
  check_pass(b, kPass);
  const ir::Node* n = fused(b);
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->outputs.size(), 2u);
  EXPECT_EQ(n->outputs[1]->name, "sum");
  EXPECT_EQ(b.count("Add"), 1);  // the next block's
}

TEST(FuseSkipLayerNorm, SumAsGraphOutput) {
  Builder b;
  ir::Value* s = b.node("Add", {b.input("x", {4, 6}), b.input("r", {4, 6})}, "sum");
  b.output(layer_norm(b, s, "y"));
  b.output(s);
  check_pass(b, kPass);
  const ir::Node* n = fused(b);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->outputs.size(), 2u);
}

TEST(FuseSkipLayerNorm, BroadcastingAddStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 6});
  ir::Value* r = b.input("r", {3, 6});
  b.output(layer_norm(b, b.node("Add", {x, r}, "sum"), "y"));
  check_pass(b, kPass);
  EXPECT_EQ(fused(b), nullptr);
}

TEST(FuseSkipLayerNorm, OtherAxisStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 6, 6});
  ir::Value* r = b.input("r", {2, 6, 6});
  ir::Value* g = b.constant("g", {6, 6}, std::vector<float>(36, 1.f));
  b.output(
      b.node("LayerNormalization", {b.node("Add", {x, r}, "sum"), g}, "y", {attr_int("axis", 1)}));
  check_pass(b, kPass);
  EXPECT_EQ(fused(b), nullptr);
}

TEST(FuseSkipLayerNorm, ScaleFromAnInputStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 6});
  ir::Value* r = b.input("r", {2, 6});
  ir::Value* g = b.input("g", {6});
  b.output(b.node("LayerNormalization", {b.node("Add", {x, r}, "sum"), g}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(fused(b), nullptr);
}

TEST(FuseSkipLayerNorm, MeanOutputReadStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 6});
  ir::Value* r = b.input("r", {2, 6});
  ir::Value* y = layer_norm(b, b.node("Add", {x, r}, "sum"), "y");
  ir::Value* mean = b.g.add_value("mean");
  b.last->outputs.push_back(mean);
  b.g.relink();
  b.output(y);
  b.output(b.node("Identity", {mean}, "mean_out"));
  check_pass(b, kPass);
  EXPECT_EQ(fused(b), nullptr);
}

}  // namespace
}  // namespace kiln
