// fold_mha_layout: the sequence-first multi-head attention of torchvision's ViT export
// (Transpose to [S, B, E] → packed projection → Reshape/Unsqueeze/Transpose/Squeeze/Gather →
// head split → 4-D Attention → head merge → output projection → Transpose back) becomes
// projection → Split → 3-D Attention → projection on [B, S, E].
#include <random>

#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_float;
using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;

const passes::Pass kEpilogue = {"fuse_matmul_epilogue", passes::fuse_matmul_epilogue};
const passes::Pass kFold = {"fold_mha_layout", passes::fold_mha_layout};
const passes::Pass kDce = {"eliminate_dead_nodes", passes::eliminate_dead_nodes};

// B = 2, S = 5, E = 12, H = 3, D = 4.
constexpr int64_t kB = 2, kS = 5, kE = 12, kH = 3, kD = 4;

struct Options {
  bool symbolic_batch = false;  // x is [batch, 5, 12]; reshape targets come from Shape(x^T)
  int index[3] = {0, 1, 2};     // Gather index feeding Q, K, V
  std::vector<int64_t> view_perm = {3, 1, 2, 0, 4};  // the packed view's Transpose
  std::vector<int64_t> out_perm = {2, 0, 1, 3};      // the head merge's Transpose
  bool mask = false;                                 // an additive [S, S] mask
  bool gather_is_output = false;                     // Q's Gather output also a graph output
  bool shape_is_output = false;                      // Shape(qkv) also a graph output
};

ir::Value* rand_const(Builder& b, const std::string& name, std::vector<int64_t> shape,
                      uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> data(static_cast<size_t>(n));
  for (float& x : data) x = dist(rng);
  return b.constant(name, shape, data);
}

ir::Value* scalar_int(Builder& b, const std::string& name, int64_t v) {
  ir::Value* c = b.g.add_value(name);
  c->constant = std::make_shared<Tensor>(Tensor::from_vector<int64_t>({}, {v}));
  c->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({}));
  return c;
}

// The chain as the export writes it; returns the residual sum.
ir::Value* vit_attention(Builder& b, const Options& o) {
  ir::Value* x =
      o.symbolic_batch
          ? b.input_dims("x", {ir::Dim::named("batch"), ir::Dim::of(kS), ir::Dim::of(kE)},
                         {kB, kS, kE})
          : b.input("x", {kB, kS, kE});
  ir::Value* xt = b.node("Transpose", {x}, "xt", {attr_ints("perm", {1, 0, 2})});
  // The batch dim as a [1] tensor: a constant, or Shape(x^T)[1] like the export.
  ir::Value* batch = b.ints("batch_const", {kB});
  if (o.symbolic_batch) {
    ir::Value* sh = b.node("Shape", {xt}, "xt_shape");
    ir::Value* bd = b.node("Gather", {sh, scalar_int(b, "one", 1)}, "bd", {attr_int("axis", 0)});
    batch = b.node("Unsqueeze", {bd, b.ints("ax0", {0})}, "bd1");
  }
  auto target = [&](const std::string& name, std::vector<int64_t> before,
                    std::vector<int64_t> after) {
    std::vector<ir::Value*> parts;
    if (!before.empty()) parts.push_back(b.ints(name + "_a", before));
    parts.push_back(batch);
    if (!after.empty()) parts.push_back(b.ints(name + "_b", after));
    return b.node("Concat", parts, name, {attr_int("axis", 0)});
  };
  ir::Value* mm = b.node("MatMul", {xt, rand_const(b, "w_in", {kE, 3 * kE}, 1)}, "mm");
  ir::Value* qkv = b.node("Add", {mm, rand_const(b, "b_in", {3 * kE}, 2)}, "qkv");
  if (o.shape_is_output) {
    ir::Value* sh = b.node("Shape", {qkv}, "qkv_shape");
    b.output(b.node("Cast", {sh}, "qkv_shape_f", {attr_int("to", 1)}));  // float32
  }
  ir::Value* r2 = b.node("Reshape", {qkv, target("t_r2", {kS}, {3, kE})}, "r2");
  ir::Value* u = b.node("Unsqueeze", {r2, b.ints("ax_u", {0})}, "u");
  ir::Value* t = b.node("Transpose", {u}, "t", {attr_ints("perm", o.view_perm)});
  ir::Value* sq = b.node("Squeeze", {t, b.ints("ax_s", {3})}, "sq");
  ir::Value* in[3];
  const char* tags[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const std::string tag = tags[i];
    ir::Value* g = b.node("Gather", {sq, scalar_int(b, "i_" + tag, o.index[i])}, "g_" + tag,
                          {attr_int("axis", 0)});
    if (i == 0 && o.gather_is_output) b.output(g);
    ir::Value* r3 = b.node("Reshape", {g, b.ints("t3_" + tag, {kS, -1, kD})}, "r3_" + tag);
    ir::Value* t3 = b.node("Transpose", {r3}, "t3" + tag, {attr_ints("perm", {1, 0, 2})});
    in[i] = b.node("Reshape", {t3, target("t4_" + tag, {}, {kH, kS, kD})}, "r4_" + tag);
  }
  std::vector<ir::Value*> ains = {in[0], in[1], in[2]};
  if (o.mask) ains.push_back(b.input("mask", {kS, kS}));
  ir::Value* y = b.node("Attention", ains, "y4", {attr_float("scale", 0.5f)});
  b.last->opset = 23;
  ir::Value* to = b.node("Transpose", {y}, "yt", {attr_ints("perm", o.out_perm)});
  ir::Value* rm = b.node("Reshape", {to, b.ints("t_rm", {-1, kE})}, "rm");
  ir::Value* po =
      b.node("Gemm", {rm, rand_const(b, "w_out", {kE, kE}, 3), rand_const(b, "b_out", {kE}, 4)},
             "po", {attr_int("transB", 1)});
  ir::Value* rs = b.node("Reshape", {po, target("t_rs", {kS}, {kE})}, "rs");
  ir::Value* tf = b.node("Transpose", {rs}, "tf", {attr_ints("perm", {1, 0, 2})});
  return b.node("Add", {tf, x}, "residual");
}

// Runs the epilogue fusion (packed projection → FusedMatMul, as in a build) and the fold; the
// CPU outputs must not change.
void run_both(Builder& b) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, 5);
  const auto before = pattern_test::run_cpu(b.g, feeds);
  Status st = pattern_test::run_pass(kEpilogue, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  st = pattern_test::run_pass(kFold, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  st = pattern_test::run_pass(kDce, b.g);  // the Reshape targets left behind
  ASSERT_TRUE(st.ok()) << st.to_string();
  // Pass-created values keep their types through a fresh inference.
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto after = pattern_test::run_cpu(b.g, feeds);
  pattern_test::expect_close(after, before);
}

void expect_folded(const Builder& b) {
  EXPECT_EQ(b.count("Transpose"), 0);
  EXPECT_EQ(b.count("Gather"), 0);
  EXPECT_EQ(b.count("Squeeze"), 0);
  EXPECT_EQ(b.count("Reshape"), 0);
  EXPECT_EQ(b.count("Gemm"), 0);
  EXPECT_EQ(b.count("Split"), 1);
  ASSERT_EQ(b.count("Attention"), 1);
  const ir::Node* a = b.find("Attention");
  EXPECT_EQ(a->attr_int("q_num_heads", 0), kH);
  EXPECT_EQ(a->attr_int("kv_num_heads", 0), kH);
  EXPECT_FLOAT_EQ(a->attr_float("scale", 0.f), 0.5f);
  ASSERT_TRUE(a->outputs[0]->type.shape.rank_known);
  EXPECT_EQ(a->outputs[0]->type.shape.rank(), 3);
}

void expect_not_folded(const Builder& b) {
  ASSERT_EQ(b.count("Attention"), 1);
  EXPECT_FALSE(b.find("Attention")->has_attr("q_num_heads"));
  EXPECT_EQ(b.count("Split"), 0);
  EXPECT_GT(b.count("Transpose"), 0);
}

TEST(FoldMhaLayout, VitAttentionFolds) {
  Builder b;
  b.output(vit_attention(b, {}));
  run_both(b);
  expect_folded(b);
  // Every node left works on [B, S, *]: projection, Split, Attention, projection, residual.
  EXPECT_EQ(b.g.nodes().size(), 5u);
}

TEST(FoldMhaLayout, SymbolicBatchFoldsWithItsShapeComputation) {
  Builder b;
  Options o;
  o.symbolic_batch = true;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_folded(b);
  EXPECT_EQ(b.count("Shape"), 0);  // Shape(x^T) fed only the removed Reshape targets
  const ir::Node* a = b.find("Attention");
  EXPECT_EQ(a->outputs[0]->type.shape.dims[0].symbol, "batch");
}

TEST(FoldMhaLayout, MaskStays) {
  Builder b;
  Options o;
  o.mask = true;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_folded(b);
  const ir::Node* a = b.find("Attention");
  ASSERT_EQ(a->num_inputs(), 4);
  EXPECT_EQ(a->inputs[3]->name, "mask");
}

// Another assignment of the packed thirds to Q, K, V is still a slice of the projection: the
// Split outputs follow the Gather indices (negative ones included).
TEST(FoldMhaLayout, OtherGatherOrderFollowsIndices) {
  Builder b;
  Options o;
  o.index[0] = 1;
  o.index[1] = -3;  // 0
  o.index[2] = 2;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_folded(b);
  const ir::Node* a = b.find("Attention");
  const ir::Node* sp = b.find("Split");
  EXPECT_EQ(a->inputs[0], sp->outputs[1]);
  EXPECT_EQ(a->inputs[1], sp->outputs[0]);
  EXPECT_EQ(a->inputs[2], sp->outputs[2]);
}

TEST(FoldMhaLayout, IntermediateReadElsewhereStays) {
  Builder b;
  Options o;
  o.gather_is_output = true;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_not_folded(b);
}

// A shape computation whose result leaves the group keeps the group.
TEST(FoldMhaLayout, ShapeReadElsewhereStays) {
  Builder b;
  Options o;
  o.shape_is_output = true;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_not_folded(b);
}

// The packed view with S and B swapped: the Gathers yield [B, S, E], not qkv's thirds.
TEST(FoldMhaLayout, OtherViewPermStays) {
  Builder b;
  Options o;
  o.view_perm = {3, 2, 1, 0, 4};
  b.output(vit_attention(b, o));
  run_both(b);
  expect_not_folded(b);
}

// A head merge in another order is not the [S, B, H*D] rows.
TEST(FoldMhaLayout, OtherMergePermStays) {
  Builder b;
  Options o;
  o.out_perm = {2, 1, 0, 3};
  b.output(vit_attention(b, o));
  run_both(b);
  expect_not_folded(b);
}

// Q and K from the same third (two Gathers of one index) read the same Split output.
TEST(FoldMhaLayout, RepeatedGatherIndexFolds) {
  Builder b;
  Options o;
  o.index[1] = 0;
  b.output(vit_attention(b, o));
  run_both(b);
  expect_folded(b);
  const ir::Node* a = b.find("Attention");
  EXPECT_EQ(a->inputs[0], a->inputs[1]);
}

// The whole fusion pipeline, as a build runs it: the chain ends as FusedMatMul →
// PackedAttention → FusedMatMul → Add, with the same CPU outputs.
TEST(FoldMhaLayout, FusionPipelineFolds) {
  Builder b;
  Options o;
  o.symbolic_batch = true;
  b.output(vit_attention(b, o));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, 9);
  const auto before = pattern_test::run_cpu(b.g, feeds);
  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  Status st = pm.run(b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  pattern_test::expect_close(pattern_test::run_cpu(b.g, feeds), before);
  // fuse_packed_qkv then reads Q, K, V straight from the projection: no Split.
  EXPECT_EQ(b.count("Transpose"), 0);
  EXPECT_EQ(b.count("Reshape"), 0);
  EXPECT_EQ(b.count("Split"), 0);
  EXPECT_EQ(b.count("Attention"), 0);
  ASSERT_EQ(b.count("PackedAttention"), 1);
  const ir::Node* a = b.find("PackedAttention");
  EXPECT_EQ(a->attr_int("q_num_heads", 0), kH);
  EXPECT_EQ(a->attr_int("kv_num_heads", 0), kH);
  EXPECT_FLOAT_EQ(a->attr_float("scale", 0.f), 0.5f);
  EXPECT_EQ(b.count("FusedMatMul"), 2);
  EXPECT_EQ(b.g.nodes().size(), 4u);
}

}  // namespace
}  // namespace kiln
