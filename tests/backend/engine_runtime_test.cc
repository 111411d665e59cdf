// CPU engines end to end: build → serialize → load → run, profiles, refusals of engines for
// other targets and of damaged files, several contexts on several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "engine/engine_file.h"
#include "kiln/kiln.h"
#include "runtime/engine_data.h"
#include "runtime/engine_io.h"

namespace kiln {
namespace {

std::string model_path(const char* name) {
  return std::string(KILN_SOURCE_DIR) + "/models/" + name;
}

std::string temp_path(const std::string& name) {
  return std::string(KILN_BINARY_DIR) + "/engine_runtime_test_" + name;
}

HostTensor random_input(std::vector<int64_t> shape, uint32_t seed) {
  HostTensor x = HostTensor::zeros(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
  return x;
}

HostTensor run_once(const Engine& e, const HostTensor& x) {
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

BuilderConfig cpu_config() {
  BuilderConfig c;
  c.device = Device::kCpu;
  return c;
}

TEST(EngineRuntime, CpuEngineFileRoundTripGivesTheSameOutputs) {
  BuildReport report;
  auto bytes = build_engine(model_path("example_if.onnx"), cpu_config(), &report);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  EXPECT_GT(report.nodes, 0);
  EXPECT_EQ(report.nodes_on_device, report.nodes);  // a CPU engine runs everything on its device
  EXPECT_TRUE(report.fallbacks.empty());
  EXPECT_GT(report.weight_bytes, 0u);

  std::string path = temp_path("example.kiln");
  ASSERT_TRUE(build_engine_file(model_path("example_if.onnx"), path, cpu_config()).ok());
  auto loaded = Engine::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  auto direct = Engine::from_onnx(model_path("example_if.onnx"));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*loaded)->device(), Device::kCpu);
  ASSERT_EQ((*loaded)->inputs().size(), 1u);
  EXPECT_EQ((*loaded)->inputs()[0].name, "x");

  HostTensor x = random_input({2, 3, 32, 32}, 3);
  HostTensor a = run_once(**loaded, x), b = run_once(**direct, x);
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 3200}));
  ASSERT_EQ(a.data, b.data);  // bit-identical: same kernels, same weights

  // inspect's description names every layer with its kernel.
  std::string d = (*loaded)->describe_json();
  EXPECT_NE(d.find("\"kernel\": \"cpu:Conv\""), std::string::npos);
  EXPECT_NE(d.find("\"cpu_isa\""), std::string::npos);
  std::remove(path.c_str());
}

// A profiled CPU run times every layer by the host clock and changes no output.
TEST(EngineRuntime, ProfiledCpuRunTimesEveryLayer) {
  auto bytes = build_engine(model_path("example_if.onnx"), cpu_config());
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = (*e)->create_context();
  ASSERT_TRUE(ctx.ok());
  HostTensor x = random_input({2, 3, 32, 32}, 3);
  ASSERT_TRUE((*ctx)->set_input("x", x).ok());
  (*ctx)->set_profiling(true);
  ASSERT_TRUE((*ctx)->execute().ok());
  const std::vector<LayerTime> times = (*ctx)->layer_times();
  ASSERT_FALSE(times.empty());
  for (const LayerTime& t : times) {
    EXPECT_FALSE(t.name.empty());
    EXPECT_EQ(t.device, "cpu");
    EXPECT_FALSE(t.gpu_timed);
    EXPECT_GE(t.ms, 0.0);
    EXPECT_EQ(t.ms, t.host_ms);
  }
  const HostTensor* y = (*ctx)->output("y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->data, run_once(**e, x).data);
}

TEST(EngineRuntime, ProfilesBoundTheShapes) {
  BuilderConfig c = cpu_config();
  OptimizationProfile p;
  p.inputs["x"] = ShapeRange{{1, 3, 32, 32}, {2, 3, 32, 32}, {4, 3, 32, 32}};
  c.profiles.push_back(p);
  auto bytes = build_engine(model_path("example_if.onnx"), c);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_EQ((*e)->profiles().size(), 1u);
  EXPECT_EQ((*e)->profiles()[0].inputs.at("x").max, (std::vector<int64_t>{4, 3, 32, 32}));

  auto ctx = (*e)->create_context();
  ASSERT_TRUE(ctx.ok());
  EXPECT_TRUE((*ctx)->set_input("x", random_input({4, 3, 32, 32}, 1)).ok());
  EXPECT_TRUE((*ctx)->execute().ok());
  Status st = (*ctx)->set_input("x", random_input({8, 3, 32, 32}, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupportedDynamicShape);
  EXPECT_NE(st.message().find("input 'x'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("dimension 0 is 8, allowed [1, 4]"), std::string::npos)
      << st.message();
}

TEST(EngineRuntime, BadProfilesAreRefusedAtBuild) {
  auto build_with = [](ShapeRange r, const char* name = "x") {
    BuilderConfig c = cpu_config();
    OptimizationProfile p;
    p.inputs[name] = std::move(r);
    c.profiles.push_back(p);
    return build_engine(model_path("example_if.onnx"), c).status();
  };
  Status st = build_with({{1, 3, 32, 32}, {1, 3, 32, 32}, {1, 3, 32, 32}}, "nope");
  EXPECT_NE(st.message().find("no input named 'nope'"), std::string::npos) << st.message();
  st = build_with({{4, 3, 32, 32}, {2, 3, 32, 32}, {8, 3, 32, 32}});
  EXPECT_NE(st.message().find("min <= opt <= max"), std::string::npos) << st.message();
  st = build_with({{1, 3, 16, 32}, {1, 3, 32, 32}, {1, 3, 32, 32}});
  EXPECT_NE(st.message().find("fixed at 32"), std::string::npos) << st.message();
  st = build_with({{1, 3}, {1, 3}, {1, 3}});
  EXPECT_NE(st.message().find("rank 4"), std::string::npos) << st.message();
}

TEST(EngineRuntime, Fp16EngineStaysCloseToFp32) {
  for (bool bf16 : {false, true}) {
    BuilderConfig c = cpu_config();
    (bf16 ? c.bf16 : c.fp16) = true;
    BuildReport report;
    auto bytes = build_engine(model_path("example_traced.onnx"), c, &report);
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    auto e16 = Engine::deserialize(*bytes);
    ASSERT_TRUE(e16.ok()) << e16.status().to_string();
    // The engine's layers compute in the reduced type; its input and output stay float32.
    std::string d = (*e16)->describe_json();
    EXPECT_NE(d.find(bf16 ? "\"precision\": \"bfloat16\"" : "\"precision\": \"float16\""),
              std::string::npos);
    EXPECT_EQ((*e16)->inputs()[0].dtype, DType::kFloat32);
    EXPECT_EQ((*e16)->outputs()[0].dtype, DType::kFloat32);
    auto e32 = Engine::from_onnx(model_path("example_traced.onnx"));
    ASSERT_TRUE(e32.ok());
    HostTensor x = random_input({2, 3, 32, 32}, 21);
    HostTensor y16 = run_once(**e16, x), y32 = run_once(**e32, x);
    ASSERT_EQ(y16.shape, y32.shape);
    double num = 0, den = 0;
    for (int64_t i = 0; i < y32.numel(); ++i) {
      double a = y16.as<float>()[i], b = y32.as<float>()[i];
      num += (a - b) * (a - b);
      den += b * b;
    }
    double rel_l2 = std::sqrt(num / den);
    // Half precision keeps ~3 decimal digits, bfloat16 ~2: the relative L2 error of a few
    // layers stays within 1e-2 (fp16) and 5e-2 (bf16).
    EXPECT_LT(rel_l2, bf16 ? 5e-2 : 1e-2) << (bf16 ? "bf16" : "fp16");
    EXPECT_GT(rel_l2, 0.0);  // it did compute in reduced precision
  }
}

TEST(EngineRuntime, ShapeListsParseAsTrtexecWritesThem) {
  auto s = parse_shape_list("input:1x3x224x224,mask:1x128");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->at("input"), (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(s->at("mask"), (std::vector<int64_t>{1, 128}));
  s = parse_shape_list("'in:put':2x3");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->at("in:put"), (std::vector<int64_t>{2, 3}));
  s = parse_shape_list("ns/x:1x2");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at("ns/x"), (std::vector<int64_t>{1, 2}));
  for (const char* bad : {"", "x", "x:1xx2", "x:-1", "x:1,x:2", ":1", "'x:1"}) {
    EXPECT_FALSE(parse_shape_list(bad).ok()) << bad;
  }
}

// Writes an engine for `target` from the example (the file is otherwise valid).
std::vector<uint8_t> engine_for(const engine::TargetInfo& target) {
  auto bytes = build_engine(model_path("example_if.onnx"), cpu_config());
  EXPECT_TRUE(bytes.ok());
  auto f = engine::EngineFile::from_bytes(*bytes);
  EXPECT_TRUE(f.ok());
  auto data = runtime::load_engine_data(*f);
  EXPECT_TRUE(data.ok()) << data.status().to_string();
  if (target.device == "cuda") (*data)->device = Device::kCuda;
  auto out = runtime::serialize_engine(**data, target);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : std::vector<uint8_t>{};
}

TEST(EngineRuntime, EngineForAnotherTargetIsRefusedWithBothSidesNamed) {
  engine::TargetInfo gpu;
  gpu.device = "cuda";
  gpu.sm = 90;
  gpu.gpu_name = "NVIDIA H100 80GB HBM3";
  gpu.cuda_runtime = 13000;
  gpu.cudnn = 91400;
  gpu.cublaslt = 130100;
  gpu.cpu_isa = "x86-64-v3";
  auto e = Engine::deserialize(engine_for(gpu));
  ASSERT_FALSE(e.ok());
  const std::string& m = e.status().message();
  EXPECT_NE(m.find("sm_90"), std::string::npos) << m;
  EXPECT_NE(m.find("NVIDIA H100"), std::string::npos) << m;
  EXPECT_NE(m.find("kiln build"), std::string::npos) << m;

  engine::TargetInfo arm;
  arm.device = "cpu";
  arm.cpu_isa = "armv8.2-a";
  e = Engine::deserialize(engine_for(arm));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("armv8.2-a"), std::string::npos) << e.status().message();
}

TEST(EngineRuntime, DamagedEngineFilesAreRefused) {
  auto bytes = build_engine(model_path("example_if.onnx"), cpu_config());
  ASSERT_TRUE(bytes.ok());
  const std::vector<uint8_t>& good = *bytes;
  std::string path = temp_path("damaged.kiln");
  auto write = [&](const std::vector<uint8_t>& b) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  // Truncated at many lengths.
  for (size_t len :
       {size_t{0}, size_t{7}, size_t{64}, size_t{200}, good.size() / 2, good.size() - 1}) {
    write(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
    auto e = Engine::load(path);
    ASSERT_FALSE(e.ok()) << len;
    EXPECT_NE(e.status().message().find(path), std::string::npos) << e.status().message();
  }
  // Single flipped bytes across the file.
  std::mt19937 rng(11);
  for (int i = 0; i < 40; ++i) {
    std::vector<uint8_t> b = good;
    size_t at = rng() % b.size();
    b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    write(b);
    auto e = Engine::load(path);
    EXPECT_FALSE(e.ok()) << "flip at " << at;
  }
  // An ONNX model given as an engine.
  auto e = Engine::load(model_path("example_if.onnx"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("kiln build"), std::string::npos) << e.status().message();
  std::remove(path.c_str());
}

TEST(EngineRuntime, ContextsOnThreadsMatchOneContext) {
  auto e = Engine::from_onnx(model_path("example_if.onnx"));
  ASSERT_TRUE(e.ok());
  std::vector<HostTensor> xs;
  for (uint32_t i = 0; i < 4; ++i) xs.push_back(random_input({1 + i, 3, 32, 32}, 100 + i));
  std::vector<HostTensor> expected;
  for (const HostTensor& x : xs) expected.push_back(run_once(**e, x));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto ctx = (*e)->create_context();
      if (!ctx.ok()) {
        mismatches[static_cast<size_t>(t)] = -1;
        return;
      }
      for (int rep = 0; rep < 3; ++rep) {
        for (size_t k = 0; k < xs.size(); ++k) {
          size_t idx = (k + static_cast<size_t>(t)) % xs.size();
          if (!(*ctx)->set_input("x", xs[idx]).ok() || !(*ctx)->execute().ok()) {
            mismatches[static_cast<size_t>(t)]++;
            continue;
          }
          const HostTensor* y = (*ctx)->output("y");
          if (y == nullptr || y->data != expected[idx].data) mismatches[static_cast<size_t>(t)]++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// An OutputAllocator over host memory (what a CPU engine writes into), recording its calls.
class RecordingAllocator : public OutputAllocator {
 public:
  ~RecordingAllocator() override {
    for (void* p : blocks) std::free(p);
  }
  void* reallocate_output(const std::string& name, void* current, uint64_t bytes,
                          uint64_t alignment) override {
    calls.push_back(name + ":" + std::to_string(bytes) + (current ? ":again" : ":first"));
    if (refuse) return nullptr;
    if (current != nullptr && bytes <= capacity) return current;
    const uint64_t size = (std::max<uint64_t>(bytes, 1) + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, size);
    blocks.push_back(p);
    capacity = bytes;
    return p;
  }
  void notify_shape(const std::string&, const std::vector<int64_t>& s) override { shape = s; }

  std::vector<std::string> calls;
  std::vector<int64_t> shape;
  std::vector<void*> blocks;
  uint64_t capacity = 0;
  bool refuse = false;
};

TEST(EngineRuntime, OutputAllocatorReceivesDataDependentShapes) {
  const std::string model =
      std::string(KILN_BINARY_DIR) + "/onnx-1.23.1/node/test_nonzero_example/model.onnx";
  if (!std::ifstream(model).good()) GTEST_SKIP() << "no node suite at " << model;
  auto bytes = build_engine(model, cpu_config());
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = (*e)->create_context();
  ASSERT_TRUE(ctx.ok());
  RecordingAllocator alloc;
  EXPECT_FALSE((*ctx)->set_output_allocator("nope", &alloc).ok());
  ASSERT_TRUE((*ctx)->set_output_allocator("result", &alloc).ok());

  HostTensor cond = HostTensor::zeros(DType::kBool, {2, 2});
  const uint8_t bits[4] = {1, 0, 1, 1};
  std::memcpy(cond.data.data(), bits, 4);
  ASSERT_TRUE((*ctx)->set_input("condition", cond).ok());
  Status st = (*ctx)->execute();
  ASSERT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = (*ctx)->output("result");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(alloc.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(alloc.calls, (std::vector<std::string>{"result:48:first"}));
  ASSERT_EQ(y->data.size(), 48u);
  EXPECT_EQ(std::memcmp(alloc.blocks.back(), y->data.data(), 48), 0);
  const int64_t want[6] = {0, 1, 1, 0, 0, 1};  // rows, then columns of the non-zeros
  EXPECT_EQ(std::memcmp(alloc.blocks.back(), want, 48), 0);

  // The same run again: the allocator is offered its own memory back.
  ASSERT_TRUE((*ctx)->execute().ok());
  EXPECT_EQ(alloc.calls.back(), "result:48:again");
  EXPECT_EQ(alloc.blocks.size(), 1u);

  // A refusal fails the run and names the output; removing the allocator restores plain runs.
  alloc.refuse = true;
  st = (*ctx)->execute();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("output 'result'"), std::string::npos) << st.message();
  ASSERT_TRUE((*ctx)->set_output_allocator("result", nullptr).ok());
  const size_t n = alloc.calls.size();
  EXPECT_TRUE((*ctx)->execute().ok());
  EXPECT_EQ(alloc.calls.size(), n);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Building twice with the same model and options gives the same bytes (no clock, address or
// hash-order dependence), with and without fusions and in reduced precision.
TEST(EngineRuntime, BuildsAreByteIdentical) {
  const std::string data = std::string(KILN_SOURCE_DIR) + "/tests/passes/data/";
  // Fused ones among them: attention, layer norm, GELU and matmul epilogues (bert_layer,
  // vit_block), attention with a dynamic sequence (bert_attention_dyn).
  for (const std::string& model :
       {model_path("example_traced.onnx"), model_path("example_if.onnx"), data + "bert_layer.onnx",
        data + "vit_block.onnx", data + "bert_attention_dyn.onnx"}) {
    for (int variant = 0; variant < 3; ++variant) {
      BuilderConfig c = cpu_config();
      if (variant == 1) c.fp16 = true;
      if (variant == 2) c.opt_level = 0;
      auto a = build_engine(model, c);
      auto b = build_engine(model, c);
      ASSERT_TRUE(a.ok() && b.ok()) << model << ": " << a.status().to_string();
      EXPECT_TRUE(*a == *b) << model << " variant " << variant;
    }
  }
}

// Builds running at the same time on several threads give the same bytes as one alone.
TEST(EngineRuntime, ConcurrentBuildsAreByteIdentical) {
  const std::string model = std::string(KILN_SOURCE_DIR) + "/tests/passes/data/bert_layer.onnx";
  BuilderConfig c = cpu_config();
  c.fp16 = true;
  auto want = build_engine(model, c);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  std::vector<std::vector<uint8_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      auto b = build_engine(model, c);
      if (b.ok()) got[t] = std::move(*b);
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t) EXPECT_TRUE(got[t] == *want) << "thread " << t;
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Tactics chosen per optimization profile survive the engine file, are refused when they name
// more profiles than the engine has, and a run's shapes select the first profile that holds them.
TEST(EngineRuntime, PerProfileTacticsRoundTrip) {
  BuilderConfig c = cpu_config();
  OptimizationProfile small, large;
  small.inputs["x"] = {{1, 3, 32, 32}, {1, 3, 32, 32}, {4, 3, 32, 32}};
  large.inputs["x"] = {{5, 3, 32, 32}, {8, 3, 32, 32}, {16, 3, 32, 32}};
  c.profiles = {small, large};
  auto bytes = build_engine(model_path("example_traced.onnx"), c);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto f = engine::EngineFile::from_bytes(*bytes);
  ASSERT_TRUE(f.ok());
  auto data = runtime::load_engine_data(*f);
  ASSERT_TRUE(data.ok()) << data.status().to_string();
  ASSERT_FALSE((*data)->steps.empty());
  EXPECT_EQ(runtime::profile_index(**data, {{"x", {2, 3, 32, 32}}}), 0);
  EXPECT_EQ(runtime::profile_index(**data, {{"x", {8, 3, 32, 32}}}), 1);
  EXPECT_EQ(runtime::profile_index(**data, {{"x", {64, 3, 32, 32}}}), 0);  // none: the first

  auto target = runtime::current_target(Device::kCpu);
  ASSERT_TRUE(target.ok());
  (*data)->steps[0].profile_tactics = {-1, 7};
  auto out = runtime::serialize_engine(**data, *target);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  auto f2 = engine::EngineFile::from_bytes(*out);
  ASSERT_TRUE(f2.ok());
  auto again = runtime::load_engine_data(*f2);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ((*again)->steps[0].profile_tactics, (std::vector<int64_t>{-1, 7}));
  EXPECT_TRUE((*again)->steps[1].profile_tactics.empty());

  (*data)->steps[0].profile_tactics = {-1, 7, 9};  // three entries, two profiles
  out = runtime::serialize_engine(**data, *target);
  ASSERT_TRUE(out.ok());
  f2 = engine::EngineFile::from_bytes(*out);
  ASSERT_TRUE(f2.ok());
  again = runtime::load_engine_data(*f2);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("profile tactics"), std::string::npos)
      << again.status().message();
}

}  // namespace
}  // namespace kiln
