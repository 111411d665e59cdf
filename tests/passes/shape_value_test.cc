// Shape values in type inference (src/ops/shape_value.h): Reshape targets computed from Shape
// through Gather, Unsqueeze, Concat, Slice, Cast and arithmetic keep the symbolic dims, and an
// exported-style attention block with a symbolic batch (tests/passes/data/bert_attention_dyn.onnx,
// written by make_dynamic_attention.py) fuses into Attention and FusedMatMul.
#include "ops/shape_value.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using ir::Dim;
using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;

std::string shape_of(const ir::Value* v) {
  return v->type.shape.to_string();
}

ir::Value* scalar_int(Builder& b, const std::string& name, int64_t x) {
  ir::Value* v = b.g.add_value(name);
  v->constant = std::make_shared<Tensor>(Tensor::scalar<int64_t>(x));
  v->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({}));
  return v;
}

// Unsqueeze(Gather(Shape(x), i)) as a 1-element 1-D value.
ir::Value* dim_of(Builder& b, ir::Value* x, int64_t i, const std::string& tag) {
  ir::Value* s = b.node("Shape", {x}, "shape_" + tag);
  ir::Value* g =
      b.node("Gather", {s, scalar_int(b, "idx_" + tag, i)}, "gather_" + tag, {attr_int("axis", 0)});
  return b.node("Unsqueeze", {g, b.ints("axes_" + tag, {0})}, "unsq_" + tag);
}

ir::Value* bert_input(Builder& b) {
  return b.input_dims("x", {Dim::named("batch"), Dim::of(128), Dim::of(768)}, {1, 128, 768});
}

// Imported models feed Unsqueeze axes and Reshape targets from Constant nodes (before constant
// folding), and read static dims back through Shape → Gather → Reshape([-1]): inference reads
// both as constants, so Slice's ends and the dims after them are known.
TEST(ShapeValue, ConstantNodesAndStaticDimsReadAsConstants) {
  Builder b;
  ir::Value* x = bert_input(b);
  ir::Value* axes = b.node("Constant", {}, "axes_node");
  {
    ir::Attribute value;
    value.name = "value";
    value.type = ir::AttrType::kTensor;
    value.t = Tensor::from_vector<int64_t>({1}, {0});
    b.last->attrs = {value};
  }
  ir::Value* s = b.node("Shape", {x}, "shape");
  ir::Value* seq = b.node("Gather", {s, scalar_int(b, "one", 1)}, "seq", {attr_int("axis", 0)});
  ir::Value* u = b.node("Unsqueeze", {seq, axes}, "seq_1d");
  ir::Value* r = b.node("Reshape", {u, b.ints("flat", {-1})}, "seq_flat");
  ir::Value* positions = b.g.add_value("positions");
  {
    std::vector<int64_t> p(512);
    for (int64_t i = 0; i < 512; ++i) p[static_cast<size_t>(i)] = i;
    positions->constant = std::make_shared<Tensor>(Tensor::from_vector<int64_t>({1, 512}, p));
    positions->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({1, 512}));
  }
  ir::Value* sl = b.node("Slice", {positions, b.ints("starts", {0}), r, b.ints("axes", {1})}, "sl");
  b.output(sl);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(u), "[1]");
  EXPECT_EQ(shape_of(r), "[1]");
  EXPECT_EQ(shape_of(sl), "[1,128]");
}

// Constant folding turns values the shape values know as plain integers into constants, and the
// float arithmetic on them folds after: an exported attention scale 1/sqrt(D) computed from the
// static head size becomes one constant.
TEST(ShapeValue, ConstantFoldingFoldsStaticDims) {
  Builder b;
  ir::Value* x = bert_input(b);
  ir::Value* s = b.node("Shape", {x}, "shape");
  ir::Value* d = b.node("Gather", {s, scalar_int(b, "last", 2)}, "d", {attr_int("axis", 0)});
  ir::Value* f = b.node("Cast", {d}, "f", {attr_int("to", 1)});
  ir::Value* r = b.node("Sqrt", {f}, "r");
  b.output(b.node("Div", {x, r}, "y"));
  pattern_test::check_pass(b, {"fold_constants", passes::fold_constants});
  EXPECT_EQ(b.count("Gather"), 0);
  EXPECT_EQ(b.count("Cast"), 0);
  EXPECT_EQ(b.count("Sqrt"), 0);
  const ir::Node* div = b.find("Div");
  ASSERT_NE(div, nullptr);
  ASSERT_TRUE(div->inputs[1]->constant);
  EXPECT_FLOAT_EQ(div->inputs[1]->constant->get_double(0), std::sqrt(768.f));
}

TEST(ShapeValue, GatherUnsqueezeConcatReshape) {
  Builder b;
  ir::Value* x = bert_input(b);
  ir::Value* target = b.node("Concat", {dim_of(b, x, 0, "b"), b.ints("rest", {128, 12, 64})},
                             "target", {attr_int("axis", 0)});
  ir::Value* y = b.node("Reshape", {x, target}, "y");
  b.output(y);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(target), "[4]");
  EXPECT_EQ(shape_of(y), "[batch,128,12,64]");

  // Transpose, then back through Concat(Gather(Shape), [128], [768]).
  ir::Value* t = b.node("Transpose", {y}, "t", {attr_ints("perm", {0, 2, 1, 3})});
  ir::Value* tt = b.node("Transpose", {t}, "tt", {attr_ints("perm", {0, 2, 1, 3})});
  ir::Value* back =
      b.node("Concat", {dim_of(b, tt, 0, "b2"), b.ints("s128", {128}), b.ints("s768", {768})},
             "back", {attr_int("axis", 0)});
  ir::Value* z = b.node("Reshape", {tt, back}, "z");
  b.output(z);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(t), "[batch,12,128,64]");
  EXPECT_EQ(shape_of(z), "[batch,128,768]");
}

TEST(ShapeValue, MinusOneSolvesSymbolically) {
  Builder b;
  ir::Value* x = bert_input(b);
  // [batch, 128, 12, 64] from [-1, 128, 12, 64]; [batch*128, 768] and back with -1.
  ir::Value* y = b.node("Reshape", {x, b.ints("t1", {-1, 128, 12, 64})}, "y");
  ir::Value* flat = b.node("Reshape", {x, b.ints("t2", {-1, 768})}, "flat");
  ir::Value* back = b.node("Reshape", {flat, b.ints("t3", {-1, 128, 768})}, "back");
  // Batch times heads, as nn.MultiheadAttention exports: [128, batch*12, 64] → [-1, 128, 64].
  ir::Value* prod = b.node("Mul", {dim_of(b, x, 0, "b"), b.ints("heads", {12})}, "prod");
  ir::Value* tgt = b.node("Concat", {b.ints("s", {128}), prod, b.ints("dh", {64})}, "tgt",
                          {attr_int("axis", 0)});
  ir::Value* mha = b.node("Reshape", {x, tgt}, "mha");
  ir::Value* mha_back = b.node("Reshape", {mha, b.ints("t4", {-1, 128, 64})}, "mha_back");
  ir::Value* copy0 = b.node("Reshape", {x, b.ints("t5", {0, 0, 12, -1})}, "copy0");
  for (ir::Value* v : {y, back, mha_back, copy0}) b.output(v);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(y), "[batch,128,12,64]");
  EXPECT_EQ(shape_of(flat), "[128*batch,768]");
  EXPECT_EQ(shape_of(back), "[batch,128,768]");
  EXPECT_EQ(shape_of(mha), "[128,12*batch,64]");
  EXPECT_EQ(shape_of(mha_back), "[12*batch,128,64]");
  EXPECT_EQ(shape_of(copy0), "[batch,128,12,64]");
}

TEST(ShapeValue, SliceOfShapeAndCast) {
  Builder b;
  ir::Value* x = bert_input(b);
  // HF BERT: x.size()[:-1] + (12, 64) → Concat(Slice(Shape(x), 0, -1), [12, 64]).
  ir::Value* s = b.node("Shape", {x}, "s");
  ir::Value* head = b.node("Slice", {s, b.ints("st", {0}), b.ints("en", {-1})}, "head");
  ir::Value* tgt = b.node("Concat", {head, b.ints("hd", {12, 64})}, "tgt", {attr_int("axis", 0)});
  ir::Value* y = b.node("Reshape", {x, tgt}, "y");
  // Through Cast to int32 and back, and Div of a shape element by a constant.
  ir::Value* c32 = b.node("Cast", {tgt}, "c32", {attr_int("to", int64_t(DType::kInt32))});
  ir::Value* c64 = b.node("Cast", {c32}, "c64", {attr_int("to", int64_t(DType::kInt64))});
  ir::Value* y2 = b.node("Reshape", {x, c64}, "y2");
  ir::Value* half = b.node("Div", {b.node("Shape", {x}, "s2"), b.ints("two", {1, 2, 1})}, "half");
  ir::Value* hx = b.node("Expand", {b.scalar("one", 1.f), half}, "hx");
  // Shape with start/end (opset 15+).
  ir::Value* tail = b.node("Shape", {x}, "tail", {attr_int("start", 1)});
  ir::Value* cos = b.node("ConstantOfShape", {tail}, "cos");
  for (ir::Value* v : {y, y2, hx, cos}) b.output(v);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(head), "[2]");
  EXPECT_EQ(shape_of(y), "[batch,128,12,64]");
  EXPECT_EQ(shape_of(y2), "[batch,128,12,64]");
  EXPECT_EQ(shape_of(hx), "[batch,64,768]");
  EXPECT_EQ(shape_of(cos), "[128,768]");
}

TEST(ShapeValue, EqualWhereExpand) {
  // torch's expand(-1, ...) lowering: Where(Equal(shape, -1), ones, shape) → Expand.
  Builder b;
  ir::Value* x = bert_input(b);
  ir::Value* tgt = b.node("Concat", {dim_of(b, x, 0, "b"), b.ints("r", {-1, 768})}, "tgt",
                          {attr_int("axis", 0)});
  ir::Value* eq = b.node("Equal", {tgt, b.ints("neg", {-1, -1, -1})}, "eq");
  ir::Value* fixed = b.node("Where", {eq, b.ints("ones", {1, 1, 1}), tgt}, "fixed");
  ir::Value* e = b.node("Expand", {b.input("bias", {1, 128, 1}), fixed}, "e");
  b.output(e);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(e), "[batch,128,768]");
}

TEST(ShapeValue, TileAndRange) {
  Builder b;
  ir::Value* x = bert_input(b);
  // Tile [1, 128, 768] by [batch, 1, 2]; Range(0, batch, 1).
  ir::Value* reps =
      b.node("Concat", {dim_of(b, x, 0, "b"), b.ints("r", {1, 2})}, "reps", {attr_int("axis", 0)});
  ir::Value* tiled = b.node("Tile", {b.input("row", {1, 128, 768}), reps}, "tiled");
  ir::Value* limit = b.node("Gather", {b.node("Shape", {x}, "s"), scalar_int(b, "i0", 0)}, "lim",
                            {attr_int("axis", 0)});
  ir::Value* range =
      b.node("Range", {scalar_int(b, "zero", 0), limit, scalar_int(b, "one", 1)}, "range");
  b.output(tiled);
  b.output(range);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(tiled), "[batch,128,1536]");
  EXPECT_EQ(shape_of(range), "[batch]");
}

TEST(ShapeValue, UnprovableStaysUnknown) {
  Builder b;
  ir::Value* x =
      b.input_dims("x", {Dim::named("batch"), Dim::unknown(), Dim::of(768)}, {1, 5, 768});
  // The sequence dim is unknown: -1 cannot be solved, the other dims still come through.
  ir::Value* y = b.node("Reshape", {x, b.ints("t", {0, -1, 12, 64})}, "y");
  // A shape value read from a runtime tensor (not a shape) is unknown.
  ir::Value* dyn = b.node("Cast", {b.input("f", {3})}, "dyn", {attr_int("to", 7)});
  ir::Value* z = b.node("Reshape", {x, dyn}, "z");
  // Sum of different symbols: unknown.
  ir::Value* sum = b.node("Add", {dim_of(b, x, 0, "a"), dim_of(b, x, 1, "b")}, "sum");
  ir::Value* tgt = b.node("Concat", {sum, b.ints("r", {768})}, "tgt", {attr_int("axis", 0)});
  ir::Value* w = b.node("Reshape", {x, tgt}, "w");
  // A non-exact quotient: [batch,128,768] to [-1, 7]: 98304*batch/7 is not a whole product.
  ir::Value* x2 =
      b.input_dims("x2", {Dim::named("batch"), Dim::of(128), Dim::of(768)}, {1, 128, 768});
  ir::Value* q = b.node("Reshape", {x2, b.ints("t5", {-1, 7})}, "q");
  for (ir::Value* v : {y, z, w, q}) b.output(v);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  EXPECT_EQ(shape_of(y), "[batch,?,12,64]");
  EXPECT_EQ(shape_of(z), "[?,?,?]");
  EXPECT_EQ(shape_of(w), "[?,768]");
  EXPECT_EQ(shape_of(q), "[?,7]");
}

TEST(ShapeValue, SymbolArithmetic) {
  using ops::SymInt;
  const SymInt b = ops::sym_of_dim(Dim::named("batch"));
  const SymInt p = ops::sym_mul(b, SymInt::of(12));
  EXPECT_EQ(ops::dim_of_sym(p).symbol, "12*batch");
  EXPECT_EQ(ops::sym_of_dim(Dim::named("12*batch")), p);
  EXPECT_EQ(ops::sym_div_exact(p, SymInt::of(12)), b);
  EXPECT_FALSE(ops::sym_div_exact(p, SymInt::of(5)).known);
  EXPECT_FALSE(ops::sym_div_exact(SymInt::of(12), b).known);
  // A symbol that is not a product form reads as one factor.
  EXPECT_EQ(ops::sym_of_dim(Dim::named("a*")).syms, std::vector<std::string>{"a*"});
  EXPECT_FALSE(ops::sym_of_dim(Dim::unknown()).known);
}

// Exported BERT-style self-attention with a symbolic batch: the shape chains resolve, so the
// attention and the projections fuse, and the CPU outputs stay the same.
TEST(ShapeValue, DynamicBatchAttentionFuses) {
  auto m =
      onnx::load_model(std::string(KILN_SOURCE_DIR) + "/tests/passes/data/bert_attention_dyn.onnx");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ir::Graph& g = *(*m)->graph;
  ASSERT_TRUE(passes::PassManager::default_pipeline().run(g).ok());
  EXPECT_EQ(g.inputs[0]->type.shape.to_string(), "[batch,8,32]");

  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> xs(3 * 8 * 32), ms(3 * 8, 0.f);
  for (float& v : xs) v = dist(rng);
  ms[8 + 7] = -1e4f;
  std::vector<std::pair<std::string, Datum>> feeds = {
      {"x", Datum::of(Tensor::from_vector<float>({3, 8, 32}, xs))},
      {"mask", Datum::of(Tensor::from_vector<float>({3, 1, 1, 8}, ms))}};
  const auto ref = pattern_test::run_cpu(g, feeds);

  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  Status st = pm.run(g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  int attention = 0, fused_mm = 0;
  for (const auto& n : g.nodes()) {
    attention += n->op_type == "Attention";
    fused_mm += n->op_type == "FusedMatMul";
  }
  EXPECT_EQ(attention, 1);
  EXPECT_EQ(fused_mm, 4);
  EXPECT_EQ(g.outputs[0]->type.shape.to_string(), "[batch,8,32]");
  pattern_test::expect_close(pattern_test::run_cpu(g, feeds), ref);
}

}  // namespace
}  // namespace kiln
