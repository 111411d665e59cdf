// kiln.FusedMatMul on the CPU: against MatMul, Add and the activation run one by one; type
// inference; bad input.
// Tolerances: float32 atol 1e-6 + rtol 1e-6 (the same GEMM; the epilogue's formulas may contract
// differently from the Gelu kernel's); float16/bfloat16 are compared with the float32 result
// rounded once: within one ulp of the type (rtol 1e-3 / 8e-3).
#include <gtest/gtest.h>

#include <random>

#include "ops/fused_matmul.h"
#include "ops/type_inference.h"
#include "support/op_harness.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::attr_int;
using testing::attr_string;
using testing::OpRun;
using testing::run_op;
using testing::tensors_near;

Tensor rand_tensor(std::vector<int64_t> shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return Tensor::from_vector<float>(std::move(shape), v);
}

Tensor transposed(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out = Tensor::zeros(DType::kFloat32, {c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j)
      out.mutable_data<float>()[j * r + i] = t.data<float>()[i * c + j];
  return out;
}

StatusOr<Tensor> run_one(OpRun r) {
  KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, run_op(r));
  return outs[0].tensor;
}

StatusOr<Tensor> fused(const Tensor& a, const Tensor& b, const Tensor* bias, const std::string& act,
                       int64_t trans_b = 0) {
  OpRun r{.op_type = ops::kFusedMatMul,
          .inputs = {Datum::of(a), Datum::of(b)},
          .attrs = {attr_string("activation", act), attr_int("trans_b", trans_b)},
          .domain = ir::kKilnDomain};
  if (bias) r.inputs.push_back(Datum::of(*bias));
  return run_one(r);
}

// MatMul, Add and the activation as separate float32 ops (b is [K, N]).
StatusOr<Tensor> unfused(const Tensor& a, const Tensor& b, const Tensor* bias,
                         const std::string& act) {
  KILN_ASSIGN_OR_RETURN(Tensor y,
                        run_one({.op_type = "MatMul", .inputs = {Datum::of(a), Datum::of(b)}}));
  if (bias) {
    KILN_ASSIGN_OR_RETURN(y,
                          run_one({.op_type = "Add", .inputs = {Datum::of(y), Datum::of(*bias)}}));
  }
  if (act == "Relu") {
    KILN_ASSIGN_OR_RETURN(y, run_one({.op_type = "Relu", .inputs = {Datum::of(y)}}));
  } else if (act == "Gelu" || act == "GeluTanh") {
    KILN_ASSIGN_OR_RETURN(
        y, run_one({.op_type = "Gelu",
                    .inputs = {Datum::of(y)},
                    .attrs = {attr_string("approximate", act == "Gelu" ? "none" : "tanh")}}));
  }
  return y;
}

struct Case {
  std::vector<int64_t> a_shape;
  int64_t n;
  bool bias;
  const char* act;
  bool trans_b;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "A" << shape_to_string(c.a_shape) << " N=" << c.n << (c.bias ? " bias" : "") << " act='"
      << c.act << "'" << (c.trans_b ? " trans_b" : "");
}

class FusedMatMulCpu : public ::testing::TestWithParam<Case> {};

TEST_P(FusedMatMulCpu, MatchesUnfusedOps) {
  const Case c = GetParam();
  const int64_t k = c.a_shape.back();
  const Tensor a = rand_tensor(c.a_shape, 1);
  const Tensor b = rand_tensor({k, c.n}, 2);
  const Tensor bias = rand_tensor({c.n}, 3);
  const Tensor* bp = c.bias ? &bias : nullptr;
  auto want = unfused(a, b, bp, c.act);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto got = c.trans_b ? fused(a, transposed(b), bp, c.act, 1) : fused(a, b, bp, c.act);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_TRUE(tensors_near(*want, *got, 1e-6, 1e-6));

  // float16 / bfloat16: the float32 result rounded once.
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    const Tensor ah = convert_tensor(a, dt).value(), bh = convert_tensor(b, dt).value(),
                 ch = convert_tensor(bias, dt).value();
    const Tensor cf = convert_tensor(ch, DType::kFloat32).value();
    auto ref = unfused(convert_tensor(ah, DType::kFloat32).value(),
                       convert_tensor(bh, DType::kFloat32).value(), c.bias ? &cf : nullptr, c.act);
    ASSERT_TRUE(ref.ok()) << ref.status().to_string();
    auto out = fused(ah, bh, c.bias ? &ch : nullptr, c.act);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ(out->dtype(), dt);
    const double rtol = dt == DType::kFloat16 ? 1e-3 : 8e-3;
    EXPECT_TRUE(tensors_near(*ref, convert_tensor(*out, DType::kFloat32).value(), 1e-6, rtol))
        << dtype_name(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedMatMulCpu,
    ::testing::Values(Case{{5, 7}, 9, true, "", false}, Case{{5, 7}, 9, true, "Relu", false},
                      Case{{5, 7}, 9, true, "Gelu", true}, Case{{5, 7}, 9, true, "GeluTanh", false},
                      Case{{2, 3, 33}, 17, true, "Gelu", false},
                      Case{{2, 3, 33}, 17, false, "Relu", true},
                      Case{{2, 2, 4, 16}, 40, true, "GeluTanh", true},
                      Case{{1, 70}, 130, true, "Relu", false}, Case{{64, 96}, 80, false, "", false},
                      Case{{7}, 5, true, "Relu", false}));

TEST(FusedMatMul, ZeroInnerDimGivesActivationOfBias) {
  const Tensor a = Tensor::zeros(DType::kFloat32, {3, 0});
  const Tensor b = Tensor::zeros(DType::kFloat32, {0, 2});
  const Tensor bias = Tensor::from_vector<float>({2}, {-1.f, 2.f});
  auto y = fused(a, b, &bias, "Relu");
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_TRUE(tensors_near(Tensor::from_vector<float>({3, 2}, {0, 2, 0, 2, 0, 2}), *y));
}

TEST(FusedMatMul, InfersShapeSymbolically) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.opsets[ir::kKilnDomain] = 1;
  ir::Value* a = g.add_value("a");
  a->type = ir::TypeInfo::tensor(DType::kFloat16, ir::Shape::of({2, 3, 8}));
  a->type.shape.dims[0] = ir::Dim::named("batch");
  a->is_graph_input = true;
  g.inputs.push_back(a);
  ir::Value* b = g.add_value("b");
  b->type = ir::TypeInfo::tensor(DType::kFloat16, ir::Shape::of({16, 8}));
  b->is_graph_input = true;
  g.inputs.push_back(b);
  ir::Node* n = g.add_node(ops::kFusedMatMul, ir::kKilnDomain, "f");
  n->inputs = {a, b};
  n->outputs = {g.add_value("y")};
  n->attrs = {attr_string("activation", "Gelu"), attr_int("trans_b", 1)};
  g.outputs.push_back(n->outputs[0]);
  g.relink();
  ASSERT_TRUE(ops::infer_graph_types(g).ok());
  EXPECT_EQ(n->outputs[0]->type.to_string(), "float16[batch,3,16]");
}

TEST(FusedMatMul, RejectsBadInput) {
  const Tensor a = rand_tensor({4, 8}, 1), b = rand_tensor({8, 6}, 2);
  const Tensor bias5 = rand_tensor({5}, 3);
  EXPECT_FALSE(fused(a, b, nullptr, "Swish").ok());                     // unknown activation
  EXPECT_FALSE(fused(a, b, &bias5, "").ok());                           // bias of the wrong size
  EXPECT_FALSE(fused(a, rand_tensor({6, 8}, 4), nullptr, "").ok());     // K differs
  EXPECT_FALSE(fused(a, b, nullptr, "", 2).ok());                       // trans_b not 0/1
  EXPECT_FALSE(fused(a, rand_tensor({2, 8, 6}, 5), nullptr, "").ok());  // B not 2-D
  EXPECT_FALSE(fused(a, convert_tensor(b, DType::kFloat16).value(), nullptr, "").ok());
  EXPECT_FALSE(fused(convert_tensor(a, DType::kFloat64).value(),
                     convert_tensor(b, DType::kFloat64).value(), nullptr, "")
                   .ok());  // float64 is not a FusedMatMul type
}

}  // namespace
}  // namespace kiln
