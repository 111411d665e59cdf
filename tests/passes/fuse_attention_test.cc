// fuse_attention: exported scaled dot-product attention becomes one Attention (opset 23).
#include <cmath>

#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fuse_attention", passes::fuse_attention};

// B = 2, H = 3, S = 5, D = 4.
struct Attn {
  ir::Value* scores = nullptr;  // after scale (and mask)
  ir::Value* probs = nullptr;
  ir::Value* y = nullptr;
};

// HF eager attention: MatMul(q, Transpose(k)) / sqrt(d) [+ mask] → Softmax → MatMul(·, v).
Attn eager(Builder& b, ir::Value* q, ir::Value* k, ir::Value* v, ir::Value* mask,
           int64_t softmax_axis = -1) {
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 1, 3, 2})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  Attn a;
  a.scores = b.node("Div", {qk, b.scalar("sqrt_d", 2.f)}, "scaled");
  if (mask != nullptr) a.scores = b.node("Add", {a.scores, mask}, "masked");
  a.probs = b.node("Softmax", {a.scores}, "probs", {attr_int("axis", softmax_axis)});
  a.y = b.node("MatMul", {a.probs, v}, "y");
  return a;
}

const ir::Node* attention(const Builder& b) {
  return b.find("Attention");
}

TEST(FuseAttention, BertEagerWithMask) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* mask = b.input("mask", {2, 1, 1, 5});
  b.output(eager(b, q, k, v, mask).y);
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* a = attention(b);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->opset, 23);
  ASSERT_EQ(a->inputs.size(), 4u);
  EXPECT_EQ(a->inputs[0], q);
  EXPECT_EQ(a->inputs[1], k);  // K un-transposed
  EXPECT_EQ(a->inputs[2], v);
  EXPECT_EQ(a->inputs[3], mask);
  EXPECT_FLOAT_EQ(a->attr_float("scale", 0), 0.5f);
  EXPECT_EQ(a->outputs[0]->name, "y");
}

// transformers' eager attention with a bool mask: scores + Where(keep, 0, -inf), and the NaN guard
// Where(IsNaN(P), 0, P) after Softmax. Attention reads `keep` as its bool mask and gives a fully
// masked row (batch 1 here) zeros, as the guard does.
TEST(FuseAttention, BoolMaskAndNanGuard) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* mf = b.constant("mf", {2, 1, 1, 5}, {1, -1, 1, 1, -1, -1, -1, -1, -1, -1});
  ir::Value* keep = b.node("Greater", {mf, b.scalar("zero", 0.f)}, "keep");
  ir::Value* madd =
      b.node("Where", {keep, b.scalar("z", 0.f), b.scalar("ninf", -INFINITY)}, "madd");
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 1, 3, 2})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* sc = b.node("Div", {qk, b.scalar("sqrt_d", 2.f)}, "scaled");
  ir::Value* masked = b.node("Add", {sc, madd}, "masked");
  ir::Value* p = b.node("Softmax", {masked}, "probs", {attr_int("axis", -1)});
  ir::Value* nan = b.node("IsNaN", {p}, "nan");
  ir::Value* guarded = b.node("Where", {nan, b.scalar("z2", 0.f), p}, "guarded");
  b.output(b.node("MatMul", {guarded, v}, "y"));
  check_pass(b, kPass);
  const ir::Node* a = attention(b);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->inputs.size(), 4u);
  EXPECT_EQ(a->inputs[3], keep);
  EXPECT_EQ(b.count("Softmax"), 0);
  EXPECT_EQ(b.count("IsNaN"), 0);
  EXPECT_EQ(b.count("MatMul"), 0);
}

// The guard is part of the pattern only when it is exactly Where(IsNaN(P), 0, P).
TEST(FuseAttention, OtherWhereAfterSoftmaxStays) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 1, 3, 2})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* p = b.node("Softmax", {qk}, "probs", {attr_int("axis", -1)});
  ir::Value* nan = b.node("IsNaN", {p}, "nan");
  ir::Value* guarded = b.node("Where", {nan, b.scalar("half", 0.5f), p}, "guarded");
  b.output(b.node("MatMul", {guarded, v}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(attention(b), nullptr);
  EXPECT_EQ(b.count("Softmax"), 1);
}

TEST(FuseAttention, FullMaskAndLowRankMask) {
  for (std::vector<int64_t> mshape :
       {std::vector<int64_t>{2, 1, 5, 5}, {2, 3, 5, 5}, {5}, {5, 5}, {1, 1, 1, 5}}) {
    Builder b;
    ir::Value* q = b.input("q", {2, 3, 5, 4});
    ir::Value* k = b.input("k", {2, 3, 5, 4});
    ir::Value* v = b.input("v", {2, 3, 5, 4});
    ir::Value* mask = b.input("mask", mshape);
    b.output(eager(b, q, k, v, mask).y);
    check_pass(b, kPass);
    EXPECT_EQ(b.g.nodes().size(), 1u) << mshape.size();
  }
}

TEST(FuseAttention, KeyTransposeMergedWithHeadSplit) {
  // torch.onnx merges Transpose(0,2,1,3) and Transpose(0,1,3,2) into one Transpose(0,2,3,1):
  // K reaches the Attention through Transpose(0,2,1,3).
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k3 = b.input("k3", {2, 5, 3, 4});  // [B, S, H, D]
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* kt = b.node("Transpose", {k3}, "kt", {attr_ints("perm", {0, 2, 3, 1})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* s = b.node("Mul", {qk, b.scalar("scale", 0.5f)}, "s");
  ir::Value* p = b.node("Softmax", {s}, "p", {attr_int("axis", 3)});
  b.output(b.node("MatMul", {p, v}, "y"));
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 2u);
  const ir::Node* t = b.find("Transpose");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->attr_ints("perm"), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(attention(b)->inputs[1], t->outputs[0]);
}

TEST(FuseAttention, SdpaExportScalesQAndK) {
  // torch's scaled_dot_product_attention export (ViT): Q and K^T each times sqrt(scale).
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  const float r = 0.70710678f;  // sqrt(1 / sqrt(4))
  ir::Value* qs = b.node("Mul", {q, b.scalar("rq", r)}, "qs");
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 1, 3, 2})});
  ir::Value* ks = b.node("Mul", {kt, b.scalar("rk", r)}, "ks");
  ir::Value* qk = b.node("MatMul", {qs, ks}, "qk");
  ir::Value* p = b.node("Softmax", {qk}, "p", {attr_int("axis", -1)});
  b.output(b.node("MatMul", {p, v}, "y"));
  check_pass(b, kPass);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* a = attention(b);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->inputs.size(), 3u);
  EXPECT_EQ(a->inputs[0], q);
  EXPECT_EQ(a->inputs[1], k);
  EXPECT_NEAR(a->attr_float("scale", 0), 0.5f, 1e-6f);
}

TEST(FuseAttention, KeyGivenTransposedGetsATranspose) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* kt = b.input("kt", {2, 3, 4, 5});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* p = b.node("Softmax", {qk}, "p", {attr_int("axis", -1)});
  b.output(b.node("MatMul", {p, v}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 1);
  EXPECT_EQ(b.count("Transpose"), 1);
  EXPECT_FLOAT_EQ(attention(b)->attr_float("scale", 0), 1.f);
}

TEST(FuseAttention, SharedKvHeadBroadcast) {
  // K and V with one head, Q with three: MatMul broadcasts, Attention groups the same way.
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 1, 6, 4});
  ir::Value* v = b.input("v", {2, 1, 6, 2});
  b.output(eager(b, q, k, v, nullptr).y);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 1);
}

TEST(FuseAttention, SymbolicDims) {
  const ir::Dim B = ir::Dim::named("batch"), S = ir::Dim::named("seq");
  Builder b;
  ir::Value* q = b.input_dims("q", {B, ir::Dim::of(3), S, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* k = b.input_dims("k", {B, ir::Dim::of(3), S, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* v = b.input_dims("v", {B, ir::Dim::of(3), S, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* mask = b.input_dims("mask", {B, ir::Dim::of(1), ir::Dim::of(1), S}, {2, 1, 1, 5});
  b.output(eager(b, q, k, v, mask).y);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 1);
}

TEST(FuseAttention, UnprovableDimsStay) {
  // Unknown batch dims: MatMul might broadcast Q over K's batch, which Attention does not.
  Builder b;
  const ir::Dim u = ir::Dim::unknown();
  ir::Value* q = b.input_dims("q", {u, ir::Dim::of(3), u, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* k = b.input_dims("k", {u, ir::Dim::of(3), u, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* v = b.input_dims("v", {u, ir::Dim::of(3), u, ir::Dim::of(4)}, {2, 3, 5, 4});
  b.output(eager(b, q, k, v, nullptr).y);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 0);

  // A mask whose last dim may be 1: Add broadcasts it over the keys, Attention would pad -inf.
  Builder c;
  const ir::Dim B = ir::Dim::named("batch");
  ir::Value* cq =
      c.input_dims("q", {B, ir::Dim::of(3), ir::Dim::of(5), ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* ck = c.input_dims("k", {B, ir::Dim::of(3), u, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* cv = c.input_dims("v", {B, ir::Dim::of(3), u, ir::Dim::of(4)}, {2, 3, 5, 4});
  ir::Value* cm =
      c.input_dims("mask", {B, ir::Dim::of(1), ir::Dim::of(1), ir::Dim::named("m")}, {2, 1, 1, 5});
  c.output(eager(c, cq, ck, cv, cm).y);
  check_pass(c, kPass);
  EXPECT_EQ(c.count("Attention"), 0);
}

TEST(FuseAttention, BroadcastShapesStay) {
  // Q batch 1 against K batch 2; mask last dim 1; mask over more heads than the scores.
  for (int which = 0; which < 3; ++which) {
    Builder b;
    ir::Value* q = b.input("q", {which == 0 ? 1 : 2, 1, 5, 4});
    ir::Value* k = b.input("k", {2, 1, 5, 4});
    ir::Value* v = b.input("v", {2, 1, 5, 4});
    ir::Value* mask = nullptr;
    if (which > 0) {
      mask = b.input(
          "mask", which == 1 ? std::vector<int64_t>{2, 1, 1, 1} : std::vector<int64_t>{2, 3, 5, 5});
    }
    b.output(eager(b, q, k, v, mask).y);
    check_pass(b, kPass);
    EXPECT_EQ(b.count("Attention"), 0) << which;
  }
}

TEST(FuseAttention, WrongSoftmaxAxisStays) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 5});
  b.output(eager(b, q, k, v, nullptr, 2).y);
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 0);
}

TEST(FuseAttention, ProbabilitiesReadElsewhereStay) {
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  Attn a = eager(b, q, k, v, nullptr);
  b.output(a.y);
  b.output(a.probs);  // output_attentions
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 0);

  Builder c;
  ir::Value* cq = c.input("q", {2, 3, 5, 4});
  ir::Value* ck = c.input("k", {2, 3, 5, 4});
  ir::Value* cv = c.input("v", {2, 3, 5, 4});
  Attn ca = eager(c, cq, ck, cv, nullptr);
  c.output(ca.y);
  c.output(c.node("Neg", {c.g.find_value("qk")}, "other"));  // raw scores read elsewhere
  check_pass(c, kPass);
  EXPECT_EQ(c.count("Attention"), 0);
}

TEST(FuseAttention, ScaledQReadElsewhereKeepsItsScale) {
  // Q * c is read by another node too: the Mul stays and Attention takes its output, scale 1/2.
  Builder b;
  ir::Value* q = b.input("q", {2, 3, 5, 4});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* qs = b.node("Mul", {q, b.scalar("c", 3.f)}, "qs");
  b.output(eager(b, qs, k, v, nullptr).y);
  b.output(b.node("Neg", {qs}, "other"));
  check_pass(b, kPass);
  ASSERT_EQ(b.count("Attention"), 1);
  EXPECT_EQ(attention(b)->inputs[0], qs);
  EXPECT_FLOAT_EQ(attention(b)->attr_float("scale", 0), 0.5f);
}

TEST(FuseAttention, Rank3Stays) {
  Builder b;
  ir::Value* q = b.input("q", {6, 5, 4});
  ir::Value* k = b.input("k", {6, 5, 4});
  ir::Value* v = b.input("v", {6, 5, 4});
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 2, 1})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* p = b.node("Softmax", {qk}, "p", {attr_int("axis", -1)});
  b.output(b.node("MatMul", {p, v}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Attention"), 0);
}

}  // namespace
}  // namespace kiln
