// fold_attention_heads: an Attention fed through the exporters' head split
// (Reshape to [B, S, H, D] → Transpose(0,2,1,3)) and read through the head merge
// (Transpose(0,2,1,3) → Reshape to [B, S, H*D]) becomes one 3-D Attention.
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;

const passes::Pass kFuse = {"fuse_attention", passes::fuse_attention};
const passes::Pass kFold = {"fold_attention_heads", passes::fold_attention_heads};

// B = 2, S = 5, H = 3, D = 4 (E = 12). K reaches the scores as BERT exports it: one
// Transpose(0,2,3,1) of the split K. Returns the merged output; *probs_out gets the 4-D output.
ir::Value* bert_attention(Builder& b, ir::Value** attn_out = nullptr) {
  ir::Value* q3 = b.input("q3", {2, 5, 12});
  ir::Value* k3 = b.input("k3", {2, 5, 12});
  ir::Value* v3 = b.input("v3", {2, 5, 12});
  auto split = [&](ir::Value* x, const std::string& tag, std::vector<int64_t> perm) {
    ir::Value* r = b.node("Reshape", {x, b.ints("shape_" + tag, {2, 5, 3, 4})}, "r_" + tag);
    return b.node("Transpose", {r}, "t_" + tag, {attr_ints("perm", perm)});
  };
  ir::Value* q = split(q3, "q", {0, 2, 1, 3});
  ir::Value* kt = split(k3, "k", {0, 2, 3, 1});
  ir::Value* v = split(v3, "v", {0, 2, 1, 3});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* sc = b.node("Div", {qk, b.scalar("sqrt_d", 2.f)}, "scaled");
  ir::Value* p = b.node("Softmax", {sc}, "probs", {attr_int("axis", -1)});
  ir::Value* o = b.node("MatMul", {p, v}, "o");
  if (attn_out != nullptr) *attn_out = o;
  ir::Value* ot = b.node("Transpose", {o}, "ot", {attr_ints("perm", {0, 2, 1, 3})});
  return b.node("Reshape", {ot, b.ints("merged", {2, 5, 12})}, "y");
}

void run_both(Builder& b, bool expect_same = true) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, 3);
  const auto before = pattern_test::run_cpu(b.g, feeds);
  ASSERT_TRUE(pattern_test::run_pass(kFuse, b.g).ok());
  Status st = pattern_test::run_pass(kFold, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const auto after = pattern_test::run_cpu(b.g, feeds);
  if (expect_same) pattern_test::expect_close(after, before);
}

TEST(FoldAttentionHeads, BertSplitAndMergeFold) {
  Builder b;
  b.output(bert_attention(b));
  run_both(b);
  EXPECT_EQ(b.count("Transpose"), 0);
  EXPECT_EQ(b.count("Reshape"), 0);
  ASSERT_EQ(b.count("Attention"), 1);
  const ir::Node* a = b.find("Attention");
  EXPECT_EQ(a->attr_int("q_num_heads", 0), 3);
  EXPECT_EQ(a->attr_int("kv_num_heads", 0), 3);
  EXPECT_EQ(a->inputs[0]->name, "q3");
  EXPECT_EQ(a->inputs[1]->name, "k3");
  EXPECT_EQ(a->inputs[2]->name, "v3");
  EXPECT_EQ(a->outputs[0]->name, "y");
}

// The 4-D output is also a graph output: the merge must stay, so nothing folds.
TEST(FoldAttentionHeads, FourDimOutputReadElsewhereStays) {
  Builder b;
  ir::Value* o = nullptr;
  b.output(bert_attention(b, &o));
  b.output(o);
  run_both(b);
  ASSERT_EQ(b.count("Attention"), 1);
  EXPECT_FALSE(b.find("Attention")->has_attr("q_num_heads"));
  EXPECT_GT(b.count("Transpose"), 0);
}

// A split whose Reshape does not divide the last dim into heads (a [2, 5, 12] → [2, 5, 3, 4]
// read as [2, 3, 5, 4] by another perm) is not the head split.
TEST(FoldAttentionHeads, OtherPermStays) {
  Builder b;
  ir::Value* q3 = b.input("q3", {2, 5, 12});
  ir::Value* k = b.input("k", {2, 3, 5, 4});
  ir::Value* v = b.input("v", {2, 3, 5, 4});
  ir::Value* r = b.node("Reshape", {q3, b.ints("shape_q", {2, 5, 3, 4})}, "r_q");
  ir::Value* q = b.node("Transpose", {r}, "t_q", {attr_ints("perm", {0, 2, 1, 3})});
  ir::Value* kt = b.node("Transpose", {k}, "kt", {attr_ints("perm", {0, 1, 3, 2})});
  ir::Value* qk = b.node("MatMul", {q, kt}, "qk");
  ir::Value* p = b.node("Softmax", {qk}, "probs", {attr_int("axis", -1)});
  b.output(b.node("MatMul", {p, v}, "o"));
  run_both(b);
  ASSERT_EQ(b.count("Attention"), 1);
  EXPECT_FALSE(b.find("Attention")->has_attr("q_num_heads"));  // K and V are not split
}

}  // namespace
}  // namespace kiln
