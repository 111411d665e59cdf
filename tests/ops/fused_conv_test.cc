// kiln.FusedConv on the CPU: y = act(conv(X, W) + B + Z) against Conv (tested against a naive
// reference in nn_conv_test.cc) followed by the residual add and the activation on the host.
// The fused kernel runs Conv's code; the expected epilogue is computed in double, so the results
// differ by the rounding of the sum: float32 1e-6, float64 1e-12, float16 2e-3 (half an ulp of
// values below 8), bfloat16 1.6e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/dtype.h"
#include "ir/graph.h"
#include "support/op_harness.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::attr_int;
using testing::attr_ints;
using testing::attr_string;
using testing::run_op;
using testing::tensor_of;
using testing::tensors_near;

std::vector<float> randf(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t p = 1;
  for (int64_t d : s) p *= d;
  return p;
}

struct Case {
  std::vector<int64_t> x, w;  // X and W shapes
  int64_t group = 1;
  std::vector<int64_t> pads, strides;
  bool bias = true, residual = true;
  std::string act = "Relu";
};

std::vector<ir::Attribute> conv_attrs(const Case& c) {
  std::vector<ir::Attribute> a = {attr_int("group", c.group)};
  if (!c.pads.empty()) a.push_back(attr_ints("pads", c.pads));
  if (!c.strides.empty()) a.push_back(attr_ints("strides", c.strides));
  return a;
}

// Runs Conv, then adds Z and applies the activation in float; returns {expected, fused}.
void check_case(const Case& c, DType dt, double tol, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "group " << c.group << " act '" << c.act << "' residual "
                                    << c.residual << " bias " << c.bias << " " << dtype_name(dt));
  const int64_t m = c.w[0];
  auto conv_in = [&](const std::vector<int64_t>& shape, uint32_t s) -> Datum {
    Tensor f = Tensor::from_vector<float>(shape, randf(static_cast<size_t>(numel(shape)), s));
    auto t = convert_tensor(f, dt);
    EXPECT_TRUE(t.ok());
    return Datum::of(std::move(*t));
  };
  Datum X = conv_in(c.x, seed), W = conv_in(c.w, seed + 1);
  Datum B = c.bias ? conv_in({m}, seed + 2) : Datum();
  testing::OpRun conv{.op_type = "Conv", .inputs = {X, W, B}, .attrs = conv_attrs(c)};
  auto plain = run_op(conv);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  const Tensor& y0 = (*plain)[0].tensor;
  Datum Z = c.residual ? conv_in(y0.shape(), seed + 3) : Datum();
  // Expected: the unfused Add and Relu, rounded to dt after each op as separate nodes would be.
  auto yf = convert_tensor(y0, DType::kFloat64);
  ASSERT_TRUE(yf.ok());
  Tensor expected = yf->clone();
  double* e = expected.mutable_data<double>();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    double v = e[i];
    if (c.residual) v += Z.tensor.get_double(i);
    if (c.act == "Relu") v = v < 0 ? 0 : v;
    e[i] = v;
  }
  std::vector<ir::Attribute> attrs = conv_attrs(c);
  if (!c.act.empty()) attrs.push_back(attr_string("activation", c.act));
  testing::OpRun fused{
      .op_type = "FusedConv", .inputs = {X, W, B, Z}, .attrs = attrs, .domain = ir::kKilnDomain};
  auto out = run_op(fused);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].tensor;
  ASSERT_EQ(y.dtype(), dt);
  ASSERT_EQ(y.shape(), y0.shape());
  auto got = convert_tensor(y, DType::kFloat64);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(tensors_near(expected, *got, tol, tol));
}

TEST(FusedConv, MatchesConvThenResidualAndRelu) {
  uint32_t seed = 1;
  for (bool bias : {true, false}) {
    for (bool residual : {true, false}) {
      for (const char* act : {"Relu", ""}) {
        Case c{.x = {2, 4, 7, 6}, .w = {6, 4, 3, 3}, .pads = {1, 1, 1, 1}};
        c.bias = bias;
        c.residual = residual;
        c.act = act;
        check_case(c, DType::kFloat32, 1e-6, seed += 5);
      }
    }
  }
}

TEST(FusedConv, GroupedStridedAndDepthwise) {
  Case grouped{.x = {1, 6, 9, 9}, .w = {4, 3, 3, 3}, .group = 2, .strides = {2, 2}};
  check_case(grouped, DType::kFloat32, 1e-6, 11);
  Case depthwise{.x = {2, 5, 8, 8}, .w = {5, 1, 3, 3}, .group = 5, .pads = {1, 1, 1, 1}};
  check_case(depthwise, DType::kFloat32, 1e-6, 12);
  Case pointwise{.x = {2, 8, 5, 5}, .w = {16, 8, 1, 1}};
  check_case(pointwise, DType::kFloat32, 1e-6, 13);
}

TEST(FusedConv, OneAndThreeSpatialDims) {
  Case d1{.x = {2, 3, 10}, .w = {4, 3, 3}, .pads = {1, 2}};
  check_case(d1, DType::kFloat32, 1e-6, 21);
  Case d3{.x = {1, 2, 4, 5, 4}, .w = {3, 2, 2, 3, 2}};
  check_case(d3, DType::kFloat32, 1e-6, 22);
}

TEST(FusedConv, OtherFloatTypes) {
  Case c{.x = {1, 4, 6, 6}, .w = {4, 2, 3, 3}, .group = 2, .pads = {1, 1, 1, 1}};
  check_case(c, DType::kFloat64, 1e-12, 31);
  check_case(c, DType::kFloat16, 2e-3, 32);
  check_case(c, DType::kBFloat16, 1.6e-2, 33);  // bfloat16: 8 bits of mantissa
}

TEST(FusedConv, RejectsBadResidualAndActivation) {
  Datum X = tensor_of<float>({1, 2, 4, 4}, randf(32, 1));
  Datum W = tensor_of<float>({3, 2, 3, 3}, randf(54, 2));
  Datum Z = tensor_of<float>({1, 3, 3, 3}, randf(27, 3));  // the output is [1, 3, 2, 2]
  testing::OpRun bad_z{
      .op_type = "FusedConv", .inputs = {X, W, Datum(), Z}, .domain = ir::kKilnDomain};
  EXPECT_FALSE(run_op(bad_z).ok());
  testing::OpRun bad_act{.op_type = "FusedConv",
                         .inputs = {X, W},
                         .attrs = {attr_string("activation", "Gelu")},
                         .domain = ir::kKilnDomain};
  EXPECT_FALSE(run_op(bad_act).ok());
  Datum Zd = tensor_of<double>({1, 3, 2, 2}, std::vector<double>(12, 1.0));
  testing::OpRun bad_dtype{
      .op_type = "FusedConv", .inputs = {X, W, Datum(), Zd}, .domain = ir::kKilnDomain};
  EXPECT_FALSE(run_op(bad_dtype).ok());
}

}  // namespace
}  // namespace kiln
