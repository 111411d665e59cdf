// Convolutions through cuDNN's graph API (src/backends/cuda/conv_graph.cc): small one-Conv ONNX
// models (optional bias, residual Add, Relu; 1-D, 2-D and 3-D; strides, dilations, groups)
// built into CUDA engines and compared with a CPU engine built without optimizations.
// float16 engines at opt level 1 run channels-last kiln.FusedConv (fusions, then the layout
// pass) through the tuner; at opt level 0 plain NCHW Conv. float32 with TF32 runs NCHW.
// Tolerances, relative to the output's largest magnitude: float16 and TF32 1e-2 (operands
// rounded to 11 bits, sums of up to 432 products), bfloat16 5e-2 (3 bits fewer). The graph
// path's run counter must move for the float16/TF32 cases and stay put for float32 without TF32
// (the legacy path keeps exact float32). Also: two threads running one engine, each on its own
// context. Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

#ifdef KILN_HAVE_CUDA
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/nn_internal.h"
#endif

namespace kiln {
namespace {

using testing::randf;
using testing::rel_error;

namespace ot = onnx::testing;

struct ConvCase {
  std::string name;
  int spatial = 2;  // 1..3
  int64_t n = 2, c = 16, m = 16, size = 12, k = 3, stride = 1, dilation = 1, group = 1;
  bool bias = true, residual = false, relu = false;

  int64_t out_size() const {
    const int64_t pad = dilation * (k - 1) / 2;
    return (size + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
  }
  std::vector<int64_t> dims(int64_t channels, int64_t s) const {
    std::vector<int64_t> d = {n, channels};
    d.insert(d.end(), static_cast<size_t>(spatial), s);
    return d;
  }
};

int64_t numel(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

// x [N, C, s...] → Conv (symmetric "same" pads) [+ Add r] [+ Relu] → y.
std::string write_model(const ConvCase& s) {
  ot::GraphPb g;
  const std::vector<int64_t> xd = s.dims(s.c, s.size), yd = s.dims(s.m, s.out_size());
  g.inputs.push_back(ot::value_info("x", 1, std::vector<ot::Dim>(xd.begin(), xd.end())));
  std::vector<int64_t> wd = {s.m, s.c / s.group};
  wd.insert(wd.end(), static_cast<size_t>(s.spatial), s.k);
  g.initializers.push_back(
      ot::TensorPb("W", 1, wd).floats(randf(numel(wd), 1, -0.3f, 0.3f)).bytes());
  std::vector<std::string> conv_in = {"x", "W"};
  if (s.bias) {
    conv_in.push_back("B");
    g.initializers.push_back(ot::TensorPb("B", 1, {s.m}).floats(randf(s.m, 2)).bytes());
  }
  const int64_t pad = s.dilation * (s.k - 1) / 2;
  const size_t sp = static_cast<size_t>(s.spatial);
  g.nodes.push_back(ot::node(
      "Conv", conv_in, {"conv"}, "conv",
      {ot::attr_int("group", s.group), ot::attr_ints("pads", std::vector<int64_t>(2 * sp, pad)),
       ot::attr_ints("strides", std::vector<int64_t>(sp, s.stride)),
       ot::attr_ints("dilations", std::vector<int64_t>(sp, s.dilation))}));
  std::string cur = "conv";
  if (s.residual) {
    g.inputs.push_back(ot::value_info("r", 1, std::vector<ot::Dim>(yd.begin(), yd.end())));
    g.nodes.push_back(ot::node("Add", {cur, "r"}, {"sum"}, "add"));
    cur = "sum";
  }
  if (s.relu) {
    g.nodes.push_back(ot::node("Relu", {cur}, {"act"}, "relu"));
    cur = "act";
  }
  g.nodes.push_back(ot::node("Identity", {cur}, {"y"}, "out"));
  g.outputs.push_back(ot::value_info("y", 1, std::vector<ot::Dim>(yd.begin(), yd.end())));
  const std::string bytes = ot::model(g.bytes(), {ot::opset("", 17)});
  const std::string path = ::testing::TempDir() + "kiln_conv_graph_" + s.name + ".onnx";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::shared_ptr<Engine> build(const std::string& path, const BuilderConfig& c) {
  auto bytes = build_engine(path, c);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return nullptr;
  auto e = Engine::deserialize(*bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

std::vector<std::pair<std::string, HostTensor>> inputs(const ConvCase& s) {
  std::vector<std::pair<std::string, HostTensor>> in;
  HostTensor x = HostTensor::zeros(DType::kFloat32, s.dims(s.c, s.size));
  const std::vector<float> xv = randf(x.numel(), 77);
  std::copy(xv.begin(), xv.end(), x.as<float>());
  in.emplace_back("x", std::move(x));
  if (s.residual) {
    HostTensor r = HostTensor::zeros(DType::kFloat32, s.dims(s.m, s.out_size()));
    const std::vector<float> rv = randf(r.numel(), 78);
    std::copy(rv.begin(), rv.end(), r.as<float>());
    in.emplace_back("r", std::move(r));
  }
  return in;
}

HostTensor run(ExecutionContext& ctx, const std::vector<std::pair<std::string, HostTensor>>& in) {
  for (const auto& [name, t] : in) {
    Status st = ctx.set_input(name, t);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  Status st = ctx.execute();
  EXPECT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = ctx.output("y");
  return y ? *y : HostTensor{};
}

HostTensor run(Engine& e, const std::vector<std::pair<std::string, HostTensor>>& in) {
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  return ctx.ok() ? run(**ctx, in) : HostTensor{};
}

enum class Precision { kFp16, kBf16, kTf32, kFp32 };

BuilderConfig gpu_config(Precision p, int opt_level) {
  BuilderConfig c;
  c.device = Device::kCuda;
  c.fp16 = p == Precision::kFp16;
  c.bf16 = p == Precision::kBf16;
  c.tf32 = p == Precision::kTf32;
  c.opt_level = opt_level;
  c.strict = true;  // every node on the GPU
  return c;
}

// How many convolutions ran through the graph path and the legacy path.
struct Runs {
  uint64_t graph = 0, legacy = 0, fused = 0, unfused = 0;
};

Runs counts() {
#ifdef KILN_HAVE_CUDA
  const cuda::ConvFusionCounts c = cuda::conv_fusion_counts();
  return {c.graph, c.legacy, c.fused, c.unfused};
#else
  return {};
#endif
}

// Builds the GPU engine, runs it and the unoptimized CPU engine on the same inputs, compares;
// returns the GPU run's counter deltas (the engine build's own runs not included).
Runs check(const ConvCase& s, Precision p, int opt_level) {
  const char* names[] = {"fp16", "bf16", "tf32", "fp32"};
  const std::string label =
      s.name + " " + names[static_cast<int>(p)] + " O" + std::to_string(opt_level);
  SCOPED_TRACE(label);
  const std::string path = write_model(s);
  auto gpu = build(path, gpu_config(p, opt_level));
  BuilderConfig cc;
  cc.device = Device::kCpu;
  cc.opt_level = 0;
  auto cpu = build(path, cc);
  if (!gpu || !cpu) return {};
  const auto in = inputs(s);
  const Runs r0 = counts();
  HostTensor yg = run(*gpu, in);
  const Runs r1 = counts();
  HostTensor yc = run(*cpu, in);
  EXPECT_EQ(yg.shape, yc.shape);
  const double tol = p == Precision::kBf16 ? 5e-2 : p == Precision::kFp32 ? 1e-5 : 1e-2;
  EXPECT_LT(rel_error(yg, yc), tol);
  Runs d{r1.graph - r0.graph, r1.legacy - r0.legacy, r1.fused - r0.fused, r1.unfused - r0.unfused};
  std::string why;
#ifdef KILN_HAVE_CUDA
  if (d.graph == 0) why = " (graph path refused: " + cuda::conv_graph_last_refusal() + ")";
#endif
  std::printf("[ %s ] graph %llu, legacy %llu; epilogue in cuDNN %llu, in our kernel %llu%s\n",
              label.c_str(), static_cast<unsigned long long>(d.graph),
              static_cast<unsigned long long>(d.legacy), static_cast<unsigned long long>(d.fused),
              static_cast<unsigned long long>(d.unfused), why.c_str());
  if (opt_level > 0 && p != Precision::kFp32 && d.graph > 0) {
    // The tuner offered graph-API tactics: the chosen one is in the engine's steps.
    const std::string info = gpu->describe_json();
    EXPECT_NE(info.find("cudnn graph engine"), std::string::npos);
  }
  return d;
}

TEST(CudaConvGraph, Float16ChannelsLastWithEpilogue) {
  REQUIRE_GPU();
  std::vector<ConvCase> cases;
  ConvCase block{"block"};  // 3x3, bias + residual + relu
  block.residual = block.relu = true;
  cases.push_back(block);
  ConvCase pointwise{"pointwise_relu"};
  pointwise.k = 1;
  pointwise.m = 32;
  pointwise.relu = true;
  cases.push_back(pointwise);
  ConvCase stem{"stem_7x7_s2_c3"};  // C = 3, padded to 8 by the layout pass
  stem.c = 3;
  stem.k = 7;
  stem.stride = 2;
  stem.size = 32;
  stem.relu = true;
  cases.push_back(stem);
  ConvCase strided{"strided_bias_only"};
  strided.stride = 2;
  strided.m = 24;
  cases.push_back(strided);
  ConvCase dilated{"dilated_residual"};
  dilated.dilation = 2;
  dilated.residual = true;
  cases.push_back(dilated);
  for (const ConvCase& s : cases) {
    const Runs d = check(s, Precision::kFp16, 1);
    EXPECT_GE(d.graph, 1u) << s.name << ": the graph path did not run";
    EXPECT_EQ(d.legacy, 0u) << s.name;
  }
}

TEST(CudaConvGraph, Float16GroupedTakenOrRefusedCorrectly) {
  REQUIRE_GPU();
  ConvCase grouped{"grouped"};
  grouped.group = 4;
  grouped.relu = true;
  check(grouped, Precision::kFp16, 1);
  ConvCase depthwise{"depthwise"};
  depthwise.group = 16;
  depthwise.residual = true;
  check(depthwise, Precision::kFp16, 1);
  depthwise.name = "depthwise_nchw";
  check(depthwise, Precision::kFp16, 0);
}

TEST(CudaConvGraph, Float16Nchw) {
  REQUIRE_GPU();
  // Opt level 0: plain Conv + bias, no layout pass; 1-D and 3-D; 1-D with its epilogue fused
  // (the layout pass converts 2-D convolutions only).
  ConvCase c3{"nchw_c3_7x7_s2"};
  c3.c = 3;
  c3.k = 7;
  c3.stride = 2;
  c3.size = 20;
  ConvCase one_d{"nchw_1d"};
  one_d.spatial = 1;
  one_d.size = 40;
  ConvCase three_d{"nchw_3d"};
  three_d.spatial = 3;
  three_d.size = 6;
  three_d.c = three_d.m = 8;
  for (const ConvCase& s : {c3, one_d, three_d}) {
    const Runs d = check(s, Precision::kFp16, 0);
    if (s.spatial != 3) {
      EXPECT_GE(d.graph, 1u) << s.name << ": the graph path did not run";
    }
  }
  ConvCase fused_1d = one_d;
  fused_1d.name = "nchw_1d_residual_relu";
  fused_1d.residual = fused_1d.relu = true;
  EXPECT_GE(check(fused_1d, Precision::kFp16, 1).graph, 1u);
}

TEST(CudaConvGraph, BFloat16ChannelsLast) {
  REQUIRE_GPU();
  ConvCase block{"bf16_block"};
  block.residual = block.relu = true;
  EXPECT_GE(check(block, Precision::kBf16, 1).graph, 1u);
}

TEST(CudaConvGraph, Tf32) {
  REQUIRE_GPU();
  ConvCase plain{"tf32_plain"};
  EXPECT_GE(check(plain, Precision::kTf32, 0).graph, 1u);
  ConvCase block{"tf32_block"};
  block.residual = block.relu = true;
  EXPECT_GE(check(block, Precision::kTf32, 1).graph, 1u);
}

TEST(CudaConvGraph, Float32WithoutTf32StaysOnTheLegacyPath) {
  REQUIRE_GPU();
  ConvCase block{"fp32_block"};
  block.residual = block.relu = true;
  const Runs d = check(block, Precision::kFp32, 1);
  EXPECT_EQ(d.graph, 0u);
  EXPECT_GE(d.legacy, 1u);
}

TEST(CudaConvGraph, TwoThreadsRunOneEngine) {
  REQUIRE_GPU();
  // Each context has its own cuDNN handle and so its own plans; the engine's tactic and the
  // deterministic engines make every run bit-identical to a single-threaded one.
  ConvCase block{"threads_block"};
  block.residual = block.relu = true;
  block.n = 4;
  const std::string path = write_model(block);
  auto gpu = build(path, gpu_config(Precision::kFp16, 1));
  ASSERT_TRUE(gpu);
  const auto in = inputs(block);
  const HostTensor ref = run(*gpu, in);
  ASSERT_GT(ref.numel(), 0);
  const Runs r0 = counts();
  constexpr int kThreads = 2, kIterations = 20;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto ctx = gpu->create_context();
      if (!ctx.ok()) {
        mismatches[static_cast<size_t>(t)] = kIterations;
        return;
      }
      for (int i = 0; i < kIterations; ++i) {
        const HostTensor y = run(**ctx, in);
        if (y.data != ref.data) {
          ++mismatches[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << t;
  EXPECT_GE(counts().graph - r0.graph, 1u);
}

}  // namespace
}  // namespace kiln
