// kiln.Pointwise on the CPU: a hand-written program against the values it must compute (integer
// wrap-around, casts, broadcasting, several outputs); malformed programs are refused with an
// error, never a crash.
#include <gtest/gtest.h>

#include "ops/fused_pointwise.h"
#include "support/op_harness.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::attr_ints;
using testing::OpRun;
using testing::run_op;

constexpr int64_t op(ops::PwOp o) {
  return static_cast<int64_t>(o);
}
constexpr int64_t dt(DType t) {
  return static_cast<int64_t>(t);
}

OpRun pointwise(std::vector<Datum> inputs, std::vector<int64_t> code, std::vector<int64_t> outs) {
  OpRun r{.op_type = std::string(ops::kPointwise),
          .inputs = std::move(inputs),
          .attrs = {attr_ints("code", std::move(code)), attr_ints("outputs", outs)},
          .num_outputs = static_cast<int>(outs.size()),
          .opset = 1,
          .domain = ir::kKilnDomain};
  return r;
}

TEST(PointwiseOp, IntegerAndCastProgram) {
  using ops::PwOp;
  // in0: int32 [2, 3]; in1: float32 [3]
  //   i2 = in0 * in0 (int32, wraps)   i3 = Cast(in1 -> int32)   i4 = i2 + i3
  //   i5 = Cast(i4 -> float32)        i6 = i5 > in1 (bool)
  const Tensor a = Tensor::from_vector<int32_t>({2, 3}, {1, -2, 65536, 4, 5, -65536});
  const Tensor b = Tensor::from_vector<float>({3}, {1.5f, -2.7f, 100.f});
  const int64_t i32 = dt(DType::kInt32), f32 = dt(DType::kFloat32), b8 = dt(DType::kBool);
  auto r = run_op(pointwise({Datum::of(a), Datum::of(b)}, {op(PwOp::kMul),     i32, 2, 0, 0,   // 2
                                                           op(PwOp::kCast),    i32, 1, 1,      // 3
                                                           op(PwOp::kAdd),     i32, 2, 2, 3,   // 4
                                                           op(PwOp::kCast),    f32, 1, 4,      // 5
                                                           op(PwOp::kGreater), b8,  2, 5, 1},  // 6
                            {2, 4}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& sum = (*r)[0].tensor;
  const Tensor& gt = (*r)[1].tensor;
  ASSERT_EQ(sum.dtype(), DType::kInt32);
  ASSERT_EQ(sum.shape(), (std::vector<int64_t>{2, 3}));
  // 65536^2 wraps to 0 in int32; Cast truncates toward zero.
  const std::vector<int32_t> want = {1 + 1, 4 - 2, 0 + 100, 16 + 1, 25 - 2, 0 + 100};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(sum.data<int32_t>()[i], want[static_cast<size_t>(i)]);
  ASSERT_EQ(gt.dtype(), DType::kBool);
  const std::vector<uint8_t> want_gt = {1, 1, 0, 1, 1, 0};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(gt.data<uint8_t>()[i], want_gt[static_cast<size_t>(i)]);
}

TEST(PointwiseOp, MalformedProgramsAreErrors) {
  using ops::PwOp;
  const Tensor x = Tensor::from_vector<float>({4}, {1.f, 2.f, 3.f, 4.f});
  const int64_t f32 = dt(DType::kFloat32);
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> bad = {
      {{}, {0}},                                         // empty
      {{op(PwOp::kNeg), f32, 1, 5}, {0}},                // ref out of range
      {{op(PwOp::kNeg), f32, 1, 1}, {0}},                // ref to itself
      {{op(PwOp::kAdd), f32, 1, 0}, {0}},                // wrong arity
      {{op(PwOp::kAdd), f32, 2, 0}, {0}},                // truncated
      {{99, f32, 1, 0}, {0}},                            // unknown opcode
      {{op(PwOp::kNeg), 12345, 1, 0}, {0}},              // bad dtype
      {{op(PwOp::kNeg), dt(DType::kInt64), 1, 0}, {0}},  // type mismatch
      {{op(PwOp::kNot), dt(DType::kBool), 1, 0}, {0}},   // Not of a float
      {{op(PwOp::kNeg), f32, 1, 0}, {3}},                // output ref out of range
      {{op(PwOp::kNeg), f32, 1, 0}, {-1}},               // negative output ref
      {{op(PwOp::kClip), f32, 3, 0, -1, 7}, {0}},        // Clip bound out of range
  };
  for (const auto& [code, outs] : bad) {
    auto r = run_op(pointwise({Datum::of(x)}, code, outs));
    EXPECT_FALSE(r.ok()) << "code of " << code.size() << " ints was accepted";
  }
}

}  // namespace
}  // namespace kiln
