// FusedConv on the GPU: small ONNX models (Conv [+ BatchNormalization] [+ residual Add] [+ Relu])
// built into CUDA engines (the fusion passes make FusedConv nodes) and compared with a CPU engine
// built without optimizations (the unfused graph); float32 without TF32 runs cuDNN's legacy API,
// float16 its graph API (src/backends/cuda/conv_graph.cc). Tolerances, relative to the output's
// largest magnitude: float32 without TF32 1e-5; float16 engines 1e-2 (inputs and weights rounded to
// 11 bits, sums of up to 72 products). Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

#ifdef KILN_HAVE_CUDA
#include "backends/cuda/nn_internal.h"
#endif

namespace kiln {
namespace {

using testing::randf;
using testing::rel_error;

namespace ot = onnx::testing;

struct ModelSpec {
  int64_t n = 2, c = 8, m = 8, h = 10, w = 9, k = 3, group = 1;
  bool bias = true;
  bool batch_norm = false;  // Conv → BatchNormalization (folded into the Conv)
  bool residual = true;     // Add(conv, x) (needs m == c)
  bool relu = true;
};

// Writes the model to a temporary file and returns its path.
std::string write_model(const ModelSpec& s, const std::string& name) {
  ot::GraphPb g;
  g.inputs.push_back(ot::value_info("x", 1, {s.n, s.c, s.h, s.w}));
  std::vector<std::string> conv_in = {"x", "W"};
  g.initializers.push_back(ot::TensorPb("W", 1, {s.m, s.c / s.group, s.k, s.k})
                               .floats(randf(s.m * (s.c / s.group) * s.k * s.k, 1, -0.3f, 0.3f))
                               .bytes());
  if (s.bias) {
    conv_in.push_back("B");
    g.initializers.push_back(ot::TensorPb("B", 1, {s.m}).floats(randf(s.m, 2)).bytes());
  }
  const int64_t pad = s.k / 2;
  g.nodes.push_back(
      ot::node("Conv", conv_in, {"conv"}, "conv",
               {ot::attr_int("group", s.group), ot::attr_ints("pads", {pad, pad, pad, pad})}));
  std::string cur = "conv";
  if (s.batch_norm) {
    const char* names[4] = {"bn_scale", "bn_bias", "bn_mean", "bn_var"};
    const float lo[4] = {0.5f, -1.f, -1.f, 0.2f}, hi[4] = {1.5f, 1.f, 1.f, 2.f};
    for (int i = 0; i < 4; ++i) {
      g.initializers.push_back(ot::TensorPb(names[i], 1, {s.m})
                                   .floats(randf(s.m, 10 + static_cast<uint32_t>(i), lo[i], hi[i]))
                                   .bytes());
    }
    g.nodes.push_back(ot::node("BatchNormalization",
                               {cur, "bn_scale", "bn_bias", "bn_mean", "bn_var"}, {"bn"}, "bn"));
    cur = "bn";
  }
  if (s.residual) {
    g.nodes.push_back(ot::node("Add", {cur, "x"}, {"sum"}, "add"));
    cur = "sum";
  }
  if (s.relu) {
    g.nodes.push_back(ot::node("Relu", {cur}, {"act"}, "relu"));
    cur = "act";
  }
  g.nodes.push_back(ot::node("Identity", {cur}, {"y"}, "out"));
  g.outputs.push_back(ot::value_info("y", 1, {s.n, s.m, s.h, s.w}));
  const std::string bytes = ot::model(g.bytes(), {ot::opset("", 17)});
  const std::string path = ::testing::TempDir() + "kiln_fused_conv_" + name + ".onnx";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::shared_ptr<Engine> build(const std::string& path, const BuilderConfig& c,
                              BuildReport* r = nullptr) {
  auto bytes = build_engine(path, c, r);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return nullptr;
  auto e = Engine::deserialize(*bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

HostTensor run(Engine& e, const HostTensor& x) {
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  if (!ctx.ok()) return {};
  Status st = (*ctx)->set_input("x", x);
  EXPECT_TRUE(st.ok()) << st.to_string();
  st = (*ctx)->execute();
  EXPECT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = (*ctx)->output("y");
  return y ? *y : HostTensor{};
}

// Builds the GPU engine (fp32 without TF32, or fp16), runs it and the unoptimized CPU engine on
// the same input, and compares.
void check(const ModelSpec& s, const std::string& name, bool fp16) {
  SCOPED_TRACE(name + (fp16 ? " fp16" : " fp32"));
  const std::string path = write_model(s, name);
  BuilderConfig gc;
  gc.device = Device::kCuda;
  gc.tf32 = false;
  gc.fp16 = fp16;
  gc.strict = true;  // every node on the GPU: FusedConv included
  BuildReport report;
  auto gpu = build(path, gc, &report);
  ASSERT_TRUE(gpu);
  EXPECT_EQ(report.nodes_on_device, report.nodes);
  BuilderConfig cc;
  cc.device = Device::kCpu;
  cc.opt_level = 0;  // the graph as written: Conv, BatchNormalization, Add, Relu
  auto cpu = build(path, cc);
  ASSERT_TRUE(cpu);
  HostTensor x = HostTensor::zeros(DType::kFloat32, {s.n, s.c, s.h, s.w});
  const std::vector<float> xv = randf(x.numel(), 77);
  std::copy(xv.begin(), xv.end(), x.as<float>());
#ifdef KILN_HAVE_CUDA
  const cuda::ConvFusionCounts c0 = cuda::conv_fusion_counts();
#endif
  HostTensor yg = run(*gpu, x), yc = run(*cpu, x);
  ASSERT_EQ(yg.shape, yc.shape);
  EXPECT_LT(rel_error(yg, yc), fp16 ? 1e-2 : 1e-5);
#ifdef KILN_HAVE_CUDA
  const cuda::ConvFusionCounts c1 = cuda::conv_fusion_counts();
  const uint64_t fused = c1.fused - c0.fused, unfused = c1.unfused - c0.unfused;
  const uint64_t graph = c1.graph - c0.graph;
  std::printf(
      "[ %s%s ] FusedConv runs: %llu with the epilogue in cuDNN, %llu as conv + epilogue "
      "kernel; %llu through cuDNN's graph API\n",
      name.c_str(), fp16 ? " fp16" : "", static_cast<unsigned long long>(fused),
      static_cast<unsigned long long>(unfused), static_cast<unsigned long long>(graph));
  EXPECT_GE(fused + unfused, 1u) << "no FusedConv ran: the fusion passes did not fire";
  if (fp16) {
    // float16 runs cuDNN's graph API (conv_graph_test checks its cases; grouped ones may be
    // refused); whether the epilogue is in the plan depends on the engines cuDNN has.
    if (s.group == 1) {
      EXPECT_GE(graph, 1u) << "the graph-API path did not run";
    }
  } else if (s.bias || s.batch_norm) {
    // float32 without TF32 runs the legacy API.
    if (s.relu) {
      EXPECT_GE(fused, 1u) << "cuDNN refused cudnnConvolutionBiasActivationForward (ReLU, "
                           << "float): the epilogue kernel ran instead";
    }
  } else {
    EXPECT_EQ(fused, 0u);  // without a bias: convolution + epilogue kernel
  }
#endif
}

TEST(CudaFusedConv, ConvRelu) {
  REQUIRE_GPU();
  ModelSpec s;
  s.residual = false;
  check(s, "conv_relu", false);
  check(s, "conv_relu", true);
}

TEST(CudaFusedConv, ConvAddRelu) {
  REQUIRE_GPU();
  ModelSpec s;
  check(s, "conv_add_relu", false);
  check(s, "conv_add_relu", true);
}

TEST(CudaFusedConv, ConvAddWithoutActivation) {
  REQUIRE_GPU();
  ModelSpec s;
  s.relu = false;  // identity activation: one cuDNN call only with IMPLICIT_PRECOMP_GEMM
  check(s, "conv_add", false);
  check(s, "conv_add", true);
}

TEST(CudaFusedConv, GroupedAndDepthwise) {
  REQUIRE_GPU();
  ModelSpec g;
  g.group = 4;
  check(g, "grouped", false);
  check(g, "grouped", true);
  ModelSpec d;
  d.group = 8;
  check(d, "depthwise", false);
  check(d, "depthwise", true);
}

TEST(CudaFusedConv, PointwiseWithFoldedBatchNorm) {
  REQUIRE_GPU();
  ModelSpec s;
  s.k = 1;
  s.bias = false;
  s.batch_norm = true;  // folded: the Conv gets a bias
  check(s, "pointwise_bn", false);
  check(s, "pointwise_bn", true);
}

TEST(CudaFusedConv, WithoutBiasUsesTheEpilogueKernel) {
  REQUIRE_GPU();
  ModelSpec s;
  s.bias = false;
  check(s, "no_bias", false);
  check(s, "no_bias", true);
}

}  // namespace
}  // namespace kiln
