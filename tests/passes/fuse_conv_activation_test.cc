// fuse_conv_activation: Conv (+ residual Add) (+ Relu) into kiln.FusedConv. The CPU outputs
// before and after are identical: the fused kernel runs Conv's code and then the same float
// additions and max as the Add and Relu kernels (compared at 1e-6 relative all the same).
#include "ops/fused_conv.h"
#include "passes/conv_fusion_test_util.h"

namespace kiln {
namespace {

using conv_fusion_test::GraphBuilder;
using conv_fusion_test::max_rel_diff;
using conv_fusion_test::run_cpu;
using conv_fusion_test::run_pass;

const passes::Pass kFuse{"fuse_conv_activation", passes::fuse_conv_activation};

// Runs the pass; checks the FusedConv count and that outputs agree.
void fuse_and_compare(GraphBuilder& b, int expect_fused) {
  Status inferred = ops::infer_graph_types(b.g);
  ASSERT_TRUE(inferred.ok()) << inferred.to_string();
  const auto feeds = b.feeds(5);
  const auto before = run_cpu(b.g, feeds);
  Status st = run_pass(kFuse, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(b.count(ops::kFusedConvOp), expect_fused);
  const auto after = run_cpu(b.g, feeds);
  EXPECT_LT(max_rel_diff(after, before), 1e-6);
}

ir::Value* conv3x3(GraphBuilder& b, ir::Value* x, int64_t cin, int64_t cout,
                   const std::string& name, int64_t group = 1) {
  return b.node(
      "Conv", {x, b.random(name + "_w", {cout, cin / group, 3, 3}), b.random(name + "_b", {cout})},
      name,
      {GraphBuilder::attr_ints("pads", {1, 1, 1, 1}), GraphBuilder::attr_int("group", group)});
}

std::string activation_of(const ir::Node* n) {
  return n ? n->attr_string("activation") : "<none>";
}

TEST(FuseConvActivation, ConvRelu) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 3, 6, 6});
  b.output(b.node("Relu", {conv3x3(b, x, 3, 4, "c")}, "y"));
  fuse_and_compare(b, 1);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(activation_of(b.find(ops::kFusedConvOp)), "Relu");
  EXPECT_EQ(b.g.outputs[0]->name, "y");
  EXPECT_EQ(b.g.nodes()[0]->domain, ir::kKilnDomain);
}

TEST(FuseConvActivation, ResNetBasicBlock) {
  // x → Conv → Relu → Conv → Add(x) → Relu: two FusedConvs, the second with x as residual.
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 4, 6, 6});
  ir::Value* h = b.node("Relu", {conv3x3(b, x, 4, 4, "c1")}, "h");
  ir::Value* s = b.node("Add", {conv3x3(b, h, 4, 4, "c2"), x}, "s");
  b.output(b.node("Relu", {s}, "y"));
  fuse_and_compare(b, 2);
  EXPECT_EQ(b.g.nodes().size(), 2u);
  const ir::Node* last = b.g.nodes()[1].get();
  ASSERT_EQ(last->num_inputs(), 4);
  EXPECT_EQ(last->inputs[3], x);
  EXPECT_EQ(activation_of(last), "Relu");
}

TEST(FuseConvActivation, DownsampleBranchFusesOnce) {
  // Two convolutions meet at the Add: one absorbs Add + Relu, the other stays a Conv.
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 4, 8, 8});
  ir::Value* main = conv3x3(b, x, 4, 6, "main");
  ir::Value* down = b.node("Conv", {x, b.random("dw", {6, 4, 1, 1}), b.random("db", {6})}, "down");
  b.output(b.node("Relu", {b.node("Add", {main, down}, "s")}, "y"));
  fuse_and_compare(b, 1);
  EXPECT_EQ(b.count("Conv"), 1);
  EXPECT_EQ(b.count("Add"), 0);
  EXPECT_EQ(b.count("Relu"), 0);
}

TEST(FuseConvActivation, ResidualDefinedAfterTheConv) {
  // The residual's producer comes after the Conv in node order: the fused node must take the
  // Add's place for the graph to stay topologically ordered (the verifier checks).
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* r = b.input("r", {1, 4, 5, 5});
  ir::Value* c = conv3x3(b, x, 3, 4, "c");
  ir::Value* z = b.node("Sigmoid", {r}, "z");
  b.output(b.node("Add", {z, c}, "y"));  // the residual on the left
  fuse_and_compare(b, 1);
  const ir::Node* f = b.find(ops::kFusedConvOp);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->inputs[3], z);
  EXPECT_EQ(activation_of(f), "");
}

TEST(FuseConvActivation, GroupedAndBiasFreeConv) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 6, 5, 5});
  ir::Value* c =
      b.node("Conv", {x, b.random("w", {6, 2, 3, 3})}, "c",
             {GraphBuilder::attr_int("group", 3), GraphBuilder::attr_ints("pads", {1, 1, 1, 1})});
  b.output(b.node("Relu", {b.node("Add", {c, x}, "s")}, "y"));
  fuse_and_compare(b, 1);
  EXPECT_EQ(b.g.nodes().size(), 1u);
}

TEST(FuseConvActivation, BroadcastAddIsNotAResidual) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* c = conv3x3(b, x, 3, 4, "c");
  ir::Value* s = b.node("Add", {c, b.random("shift", {1, 4, 1, 1})}, "s");
  b.output(b.node("Relu", {s}, "y"));
  fuse_and_compare(b, 0);
  EXPECT_EQ(b.count("Conv"), 1);
  // A residual of another dtype-compatible but broadcasting shape, computed at run time.
  GraphBuilder o;
  ir::Value* x2 = o.input("x", {1, 3, 5, 5});
  ir::Value* r = o.input("r", {1, 1, 5, 5});
  o.output(o.node("Add", {conv3x3(o, x2, 3, 4, "c"), r}, "y"));
  fuse_and_compare(o, 0);
}

TEST(FuseConvActivation, SharedIntermediatesStopTheFusion) {
  {  // the conv output is also a graph output
    GraphBuilder b;
    ir::Value* x = b.input("x", {1, 3, 5, 5});
    ir::Value* c = conv3x3(b, x, 3, 4, "c");
    b.output(b.node("Relu", {c}, "y"));
    b.output(c);
    fuse_and_compare(b, 0);
  }
  {  // the conv output has another consumer
    GraphBuilder b;
    ir::Value* x = b.input("x", {1, 3, 5, 5});
    ir::Value* c = conv3x3(b, x, 3, 4, "c");
    b.output(b.node("Relu", {c}, "y"));
    b.output(b.node("Sigmoid", {c}, "y2"));
    fuse_and_compare(b, 0);
  }
  {  // the Add output is read elsewhere: Conv + Add fuse, the Relu stays
    GraphBuilder b;
    ir::Value* x = b.input("x", {1, 4, 5, 5});
    ir::Value* s = b.node("Add", {conv3x3(b, x, 4, 4, "c"), x}, "s");
    b.output(b.node("Relu", {s}, "y"));
    b.output(b.node("Sigmoid", {s}, "y2"));
    fuse_and_compare(b, 1);
    EXPECT_EQ(b.count("Relu"), 1);
    EXPECT_EQ(activation_of(b.find(ops::kFusedConvOp)), "");
  }
  {  // Add(conv, conv): the same value twice is no residual
    GraphBuilder b;
    ir::Value* x = b.input("x", {1, 3, 5, 5});
    ir::Value* c = conv3x3(b, x, 3, 4, "c");
    b.output(b.node("Add", {c, c}, "y"));
    fuse_and_compare(b, 0);
  }
}

TEST(FuseConvActivation, LowerPrecisionConvertsFusedConv) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 4, 5, 5});
  ir::Value* s = b.node("Add", {conv3x3(b, x, 4, 4, "c"), x}, "s");
  b.output(b.node("Relu", {s}, "y"));
  ASSERT_TRUE(run_pass(kFuse, b.g).ok());
  ASSERT_EQ(b.count(ops::kFusedConvOp), 1);
  const auto feeds = b.feeds(9);
  const auto before = run_cpu(b.g, feeds);
  auto lowered = passes::lower_precision(b.g, DType::kFloat16);
  ASSERT_TRUE(lowered.ok()) << lowered.status().to_string();
  ASSERT_TRUE(ir::verify_graph(b.g).ok());
  const ir::Node* f = b.find(ops::kFusedConvOp);
  ASSERT_TRUE(f);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(f->inputs[static_cast<size_t>(i)]->type.dtype, DType::kFloat16);
  EXPECT_EQ(f->outputs[0]->type.dtype, DType::kFloat16);
  // Casts into float16 for x (data and residual), back to float32 for the output.
  EXPECT_EQ(b.count("Cast"), 2);
  for (const auto& n : b.g.nodes()) {
    if (n->op_type == "Cast") {
      EXPECT_GE(n->opset, 13);
    }
  }
  const auto after = run_cpu(b.g, feeds);
  EXPECT_LT(max_rel_diff(after, before), 1e-2);  // float16: 11-bit mantissa, sums of 36 terms
}

}  // namespace
}  // namespace kiln
