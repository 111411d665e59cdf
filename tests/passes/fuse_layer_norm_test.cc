// fuse_layer_norm: written-out LayerNorm / RMSNorm become LayerNormalization / RMSNormalization.
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fuse_layer_norm", passes::fuse_layer_norm};

struct LnOptions {
  bool axes_input = false;  // opset 18: axes as an input
  bool mul_square = false;  // d * d instead of Pow(d, 2)
  bool reciprocal = false;  // Mul(d, Reciprocal(s)) instead of Div(d, s)
  bool affine = true;
  std::vector<int64_t> axes = {-1};
  std::vector<int64_t> axes2 = {};  // second ReduceMean's axes when different
  float pow_exponent = 2.f;
};

ir::Value* reduce_mean(Builder& b, ir::Value* x, const std::string& out,
                       const std::vector<int64_t>& axes, bool axes_input) {
  if (axes_input) return b.node("ReduceMean", {x, b.ints(out + "_axes", axes)}, out);
  return b.node("ReduceMean", {x}, out, {attr_ints("axes", axes), attr_int("keepdims", 1)});
}

// The LayerNorm torch.onnx writes below opset 17, over the last dim of x [2, 5, 8].
ir::Value* layer_norm(Builder& b, ir::Value* x, const LnOptions& o) {
  ir::Value* mean = reduce_mean(b, x, "mean", o.axes, o.axes_input);
  ir::Value* d = b.node("Sub", {x, mean}, "d");
  ir::Value* sq = o.mul_square ? b.node("Mul", {d, d}, "sq")
                               : b.node("Pow", {d, b.scalar("two", o.pow_exponent)}, "sq");
  ir::Value* var = reduce_mean(b, sq, "var", o.axes2.empty() ? o.axes : o.axes2, o.axes_input);
  ir::Value* ve = b.node("Add", {var, b.scalar("eps", 1e-5f)}, "ve");
  ir::Value* s = b.node("Sqrt", {ve}, "s");
  ir::Value* n;
  if (o.reciprocal) {
    ir::Value* r = b.node("Reciprocal", {s}, "r");
    n = b.node("Mul", {d, r}, "n");
  } else {
    n = b.node("Div", {d, s}, "n");
  }
  if (!o.affine) return n;
  std::vector<float> gamma(8), beta(8);
  for (int i = 0; i < 8; ++i) {
    gamma[static_cast<size_t>(i)] = 0.5f + 0.1f * static_cast<float>(i);
    beta[static_cast<size_t>(i)] = -0.3f + 0.07f * static_cast<float>(i);
  }
  ir::Value* g = b.node("Mul", {n, b.constant("gamma", {8}, gamma)}, "g");
  return b.node("Add", {g, b.constant("beta", {8}, beta)}, "y");
}

TEST(FuseLayerNorm, TorchExportForm) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  b.output(layer_norm(b, x, {}));
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* n = b.find("LayerNormalization");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->opset, 17);
  EXPECT_EQ(n->attr_int("axis", 0), 2);
  EXPECT_FLOAT_EQ(n->attr_float("epsilon", 0), 1e-5f);
  ASSERT_EQ(n->inputs.size(), 3u);
  EXPECT_EQ(n->inputs[1]->name, "gamma");
  EXPECT_EQ(n->inputs[2]->name, "beta");
  EXPECT_EQ(n->outputs[0]->name, "y");
}

TEST(FuseLayerNorm, Opset18AxesInputMulSquareReciprocal) {
  Builder b(18);
  ir::Value* x = b.input("x", {2, 5, 8});
  LnOptions o;
  o.axes_input = true;
  o.mul_square = true;
  o.reciprocal = true;
  o.axes = {2};
  b.output(layer_norm(b, x, o));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.count("LayerNormalization"), 1);
}

TEST(FuseLayerNorm, TwoTrailingAxesWithoutAffine) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  LnOptions o;
  o.affine = false;
  o.axes = {-2, -1};
  b.output(layer_norm(b, x, o));
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* n = b.find("LayerNormalization");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attr_int("axis", 0), 1);
  ASSERT_EQ(n->inputs.size(), 2u);  // a Scale of ones, no bias
  ASSERT_TRUE(n->inputs[1]->constant);
  EXPECT_EQ(n->inputs[1]->constant->numel(), 40);
}

TEST(FuseLayerNorm, StopsBeforeASharedAffineInput) {
  // The normalized value is also a graph output: the fused op writes it, the Mul/Add stay.
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  b.output(layer_norm(b, x, {}));
  b.output(b.g.find_value("n"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("LayerNormalization"), 1);
  EXPECT_EQ(b.count("Mul"), 1);
  EXPECT_EQ(b.count("Add"), 1);
}

TEST(FuseLayerNorm, WrongAxisStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  LnOptions o;
  o.axes = {1};  // not the trailing dims
  o.affine = false;
  b.output(layer_norm(b, x, o));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("LayerNormalization"), 0);

  Builder c;
  ir::Value* cx = c.input("x", {2, 5, 8});
  LnOptions p;
  p.axes2 = {-2, -1};  // mean and variance over different axes
  c.output(layer_norm(c, cx, p));
  check_pass(c, kPass);
  EXPECT_EQ(c.count("LayerNormalization"), 0);
}

TEST(FuseLayerNorm, WrongExponentStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  LnOptions o;
  o.pow_exponent = 4.f;
  b.output(layer_norm(b, x, o));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("LayerNormalization"), 0);
  EXPECT_EQ(b.count("RMSNormalization"), 0);
}

TEST(FuseLayerNorm, MeanReadElsewhereStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  b.output(layer_norm(b, x, {}));
  b.output(b.g.find_value("mean"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("LayerNormalization"), 0);
  // What remains is RMSNorm of x - mean, which it is: that fusion is exact.
  EXPECT_EQ(b.count("RMSNormalization"), 1);
}

TEST(FuseLayerNorm, VarianceReadElsewhereStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  b.output(layer_norm(b, x, {}));
  b.output(b.node("Neg", {b.g.find_value("var")}, "other"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("LayerNormalization"), 0);
  EXPECT_EQ(b.count("RMSNormalization"), 0);
}

TEST(FuseLayerNorm, GammaOverBatchDimsStays) {
  // gamma [5, 8] varies over a dim before the normalized one.
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  LnOptions o;
  o.affine = false;
  ir::Value* n = layer_norm(b, x, o);
  std::vector<float> g(40);
  for (size_t i = 0; i < g.size(); ++i) g[i] = 0.01f * static_cast<float>(i);
  b.output(b.node("Mul", {n, b.constant("gamma", {5, 8}, g)}, "y"));
  check_pass(b, kPass);
  ASSERT_EQ(b.count("LayerNormalization"), 1);
  EXPECT_EQ(b.count("Mul"), 1);  // the gamma Mul stays outside
}

// HF T5/LLaMA RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, rsqrt as Div(1, Sqrt) or Reciprocal.
ir::Value* rms_norm(Builder& b, ir::Value* x, bool div_one, bool weight_first) {
  ir::Value* sq = b.node("Pow", {x, b.scalar("two", 2.f)}, "sq");
  ir::Value* ms = b.node("ReduceMean", {sq}, "ms", {attr_ints("axes", {-1})});
  ir::Value* ve = b.node("Add", {ms, b.scalar("eps", 1e-6f)}, "ve");
  ir::Value* s = b.node("Sqrt", {ve}, "s");
  ir::Value* r =
      div_one ? b.node("Div", {b.scalar("one", 1.f), s}, "r") : b.node("Reciprocal", {s}, "r");
  ir::Value* n = b.node("Mul", {x, r}, "n");
  std::vector<float> w(8);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1.f + 0.05f * static_cast<float>(i);
  ir::Value* wv = b.constant("weight", {8}, w);
  return weight_first ? b.node("Mul", {wv, n}, "y") : b.node("Mul", {n, wv}, "y");
}

TEST(FuseLayerNorm, RmsNorm) {
  for (bool div_one : {false, true}) {
    Builder b;
    ir::Value* x = b.input("x", {3, 4, 8});
    b.output(rms_norm(b, x, div_one, div_one));
    check_pass(b, kPass);
    ASSERT_EQ(b.g.nodes().size(), 1u);
    const ir::Node* n = b.find("RMSNormalization");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->opset, 23);
    EXPECT_EQ(n->attr_int("axis", 0), 2);
    EXPECT_FLOAT_EQ(n->attr_float("epsilon", 0), 1e-6f);
    EXPECT_EQ(n->inputs[1]->name, "weight");
  }
}

TEST(FuseLayerNorm, RmsNormWithSquareReadElsewhereStays) {
  Builder b;
  ir::Value* x = b.input("x", {3, 8});
  b.output(rms_norm(b, x, false, false));
  b.output(b.g.find_value("sq"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("RMSNormalization"), 0);
}

TEST(FuseLayerNorm, FusesInsideThePipeline) {
  // LayerNorm feeding a residual Add, twice: both fuse; the verifier runs after each pass.
  Builder b;
  ir::Value* x = b.input("x", {2, 5, 8});
  ir::Value* y = layer_norm(b, x, {});
  b.output(b.node("Add", {y, x}, "res"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, 3);
  const auto before = pattern_test::run_cpu(b.g, feeds);
  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  ASSERT_TRUE(pm.run(b.g).ok());
  EXPECT_EQ(b.count("LayerNormalization"), 1);
  pattern_test::expect_close(pattern_test::run_cpu(b.g, feeds), before);
}

}  // namespace
}  // namespace kiln
