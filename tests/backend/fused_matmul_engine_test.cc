// The fuse_matmul_epilogue pass in the builder, end to end on the CPU: ONNX MatMul/Gemm + bias +
// activation chains build into one kiln.FusedMatMul node, survive serialization, and give the
// outputs of the unfused graph. (tests/cuda/fused_matmul_test.cc does the same on the GPU.)
// Tolerances (max |diff| / max |reference|): float32 1e-6 (the same GEMM); float16 models 2e-3
// (the unfused graph rounds after every op, a few ulp of float16); --fp16 builds of float32
// models 1e-2 (inputs and weights rounded to float16).
#include <gtest/gtest.h>

#include "support/matmul_model.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::compare_with_unfused_cpu;
using testing::MatMulModel;

BuilderConfig cpu_config() {
  BuilderConfig c;
  c.device = Device::kCpu;
  return c;
}

TEST(FusedMatMulEngine, CpuEngineFusesAndMatches) {
  struct Case {
    MatMulModel m;
    double tol;
  };
  const std::vector<Case> cases = {
      {{.x_shape = {2, 5, 16}, .n = 24, .act = "Relu"}, 1e-6},
      {{.x_shape = {7, 33}, .n = 17, .act = "Gelu"}, 1e-6},
      {{.x_shape = {3, 4, 8}, .n = 8, .act = "GeluTanh"}, 1e-6},
      {{.x_shape = {3, 8}, .n = 12, .act = ""}, 1e-6},
      {{.op = "Gemm", .x_shape = {6, 20}, .n = 10, .act = "Relu", .trans_b = true}, 1e-6},
      {{.op = "Gemm", .x_shape = {6, 20}, .n = 10, .bias = false, .act = "Gelu"}, 1e-6},
      {{.dtype = DType::kFloat16, .x_shape = {4, 32}, .n = 16, .act = "Gelu"}, 2e-3},
      {{.dtype = DType::kBFloat16, .x_shape = {4, 32}, .n = 16, .act = "Relu"}, 1.6e-2},
  };
  int i = 0;
  for (const Case& c : cases) {
    auto r = compare_with_unfused_cpu(c.m, cpu_config(), ::testing::TempDir(),
                                      "fused_cpu_" + std::to_string(i++));
    ASSERT_TRUE(r.status.ok()) << r.status.to_string();
    EXPECT_EQ(r.nodes, 1) << "case " << i;
    EXPECT_LE(r.rel_error, c.tol) << "case " << i;
  }
}

TEST(FusedMatMulEngine, OptLevelZeroDoesNotFuse) {
  BuilderConfig c = cpu_config();
  c.opt_level = 0;
  auto r = compare_with_unfused_cpu({.x_shape = {2, 8}, .n = 4, .act = "Relu"}, c,
                                    ::testing::TempDir(), "fused_cpu_o0");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.nodes, 3);
  EXPECT_EQ(r.rel_error, 0.0);
}

TEST(FusedMatMulEngine, ReducedPrecisionRunsTheFusedNodeInFloat16) {
  BuilderConfig c = cpu_config();
  c.fp16 = true;
  auto r = compare_with_unfused_cpu({.x_shape = {3, 64}, .n = 32, .act = "Gelu"}, c,
                                    ::testing::TempDir(), "fused_cpu_fp16");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.nodes, 3);  // Cast, FusedMatMul, Cast
  EXPECT_LE(r.rel_error, 1e-2);
}

}  // namespace
}  // namespace kiln
