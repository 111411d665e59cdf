// fuse_packed_qkv: a 3-D Attention whose Q, K, V are the three parts of a last-axis Split, or
// three projections of one X with constant weights, becomes kiln.PackedAttention (after one
// FusedMatMul with the weights concatenated, for the projections). CPU outputs stay the same.
#include <random>

#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_float;
using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;

const passes::Pass kPacked = {"fuse_packed_qkv", passes::fuse_packed_qkv};
const passes::Pass kDce = {"eliminate_dead_nodes", passes::eliminate_dead_nodes};

// B = 2, S = 5, D = 4; Hq = 3 heads; Hkv = 3 (MHA) or 1 (GQA).
constexpr int64_t kB = 2, kS = 5, kD = 4, kHq = 3, kE = 8;

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

enum class Mask { kNone, kFloat, kBool };

// A bool mask [B, 1, S, S] (each query attends to a prefix) as a constant, or a float [S, S]
// graph input.
ir::Value* make_mask(Builder& b, Mask m) {
  if (m == Mask::kFloat) return b.input("mask", {kS, kS});
  if (m == Mask::kNone) return nullptr;
  ir::Value* v = b.g.add_value("bool_mask");
  std::vector<int64_t> shape = {kB, 1, kS, kS};
  Tensor t = Tensor::zeros(DType::kBool, shape);
  uint8_t* p = t.mutable_data<uint8_t>();
  for (int64_t bi = 0; bi < kB; ++bi)
    for (int64_t i = 0; i < kS; ++i)
      for (int64_t j = 0; j < kS; ++j) p[(bi * kS + i) * kS + j] = j <= (i + bi) % kS ? 1 : 0;
  v->constant = std::make_shared<Tensor>(std::move(t));
  v->type = ir::TypeInfo::tensor(DType::kBool, ir::Shape::of(shape));
  return v;
}

ir::Value* attention(Builder& b, std::vector<ir::Value*> qkv, ir::Value* mask, int64_t hkv,
                     std::vector<ir::Attribute> extra = {}) {
  if (mask != nullptr) qkv.push_back(mask);
  std::vector<ir::Attribute> attrs = {attr_int("q_num_heads", kHq), attr_int("kv_num_heads", hkv)};
  for (auto& a : extra) attrs.push_back(a);
  ir::Value* y = b.node("Attention", qkv, "y", attrs);
  b.last->opset = 23;
  return y;
}

// Form a: x [B, S, (Hq + 2 Hkv) * D] → Split → Attention.
ir::Value* split_attention(Builder& b, Mask m, int64_t hkv = kHq, bool sizes_input = false,
                           int64_t axis = -1, std::vector<ir::Attribute> extra = {}) {
  ir::Value* x = b.input("x", {kB, kS, (kHq + 2 * hkv) * kD});
  std::vector<ir::Value*> ins = {x};
  std::vector<ir::Attribute> attrs = {attr_int("axis", axis)};
  if (sizes_input) {
    ins.push_back(b.ints("sizes", {kHq * kD, hkv * kD, hkv * kD}));
  } else {
    attrs.push_back(attr_int("num_outputs", 3));
  }
  ir::Node* sp = b.g.add_node("Split", "", "split");
  sp->opset = 18;
  sp->inputs = ins;
  sp->attrs = attrs;
  std::vector<ir::Value*> parts;
  for (const char* n : {"q", "k", "v"}) {
    parts.push_back(b.g.add_value(n));
    sp->outputs.push_back(parts.back());
  }
  b.g.relink();
  return attention(b, parts, make_mask(b, m), hkv, std::move(extra));
}

struct ProjOptions {
  int64_t hkv = kHq;
  bool fused = true;           // FusedMatMul (else MatMul without bias)
  bool trans_b = false;        // FusedMatMul weights [N, K]
  bool bias_on_k = true;       // K's projection has a bias (Q's and V's always, when fused)
  bool other_x_for_v = false;  // V projects another input
  bool q_is_output = false;    // Q also a graph output
  const char* activation = "";
};

// Form b: three projections of X [B, S, E] → Attention.
ir::Value* proj_attention(Builder& b, Mask m, const ProjOptions& o) {
  ir::Value* x = b.input("x", {kB, kS, kE});
  ir::Value* x2 = o.other_x_for_v ? b.input("x2", {kB, kS, kE}) : x;
  const int64_t n[3] = {kHq * kD, o.hkv * kD, o.hkv * kD};
  const char* tags[3] = {"q", "k", "v"};
  std::vector<ir::Value*> outs;
  for (int i = 0; i < 3; ++i) {
    const std::string t = tags[i];
    std::vector<int64_t> wshape =
        o.trans_b ? std::vector<int64_t>{n[i], kE} : std::vector<int64_t>{kE, n[i]};
    ir::Value* w = rand_const(b, "w_" + t, wshape, 10 + i);
    ir::Value* in = i == 2 ? x2 : x;
    if (!o.fused) {
      outs.push_back(b.node("MatMul", {in, w}, t));
      continue;
    }
    std::vector<ir::Value*> ins = {in, w};
    if (i != 1 || o.bias_on_k) ins.push_back(rand_const(b, "b_" + t, {n[i]}, 20 + i));
    ir::Node* f = b.g.add_node("FusedMatMul", ir::kKilnDomain, "proj_" + t);
    f->opset = 1;
    f->inputs = ins;
    ir::Attribute act;
    act.name = "activation";
    act.type = ir::AttrType::kString;
    act.s = o.activation;
    f->attrs = {act, attr_int("trans_b", o.trans_b ? 1 : 0)};
    outs.push_back(b.g.add_value(t));
    f->outputs = {outs.back()};
    b.g.relink();
  }
  if (o.q_is_output) b.output(outs[0]);
  return attention(b, outs, make_mask(b, m), o.hkv);
}

// Runs the pass and DCE; CPU outputs before and after agree.
void run_pass(Builder& b) {
  b.g.opsets[ir::kKilnDomain] = 1;
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, 9);
  const auto before = pattern_test::run_cpu(b.g, feeds);
  Status st = pattern_test::run_pass(kPacked, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  st = pattern_test::run_pass(kDce, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());  // pass-made values keep their types
  const auto after = pattern_test::run_cpu(b.g, feeds);
  pattern_test::expect_close(after, before);
}

size_t constants(const ir::Graph& g) {
  size_t c = 0;
  for (const auto& v : g.values()) c += v->constant != nullptr;
  return c;
}

TEST(FusePackedQkv, SplitBecomesPackedAttention) {
  for (Mask m : {Mask::kNone, Mask::kFloat, Mask::kBool}) {
    Builder b;
    b.output(split_attention(b, m));
    run_pass(b);
    EXPECT_EQ(b.count("Split"), 0);
    EXPECT_EQ(b.count("Attention"), 0);
    ASSERT_EQ(b.count("PackedAttention"), 1);
    const ir::Node* p = b.find("PackedAttention");
    EXPECT_EQ(p->domain, ir::kKilnDomain);
    EXPECT_EQ(p->inputs[0]->name, "x");
    EXPECT_EQ(p->num_inputs(), m == Mask::kNone ? 1 : 2);
    EXPECT_EQ(p->attr_int("q_num_heads", 0), kHq);
    EXPECT_EQ(p->attr_int("kv_num_heads", 0), kHq);
    EXPECT_EQ(p->outputs[0]->name, "y");
    EXPECT_EQ(p->name, "Attention_y/packed");
  }
}

TEST(FusePackedQkv, SplitSizesInputGqaScaleCausal) {
  Builder b;
  b.output(split_attention(b, Mask::kBool, /*hkv=*/1, /*sizes_input=*/true, /*axis=*/2,
                           {attr_float("scale", 0.3f), attr_int("is_causal", 1)}));
  run_pass(b);
  ASSERT_EQ(b.count("PackedAttention"), 1);
  const ir::Node* p = b.find("PackedAttention");
  EXPECT_EQ(p->attr_int("kv_num_heads", 0), 1);
  EXPECT_FLOAT_EQ(p->attr_float("scale", 0.f), 0.3f);
  EXPECT_EQ(p->attr_int("is_causal", 0), 1);
}

TEST(FusePackedQkv, SplitNotOnTheLastAxisStays) {
  Builder b;
  ir::Value* x = b.input("x", {kB, 3 * kS, kHq * kD});
  ir::Node* sp = b.g.add_node("Split", "", "split");
  sp->opset = 18;
  sp->inputs = {x};
  sp->attrs = {attr_int("axis", 1), attr_int("num_outputs", 3)};
  std::vector<ir::Value*> parts;
  for (const char* n : {"q", "k", "v"}) {
    parts.push_back(b.g.add_value(n));
    sp->outputs.push_back(parts.back());
  }
  b.g.relink();
  b.output(attention(b, parts, nullptr, kHq));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
  EXPECT_EQ(b.count("Split"), 1);
}

TEST(FusePackedQkv, SplitOutputsInAnotherOrderStay) {
  Builder b;
  ir::Value* y = split_attention(b, Mask::kNone);
  ir::Node* a = b.last;
  std::swap(a->inputs[0], a->inputs[1]);  // K's part as Q
  b.g.relink();
  b.output(y);
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
}

TEST(FusePackedQkv, SplitPartReadElsewhereStays) {
  Builder b;
  b.output(split_attention(b, Mask::kNone));
  b.output(b.g.find_value("k"));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
  EXPECT_EQ(b.count("Attention"), 1);
}

TEST(FusePackedQkv, SoftcapStays) {
  Builder b;
  b.output(split_attention(b, Mask::kNone, kHq, false, -1, {attr_float("softcap", 2.f)}));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
}

TEST(FusePackedQkv, ProjectionsBecomeOneGemm) {
  for (Mask m : {Mask::kNone, Mask::kFloat, Mask::kBool}) {
    Builder b;
    b.output(proj_attention(b, m, {}));
    const size_t consts_before = constants(b.g);
    run_pass(b);
    EXPECT_EQ(b.count("Attention"), 0);
    ASSERT_EQ(b.count("FusedMatMul"), 1);
    ASSERT_EQ(b.count("PackedAttention"), 1);
    const ir::Node* f = b.find("FusedMatMul");
    EXPECT_EQ(f->name, "proj_q/packed");
    ASSERT_EQ(f->num_inputs(), 3);
    EXPECT_EQ(f->inputs[1]->type.shape.dims[1].value, 3 * kHq * kD);
    EXPECT_EQ(f->inputs[2]->type.shape.dims[0].value, 3 * kHq * kD);
    EXPECT_EQ(b.find("PackedAttention")->inputs[0], f->outputs[0]);
    // Three weights and three biases became one of each.
    EXPECT_EQ(constants(b.g), consts_before - 4);
  }
}

TEST(FusePackedQkv, ProjectionsTransposedGqaMissingBias) {
  Builder b;
  ProjOptions o;
  o.hkv = 1;
  o.trans_b = true;
  o.bias_on_k = false;  // zeros in the concatenated bias
  b.output(proj_attention(b, Mask::kBool, o));
  run_pass(b);
  ASSERT_EQ(b.count("FusedMatMul"), 1);
  const ir::Node* f = b.find("FusedMatMul");
  EXPECT_EQ(f->attr_int("trans_b", 0), 1);
  EXPECT_EQ(f->inputs[1]->type.shape.dims[0].value, (kHq + 2) * kD);
  EXPECT_EQ(b.find("PackedAttention")->attr_int("kv_num_heads", 0), 1);
}

TEST(FusePackedQkv, MatMulProjectionsFuse) {
  Builder b;
  ProjOptions o;
  o.fused = false;
  b.output(proj_attention(b, Mask::kFloat, o));
  run_pass(b);
  EXPECT_EQ(b.count("MatMul"), 0);
  ASSERT_EQ(b.count("FusedMatMul"), 1);
  EXPECT_EQ(b.find("FusedMatMul")->num_inputs(), 2);  // no bias anywhere
  EXPECT_EQ(b.count("PackedAttention"), 1);
}

TEST(FusePackedQkv, ProjectionsOfDifferentInputsStay) {
  Builder b;
  ProjOptions o;
  o.other_x_for_v = true;
  b.output(proj_attention(b, Mask::kNone, o));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
  EXPECT_EQ(b.count("FusedMatMul"), 3);
}

TEST(FusePackedQkv, ProjectionReadElsewhereStays) {
  Builder b;
  ProjOptions o;
  o.q_is_output = true;
  b.output(proj_attention(b, Mask::kNone, o));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
  EXPECT_EQ(b.count("FusedMatMul"), 3);
}

TEST(FusePackedQkv, ProjectionWithActivationStays) {
  Builder b;
  ProjOptions o;
  o.activation = "Relu";
  b.output(proj_attention(b, Mask::kNone, o));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
}

// A weight that is a graph input (overridable) is not a constant to concatenate.
TEST(FusePackedQkv, WeightInputStays) {
  Builder b;
  ir::Value* x = b.input("x", {kB, kS, kE});
  ir::Value* wq = b.input("wq", {kE, kHq * kD});
  ir::Value* q = b.node("MatMul", {x, wq}, "q");
  ir::Value* k = b.node("MatMul", {x, rand_const(b, "wk", {kE, kHq * kD}, 1)}, "k");
  ir::Value* v = b.node("MatMul", {x, rand_const(b, "wv", {kE, kHq * kD}, 2)}, "v");
  b.output(attention(b, {q, k, v}, nullptr, kHq));
  run_pass(b);
  EXPECT_EQ(b.count("PackedAttention"), 0);
  EXPECT_EQ(b.count("MatMul"), 3);
}

}  // namespace
}  // namespace kiln
