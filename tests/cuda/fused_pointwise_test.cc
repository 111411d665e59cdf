// kiln.Pointwise on the GPU: an ONNX model whose whole graph is one elementwise chain (bias add,
// erf, sigmoid, compare/where, broadcasts) is fused by the builder into one NVRTC-generated
// kernel; its outputs are compared with the CPU engine of the unfused graph. Skipped (reported
// as skipped) without a usable GPU.
// Tolerances (max |diff| / max |reference|): float32 1e-5 (CUDA's erff/expf against the CPU's
// within a few ulp); --fp16 / --bf16 builds 1e-2 / 4e-2 (inputs rounded, and every
// intermediate rounded like the unfused reduced-precision graph).
#include <gtest/gtest.h>

#include "backend/cuda_backend.h"
#include "support/gpu_test_util.h"
#include "support/matmul_model.h"

namespace kiln {
namespace {

using testing::float_of;
using testing::host_of;
using testing::weight_pb;

// y = Where(x > 0, erf((x + b) * 0.5) * sigmoid(x + b) + x, -(x + b) / 3), x [2, S, 64].
std::string chain_model(int64_t s) {
  namespace ot = onnx::testing;
  ot::GraphPb g;
  g.name = "pointwise_chain";
  g.initializers.push_back(weight_pb("b", {64}, DType::kFloat32, 3));
  g.initializers.push_back(weight_pb("half", {}, DType::kFloat32, 4));
  g.initializers.push_back(weight_pb("three", {1}, DType::kFloat32, 5));
  g.initializers.push_back(weight_pb("zero", {}, DType::kFloat32, 6));
  g.nodes.push_back(ot::node("Add", {"x", "b"}, {"a"}, "add"));
  g.nodes.push_back(ot::node("Mul", {"a", "half"}, {"m"}, "mul"));
  g.nodes.push_back(ot::node("Erf", {"m"}, {"e"}, "erf"));
  g.nodes.push_back(ot::node("Sigmoid", {"a"}, {"sg"}, "sig"));
  g.nodes.push_back(ot::node("Mul", {"e", "sg"}, {"es"}, "mul2"));
  g.nodes.push_back(ot::node("Add", {"es", "x"}, {"r"}, "res"));
  g.nodes.push_back(ot::node("Neg", {"a"}, {"na"}, "neg"));
  g.nodes.push_back(ot::node("Div", {"na", "three"}, {"d"}, "div"));
  g.nodes.push_back(ot::node("Greater", {"x", "zero"}, {"gt"}, "gt"));
  g.nodes.push_back(ot::node("Where", {"gt", "r", "d"}, {"y"}, "where"));
  const int32_t f32 = static_cast<int32_t>(DType::kFloat32);
  g.inputs.push_back(ot::value_info("x", f32, {2, s, 64}));
  g.outputs.push_back(ot::value_info("y", f32, {2, s, 64}));
  return ot::model(g.bytes(), {ot::opset("", 20)});
}

double compare(const std::string& path, const BuilderConfig& c, int64_t s, int* nodes) {
  BuildReport report;
  auto bytes = build_engine(path, c, &report);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return INFINITY;
  *nodes = report.nodes;
  // The reference is the CPU engine built with the same precision (its unfused-equivalent
  // interpreter rounds after every op as the GPU kernel does): against an FP32 reference the
  // Greater(x, t) branch flips wherever rounding x to 16 bits crosses t, which measures the
  // precision, not the kernel.
  BuilderConfig cpu = c;
  cpu.device = Device::kCpu;
  auto ref_bytes = build_engine(path, cpu, nullptr);
  EXPECT_TRUE(ref_bytes.ok()) << ref_bytes.status().to_string();
  if (!ref_bytes.ok()) return INFINITY;
  auto engine = Engine::deserialize(*bytes);
  auto reference = Engine::deserialize(*ref_bytes);
  EXPECT_TRUE(engine.ok() && reference.ok());
  if (!engine.ok() || !reference.ok()) return INFINITY;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::vector<float> xv(static_cast<size_t>(2 * s * 64));
  for (float& v : xv) v = nd(rng);
  const HostTensor x = host_of(Tensor::from_vector<float>({2, s, 64}, xv));
  auto got = testing::run_engine(**engine, x);
  auto want = testing::run_engine(**reference, x);
  EXPECT_TRUE(got.ok() && want.ok());
  if (!got.ok() || !want.ok()) return INFINITY;
  double diff = 0, mag = 0;
  for (int64_t i = 0; i < want->numel(); ++i) {
    const double a = got->data<float>()[i], b = want->data<float>()[i];
    diff = std::max(diff, std::isnan(a) != std::isnan(b) ? INFINITY : std::fabs(a - b));
    mag = std::max(mag, std::fabs(b));
  }
  return mag > 0 ? diff / mag : diff;
}

TEST(CudaFusedPointwise, MatchesTheUnfusedCpuEngine) {
  REQUIRE_GPU();
  struct Case {
    const char* name;
    bool fp16, bf16;
    double tol;
  };
  for (const Case& k : {Case{"fp32", false, false, 1e-5}, Case{"fp16", true, false, 1e-2},
                        Case{"bf16", false, true, 4e-2}}) {
    for (int64_t s : {int64_t{1}, int64_t{37}, int64_t{512}}) {
      const std::string path = ::testing::TempDir() + "/pointwise_" + k.name + "_" +
                               std::to_string(s) + "_" + std::to_string(getpid()) + ".onnx";
      {
        std::ofstream f(path, std::ios::binary);
        const std::string bytes = chain_model(s);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      }
      BuilderConfig c;
      c.device = Device::kCuda;
      c.strict = true;
      c.fp16 = k.fp16;
      c.bf16 = k.bf16;
      int nodes = 0;
      const double err = compare(path, c, s, &nodes);
      std::remove(path.c_str());
      EXPECT_LE(err, k.tol) << k.name << " S=" << s;
      // One Pointwise (plus the Casts at the graph's edges under --fp16/--bf16).
      EXPECT_LE(nodes, (k.fp16 || k.bf16) ? 3 : 1) << k.name << " S=" << s;
    }
  }
}

}  // namespace
}  // namespace kiln
