// fold_batch_norm: BatchNormalization folded into the Conv / Gemm / MatMul before it. The CPU
// outputs before and after agree within float rounding (folding computes in double and rounds
// the weights once: 1e-5 relative).
#include "passes/conv_fusion_test_util.h"

namespace kiln {
namespace {

using conv_fusion_test::GraphBuilder;
using conv_fusion_test::max_rel_diff;
using conv_fusion_test::run_cpu;
using conv_fusion_test::run_pass;

const passes::Pass kFold{"fold_batch_norm", passes::fold_batch_norm};

// Runs the pass; checks that the graph changed as `expect_fold` says and that outputs agree.
void fold_and_compare(GraphBuilder& b, bool expect_fold) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = b.feeds(7);
  const auto before = run_cpu(b.g, feeds);
  const int bn_before = b.count("BatchNormalization");
  Status st = run_pass(kFold, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(b.count("BatchNormalization"), expect_fold ? bn_before - 1 : bn_before);
  const auto after = run_cpu(b.g, feeds);
  EXPECT_LT(max_rel_diff(after, before), 1e-5);
}

TEST(FoldBatchNorm, ConvWithBias) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 3, 8, 8});
  ir::Value* y = b.node("Conv", {x, b.random("w", {4, 3, 3, 3}), b.random("b", {4})}, "c",
                        {GraphBuilder::attr_ints("pads", {1, 1, 1, 1})});
  b.output(b.batch_norm(y, 4, "y"));
  fold_and_compare(b, true);
  EXPECT_EQ(b.count("Conv"), 1);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.g.outputs[0]->name, "y");  // the BN's output name survives
  EXPECT_EQ(b.g.nodes()[0]->num_inputs(), 3);
}

TEST(FoldBatchNorm, GroupedConvWithoutBiasThenRelu) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 4, 6, 6});
  ir::Value* c =
      b.node("Conv", {x, b.random("w", {6, 2, 3, 3})}, "c", {GraphBuilder::attr_int("group", 2)});
  b.output(b.node("Relu", {b.batch_norm(c, 6, "bn")}, "y"));
  fold_and_compare(b, true);
  EXPECT_EQ(b.count("Conv"), 1);
  EXPECT_EQ(b.count("Relu"), 1);
}

TEST(FoldBatchNorm, DepthwiseConv) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 5, 7, 7});
  ir::Value* c = b.node("Conv", {x, b.random("w", {5, 1, 3, 3}), b.random("b", {5})}, "c",
                        {GraphBuilder::attr_int("group", 5)});
  b.output(b.batch_norm(c, 5, "y"));
  fold_and_compare(b, true);
}

TEST(FoldBatchNorm, GemmWithTransBAlphaBeta) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {3, 5});
  ir::Value* g =
      b.node("Gemm", {x, b.random("w", {4, 5}), b.random("c", {4})}, "g",
             {GraphBuilder::attr_int("transB", 1), GraphBuilder::attr_float("alpha", 0.5f),
              GraphBuilder::attr_float("beta", 2.f)});
  b.output(b.batch_norm(g, 4, "y"));
  fold_and_compare(b, true);
  EXPECT_EQ(b.count("Gemm"), 1);
}

TEST(FoldBatchNorm, GemmWithScalarCAndNone) {
  for (bool scalar : {true, false}) {
    GraphBuilder b;
    ir::Value* x = b.input("x", {2, 3});
    std::vector<ir::Value*> in = {x, b.random("w", {3, 4})};
    if (scalar) in.push_back(b.random("c", {1}));
    b.output(b.batch_norm(b.node("Gemm", in, "g"), 4, "y"));
    fold_and_compare(b, true);
  }
}

TEST(FoldBatchNorm, MatMulBecomesGemm) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {3, 6});
  b.output(b.batch_norm(b.node("MatMul", {x, b.random("w", {6, 4})}, "m"), 4, "y"));
  fold_and_compare(b, true);
  EXPECT_EQ(b.count("MatMul"), 0);
  EXPECT_EQ(b.count("Gemm"), 1);
}

TEST(FoldBatchNorm, RefusesSharedConvOutput) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* c = b.node("Conv", {x, b.random("w", {4, 3, 3, 3})}, "c");
  b.output(b.batch_norm(c, 4, "y"));
  b.output(b.node("Relu", {c}, "other"));  // another consumer
  fold_and_compare(b, false);
  GraphBuilder o;
  ir::Value* x2 = o.input("x", {1, 3, 5, 5});
  ir::Value* c2 = o.node("Conv", {x2, o.random("w", {4, 3, 3, 3})}, "c");
  o.output(o.batch_norm(c2, 4, "y"));
  o.output(c2);  // a graph output
  fold_and_compare(o, false);
}

TEST(FoldBatchNorm, RefusesNonConstantParametersAndWeights) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* scale = b.input("scale", {4});  // a run-time value
  ir::Value* c = b.node("Conv", {x, b.random("w", {4, 3, 3, 3})}, "c");
  b.output(b.node(
      "BatchNormalization",
      {c, scale, b.random("bb", {4}), b.random("m", {4}), b.random("v", {4}, 0.5f, 1.f)}, "y"));
  fold_and_compare(b, false);
  GraphBuilder w;
  ir::Value* x2 = w.input("x", {1, 3, 5, 5});
  ir::Value* wt = w.input("w", {4, 3, 3, 3});  // weight given at run time
  w.output(w.batch_norm(w.node("Conv", {x2, wt}, "c"), 4, "y"));
  fold_and_compare(w, false);
}

TEST(FoldBatchNorm, RefusesTrainingModeAndRank3MatMul) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* c = b.node("Conv", {x, b.random("w", {4, 3, 3, 3})}, "c");
  ir::Value* y = b.batch_norm(c, 4, "y");
  const_cast<ir::Node*>(y->producer)->attrs.push_back(GraphBuilder::attr_int("training_mode", 1));
  b.output(y);
  ASSERT_TRUE(run_pass(kFold, b.g).ok());
  EXPECT_EQ(b.count("BatchNormalization"), 1);
  // MatMul [2, 3, 6] x [6, 4]: BN's channel dim is 3, not the matmul's columns.
  GraphBuilder m;
  ir::Value* x3 = m.input("x", {2, 3, 6});
  m.output(m.batch_norm(m.node("MatMul", {x3, m.random("w", {6, 4})}, "mm"), 3, "y"));
  fold_and_compare(m, false);
}

TEST(FoldBatchNorm, FusionPipelineLeavesOneFusedConv) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 3, 8, 8});
  ir::Value* c = b.node("Conv", {x, b.random("w", {4, 3, 3, 3})}, "c",
                        {GraphBuilder::attr_ints("pads", {1, 1, 1, 1})});
  b.output(b.node("Relu", {b.batch_norm(c, 4, "bn")}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = b.feeds(3);
  const auto before = run_cpu(b.g, feeds);
  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  Status st = pm.run(b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.g.nodes()[0]->op_type, "FusedConv");
  EXPECT_EQ(b.g.nodes()[0]->num_inputs(), 3);
  EXPECT_LT(max_rel_diff(run_cpu(b.g, feeds), before), 1e-5);
}

}  // namespace
}  // namespace kiln
