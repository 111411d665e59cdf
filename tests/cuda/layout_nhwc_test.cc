// Channels-last convolutions on the GPU: a small ResNet-like model (Conv-BN-Relu, Conv-BN, Add,
// Relu, a 1x1 downsample branch, MaxPool or AveragePool, GlobalAveragePool, Flatten, Gemm)
// built into a float16 CUDA engine (fusions, lower_precision, then the layout pass) and compared
// with a CPU engine built without optimizations. Checks that the engine's graph holds
// channels-last FusedConvs and at most one Transpose, that every node runs on the GPU, and the
// outputs within 1e-2 of the largest output magnitude (float16 inputs, weights and
// intermediates; sums of up to 288 products; bfloat16 keeps 3 bits fewer: 5e-2). Odd input channel
// counts (3, 5) are padded to 8 by the pass (a Pad after the input's transpose). Batch 1 and 8,
// fixed and dynamic batch. Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "backend/builder.h"
#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "ops/fused_conv.h"
#include "ops/layout.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

namespace kiln {
namespace {

using testing::randf;
using testing::rel_error;

namespace ot = onnx::testing;

struct Spec {
  int64_t c = 3;      // input channels
  int64_t m = 16;     // block channels
  int64_t n = 1;      // batch (-1: dynamic "N")
  int64_t hw = 12;    // input height and width
  bool avg = false;   // AveragePool (ceil_mode, count_include_pad) instead of MaxPool
  uint32_t seed = 1;  // weights
};

std::string write_model(const Spec& s, const std::string& name) {
  ot::GraphPb g;
  const ot::Dim batch = s.n < 0 ? ot::Dim("N") : ot::Dim(s.n);
  g.inputs.push_back(ot::value_info("x", 1, {batch, s.c, s.hw, s.hw}));
  uint32_t seed = s.seed;
  auto init = [&](const std::string& nm, std::vector<int64_t> dims, float lo, float hi) {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    g.initializers.push_back(
        ot::TensorPb(nm, 1, dims).floats(randf(count, seed++, lo, hi)).bytes());
  };
  auto conv = [&](const std::string& in, const std::string& out, int64_t cin, int64_t cout,
                  int64_t k, bool bn) {
    init(out + "_w", {cout, cin, k, k}, -0.3f, 0.3f);
    init(out + "_b", {cout}, -0.5f, 0.5f);
    const int64_t p = k / 2;
    g.nodes.push_back(ot::node("Conv", {in, out + "_w", out + "_b"}, {bn ? out + "_c" : out}, out,
                               {ot::attr_ints("pads", {p, p, p, p})}));
    if (!bn) return;
    init(out + "_s", {cout}, 0.5f, 1.5f);
    init(out + "_t", {cout}, -0.5f, 0.5f);
    init(out + "_mu", {cout}, -0.5f, 0.5f);
    init(out + "_var", {cout}, 0.2f, 2.f);
    g.nodes.push_back(ot::node("BatchNormalization",
                               {out + "_c", out + "_s", out + "_t", out + "_mu", out + "_var"},
                               {out}, out + "_bn"));
  };
  conv("x", "c1", s.c, s.m, 3, true);
  g.nodes.push_back(ot::node("Relu", {"c1"}, {"r1"}, "relu1"));
  conv("r1", "c2", s.m, s.m, 3, true);
  g.nodes.push_back(ot::node("Relu", {"c2"}, {"r2"}, "relu2"));
  conv("r2", "c3", s.m, s.m, 3, true);
  conv("r1", "down", s.m, s.m, 1, false);  // the downsample-style 1x1 branch
  g.nodes.push_back(ot::node("Add", {"c3", "down"}, {"sum"}, "add"));
  g.nodes.push_back(ot::node("Relu", {"sum"}, {"r3"}, "relu3"));
  if (s.avg) {
    g.nodes.push_back(
        ot::node("AveragePool", {"r3"}, {"p"}, "pool",
                 {ot::attr_ints("kernel_shape", {3, 3}), ot::attr_ints("pads", {1, 1, 1, 1}),
                  ot::attr_ints("strides", {2, 2}), ot::attr_int("ceil_mode", 1),
                  ot::attr_int("count_include_pad", 1)}));
  } else {
    g.nodes.push_back(
        ot::node("MaxPool", {"r3"}, {"p"}, "pool",
                 {ot::attr_ints("kernel_shape", {3, 3}), ot::attr_ints("pads", {1, 1, 1, 1}),
                  ot::attr_ints("strides", {2, 2})}));
  }
  g.nodes.push_back(ot::node("GlobalAveragePool", {"p"}, {"gap"}, "gap"));
  g.nodes.push_back(ot::node("Flatten", {"gap"}, {"flat"}, "flatten"));
  init("fc_w", {10, s.m}, -0.5f, 0.5f);
  init("fc_b", {10}, -0.5f, 0.5f);
  g.nodes.push_back(
      ot::node("Gemm", {"flat", "fc_w", "fc_b"}, {"y"}, "fc", {ot::attr_int("transB", 1)}));
  g.outputs.push_back(ot::value_info("y", 1, {batch, 10}));
  const std::string bytes = ot::model(g.bytes(), {ot::opset("", 17)});
  const std::string path = ::testing::TempDir() + "kiln_layout_nhwc_" + name + ".onnx";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
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

std::shared_ptr<Engine> build(const std::string& path, const BuilderConfig& c) {
  auto bytes = build_engine(path, c);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return nullptr;
  auto e = Engine::deserialize(*bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

void check(const Spec& s, const std::string& name, const std::vector<int64_t>& batches,
           bool bf16 = false) {
  SCOPED_TRACE(name);
  const std::string path = write_model(s, name);
  BuilderConfig gc;
  gc.device = Device::kCuda;
  gc.fp16 = !bf16;
  gc.bf16 = bf16;
  gc.strict = true;  // every node on the GPU
  BuildReport report;
  auto data = backend::build_engine_data(path, gc, &report);
  ASSERT_TRUE(data.ok()) << data.status().to_string();
  EXPECT_EQ(report.nodes_on_device, report.nodes);
  int transposes = 0, nhwc_convs = 0, nchw_convs = 0;
  for (const auto& n : (*data)->model->graph->nodes()) {
    transposes += n->op_type == "Transpose";
    if (n->op_type == ops::kFusedConvOp || n->op_type == "Conv") {
      (n->attr_int(ops::kChannelsLastAttr, 0) == 1 ? nhwc_convs : nchw_convs)++;
    }
  }
  EXPECT_EQ(nhwc_convs, 4);
  EXPECT_EQ(nchw_convs, 0);
  EXPECT_LE(transposes, 1);
  auto gpu = build(path, gc);
  ASSERT_TRUE(gpu);
  BuilderConfig cc;
  cc.device = Device::kCpu;
  cc.opt_level = 0;  // the graph as written
  auto cpu = build(path, cc);
  ASSERT_TRUE(cpu);
  for (int64_t b : batches) {
    SCOPED_TRACE("batch " + std::to_string(b));
    HostTensor x = HostTensor::zeros(DType::kFloat32, {b, s.c, s.hw, s.hw});
    const std::vector<float> xv = randf(x.numel(), 77 + static_cast<uint32_t>(b));
    std::copy(xv.begin(), xv.end(), x.as<float>());
    HostTensor yg = run(*gpu, x), yc = run(*cpu, x);
    ASSERT_EQ(yg.shape, yc.shape);
    EXPECT_LT(rel_error(yg, yc), bf16 ? 5e-2 : 1e-2);
  }
}

TEST(CudaLayoutNhwc, ThreeInputChannelsBatch1) {
  REQUIRE_GPU();
  check(Spec{.c = 3, .n = 1}, "c3_b1", {1});
}

TEST(CudaLayoutNhwc, ThreeInputChannelsBatch8) {
  REQUIRE_GPU();
  check(Spec{.c = 3, .n = 8}, "c3_b8", {8});
}

TEST(CudaLayoutNhwc, OddChannelsAveragePool) {
  REQUIRE_GPU();
  check(Spec{.c = 5, .m = 24, .n = 8, .hw = 11, .avg = true, .seed = 5}, "c5_avg", {8});
}

TEST(CudaLayoutNhwc, Bfloat16) {
  REQUIRE_GPU();
  check(Spec{.c = 3, .n = 8, .seed = 13}, "bf16", {8}, true);
}

TEST(CudaLayoutNhwc, DynamicBatch) {
  REQUIRE_GPU();
  check(Spec{.c = 8, .m = 32, .n = -1, .seed = 9}, "dynamic", {1, 8});
}

}  // namespace
}  // namespace kiln
