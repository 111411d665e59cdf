// The transformer fusions on the GPU: the exported-style BERT layer and ViT block
// (tests/passes/data/) built for CUDA with every node on the device (so kiln.PackedAttention,
// LayerNormalization, RMSNormalization and Gelu run there) agree with the unfused CPU engine, in
// FP32 and FP16. Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"

namespace kiln {
namespace {

using testing::rel_error;

std::string data_path(const char* name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/passes/data/" + name;
}

std::shared_ptr<Engine> build(const char* model, const BuilderConfig& c, BuildReport* r) {
  auto bytes = build_engine(data_path(model), c, r);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return nullptr;
  auto e = Engine::deserialize(*bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

// Inputs of the two models: BERT's hidden [2, 8, 16] and attention_mask [2, 8] (the second
// sequence padded), ViT's x [2, 9, 16].
std::vector<std::pair<std::string, HostTensor>> inputs(bool bert) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  HostTensor x = HostTensor::zeros(DType::kFloat32, {2, bert ? 8 : 9, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
  if (!bert) return {{"x", x}};
  HostTensor m = HostTensor::zeros(DType::kInt64, {2, 8});
  for (int64_t i = 0; i < m.numel(); ++i) m.as<int64_t>()[i] = i < 13 ? 1 : 0;
  return {{"hidden", x}, {"attention_mask", m}};
}

HostTensor run(Engine& e, const std::vector<std::pair<std::string, HostTensor>>& feeds) {
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  if (!ctx.ok()) return {};
  for (const auto& [name, t] : feeds) EXPECT_TRUE((*ctx)->set_input(name, t).ok()) << name;
  Status st = (*ctx)->execute();
  EXPECT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = (*ctx)->output("out");
  return y ? *y : HostTensor{};
}

void check(const char* model, bool bert) {
  BuilderConfig ref_config;
  ref_config.device = Device::kCpu;
  ref_config.opt_level = 0;  // unfused
  BuildReport ref_report;
  auto ref = build(model, ref_config, &ref_report);
  ASSERT_TRUE(ref);
  const auto feeds = inputs(bert);
  const HostTensor want = run(*ref, feeds);
  for (bool fp16 : {false, true}) {
    BuilderConfig c;
    c.device = Device::kCuda;
    c.tf32 = false;
    c.fp16 = fp16;
    c.strict = true;
    BuildReport report;
    auto gpu = build(model, c, &report);
    ASSERT_TRUE(gpu) << (fp16 ? "fp16" : "fp32");
    EXPECT_EQ(report.nodes_on_device, report.nodes);
    // Attention (5+ nodes), two norms (9-10 nodes each) and a GELU (5 nodes) fused.
    if (!fp16) {
      EXPECT_LE(report.nodes + 20, ref_report.nodes);
    }
    // FP32: the fused kernels against the unfused CPU reference. FP16: activations and weights
    // in float16 (10-bit mantissa) through two matmuls and a norm.
    EXPECT_LT(rel_error(run(*gpu, feeds), want), fp16 ? 2e-2 : 1e-5) << (fp16 ? "fp16" : "fp32");
  }
}

TEST(CudaTransformerFusion, BertLayer) {
  REQUIRE_GPU();
  check("bert_layer.onnx", true);
}

TEST(CudaTransformerFusion, VitBlock) {
  REQUIRE_GPU();
  check("vit_block.onnx", false);
}

}  // namespace
}  // namespace kiln
