// The fusion pipeline on exported-style transformer blocks (tests/passes/data/, written by
// make_transformer_blocks.py): attention, LayerNorm, RMSNorm and GELU fuse, the CPU outputs stay
// the same, and --fp16's precision pass runs the fused ops in float16.
#include <random>

#include "onnx/importer.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

std::unique_ptr<ir::Model> load(const std::string& name) {
  auto m = onnx::load_model(std::string(KILN_SOURCE_DIR) + "/tests/passes/data/" + name);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return nullptr;
  std::unique_ptr<ir::Model> model = std::move(m).value();
  Status st = passes::PassManager::default_pipeline().run(*model->graph);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return model;
}

int count(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes()) c += n->op_type == op;
  return c;
}

std::vector<std::pair<std::string, Datum>> feeds_for(const ir::Graph& g) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<std::pair<std::string, Datum>> feeds;
  for (const ir::Value* v : g.inputs) {
    if (v->constant) continue;
    const std::vector<int64_t> shape = v->type.shape.values();
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (v->type.dtype == DType::kInt64) {  // attention mask: the second sequence padded
      std::vector<int64_t> m(static_cast<size_t>(n), 1);
      for (size_t i = m.size() - 3; i < m.size(); ++i) m[i] = 0;
      feeds.push_back({v->name, Datum::of(Tensor::from_vector<int64_t>(shape, m))});
    } else {
      std::vector<float> x(static_cast<size_t>(n));
      for (float& e : x) e = dist(rng);
      feeds.push_back({v->name, Datum::of(Tensor::from_vector<float>(shape, x))});
    }
  }
  return feeds;
}

void fuse(ir::Graph& g) {
  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  Status st = pm.run(g);
  ASSERT_TRUE(st.ok()) << st.to_string();
}

// Fused float16 graph against the float32 one: float16 rounding of activations and weights.
void expect_fp16_close(ir::Graph& fused, const std::vector<std::pair<std::string, Datum>>& feeds,
                       const std::vector<std::vector<float>>& ref, const std::string& fused_op) {
  auto lowered = passes::lower_precision(fused, DType::kFloat16);
  ASSERT_TRUE(lowered.ok()) << lowered.status().to_string();
  bool found = false;
  for (const auto& n : fused.nodes()) {
    if (n->op_type != fused_op) continue;
    found = true;
    EXPECT_EQ(n->inputs[0]->type.dtype, DType::kFloat16) << n->label();
    EXPECT_EQ(n->outputs[0]->type.dtype, DType::kFloat16) << n->label();
  }
  EXPECT_TRUE(found) << fused_op;
  ASSERT_TRUE(ir::verify_graph(fused).ok());
  pattern_test::expect_close(pattern_test::run_cpu(fused, feeds), ref, 5e-2f, 2e-2f);
}

// FusedMatMul nodes whose epilogue is a GELU.
int gelu_epilogues(const ir::Graph& g) {
  int c = 0;
  for (const auto& n : g.nodes()) {
    if (n->op_type == "FusedMatMul" && n->attr_string("activation").rfind("Gelu", 0) == 0) ++c;
  }
  return c;
}

TEST(TransformerBlocks, BertLayerFuses) {
  auto ref = load("bert_layer.onnx");
  auto m = load("bert_layer.onnx");
  ASSERT_TRUE(ref && m);
  ir::Graph& g = *m->graph;
  const auto feeds = feeds_for(g);
  const auto before = pattern_test::run_cpu(*ref->graph, feeds);
  fuse(g);
  // Q, K and V come from one projection (three GEMMs became one) read by PackedAttention.
  EXPECT_EQ(count(g, "Attention"), 0);
  EXPECT_EQ(count(g, "PackedAttention"), 1);
  EXPECT_EQ(count(g, "FusedMatMul"), 4);  // QKV, attention output, FFN up and down
  // Both LayerNorms follow a residual Add (post-norm): each became one SkipLayerNorm.
  EXPECT_EQ(count(g, "LayerNormalization"), 0);
  EXPECT_EQ(count(g, "SkipLayerNorm"), 2);
  // The GELU became a Gelu op, which the epilogue fusion then took into the MatMul before it.
  EXPECT_EQ(gelu_epilogues(g), 1);
  EXPECT_EQ(count(g, "Gelu"), 0);
  for (const char* op : {"Softmax", "Erf", "ReduceMean", "Sqrt", "Pow", "Div"}) {
    EXPECT_EQ(count(g, op), 0) << op;
  }
  // K's head split and transpose became one Transpose(0,2,1,3), like Q's and V's.
  for (const auto& n : g.nodes()) {
    if (n->op_type == "Transpose") {
      EXPECT_EQ(n->attr_ints("perm"), (std::vector<int64_t>{0, 2, 1, 3})) << n->label();
    }
  }
  const auto after = pattern_test::run_cpu(g, feeds);
  pattern_test::expect_close(after, before);
  expect_fp16_close(g, feeds, before, "PackedAttention");
}

TEST(TransformerBlocks, VitBlockFuses) {
  auto ref = load("vit_block.onnx");
  auto m = load("vit_block.onnx");
  ASSERT_TRUE(ref && m);
  ir::Graph& g = *m->graph;
  const auto feeds = feeds_for(g);
  const auto before = pattern_test::run_cpu(*ref->graph, feeds);
  fuse(g);
  EXPECT_EQ(count(g, "Attention"), 0);
  EXPECT_EQ(count(g, "PackedAttention"), 1);
  EXPECT_EQ(count(g, "FusedMatMul"), 4);
  // Pre-norm: the first LayerNorm reads the block's input, the second the residual sum (which
  // the block adds to again: SkipLayerNorm's second output).
  EXPECT_EQ(count(g, "LayerNormalization"), 1);
  EXPECT_EQ(count(g, "SkipLayerNorm"), 1);
  EXPECT_EQ(count(g, "RMSNormalization"), 1);
  EXPECT_EQ(gelu_epilogues(g) + count(g, "Gelu"), 1);
  for (const char* op : {"Softmax", "Erf", "ReduceMean", "Sqrt", "Reciprocal"}) {
    EXPECT_EQ(count(g, op), 0) << op;
  }
  const auto after = pattern_test::run_cpu(g, feeds);
  pattern_test::expect_close(after, before);
  expect_fp16_close(g, feeds, before, "LayerNormalization");
}

}  // namespace
}  // namespace kiln
