// The channels-last forms of the layout pass on the CPU: kiln.FusedConv with channels_last = 1
// and kiln.ChannelsLastMaxPool / AveragePool against their channels-first ops on the same
// values permuted on the host. The channels-last kernels run the same code on permuted copies,
// so the results are identical (compared exactly, float32 and float16).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/dtype.h"
#include "ops/fused_conv.h"
#include "ops/layout.h"
#include "support/op_harness.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::attr_int;
using testing::attr_ints;
using testing::attr_string;
using testing::run_op;
using testing::tensors_near;

Tensor random_tensor(const std::vector<int64_t>& shape, DType dt, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  auto t = convert_tensor(Tensor::from_vector<float>(shape, v), dt);
  EXPECT_TRUE(t.ok());
  return std::move(*t);
}

// Rank-4 permutation of a tensor's bytes: y.shape[i] = x.shape[perm[i]].
Tensor permute4(const Tensor& x, const std::vector<int64_t>& perm) {
  std::vector<int64_t> in = x.shape(), out(4), st(4, 1);
  for (int i = 2; i >= 0; --i) st[static_cast<size_t>(i)] = st[i + 1] * in[i + 1];
  for (size_t i = 0; i < 4; ++i) out[i] = in[static_cast<size_t>(perm[i])];
  Tensor y = Tensor::zeros(x.dtype(), out);
  const size_t es = dtype_storage_bytes(x.dtype(), 1);
  const char* s = static_cast<const char*>(x.raw());
  char* d = static_cast<char*>(y.mutable_raw());
  int64_t o = 0;
  for (int64_t a = 0; a < out[0]; ++a)
    for (int64_t b = 0; b < out[1]; ++b)
      for (int64_t c = 0; c < out[2]; ++c)
        for (int64_t e = 0; e < out[3]; ++e, ++o) {
          const int64_t idx[4] = {a, b, c, e};
          int64_t off = 0;
          for (size_t i = 0; i < 4; ++i) off += idx[i] * st[static_cast<size_t>(perm[i])];
          std::copy_n(s + off * static_cast<int64_t>(es), es, d + o * static_cast<int64_t>(es));
        }
  return y;
}

const std::vector<int64_t> kLast = ops::to_channels_last_perm(4);
const std::vector<int64_t> kFirst = ops::to_channels_first_perm(4);

struct ConvCase {
  std::vector<int64_t> x, w;
  int64_t group = 1;
  std::vector<int64_t> pads, strides;
  bool bias = true, residual = true;
  std::string act = "Relu";
};

void check_conv(const ConvCase& c, DType dt) {
  SCOPED_TRACE(::testing::Message() << "group " << c.group << " act '" << c.act << "' "
                                    << dtype_name(dt) << " C " << c.x[1]);
  Tensor X = random_tensor(c.x, dt, 1), W = random_tensor(c.w, dt, 2);
  Datum B = c.bias ? Datum::of(random_tensor({c.w[0]}, dt, 3)) : Datum();
  std::vector<ir::Attribute> attrs = {attr_int("group", c.group), attr_string("activation", c.act)};
  if (!c.pads.empty()) attrs.push_back(attr_ints("pads", c.pads));
  if (!c.strides.empty()) attrs.push_back(attr_ints("strides", c.strides));
  // The output shape, from a run without the residual.
  testing::OpRun probe{.op_type = ops::kFusedConvOp,
                       .inputs = {Datum::of(X), Datum::of(W), B},
                       .attrs = attrs,
                       .domain = ir::kKilnDomain};
  auto y0 = run_op(probe);
  ASSERT_TRUE(y0.ok()) << y0.status().to_string();
  Datum Z = c.residual ? Datum::of(random_tensor((*y0)[0].tensor.shape(), dt, 4)) : Datum();
  testing::OpRun first = probe;
  first.inputs = {Datum::of(X), Datum::of(W), B, Z};
  auto expected = run_op(first);
  ASSERT_TRUE(expected.ok()) << expected.status().to_string();

  testing::OpRun last = first;
  last.inputs = {Datum::of(permute4(X, kLast)), Datum::of(permute4(W, kLast)), B,
                 c.residual ? Datum::of(permute4(Z.tensor, kLast)) : Datum()};
  last.attrs.push_back(attr_int(ops::kChannelsLastAttr, 1));
  auto actual = run_op(last);  // also checks the channels-last inference against the kernel
  ASSERT_TRUE(actual.ok()) << actual.status().to_string();
  EXPECT_TRUE(tensors_near(permute4((*expected)[0].tensor, kLast), (*actual)[0].tensor, 0, 0));
}

TEST(ChannelsLastConv, MatchesChannelsFirst) {
  const std::vector<ConvCase> cases = {
      {.x = {2, 3, 7, 6}, .w = {5, 3, 3, 3}, .pads = {1, 1, 1, 1}},
      {.x = {1, 8, 9, 9}, .w = {8, 4, 3, 3}, .group = 2, .strides = {2, 2}, .act = ""},
      {.x = {2, 6, 5, 5}, .w = {6, 1, 3, 3}, .group = 6, .pads = {1, 1, 1, 1}, .bias = false},
      {.x = {3, 4, 4, 4}, .w = {7, 4, 1, 1}, .residual = false},
  };
  for (const ConvCase& c : cases) {
    check_conv(c, DType::kFloat32);
    check_conv(c, DType::kFloat16);
  }
}

TEST(ChannelsLastConv, RejectsBadAttributeAndRanks) {
  Tensor X = random_tensor({1, 4, 4, 3}, DType::kFloat32, 1);
  Tensor W = random_tensor({2, 3, 3, 3}, DType::kFloat32, 2);
  testing::OpRun bad{.op_type = ops::kFusedConvOp,
                     .inputs = {Datum::of(X), Datum::of(W)},
                     .attrs = {attr_int(ops::kChannelsLastAttr, 2)},
                     .domain = ir::kKilnDomain};
  EXPECT_FALSE(run_op(bad).ok());
  testing::OpRun rank{.op_type = ops::kFusedConvOp,
                      .inputs = {Datum::of(random_tensor({4, 3}, DType::kFloat32, 3)),
                                 Datum::of(random_tensor({2, 3}, DType::kFloat32, 4))},
                      .attrs = {attr_int(ops::kChannelsLastAttr, 1)},
                      .domain = ir::kKilnDomain};
  EXPECT_FALSE(run_op(rank).ok());
}

struct PoolCase {
  bool max = true;
  std::vector<int64_t> x, kernel, pads, strides, dilations;
  int64_t ceil_mode = 0, count_include_pad = 0;
};

void check_pool(const PoolCase& c, DType dt) {
  SCOPED_TRACE(::testing::Message() << (c.max ? "max" : "average") << " ceil " << c.ceil_mode
                                    << " cip " << c.count_include_pad << " " << dtype_name(dt));
  Tensor X = random_tensor(c.x, dt, 7);
  std::vector<ir::Attribute> attrs = {attr_ints("kernel_shape", c.kernel),
                                      attr_int("ceil_mode", c.ceil_mode)};
  if (!c.pads.empty()) attrs.push_back(attr_ints("pads", c.pads));
  if (!c.strides.empty()) attrs.push_back(attr_ints("strides", c.strides));
  if (!c.dilations.empty()) attrs.push_back(attr_ints("dilations", c.dilations));
  if (!c.max) attrs.push_back(attr_int("count_include_pad", c.count_include_pad));
  testing::OpRun first{
      .op_type = c.max ? "MaxPool" : "AveragePool", .inputs = {Datum::of(X)}, .attrs = attrs};
  auto expected = run_op(first);
  ASSERT_TRUE(expected.ok()) << expected.status().to_string();
  testing::OpRun last{
      .op_type = c.max ? ops::kChannelsLastMaxPoolOp : ops::kChannelsLastAveragePoolOp,
      .inputs = {Datum::of(permute4(X, kLast))},
      .attrs = attrs,
      .domain = ir::kKilnDomain};
  auto actual = run_op(last);
  ASSERT_TRUE(actual.ok()) << actual.status().to_string();
  EXPECT_TRUE(tensors_near(permute4((*expected)[0].tensor, kLast), (*actual)[0].tensor, 0, 0));
}

TEST(ChannelsLastPool, MatchesChannelsFirst) {
  const std::vector<PoolCase> cases = {
      {.x = {2, 5, 9, 9}, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .strides = {2, 2}},
      {.max = false, .x = {1, 3, 7, 8}, .kernel = {2, 3}, .pads = {0, 1, 1, 0}},
      {.max = false,
       .x = {2, 4, 6, 6},
       .kernel = {3, 3},
       .pads = {1, 1, 1, 1},
       .strides = {2, 2},
       .ceil_mode = 1,
       .count_include_pad = 1},
      {.x = {1, 2, 8, 8}, .kernel = {2, 2}, .dilations = {2, 2}, .ceil_mode = 1},
  };
  for (const PoolCase& c : cases) {
    check_pool(c, DType::kFloat32);
    check_pool(c, DType::kFloat16);
  }
}

}  // namespace
}  // namespace kiln
