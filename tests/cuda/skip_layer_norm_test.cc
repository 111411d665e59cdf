// kiln.SkipLayerNorm on the GPU: residual Add + LayerNormalization models (post-norm as in BERT,
// pre-norm with the sum read again as in ViT), and a plain LayerNormalization (which takes the
// same kernel without a Skip), built for the GPU, against the CPU engine built
// with the same precision. Row lengths cover the register-resident kernels (100, 768, 1024) and
// the looping one (1500). Skipped (reported as skipped) without a usable GPU.
// Tolerances (max |diff| / max |reference|): float32 1e-5; float16 1e-2, bfloat16 4e-2 (GPU
// statistics in float, CPU in double; the sum is rounded to the dtype on both).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "backend/cuda_backend.h"
#include "support/matmul_model.h"

namespace kiln {
namespace {

using testing::host_of;
using testing::weight_pb;

enum class Form { kPostNorm, kPreNorm, kPlain };

// y = LayerNorm(x + tanh(x)) [+ (x + tanh(x)) for pre-norm]; plain: y = LayerNorm(tanh(x))
// (LayerNormalization's own last-axis fast path). x [2, 5, len].
std::string skip_model(int64_t len, Form form) {
  const bool pre_norm = form == Form::kPreNorm;
  namespace ot = onnx::testing;
  ot::GraphPb g;
  g.name = "skip_layer_norm";
  g.initializers.push_back(weight_pb("gamma", {len}, DType::kFloat32, 3));
  g.initializers.push_back(weight_pb("beta", {len}, DType::kFloat32, 4));
  g.nodes.push_back(ot::node("Tanh", {"x"}, {"t"}, "tanh"));
  if (form == Form::kPlain) {
    g.nodes.push_back(ot::node("Identity", {"t"}, {"s"}, "residual"));
  } else {
    g.nodes.push_back(ot::node("Add", {"x", "t"}, {"s"}, "residual"));
  }
  g.nodes.push_back(ot::node("LayerNormalization", {"s", "gamma", "beta"}, {pre_norm ? "n" : "y"},
                             "ln", {ot::attr_int("axis", -1)}));
  if (pre_norm) g.nodes.push_back(ot::node("Add", {"n", "s"}, {"y"}, "next"));
  const int32_t f32 = static_cast<int32_t>(DType::kFloat32);
  g.inputs.push_back(ot::value_info("x", f32, {2, 5, len}));
  g.outputs.push_back(ot::value_info("y", f32, {2, 5, len}));
  return ot::model(g.bytes(), {ot::opset("", 17)});
}

TEST(CudaSkipLayerNorm, MatchesTheCpuEngine) {
  auto gpu = backend::cuda_device();
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().message();
  struct Case {
    const char* name;
    bool fp16, bf16;
    double tol;
  };
  for (const Case& k : {Case{"fp32", false, false, 1e-5}, Case{"fp16", true, false, 1e-2},
                        Case{"bf16", false, true, 4e-2}}) {
    for (int64_t len : {int64_t{100}, int64_t{768}, int64_t{1024}, int64_t{1500}}) {
      for (Form form : {Form::kPostNorm, Form::kPreNorm, Form::kPlain}) {
        const bool pre = form == Form::kPreNorm;
        const int f = static_cast<int>(form);
        const std::string tag =
            std::string(k.name) + " len=" + std::to_string(len) + " form " + std::to_string(f);
        const std::string path = ::testing::TempDir() + "/skip_ln_" + std::to_string(getpid()) +
                                 "_" + std::to_string(len) + "_" + std::to_string(f) + k.name +
                                 ".onnx";
        {
          std::ofstream f(path, std::ios::binary);
          const std::string bytes = skip_model(len, form);
          f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        }
        BuilderConfig c;
        c.device = Device::kCuda;
        c.strict = true;
        c.fp16 = k.fp16;
        c.bf16 = k.bf16;
        BuildReport report;
        auto bytes = build_engine(path, c, &report);
        BuilderConfig cpu = c;
        cpu.device = Device::kCpu;
        auto ref_bytes = build_engine(path, cpu, nullptr);
        std::remove(path.c_str());
        ASSERT_TRUE(bytes.ok()) << tag << ": " << bytes.status().to_string();
        ASSERT_TRUE(ref_bytes.ok()) << tag << ": " << ref_bytes.status().to_string();
        // Tanh, SkipLayerNorm [, the next Add] (+ the Casts at the edges in 16 bits).
        EXPECT_LE(report.nodes, (pre ? 3 : 2) + (k.fp16 || k.bf16 ? 2 : 0)) << tag;
        auto engine = Engine::deserialize(*bytes);
        auto reference = Engine::deserialize(*ref_bytes);
        ASSERT_TRUE(engine.ok() && reference.ok()) << tag;
        std::mt19937 rng(5);
        std::normal_distribution<float> nd;
        std::vector<float> xv(static_cast<size_t>(2 * 5 * len));
        for (float& v : xv) v = 2.f * nd(rng);
        const HostTensor x = host_of(Tensor::from_vector<float>({2, 5, len}, xv));
        auto got = testing::run_engine(**engine, x);
        auto want = testing::run_engine(**reference, x);
        ASSERT_TRUE(got.ok() && want.ok()) << tag;
        double diff = 0, mag = 0;
        for (int64_t i = 0; i < want->numel(); ++i) {
          const double a = got->data<float>()[i], b = want->data<float>()[i];
          diff = std::max(diff, std::isnan(a) != std::isnan(b) ? INFINITY : std::fabs(a - b));
          mag = std::max(mag, std::fabs(b));
        }
        EXPECT_LE(mag > 0 ? diff / mag : diff, k.tol) << tag;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
