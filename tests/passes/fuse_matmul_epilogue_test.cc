// fuse_matmul_epilogue: MatMul/Gemm + bias + activation into kiln.FusedMatMul. Before/after node
// counts, CPU outputs before and after on random data, the cases that must not fuse, and the
// fused op under lower_precision.
// Tolerances: float32 1e-5 (atol and rtol: the same GEMM, one rounding fewer at most);
// float16 outputs of the unfused graph round after every op, so 4e-3 relative (a few ulp).
#include <gtest/gtest.h>

#include <random>

#include "backends/cpu/executor.h"
#include "ir/verifier.h"
#include "ops/fused_matmul.h"
#include "ops/type_inference.h"
#include "passes/pass_manager.h"
#include "support/op_harness.h"

namespace kiln {
namespace {

using testing::attr_float;
using testing::attr_int;
using testing::attr_string;

Tensor random_tensor(const std::vector<int64_t>& shape, uint32_t seed, DType dt) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return convert_tensor(Tensor::from_vector<float>(shape, v), dt).value();
}

// Small graph builder: one input "x", constants, nodes with attributes.
struct G {
  ir::Graph g;
  DType dt;
  uint32_t seed = 10;
  explicit G(DType t = DType::kFloat32) : dt(t) { g.opsets[""] = 20; }
  ir::Value* input(const std::vector<int64_t>& shape) {
    ir::Value* v = g.add_value("x");
    v->type = ir::TypeInfo::tensor(dt, ir::Shape::of(shape));
    v->is_graph_input = true;
    g.inputs.push_back(v);
    return v;
  }
  ir::Value* constant(const std::string& name, const std::vector<int64_t>& shape) {
    ir::Value* v = g.add_value(name);
    v->constant = std::make_shared<Tensor>(random_tensor(shape, seed++, dt));
    v->type = ir::TypeInfo::tensor(dt, ir::Shape::of(shape));
    return v;
  }
  ir::Value* node(const std::string& op, std::vector<ir::Value*> inputs, const std::string& out,
                  std::vector<ir::Attribute> attrs = {}) {
    ir::Node* n = g.add_node(op, "", op + "_" + out);
    n->inputs = std::move(inputs);
    n->attrs = std::move(attrs);
    ir::Value* v = g.add_value(out);
    n->outputs.push_back(v);
    g.relink();
    return v;
  }
  void output(ir::Value* v) { g.outputs.push_back(v); }
  int count(const std::string& op) const {
    int c = 0;
    for (const auto& n : g.nodes()) c += n->op_type == op;
    return c;
  }
  const ir::Node* first(const std::string& op) const {
    for (const auto& n : g.nodes())
      if (n->op_type == op) return n.get();
    return nullptr;
  }
};

std::vector<Tensor> run(const ir::Graph& g, const Tensor& x) {
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.ok()) << ex.status().to_string();
  if (!ex.ok()) return {};
  auto outs = (*ex)->run({{"x", Datum::of(x)}});
  EXPECT_TRUE(outs.ok()) << outs.status().to_string();
  if (!outs.ok()) return {};
  std::vector<Tensor> ts;
  for (const Datum& d : *outs) ts.push_back(d.tensor);
  return ts;
}

Status run_pass(ir::Graph& g) {
  passes::PassManager pm;
  pm.add({"fuse_matmul_epilogue", passes::fuse_matmul_epilogue});
  pm.set_verify(true);
  KILN_RETURN_IF_ERROR(ir::verify_graph(g));
  return pm.run(g);
}

// Runs the pass on b.g and checks the outputs before and after on a random x.
void fuse_and_compare(G& b, const std::vector<int64_t>& x_shape, double tol = 1e-5) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const Tensor x = random_tensor(x_shape, 99, b.dt);
  const std::vector<Tensor> before = run(b.g, x);
  Status st = run_pass(b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const std::vector<Tensor> after = run(b.g, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(testing::tensors_near(convert_tensor(before[i], DType::kFloat32).value(),
                                      convert_tensor(after[i], DType::kFloat32).value(), tol, tol))
        << "output " << i;
  }
}

TEST(FuseMatMulEpilogue, MatMulAddReluBecomesOneNode) {
  G b;
  ir::Value* x = b.input({2, 3, 8});
  ir::Value* mm = b.node("MatMul", {x, b.constant("w", {8, 16})}, "mm");
  ir::Value* s = b.node("Add", {mm, b.constant("bias", {16})}, "s");
  b.output(b.node("Relu", {s}, "y"));
  fuse_and_compare(b, {2, 3, 8});
  EXPECT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* f = b.first(ops::kFusedMatMul);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->domain, ir::kKilnDomain);
  EXPECT_EQ(f->attr_string("activation"), "Relu");
  EXPECT_EQ(f->attr_int("trans_b", -1), 0);
  EXPECT_EQ(f->inputs.size(), 3u);
  EXPECT_EQ(f->outputs[0]->name, "y");
  EXPECT_EQ(b.g.find_value("mm"), nullptr);
  EXPECT_EQ(b.g.find_value("s"), nullptr);
}

TEST(FuseMatMulEpilogue, BiasFirstRowBiasAndGelu) {
  for (const char* approx : {"none", "tanh"}) {
    G b;
    ir::Value* x = b.input({5, 12});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {12, 7})}, "mm");
    ir::Value* s = b.node("Add", {b.constant("bias", {1, 7}), mm}, "s");
    b.output(b.node("Gelu", {s}, "y", {attr_string("approximate", approx)}));
    fuse_and_compare(b, {5, 12});
    ASSERT_EQ(b.g.nodes().size(), 1u) << approx;
    const ir::Node* f = b.first(ops::kFusedMatMul);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->attr_string("activation"), std::string(approx) == "none" ? "Gelu" : "GeluTanh");
    EXPECT_EQ(f->inputs[2]->type.shape.to_string(), "[7]");
  }
}

TEST(FuseMatMulEpilogue, BiasWithoutActivationAndActivationWithoutBias) {
  G b;
  ir::Value* x = b.input({4, 6});
  ir::Value* mm1 = b.node("MatMul", {x, b.constant("w1", {6, 6})}, "mm1");
  ir::Value* s = b.node("Add", {mm1, b.constant("bias", {6})}, "s");  // then a MatMul reads it
  ir::Value* mm2 = b.node("MatMul", {s, b.constant("w2", {6, 3})}, "mm2");
  b.output(b.node("Relu", {mm2}, "y"));
  fuse_and_compare(b, {4, 6});
  EXPECT_EQ(b.count(ops::kFusedMatMul), 2);
  EXPECT_EQ(b.g.nodes().size(), 2u);
  EXPECT_EQ(b.g.nodes()[0]->attr_string("activation", "?"), "");
  EXPECT_EQ(b.g.nodes()[0]->inputs.size(), 3u);
  EXPECT_EQ(b.g.nodes()[1]->attr_string("activation"), "Relu");
  EXPECT_EQ(b.g.nodes()[1]->inputs.size(), 2u);
}

TEST(FuseMatMulEpilogue, GemmWithActivation) {
  G b;
  ir::Value* x = b.input({4, 8});
  ir::Value* g1 = b.node("Gemm", {x, b.constant("w", {16, 8}), b.constant("c", {16})}, "g1",
                         {attr_int("transB", 1), attr_float("beta", 1.f)});
  ir::Value* r = b.node("Relu", {g1}, "r");
  ir::Value* g2 = b.node("Gemm", {r, b.constant("w2", {16, 5})}, "g2");  // no C
  b.output(b.node("Gelu", {g2}, "y"));
  fuse_and_compare(b, {4, 8});
  ASSERT_EQ(b.count(ops::kFusedMatMul), 2);
  EXPECT_EQ(b.g.nodes().size(), 2u);
  EXPECT_EQ(b.g.nodes()[0]->attr_int("trans_b", -1), 1);
  EXPECT_EQ(b.g.nodes()[0]->attr_string("activation"), "Relu");
  EXPECT_EQ(b.g.nodes()[1]->attr_string("activation"), "Gelu");
  EXPECT_EQ(b.g.nodes()[1]->inputs.size(), 2u);
}

TEST(FuseMatMulEpilogue, HalfTypes) {
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    G b(dt);
    ir::Value* x = b.input({3, 32});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {32, 24})}, "mm");
    ir::Value* s = b.node("Add", {mm, b.constant("bias", {24})}, "s");
    b.output(b.node("Relu", {s}, "y"));
    // Unfused, every op rounds: a few ulp apart.
    fuse_and_compare(b, {3, 32}, dt == DType::kFloat16 ? 4e-3 : 3e-2);
    EXPECT_EQ(b.g.nodes().size(), 1u) << dtype_name(dt);
  }
}

// ---- cases that must not fuse ----

TEST(FuseMatMulEpilogue, IntermediateWithOtherReadersStays) {
  {
    G b;  // the MatMul's output is also a graph output
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    b.output(b.node("Add", {mm, b.constant("bias", {4})}, "y"));
    b.output(mm);
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // the MatMul's output has a second reader
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    ir::Value* s = b.node("Add", {mm, b.constant("bias", {4})}, "s");
    b.output(b.node("Mul", {s, mm}, "y"));
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // the Add's output is a graph output: the Relu stays apart
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    ir::Value* s = b.node("Add", {mm, b.constant("bias", {4})}, "s");
    b.output(b.node("Relu", {s}, "y"));
    b.output(s);
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 1);
    EXPECT_EQ(b.count("Relu"), 1);
    EXPECT_EQ(b.first(ops::kFusedMatMul)->attr_string("activation", "?"), "");
    EXPECT_EQ(b.first(ops::kFusedMatMul)->outputs[0]->name, "s");
  }
}

TEST(FuseMatMulEpilogue, BiasMustBeAConstantRow) {
  {
    G b;  // a full [M, N] addend
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 3})}, "mm");
    b.output(b.node("Relu", {b.node("Add", {mm, b.constant("c", {2, 3})}, "s")}, "y"));
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // the addend is computed, not a constant
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    ir::Value* c = b.node("Neg", {b.constant("c", {4})}, "c_neg");
    b.output(b.node("Add", {mm, c}, "y"));
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // a graph input with a default value may be fed another value
    ir::Value* x = b.input({2, 4});
    ir::Value* c = b.constant("c", {4});
    c->is_graph_input = true;
    b.g.inputs.push_back(c);
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    b.output(b.node("Add", {mm, c}, "y"));
    ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
    ASSERT_TRUE(run_pass(b.g).ok());
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // a batched (3-D) weight
    ir::Value* x = b.input({2, 3, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {2, 4, 5})}, "mm");
    b.output(b.node("Add", {mm, b.constant("bias", {5})}, "y"));
    fuse_and_compare(b, {2, 3, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
}

TEST(FuseMatMulEpilogue, OtherDtypesAndGemmAttributesStay) {
  {
    G b(DType::kFloat64);
    ir::Value* x = b.input({2, 4});
    ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
    b.output(b.node("Relu", {b.node("Add", {mm, b.constant("bias", {4})}, "s")}, "y"));
    fuse_and_compare(b, {2, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  const std::vector<std::vector<ir::Attribute>> refused = {
      {attr_float("alpha", 2.f)}, {attr_float("beta", 0.5f)}, {attr_int("transA", 1)}};
  for (const auto& attrs : refused) {
    G b;
    ir::Value* x = b.input({4, 4});
    ir::Value* g1 = b.node("Gemm", {x, b.constant("w", {4, 6}), b.constant("c", {6})}, "g1", attrs);
    b.output(b.node("Relu", {g1}, "y"));
    fuse_and_compare(b, {4, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0) << attrs[0].name;
  }
  {
    G b;  // a Gemm without an activation already adds C in its epilogue
    ir::Value* x = b.input({4, 4});
    b.output(b.node("Gemm", {x, b.constant("w", {4, 6}), b.constant("c", {6})}, "y"));
    fuse_and_compare(b, {4, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
  {
    G b;  // a Gemm whose C is a full matrix
    ir::Value* x = b.input({4, 4});
    ir::Value* g1 = b.node("Gemm", {x, b.constant("w", {4, 6}), b.constant("c", {4, 6})}, "g1");
    b.output(b.node("Relu", {g1}, "y"));
    fuse_and_compare(b, {4, 4});
    EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  }
}

// Under --fp16 the fused node runs in float16 with its weights converted, like MatMul.
TEST(FuseMatMulEpilogue, LowerPrecisionConvertsTheFusedNode) {
  G b;
  ir::Value* x = b.input({3, 16});
  ir::Value* mm = b.node("MatMul", {x, b.constant("w", {16, 8})}, "mm");
  ir::Value* s = b.node("Add", {mm, b.constant("bias", {8})}, "s");
  b.output(b.node("Gelu", {s}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const Tensor xv = random_tensor({3, 16}, 5, DType::kFloat32);
  const std::vector<Tensor> before = run(b.g, xv);
  ASSERT_TRUE(run_pass(b.g).ok());
  auto lowered = passes::lower_precision(b.g, DType::kFloat16);
  ASSERT_TRUE(lowered.ok()) << lowered.status().to_string();
  EXPECT_TRUE(*lowered);
  ASSERT_TRUE(ir::verify_graph(b.g).ok());
  const ir::Node* f = b.first(ops::kFusedMatMul);
  ASSERT_NE(f, nullptr);
  for (const ir::Value* v : f->inputs) EXPECT_EQ(v->type.dtype, DType::kFloat16) << v->name;
  EXPECT_EQ(f->inputs[1]->constant->dtype(), DType::kFloat16);
  EXPECT_EQ(b.count("Cast"), 2);  // x in, y out
  for (const auto& n : b.g.nodes()) {
    if (n->op_type == "Cast") {
      EXPECT_GE(n->opset, 13);
    }
  }
  const std::vector<Tensor> after = run(b.g, xv);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].dtype(), DType::kFloat32);
  EXPECT_TRUE(testing::tensors_near(before[0], after[0], 5e-3, 5e-3));
}

// A value an If branch reads by name from the enclosing graph keeps its producer.
TEST(FuseMatMulEpilogue, ValuesReadBySubgraphsStay) {
  G b;
  ir::Value* x = b.input({2, 4});
  ir::Value* mm = b.node("MatMul", {x, b.constant("w", {4, 4})}, "mm");
  ir::Value* s = b.node("Add", {mm, b.constant("bias", {4})}, "s");
  b.output(b.node("Relu", {s}, "y"));
  // An If whose branches read `mm` by name.
  auto branch = [&](const char* name) {
    auto sub = std::make_shared<ir::Graph>();
    sub->name = name;
    sub->parent = &b.g;
    sub->opsets[""] = 20;
    ir::Value* outer = sub->add_value("mm");
    outer->is_outer_scope = true;
    outer->type = mm->type;
    ir::Node* n = sub->add_node("Neg", "", std::string(name) + "_neg");
    n->inputs = {outer};
    n->outputs = {sub->add_value(std::string(name) + "_out")};
    sub->outputs.push_back(n->outputs[0]);
    sub->relink();
    return sub;
  };
  ir::Value* cond = b.g.add_value("cond");
  Tensor yes = Tensor::zeros(DType::kBool, {});
  yes.mutable_data<uint8_t>()[0] = 1;
  cond->constant = std::make_shared<Tensor>(yes);
  cond->type = ir::TypeInfo::tensor(DType::kBool, ir::Shape::of({}));
  ir::Node* iff = b.g.add_node("If", "", "if");
  iff->inputs = {cond};
  iff->outputs = {b.g.add_value("z")};
  ir::Attribute then_a, else_a;
  then_a.name = "then_branch";
  then_a.type = ir::AttrType::kGraph;
  then_a.g = branch("then");
  else_a.name = "else_branch";
  else_a.type = ir::AttrType::kGraph;
  else_a.g = branch("else");
  iff->attrs = {then_a, else_a};
  b.g.relink();
  b.output(iff->outputs[0]);
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(run_pass(b.g).ok());
  EXPECT_EQ(b.count(ops::kFusedMatMul), 0);
  EXPECT_EQ(b.count("MatMul"), 1);
}

}  // namespace
}  // namespace kiln
