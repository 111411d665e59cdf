// kiln.FusedMatMul on the GPU: ONNX MatMul/Gemm + bias + activation chains, fused by the builder
// and run through the CUDA backend (cuBLASLt epilogues; the erf GELU, and the tanh GELU in
// float32, as a pointwise pass), against the CPU engine of the unfused graph. Skipped (reported
// as skipped) without a usable GPU.
// Tolerances (max |diff| / max |reference|, K up to 128, x normal, weights in [-1, 1]):
//   float32 without TF32 1e-5 (summation order); with TF32 5e-3 (10-bit mantissa products);
//   float16 5e-3 (a few roundings of the output, and cuBLASLt's fast tanh in the GELU epilogue);
//   bfloat16 2e-2 (8-bit mantissa: the unfused reference rounds after each op);
//   --fp16 / --bf16 builds of float32 models 1e-2 / 4e-2 (inputs and weights rounded too).
#include <gtest/gtest.h>

#include "backend/cuda_backend.h"
#include "ops/fused_matmul.h"
#include "support/gpu_test_util.h"
#include "support/matmul_model.h"

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
#include "backends/cuda/kernel.h"
#endif

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kiln {
namespace {

using testing::compare_with_unfused_cpu;
using testing::MatMulModel;

struct Precision {
  const char* name;
  DType model_dtype;  // the ONNX model's dtype
  bool tf32, fp16, bf16;
  double tol;
  int nodes;  // engine nodes when the chain fuses (Casts around it under --fp16/--bf16)
};

const Precision kPrecisions[] = {
    {"fp32", DType::kFloat32, false, false, false, 1e-5, 1},
    {"tf32", DType::kFloat32, true, false, false, 5e-3, 1},
    {"fp16", DType::kFloat16, false, false, false, 5e-3, 1},
    {"bf16", DType::kBFloat16, false, false, false, 2e-2, 1},
    {"fp16-build", DType::kFloat32, false, true, false, 1e-2, 3},
    {"bf16-build", DType::kFloat32, false, false, true, 4e-2, 3},
};

struct Shape {
  const char* op;
  std::vector<int64_t> x;
  int64_t n;
  bool trans_b;
};

const Shape kShapes[] = {
    {"MatMul", {8, 64}, 32, false},       // 2-D
    {"MatMul", {2, 7, 96}, 40, false},    // batched A [B, S, K] folded into the GEMM's rows
    {"MatMul", {3, 5, 33}, 17, false},    // odd K and N (unaligned rows)
    {"MatMul", {1, 1, 128}, 256, false},  // one row
    {"Gemm", {16, 48}, 24, true},         // Gemm, weight stored [N, K]
};

const char* const kActivations[] = {"", "Relu", "Gelu", "GeluTanh"};

TEST(CudaFusedMatMul, MatchesTheUnfusedCpuEngine) {
  REQUIRE_GPU();
  int id = 0;
  for (const Precision& p : kPrecisions) {
    for (const Shape& s : kShapes) {
      for (const char* act : kActivations) {
        for (bool bias : {true, false}) {
          if (!bias && std::string(act).empty()) continue;  // a plain MatMul: nothing to fuse
          if (std::string(s.op) == "Gemm" && std::string(act).empty()) continue;  // stays Gemm
          MatMulModel m{.op = s.op,
                        .dtype = p.model_dtype,
                        .x_shape = s.x,
                        .n = s.n,
                        .bias = bias,
                        .act = act,
                        .trans_b = s.trans_b};
          BuilderConfig c;
          c.device = Device::kCuda;
          c.strict = true;
          c.tf32 = p.tf32;
          c.fp16 = p.fp16;
          c.bf16 = p.bf16;
          std::string what = std::string(p.name) + " " + s.op + " x" + std::to_string(s.x.size()) +
                             "d n=" + std::to_string(s.n) + " act='" + act + "'" +
                             (bias ? " bias" : "");
          auto r = compare_with_unfused_cpu(m, c, ::testing::TempDir(),
                                            "cuda_fused_" + std::to_string(id++));
          ASSERT_TRUE(r.status.ok()) << what << ": " << r.status.to_string();
          EXPECT_EQ(r.nodes, p.nodes) << what;
          EXPECT_EQ(r.nodes_on_device, r.nodes) << what;
          EXPECT_LE(r.rel_error, p.tol) << what;
        }
      }
    }
  }
}

// The default build (TF32 allowed) on a larger batched input, several random inputs.
TEST(CudaFusedMatMul, DefaultConfigOnSeveralInputs) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  c.strict = true;
  MatMulModel m{.x_shape = {4, 16, 64}, .n = 48, .act = "Gelu"};
  for (uint32_t seed : {1u, 2u, 3u}) {
    auto r = compare_with_unfused_cpu(m, c, ::testing::TempDir(), "cuda_fused_rep", seed);
    ASSERT_TRUE(r.status.ok()) << r.status.to_string();
    EXPECT_EQ(r.nodes, 1);
    EXPECT_LE(r.rel_error, 5e-3);  // TF32 on (the default)
  }
}

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
// supports() reads inferred types only: no GPU needed.
TEST(CudaFusedMatMul, SupportsTheFusedTypesOnly) {
  const cuda::KernelDef* def =
      cuda::KernelRegistry::global().find(ir::kKilnDomain, ops::kFusedMatMul);
  ASSERT_NE(def, nullptr);
  auto verdict = [&](DType dt, std::vector<int64_t> b_shape, const std::string& act) {
    ir::Graph g;
    ir::Node* n = g.add_node(ops::kFusedMatMul, ir::kKilnDomain, "f");
    auto value = [&](const char* name, std::vector<int64_t> shape) {
      ir::Value* v = g.add_value(name);
      v->type = ir::TypeInfo::tensor(dt, ir::Shape::of(shape));
      return v;
    };
    n->inputs = {value("a", {2, 3, 8}), value("b", b_shape), value("bias", {b_shape.back()})};
    n->outputs = {value("y", {2, 3, b_shape.back()})};
    ir::Attribute a;
    a.name = "activation";
    a.type = ir::AttrType::kString;
    a.s = act;
    n->attrs = {a};
    return def->supports(*n);
  };
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (const char* act : {"", "Relu", "Gelu", "GeluTanh"}) {
      EXPECT_EQ(verdict(dt, {8, 16}, act), "") << dtype_name(dt) << " " << act;
    }
  }
  EXPECT_NE(verdict(DType::kFloat64, {8, 16}, "Relu"), "");
  EXPECT_NE(verdict(DType::kFloat32, {8, 16}, "Swish"), "");
  EXPECT_NE(verdict(DType::kFloat32, {2, 8, 16}, ""), "");
}
#endif

}  // namespace
}  // namespace kiln
