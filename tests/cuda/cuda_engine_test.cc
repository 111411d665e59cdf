// CUDA engines on the bundled example: outputs match the CPU engine, the arena plan is reused,
// CUDA graphs replay, profiles bound the shapes, contexts on threads agree. Skipped (reported as
// skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kiln {
namespace {

using testing::rel_error;

std::string model_path(const char* name) {
  return std::string(KILN_SOURCE_DIR) + "/models/" + name;
}

HostTensor random_input(std::vector<int64_t> shape, uint32_t seed) {
  HostTensor x = HostTensor::zeros(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
  return x;
}

std::shared_ptr<Engine> build(const char* model, BuilderConfig c, BuildReport* r = nullptr) {
  auto bytes = build_engine(model_path(model), c, r);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return nullptr;
  auto e = Engine::deserialize(*bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

HostTensor run(ExecutionContext& ctx, const HostTensor& x) {
  Status st = ctx.set_input("x", x);
  EXPECT_TRUE(st.ok()) << st.to_string();
  st = ctx.execute();
  EXPECT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = ctx.output("y");
  return y ? *y : HostTensor{};
}

double max_abs_diff(const HostTensor& a, const HostTensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  double d = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a.as<float>()[i] - b.as<float>()[i])));
  }
  return d;
}

TEST(CudaEngine, ExampleMatchesTheCpuEngine) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  c.tf32 = false;  // FP32 math to compare at 1e-5
  c.strict = true;
  BuildReport report;
  auto gpu = build("example_if.onnx", c, &report);
  ASSERT_TRUE(gpu);
  EXPECT_EQ(report.nodes_on_device, report.nodes);
  auto cpu = Engine::from_onnx(model_path("example_if.onnx"));
  ASSERT_TRUE(cpu.ok());
  auto gctx = gpu->create_context();
  ASSERT_TRUE(gctx.ok()) << gctx.status().to_string();
  auto cctx = (*cpu)->create_context();
  ASSERT_TRUE(cctx.ok());
  for (uint32_t seed : {1u, 2u}) {
    HostTensor x = random_input({2, 3, 32, 32}, seed);
    HostTensor yg = run(**gctx, x), yc = run(**cctx, x);
    ASSERT_EQ(yg.shape, yc.shape);
    EXPECT_LT(rel_error(yg, yc), 1e-5);
  }
  // The zeros input takes the If's other branch.
  HostTensor z = HostTensor::zeros(DType::kFloat32, {1, 3, 32, 32});
  HostTensor yg = run(**gctx, z), yc = run(**cctx, z);
  EXPECT_LT(rel_error(yg, yc), 1e-5);
}

TEST(CudaEngine, TracedExampleReplaysInCudaGraphs) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  c.tf32 = false;
  auto gpu = build("example_traced.onnx", c);
  ASSERT_TRUE(gpu);
  auto ctx = gpu->create_context();
  ASSERT_TRUE(ctx.ok());
  HostTensor x = random_input({4, 3, 32, 32}, 5);
  HostTensor first = run(**ctx, x);
  (*ctx)->set_cuda_graph(true);
  HostTensor second = run(**ctx, x);  // runs in the planned arena
  HostTensor third = run(**ctx, x);   // captured
  HostTensor fourth = run(**ctx, x);  // replayed
  EXPECT_NE((*ctx)->run_notes().find("replayed"), std::string::npos) << (*ctx)->run_notes();
  EXPECT_EQ(first.data, second.data);
  EXPECT_EQ(first.data, third.data);
  EXPECT_EQ(first.data, fourth.data);
  // A new input at the same shape replays the same graph with the new data.
  HostTensor x2 = random_input({4, 3, 32, 32}, 6);
  (*ctx)->set_cuda_graph(false);
  HostTensor plain = run(**ctx, x2);
  (*ctx)->set_cuda_graph(true);
  HostTensor replayed = run(**ctx, x2);
  EXPECT_EQ(plain.data, replayed.data);
}

// Profiling times every layer alone: GPU layers by events with the stream held while the layer is
// enqueued (their time excludes the host's launch cost, which is reported apart), the If (which
// reads its condition on the host) by the host clock; outputs are those of an unprofiled run.
TEST(CudaEngine, ProfiledRunTimesEachLayerOnTheGpu) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  c.tf32 = false;
  auto gpu = build("example_if.onnx", c);
  ASSERT_TRUE(gpu);
  auto ctx = gpu->create_context();
  ASSERT_TRUE(ctx.ok());
  HostTensor x = random_input({2, 3, 32, 32}, 9);
  HostTensor plain = run(**ctx, x);
  EXPECT_TRUE((*ctx)->layer_times().empty());
  (*ctx)->set_profiling(true);
  HostTensor profiled = run(**ctx, x);
  EXPECT_EQ(plain.data, profiled.data);
  const std::vector<LayerTime> times = (*ctx)->layer_times();
  ASSERT_FALSE(times.empty());
  int event_timed = 0, host_timed = 0;
  for (const LayerTime& t : times) {
    EXPECT_FALSE(t.name.empty());
    EXPECT_GE(t.ms, 0.0) << t.name;
    EXPECT_GE(t.host_ms, 0.0) << t.name;
    if (t.gpu_timed) {
      EXPECT_EQ(t.device, "cuda") << t.name;
      ++event_timed;
    } else {
      ++host_timed;
    }
    if (t.op == "If") EXPECT_FALSE(t.gpu_timed) << "the If waits on the host";
  }
  EXPECT_GT(event_timed, 0);
  EXPECT_GT(host_timed, 0);  // the If
  (*ctx)->set_profiling(false);
  HostTensor after = run(**ctx, x);
  EXPECT_EQ(plain.data, after.data);
}

TEST(CudaEngine, ProfilesAndContextsOnThreads) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  OptimizationProfile p;
  p.inputs["x"] = ShapeRange{{1, 3, 32, 32}, {4, 3, 32, 32}, {8, 3, 32, 32}};
  c.profiles.push_back(p);
  BuildReport report;
  auto gpu = build("example_traced.onnx", c, &report);
  ASSERT_TRUE(gpu);
  EXPECT_GT(report.peak_activation_bytes, 0u);
  auto ctx = gpu->create_context();
  ASSERT_TRUE(ctx.ok());
  Status st = (*ctx)->set_input("x", random_input({9, 3, 32, 32}, 1));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("dimension 0 is 9, allowed [1, 8]"), std::string::npos)
      << st.message();

  std::vector<HostTensor> xs, expected;
  for (uint32_t i = 0; i < 4; ++i) {
    xs.push_back(random_input({1 + 2 * i, 3, 32, 32}, 40 + i));
    expected.push_back(run(**ctx, xs.back()));
  }
  // Each thread notes what went wrong (error or which run differed, and by how much).
  std::vector<std::string> bad(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string& note = bad[static_cast<size_t>(t)];
      auto c2 = gpu->create_context();
      if (!c2.ok()) {
        note = c2.status().to_string();
        return;
      }
      (*c2)->set_cuda_graph(t % 2 == 1);
      for (int rep = 0; rep < 4; ++rep) {
        for (size_t k = 0; k < xs.size(); ++k) {
          size_t idx = (k + static_cast<size_t>(t)) % xs.size();
          Status s = (*c2)->set_input("x", xs[idx]);
          if (s.ok()) s = (*c2)->execute();
          if (!s.ok()) {
            note += "rep " + std::to_string(rep) + " input " + std::to_string(idx) + ": " +
                    s.to_string() + "\n";
            continue;
          }
          const HostTensor* y = (*c2)->output("y");
          if (y == nullptr) {
            note += "no output y\n";
          } else if (y->data != expected[idx].data) {
            note += "rep " + std::to_string(rep) + " input " + std::to_string(idx) +
                    ": differs, max |d| " + std::to_string(max_abs_diff(*y, expected[idx])) + "; " +
                    (*c2)->run_notes() + "\n";
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[static_cast<size_t>(t)], "") << "thread " << t;
}

TEST(CudaEngine, DeviceBindingsAndEnqueue) {
  REQUIRE_GPU();
  BuilderConfig c;
  c.device = Device::kCuda;
  auto gpu = build("example_traced.onnx", c);
  ASSERT_TRUE(gpu);
  auto ctx = gpu->create_context();
  ASSERT_TRUE(ctx.ok());
  HostTensor x = random_input({2, 3, 32, 32}, 9);
  HostTensor ref = run(**ctx, x);
#ifdef KILN_HAVE_CUDA
  // The same input through a device binding and an asynchronous enqueue on the context's stream.
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, x.data.size()), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d, x.data.data(), x.data.size(), cudaMemcpyHostToDevice), cudaSuccess);
  auto ctx2 = gpu->create_context();
  ASSERT_TRUE(ctx2.ok());
  ASSERT_TRUE((*ctx2)->set_input_device("x", DeviceTensorView{d, DType::kFloat32, x.shape}).ok());
  Status st = (*ctx2)->enqueue(nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto y = (*ctx2)->device_output("y");
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->shape, ref.shape);
  std::vector<std::byte> host(ref.data.size());
  auto stream = static_cast<cudaStream_t>((*ctx2)->stream());
  ASSERT_EQ(cudaMemcpyAsync(host.data(), y->data, host.size(), cudaMemcpyDeviceToHost, stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(host, ref.data);
  EXPECT_FALSE((*ctx2)->device_output("nope").ok());
  cudaFree(d);
#endif
}

#ifdef KILN_HAVE_CUDA
// Device memory for outputs, from cudaMalloc, recording its calls.
class DeviceAllocator : public OutputAllocator {
 public:
  ~DeviceAllocator() override {
    for (void* p : blocks) cudaFree(p);
  }
  void* reallocate_output(const std::string& name, void* current, uint64_t bytes,
                          uint64_t) override {
    calls.push_back(name + ":" + std::to_string(bytes));
    if (current != nullptr && bytes <= capacity) return current;
    void* p = nullptr;
    if (cudaMalloc(&p, bytes > 0 ? bytes : 1) != cudaSuccess) return nullptr;
    blocks.push_back(p);
    capacity = bytes;
    return p;
  }
  void notify_shape(const std::string&, const std::vector<int64_t>& s) override { shape = s; }
  std::vector<std::string> calls;
  std::vector<int64_t> shape;
  std::vector<void*> blocks;
  uint64_t capacity = 0;
};
#endif

// NonZero's output shape is known only after the run: the allocator hears it and gets the data.
TEST(CudaEngine, OutputAllocatorGetsDataDependentOutputs) {
  REQUIRE_GPU();
#ifdef KILN_HAVE_CUDA
  // The node suite: where the build unpacked it, or KILN_NODE_DIR (on the device).
  const char* dir = std::getenv("KILN_NODE_DIR");
  const std::string model =
      (dir ? std::string(dir) : std::string(KILN_BINARY_DIR) + "/onnx-1.23.1/node") +
      "/test_nonzero_example/model.onnx";
  if (!std::ifstream(model).good()) GTEST_SKIP() << "no node suite at " << model;
  BuilderConfig c;
  c.device = Device::kCuda;
  c.strict = true;
  auto bytes = build_engine(model, c);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = (*e)->create_context();
  ASSERT_TRUE(ctx.ok());
  DeviceAllocator alloc;
  ASSERT_TRUE((*ctx)->set_output_allocator("result", &alloc).ok());
  HostTensor cond = HostTensor::zeros(DType::kBool, {2, 2});
  const uint8_t bits[4] = {1, 0, 1, 1};
  std::memcpy(cond.data.data(), bits, 4);
  ASSERT_TRUE((*ctx)->set_input("condition", cond).ok());
  Status st = (*ctx)->enqueue(nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(alloc.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(alloc.calls, (std::vector<std::string>{"result:48"}));
  int64_t got[6] = {};
  auto stream = static_cast<cudaStream_t>((*ctx)->stream());
  ASSERT_EQ(cudaMemcpyAsync(got, alloc.blocks.back(), 48, cudaMemcpyDeviceToHost, stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const int64_t want[6] = {0, 1, 1, 0, 0, 1};
  EXPECT_EQ(std::memcmp(got, want, sizeof(want)), 0);
#endif
}

}  // namespace
}  // namespace kiln
