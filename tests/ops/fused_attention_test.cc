// kiln.PackedAttention on the CPU: against a naive attention computed here, against ONNX
// Attention's 3-D form on the sliced Q, K, V (masks, GQA, causal, scale, float16); type
// inference and bad input.
// Tolerances: float32 1e-5 (both compute in double and round once); against Attention on the
// same slices the result is the same computation, compared at 0.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/fused_attention.h"
#include "support/op_harness.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::attr_float;
using testing::attr_int;
using testing::OpRun;
using testing::run_op;
using testing::tensors_near;

constexpr int64_t kB = 2, kS = 5, kD = 4;

std::vector<float> rand_vec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

// Columns [begin, begin + width) of [B, S, cols].
std::vector<float> cols(const std::vector<float>& x, int64_t ncols, int64_t begin, int64_t width) {
  std::vector<float> out;
  for (int64_t r = 0; r < kB * kS; ++r)
    for (int64_t c = 0; c < width; ++c) out.push_back(x[size_t(r * ncols + begin + c)]);
  return out;
}

OpRun packed(const std::vector<float>& qkv, int64_t hq, int64_t hkv, Datum mask = Datum(),
             std::vector<ir::Attribute> extra = {}) {
  OpRun r;
  r.op_type = ops::kPackedAttention;
  r.domain = ir::kKilnDomain;
  r.opset = 1;
  r.inputs = {qkv.empty() ? Datum()
                          : testing::tensor_of<float>({kB, kS, (hq + 2 * hkv) * kD}, qkv)};
  if (mask.is_tensor()) r.inputs.push_back(mask);
  r.attrs = {attr_int("q_num_heads", hq), attr_int("kv_num_heads", hkv)};
  for (auto& a : extra) r.attrs.push_back(a);
  return r;
}

// The same case as ONNX Attention on the three slices.
OpRun sliced(const std::vector<float>& qkv, int64_t hq, int64_t hkv, Datum mask = Datum(),
             std::vector<ir::Attribute> extra = {}) {
  const int64_t n = (hq + 2 * hkv) * kD;
  OpRun r;
  r.op_type = "Attention";
  r.opset = 23;
  r.inputs = {
      testing::tensor_of<float>({kB, kS, hq * kD}, cols(qkv, n, 0, hq * kD)),
      testing::tensor_of<float>({kB, kS, hkv * kD}, cols(qkv, n, hq * kD, hkv * kD)),
      testing::tensor_of<float>({kB, kS, hkv * kD}, cols(qkv, n, (hq + hkv) * kD, hkv * kD))};
  if (mask.is_tensor()) r.inputs.push_back(mask);
  r.attrs = {attr_int("q_num_heads", hq), attr_int("kv_num_heads", hkv)};
  for (auto& a : extra) r.attrs.push_back(a);
  return r;
}

TEST(FusedAttention, MatchesNaiveAttention) {
  const int64_t h = 2, n = 3 * h * kD;
  const std::vector<float> qkv = rand_vec(kB * kS * n, 1);
  auto out = run_op(packed(qkv, h, h));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> want(static_cast<size_t>(kB * kS * h * kD), 0.f);
  const double scale = 1.0 / std::sqrt(double(kD));
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t hh = 0; hh < h; ++hh)
      for (int64_t i = 0; i < kS; ++i) {
        auto at = [&](int64_t s, int64_t part, int64_t x) {
          return double(qkv[size_t((b * kS + s) * n + part * h * kD + hh * kD + x)]);
        };
        std::vector<double> p(kS);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < kS; ++j) {
          double s = 0;
          for (int64_t x = 0; x < kD; ++x) s += at(i, 0, x) * at(j, 1, x);
          p[size_t(j)] = s * scale;
          mx = std::max(mx, p[size_t(j)]);
        }
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (int64_t x = 0; x < kD; ++x) {
          double y = 0;
          for (int64_t j = 0; j < kS; ++j) y += p[size_t(j)] / sum * at(j, 2, x);
          want[size_t((b * kS + i) * h * kD + hh * kD + x)] = float(y);
        }
      }
  EXPECT_TRUE(tensors_near(Tensor::from_vector<float>({kB, kS, h * kD}, want), (*out)[0].tensor));
}

// Every variant equals Attention on the slices.
TEST(FusedAttention, MatchesAttentionOnSlices) {
  struct Case {
    int64_t hq, hkv;
    int mask;  // 0 none, 1 bool [B, 1, S, S], 2 float [S, S]
    bool causal;
    float scale;  // 0: absent
  };
  const Case cases[] = {{2, 2, 0, false, 0.f}, {2, 2, 1, false, 0.f}, {2, 2, 2, false, 0.3f},
                        {4, 2, 1, true, 0.f},  {3, 1, 2, true, 0.7f}, {2, 1, 0, false, 0.f}};
  uint32_t seed = 10;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "hq " << c.hq << " hkv " << c.hkv << " mask " << c.mask);
    const std::vector<float> qkv = rand_vec(kB * kS * (c.hq + 2 * c.hkv) * kD, seed++);
    Datum mask;
    if (c.mask == 1) {
      std::vector<bool> m;
      for (int64_t i = 0; i < kB * kS * kS; ++i) m.push_back((i * 7) % 3 != 0);
      mask = testing::tensor_of<bool>({kB, 1, kS, kS}, m);
    } else if (c.mask == 2) {
      mask = testing::tensor_of<float>({kS, kS}, rand_vec(kS * kS, seed++));
    }
    std::vector<ir::Attribute> extra;
    if (c.causal) extra.push_back(attr_int("is_causal", 1));
    if (c.scale != 0.f) extra.push_back(attr_float("scale", c.scale));
    auto got = run_op(packed(qkv, c.hq, c.hkv, mask, extra));
    auto want = run_op(sliced(qkv, c.hq, c.hkv, mask, extra));
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    EXPECT_TRUE(tensors_near((*want)[0].tensor, (*got)[0].tensor, 0, 0));
  }
}

TEST(FusedAttention, Float16) {
  const int64_t h = 2, n = 3 * h * kD;
  const std::vector<float> f = rand_vec(kB * kS * n, 3);
  std::vector<Half> hv;
  for (float x : f) hv.push_back(Half(x));
  std::vector<float> rounded;
  for (Half x : hv) rounded.push_back(static_cast<float>(x));
  OpRun r = packed(rounded, h, h);
  r.inputs[0] = testing::tensor_of<Half>({kB, kS, n}, hv);
  auto got = run_op(r);
  auto want = run_op(packed(rounded, h, h));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(want.ok());
  const Tensor& y = (*got)[0].tensor;
  ASSERT_EQ(y.dtype(), DType::kFloat16);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double w = (*want)[0].tensor.get_double(i);
    EXPECT_NEAR(y.get_double(i), w, 1e-3 * std::fabs(w) + 1e-3) << i;  // one fp16 rounding
  }
}

// qkv of an explicit last dim `n`.
OpRun packed_n(int64_t n, int64_t hq, int64_t hkv, Datum mask = Datum()) {
  OpRun r = packed({}, hq, hkv, std::move(mask));
  r.inputs[0] = testing::tensor_of<float>({kB, kS, n}, rand_vec(kB * kS * n, 4));
  return r;
}

TEST(FusedAttention, BadInputFails) {
  // Last dim 28 does not divide into 4 + 2 * 2 = 8 heads.
  auto r = run_op(packed_n(28, 4, 2));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("divide"), std::string::npos) << r.status().to_string();
  // Hq not a multiple of Hkv (7 heads of 4), no heads.
  EXPECT_FALSE(run_op(packed_n(28, 3, 2)).ok());
  EXPECT_FALSE(run_op(packed_n(24, 0, 2)).ok());
  // A mask of another dtype, and one that does not broadcast.
  EXPECT_FALSE(
      run_op(packed_n(24, 2, 2,
                      testing::tensor_of<int64_t>({kS, kS}, std::vector<int64_t>(kS * kS, 1))))
          .ok());
  EXPECT_FALSE(
      run_op(packed_n(24, 2, 2, testing::tensor_of<float>({3, kS, kS}, rand_vec(3 * kS * kS, 5))))
          .ok());
  // Rank 2.
  OpRun r2 = packed_n(24, 2, 2);
  r2.inputs[0] = testing::tensor_of<float>({kB * kS, 24}, rand_vec(kB * kS * 24, 6));
  EXPECT_FALSE(run_op(r2).ok());
}

}  // namespace
}  // namespace kiln
