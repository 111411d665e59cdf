// layout_nhwc: 2-D convolutions in channels-last layout with transposes only at the region's
// edges. The CPU kernels of the channels-last ops permute and run the channels-first code, so
// outputs before and after agree to float rounding (compared at 1e-6 relative; the global
// average becomes a ReduceMean, which sums in another order).
#include "ops/fused_conv.h"
#include "ops/layout.h"
#include "passes/conv_fusion_test_util.h"

namespace kiln {
namespace {

using conv_fusion_test::GraphBuilder;
using conv_fusion_test::max_rel_diff;
using conv_fusion_test::run_cpu;
using conv_fusion_test::run_pass;

// The tests build float32 graphs and convert their convolutions too (the builder's default,
// float16/bfloat16 only, is checked separately).
StatusOr<bool> layout_f32(ir::Graph& g) {
  return passes::layout_nhwc_with(g, passes::LayoutOptions{.float32 = true});
}
const passes::Pass kLayoutF32{"layout_nhwc(float32)", layout_f32};
const passes::Pass kLayout{"layout_nhwc", passes::layout_nhwc};
const passes::Pass kFuse{"fuse_conv_activation", passes::fuse_conv_activation};

ir::Value* conv(GraphBuilder& b, ir::Value* x, int64_t cin, int64_t cout, int64_t k,
                const std::string& name, std::vector<int64_t> pads = {1, 1, 1, 1},
                int64_t group = 1) {
  return b.node(
      "Conv", {x, b.random(name + "_w", {cout, cin / group, k, k}), b.random(name + "_b", {cout})},
      name, {GraphBuilder::attr_ints("pads", pads), GraphBuilder::attr_int("group", group)});
}

int count_channels_last_convs(const GraphBuilder& b) {
  int c = 0;
  for (const auto& n : b.g.nodes()) {
    c += n->op_type == ops::kFusedConvOp && n->attr_int(ops::kChannelsLastAttr, 0) == 1;
  }
  return c;
}

// Conv-Relu-Conv-Add-Relu-MaxPool-GlobalAveragePool-Flatten-Gemm on x [n, c, 8, 8].
void resnet_block(GraphBuilder& b, int64_t n, int64_t c) {
  ir::Value* x = b.input("x", {n, c, 8, 8});
  ir::Value* h = b.node("Relu", {conv(b, x, c, 8, 3, "c1")}, "h");
  ir::Value* s = b.node("Add", {conv(b, h, 8, 8, 3, "c2"), h}, "s");
  ir::Value* r = b.node("Relu", {s}, "r");
  ir::Value* p = b.node(
      "MaxPool", {r}, "p",
      {GraphBuilder::attr_ints("kernel_shape", {3, 3}),
       GraphBuilder::attr_ints("pads", {1, 1, 1, 1}), GraphBuilder::attr_ints("strides", {2, 2})});
  ir::Value* g = b.node("GlobalAveragePool", {p}, "g");
  ir::Value* f = b.node("Flatten", {g}, "f", {GraphBuilder::attr_int("axis", 1)});
  b.output(b.node("Gemm", {f, b.random("fc_w", {5, 8}), b.random("fc_b", {5})}, "y",
                  {GraphBuilder::attr_int("transB", 1)}));
}

// Runs `passes` in order and compares the CPU outputs with the graph's before.
void run_and_compare(GraphBuilder& b, const std::vector<passes::Pass>& ps, double tol = 1e-6) {
  Status inferred = ops::infer_graph_types(b.g);
  ASSERT_TRUE(inferred.ok()) << inferred.to_string();
  const auto feeds = b.feeds(11);
  const auto before = run_cpu(b.g, feeds);
  for (const passes::Pass& p : ps) {
    Status st = run_pass(p, b.g);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  // Inference from scratch agrees with the types the pass wrote.
  Status again = ops::infer_graph_types(b.g);
  ASSERT_TRUE(again.ok()) << again.to_string();
  const auto after = run_cpu(b.g, feeds);
  EXPECT_LT(max_rel_diff(after, before), tol);
}

TEST(LayoutNhwc, ResNetBlockAfterFusionHasOneTranspose) {
  for (int64_t c : {3, 8}) {
    SCOPED_TRACE(c);
    GraphBuilder b;
    resnet_block(b, 2, c);
    run_and_compare(b, {kFuse, kLayoutF32});
    EXPECT_EQ(count_channels_last_convs(b), 2);
    EXPECT_EQ(b.count("Transpose"), 1);  // at the input; [N,1,1,C] → [N,C,1,1] is a Reshape
    EXPECT_EQ(b.count(ops::kChannelsLastMaxPoolOp), 1);
    EXPECT_EQ(b.count("ReduceMean"), 1);
    EXPECT_EQ(b.count("Reshape"), 1);
    EXPECT_EQ(b.count("MaxPool"), 0);
    // The residual and the activation stayed fused.
    const ir::Node* last = nullptr;
    for (const auto& n : b.g.nodes())
      if (n->op_type == ops::kFusedConvOp) last = n.get();
    ASSERT_NE(last, nullptr);
    EXPECT_TRUE(last->has_input(3));
    EXPECT_EQ(last->attr_string("activation"), "Relu");
    EXPECT_EQ(b.g.outputs[0]->name, "y");
  }
}

TEST(LayoutNhwc, UnfusedBlockRelaysThroughReluAndAdd) {
  GraphBuilder b;
  resnet_block(b, 1, 4);
  run_and_compare(b, {kLayoutF32});
  EXPECT_EQ(count_channels_last_convs(b), 2);
  EXPECT_EQ(b.count("Transpose"), 1);
  EXPECT_EQ(b.count("Relu"), 2);
  EXPECT_EQ(b.count("Add"), 1);
}

TEST(LayoutNhwc, Float16AfterLowerPrecision) {
  GraphBuilder b;
  resnet_block(b, 2, 3);
  Status inferred = ops::infer_graph_types(b.g);
  ASSERT_TRUE(inferred.ok()) << inferred.to_string();
  ASSERT_TRUE(run_pass(kFuse, b.g).ok());
  auto lowered = passes::lower_precision(b.g, DType::kFloat16);
  ASSERT_TRUE(lowered.ok()) << lowered.status().to_string();
  // float16 kernels round the same values in both layouts; the global mean (ReduceMean instead
  // of GlobalAveragePool) may round one float16 ulp differently, which the Gemm then sums.
  run_and_compare(b, {kLayout}, 1e-2);
  EXPECT_EQ(count_channels_last_convs(b), 2);
  EXPECT_EQ(b.count("Transpose"), 1);
  // 3 input channels are padded to 8 (a Pad after the input's transpose, zero channels in W).
  EXPECT_EQ(b.count("Pad"), 1);
  for (const auto& n : b.g.nodes()) {
    if (n->op_type == ops::kFusedConvOp && n->inputs[0]->type.shape.dims[3].value == 8) {
      EXPECT_EQ(n->inputs[1]->type.shape.to_string(), "[8,3,3,8]");
    }
  }
}

TEST(LayoutNhwc, Float16WithoutChannelPadding) {
  GraphBuilder b;
  resnet_block(b, 1, 3);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  auto lowered = passes::lower_precision(b.g, DType::kFloat16);
  ASSERT_TRUE(lowered.ok()) << lowered.status().to_string();
  run_and_compare(b,
                  {{"layout_nhwc(no pad)",
                    [](ir::Graph& g) {
                      return passes::layout_nhwc_with(g, passes::LayoutOptions{.pad_channels = 0});
                    }}},
                  1e-2);
  EXPECT_EQ(count_channels_last_convs(b), 2);
  EXPECT_EQ(b.count("Pad"), 0);
  EXPECT_EQ(b.count("Transpose"), 1);
}

TEST(LayoutNhwc, Float32NeedsTheOption) {
  GraphBuilder b;
  resnet_block(b, 1, 4);
  run_and_compare(b, {kLayout});
  EXPECT_EQ(count_channels_last_convs(b), 0);
  EXPECT_EQ(b.count("Transpose"), 0);
}

TEST(LayoutNhwc, ConstantOperandsArePermuted) {
  // A per-channel scale [C,1,1], a scalar, a Concat along channels, an AveragePool.
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 4, 6, 6});
  ir::Value* a = conv(b, x, 4, 6, 3, "a");
  ir::Value* m = b.node("Mul", {a, b.random("scale", {6, 1, 1})}, "m");
  ir::Value* s = b.node("Add", {m, b.constant("one", {}, {1.f})}, "s");
  ir::Value* k = conv(b, x, 4, 2, 1, "k", {0, 0, 0, 0});
  ir::Value* cat = b.node("Concat", {s, k}, "cat", {GraphBuilder::attr_int("axis", 1)});
  ir::Value* p = b.node("AveragePool", {cat}, "p",
                        {GraphBuilder::attr_ints("kernel_shape", {2, 2}),
                         GraphBuilder::attr_ints("strides", {2, 2})});
  b.output(conv(b, p, 8, 3, 3, "out"));
  run_and_compare(b, {kLayoutF32});
  EXPECT_EQ(count_channels_last_convs(b), 3);
  EXPECT_EQ(b.count("Transpose"), 2);  // x in, the graph output out
  EXPECT_EQ(b.count(ops::kChannelsLastAveragePoolOp), 1);
  for (const auto& n : b.g.nodes()) {
    if (n->op_type == "Concat") EXPECT_EQ(n->attr_int("axis", 0), 3);
  }
}

TEST(LayoutNhwc, NonLayoutAgnosticConsumersGetTheTransposeBack) {
  // Softmax over the channel axis reads NCHW: the Transpose stays in front of it.
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 5, 5});
  ir::Value* a = b.node("Relu", {conv(b, x, 3, 4, 3, "a")}, "a_relu");
  b.output(b.node("Softmax", {a}, "y", {GraphBuilder::attr_int("axis", 1)}));
  run_and_compare(b, {kLayoutF32});
  EXPECT_EQ(count_channels_last_convs(b), 1);
  EXPECT_EQ(b.count("Transpose"), 2);
}

TEST(LayoutNhwc, RefusedConvolutions) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 4, 6, 6});
  // W is a graph input: not constant.
  ir::Value* w = b.input("w", {4, 4, 3, 3});
  ir::Value* c1 = b.node("Conv", {x, w}, "c1", {GraphBuilder::attr_ints("pads", {1, 1, 1, 1})});
  // Asymmetric pads.
  ir::Value* c2 = conv(b, c1, 4, 4, 3, "c2", {0, 0, 1, 1});
  // auto_pad SAME_UPPER.
  ir::Value* c3 = b.node("Conv", {c2, b.random("w3", {4, 4, 3, 3})}, "c3");
  b.g.nodes().back()->attrs.push_back([] {
    ir::Attribute a;
    a.name = "auto_pad";
    a.type = ir::AttrType::kString;
    a.s = "SAME_UPPER";
    return a;
  }());
  b.output(c3);
  // 3-D convolution.
  ir::Value* v = b.input("v", {1, 2, 4, 4, 4});
  b.output(b.node("Conv", {v, b.random("w5", {3, 2, 3, 3, 3})}, "c5"));
  run_and_compare(b, {kLayoutF32});
  EXPECT_EQ(count_channels_last_convs(b), 0);
  EXPECT_EQ(b.count("Transpose"), 0);
  EXPECT_EQ(b.count("Conv"), 4);
}

TEST(LayoutNhwc, DynamicChannelsAreRefused) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 4, 6, 6});
  b.output(conv(b, x, 4, 4, 3, "c"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  x->type.shape.dims[1] = ir::Dim::named("channels");
  auto changed = layout_f32(b.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(b.count("Transpose"), 0);
}

TEST(LayoutNhwc, WeightsNotMatchingTheChannelsAreRefused) {
  // An invalid model (W has 5 input channels, X 3): left for the kernel to report, not hidden by
  // channel padding.
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 6, 6});
  b.output(b.node("Conv", {x, b.random("w", {4, 5, 3, 3})}, "c"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
  auto changed = passes::layout_nhwc(b.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(b.count("Transpose"), 0);
}

TEST(LayoutNhwc, GraphOutputsKeepTheirNamesAndLayout) {
  // The conv output is both a graph output and read by a Relu.
  GraphBuilder b;
  ir::Value* x = b.input("x", {2, 3, 5, 5});
  ir::Value* a = conv(b, x, 3, 4, 3, "a");
  b.output(a);
  b.output(b.node("Relu", {a}, "r"));
  run_and_compare(b, {kLayoutF32});
  EXPECT_EQ(b.g.outputs[0]->name, "a");
  EXPECT_EQ(b.g.outputs[1]->name, "r");
  EXPECT_EQ(b.g.outputs[0]->type.shape.to_string(), "[2,4,5,5]");
  EXPECT_EQ(b.g.outputs[1]->type.shape.to_string(), "[2,4,5,5]");
  // The Transpose making `a` stays for the output; the Relu reads it there rather than adding a
  // Transpose of its own.
  EXPECT_EQ(b.count("Transpose"), 2);
}

TEST(LayoutNhwc, TransposesStayOnTheNarrowSideOfCasts) {
  // float16 Conv → Relu → Cast to float32 (the graph output): the Relu runs in NHWC, the last
  // Transpose moves float16 values, before the widening Cast.
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 8, 4, 4});
  b.output(b.node("Relu", {conv(b, x, 8, 8, 3, "a")}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
  run_and_compare(b, {kLayout}, 1e-3);
  EXPECT_EQ(b.count("Transpose"), 2);
  for (const auto& n : b.g.nodes()) {
    if (n->op_type == "Transpose") {
      EXPECT_EQ(n->outputs[0]->type.dtype, DType::kFloat16);
    }
  }
  EXPECT_EQ(b.g.outputs[0]->type.dtype, DType::kFloat32);
}

}  // namespace
}  // namespace kiln
