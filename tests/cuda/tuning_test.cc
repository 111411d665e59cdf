// Tactic tuning and the timing cache on the GPU: a small conv + matmul model built with tuning
// gives the outputs of an untuned engine; a rebuild with the warm cache times nothing and picks
// the same tactics; two warm-cache builds are byte-identical; the chosen tactics stay right at
// other batch sizes of the profile; damaged or foreign caches are ignored with a warning.
// Tolerances, relative to the output's largest magnitude: float32 without TF32 1e-4 (cuDNN and
// cuBLASLt algorithms differ in summation order, FFT/Winograd in rounding), float16 2e-2.
// Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "backend/cuda_backend.h"
#include "backend/tactic.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

#ifdef KILN_HAVE_CUDA
#include "backends/cuda/nn_internal.h"
#endif

namespace fs = std::filesystem;

namespace kiln {
namespace {

using testing::randf;
using testing::rel_error;

namespace ot = onnx::testing;

// x [N, 16, 24, 24] → Conv 3x3 + bias → Relu → Conv 3x3 stride 2 → Flatten → Gemm (transB, bias)
// → Relu → MatMul → y [N, 10]. N is dynamic.
std::string write_model(const std::string& name) {
  ot::GraphPb g;
  g.inputs.push_back(ot::value_info("x", 1, {"N", 16, 24, 24}));
  g.initializers.push_back(
      ot::TensorPb("W1", 1, {32, 16, 3, 3}).floats(randf(32 * 16 * 9, 1, -0.2f, 0.2f)).bytes());
  g.initializers.push_back(ot::TensorPb("B1", 1, {32}).floats(randf(32, 2)).bytes());
  g.initializers.push_back(
      ot::TensorPb("W2", 1, {32, 32, 3, 3}).floats(randf(32 * 32 * 9, 3, -0.1f, 0.1f)).bytes());
  g.initializers.push_back(
      ot::TensorPb("W3", 1, {64, 4608}).floats(randf(64 * 4608, 4, -0.02f, 0.02f)).bytes());
  g.initializers.push_back(ot::TensorPb("C3", 1, {64}).floats(randf(64, 5)).bytes());
  g.initializers.push_back(
      ot::TensorPb("W4", 1, {64, 10}).floats(randf(64 * 10, 6, -0.2f, 0.2f)).bytes());
  g.nodes.push_back(
      ot::node("Conv", {"x", "W1", "B1"}, {"c1"}, "conv1", {ot::attr_ints("pads", {1, 1, 1, 1})}));
  g.nodes.push_back(ot::node("Relu", {"c1"}, {"r1"}, "relu1"));
  g.nodes.push_back(
      ot::node("Conv", {"r1", "W2"}, {"c2"}, "conv2",
               {ot::attr_ints("pads", {1, 1, 1, 1}), ot::attr_ints("strides", {2, 2})}));
  g.nodes.push_back(ot::node("Flatten", {"c2"}, {"f"}, "flatten", {ot::attr_int("axis", 1)}));
  g.nodes.push_back(
      ot::node("Gemm", {"f", "W3", "C3"}, {"g"}, "gemm", {ot::attr_int("transB", 1)}));
  g.nodes.push_back(ot::node("Relu", {"g"}, {"r2"}, "relu2"));
  g.nodes.push_back(ot::node("MatMul", {"r2", "W4"}, {"y"}, "matmul"));
  g.outputs.push_back(ot::value_info("y", 1, {"N", 10}));
  const std::string bytes = ot::model(g.bytes(), {ot::opset("", 17)});
  const std::string path = ::testing::TempDir() + "kiln_tuning_" + name + ".onnx";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

BuilderConfig gpu_config(bool fp16, int opt_level, const std::string& cache = {}) {
  BuilderConfig c;
  c.device = Device::kCuda;
  c.tf32 = false;
  c.fp16 = fp16;
  c.opt_level = opt_level;
  c.timing_cache_path = cache;
  OptimizationProfile p;
  p.inputs["x"] = {{1, 16, 24, 24}, {4, 16, 24, 24}, {8, 16, 24, 24}};
  c.profiles.push_back(p);
  return c;
}

std::vector<uint8_t> build_bytes(const std::string& path, const BuilderConfig& c,
                                 BuildReport* r = nullptr) {
  auto bytes = build_engine(path, c, r);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

std::shared_ptr<Engine> load(const std::vector<uint8_t>& bytes) {
  auto e = Engine::deserialize(bytes);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : nullptr;
}

HostTensor run(Engine& e, int64_t n) {
  HostTensor x = HostTensor::zeros(DType::kFloat32, {n, 16, 24, 24});
  const std::vector<float> xv = randf(x.numel(), 77 + static_cast<uint32_t>(n));
  std::copy(xv.begin(), xv.end(), x.as<float>());
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

// name → tactic of every layer.
std::map<std::string, int64_t> tactics(const Engine& e) {
  std::map<std::string, int64_t> out;
  const nlohmann::json j = nlohmann::json::parse(e.describe_json());
  for (const auto& l : j["layers"]) out[l["name"].get<std::string>()] = l["tactic"].get<int64_t>();
  return out;
}

void print_tactics(const Engine& e) {
  for (const auto& [name, t] : tactics(e)) {
    if (t != -1) std::printf("  %-10s %s\n", name.c_str(), backend::describe_tactic(t).c_str());
  }
}

class TempCache {
 public:
  TempCache() {
    dir_ = fs::temp_directory_path() /
           ("kiln_tuning_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  ~TempCache() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return (dir_ / "timing.json").string(); }

 private:
  fs::path dir_;
};

bool mentions(const BuildReport& r, const std::string& word) {
  for (const std::string& f : r.fallbacks)
    if (f.find(word) != std::string::npos) return true;
  return false;
}

void check_tuned_matches_untuned(bool fp16) {
  SCOPED_TRACE(fp16 ? "fp16" : "fp32");
  const std::string model = write_model(fp16 ? "match16" : "match32");
  BuildReport tuned_report, plain_report;
  auto tuned = load(build_bytes(model, gpu_config(fp16, 5), &tuned_report));
  auto plain = load(build_bytes(model, gpu_config(fp16, 0), &plain_report));
  ASSERT_TRUE(tuned && plain);
  EXPECT_TRUE(tuned_report.tuned);
  EXPECT_FALSE(plain_report.tuned);
  EXPECT_GE(tuned_report.tuned_nodes, 1) << "no node had two candidates to time";
  EXPECT_GE(tuned_report.timed_candidates, 2);
  std::printf("[ tuning %s ] %d node(s) tuned, %d candidate(s) timed, %.2f s\n",
              fp16 ? "fp16" : "fp32", tuned_report.tuned_nodes, tuned_report.timed_candidates,
              tuned_report.tuning_seconds);
  print_tactics(*tuned);
  for (const std::string& f : tuned_report.fallbacks) std::printf("  note: %s\n", f.c_str());
  int chosen = 0;
  for (const auto& [name, t] : tactics(*tuned)) chosen += t != -1;
  EXPECT_GE(chosen, 3) << "two convolutions and two GEMMs should carry tactics";
  for (int64_t n : {1, 4, 8}) {  // the opt shape and the profile's ends
    HostTensor a = run(*tuned, n), b = run(*plain, n);
    ASSERT_EQ(a.shape, b.shape);
    EXPECT_LT(rel_error(a, b), fp16 ? 2e-2 : 1e-4) << "batch " << n;
  }
}

TEST(CudaTuning, TunedEngineMatchesUntunedFp32) {
  REQUIRE_GPU();
  check_tuned_matches_untuned(false);
}

TEST(CudaTuning, TunedEngineMatchesUntunedFp16) {
  REQUIRE_GPU();
  check_tuned_matches_untuned(true);
}

TEST(CudaTuning, WarmCacheTimesNothingAndBuildsAreIdentical) {
  REQUIRE_GPU();
  TempCache cache;
  const std::string model = write_model("warm");
  const BuilderConfig c = gpu_config(true, 3, cache.path());
  BuildReport cold, warm1, warm2;
  const std::vector<uint8_t> cold_bytes = build_bytes(model, c, &cold);
  ASSERT_TRUE(fs::exists(cache.path()));
  EXPECT_GT(cold.timed_candidates, 0);
  const std::vector<uint8_t> warm_bytes1 = build_bytes(model, c, &warm1);
  const std::vector<uint8_t> warm_bytes2 = build_bytes(model, c, &warm2);
  EXPECT_EQ(warm1.timed_candidates, 0);
  EXPECT_EQ(warm1.tuned_nodes, 0);
  EXPECT_EQ(warm1.cache_hits, cold.tuned_nodes + cold.cache_hits);
  EXPECT_EQ(warm2.timed_candidates, 0);
  std::printf("[ warm cache ] cold %.2f s tuning (%d timed), warm %.2f s (%d hits)\n",
              cold.tuning_seconds, cold.timed_candidates, warm1.tuning_seconds, warm1.cache_hits);
  auto e_cold = load(cold_bytes), e_warm = load(warm_bytes1);
  ASSERT_TRUE(e_cold && e_warm);
  EXPECT_EQ(tactics(*e_cold), tactics(*e_warm));
  EXPECT_TRUE(warm_bytes1 == warm_bytes2) << "two builds with the same warm cache differ";
  EXPECT_TRUE(cold_bytes == warm_bytes1) << "the warm build chose differently from the cold one";
}

TEST(CudaTuning, HigherOptLevelRetimesWhatALowerOneTimedLess) {
  REQUIRE_GPU();
  TempCache cache;
  const std::string model = write_model("levels");
  BuildReport low, high;
  build_bytes(model, gpu_config(false, 1, cache.path()), &low);
  build_bytes(model, gpu_config(false, 5, cache.path()), &high);
  // Level 1 times at most 2 candidates per node; level 5 times again each node that has more
  // (the cached entry timed fewer than it would) and takes the cache for the others.
  EXPECT_GT(low.tuned_nodes, 0);
  EXPECT_EQ(high.tuned_nodes + high.cache_hits, low.tuned_nodes + low.cache_hits);
}

TEST(CudaTuning, DamagedOrForeignCacheIsIgnoredWithAWarning) {
  REQUIRE_GPU();
  TempCache cache;
  const std::string model = write_model("damaged");
  const BuilderConfig c = gpu_config(false, 2, cache.path());
  BuildReport first;
  build_bytes(model, c, &first);
  std::string text;
  {
    std::ifstream f(cache.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  ASSERT_FALSE(text.empty());
  // Truncated: a warning, a full tuning, and a valid cache written again.
  std::ofstream(cache.path(), std::ios::binary | std::ios::trunc)
      << text.substr(0, text.size() / 2);
  BuildReport truncated;
  auto e = load(build_bytes(model, c, &truncated));
  ASSERT_TRUE(e);
  EXPECT_TRUE(mentions(truncated, "timing cache")) << "no warning about the damaged cache";
  EXPECT_EQ(truncated.cache_hits, 0);
  EXPECT_EQ(truncated.timed_candidates, first.timed_candidates);
  // Another GPU's cache (the device record is outside the checksum): ignored, not trusted.
  nlohmann::json j = nlohmann::json::parse(text);
  j["device"]["gpu"] = "Some Other GPU";
  std::ofstream(cache.path(), std::ios::binary | std::ios::trunc) << j.dump(1);
  BuildReport foreign;
  build_bytes(model, c, &foreign);
  EXPECT_TRUE(mentions(foreign, "do not apply here"));
  EXPECT_EQ(foreign.cache_hits, 0);
}

TEST(CudaTuning, TwoProfilesKeepTheirOwnTactics) {
  REQUIRE_GPU();
  // Profiles tuned at batch 1 and at batch 32: each run takes the tactics of the profile its
  // shape falls in (the steps' profile_tactics when the choices differ) and matches the CPU.
  const std::string model = write_model("profiles");
  BuilderConfig c = gpu_config(false, 3);
  c.profiles.clear();
  OptimizationProfile one, many;
  one.inputs["x"] = {{1, 16, 24, 24}, {1, 16, 24, 24}, {2, 16, 24, 24}};
  many.inputs["x"] = {{3, 16, 24, 24}, {32, 16, 24, 24}, {32, 16, 24, 24}};
  c.profiles = {one, many};
  auto tuned = load(build_bytes(model, c));
  BuilderConfig cc;
  cc.device = Device::kCpu;
  cc.opt_level = 0;
  auto cpu = load(build_bytes(model, cc));
  ASSERT_TRUE(tuned && cpu);
  const std::string info = tuned->describe_json();
  std::printf("[ per-profile tactics ] %s\n", info.find("profile_algorithms") != std::string::npos
                                                  ? "differ for some layers"
                                                  : "the same for every layer");
  for (int64_t n : {1, 2, 3, 17, 32}) {
    HostTensor a = run(*tuned, n), b = run(*cpu, n);
    ASSERT_EQ(a.shape, b.shape);
    EXPECT_LT(rel_error(a, b), 1e-4) << "batch " << n;
  }
}

TEST(CudaTuning, EveryTacticOfATunedEngineRunsAtEveryProfileShape) {
  REQUIRE_GPU();
  // The tactics were chosen at batch 4; at batch 1 and 8 each either applies or falls back to
  // the heuristic: outputs agree with the CPU engine either way.
  const std::string model = write_model("shapes");
  auto tuned = load(build_bytes(model, gpu_config(false, 4)));
  BuilderConfig cc;
  cc.device = Device::kCpu;
  cc.opt_level = 0;
  auto cpu = load(build_bytes(model, cc));
  ASSERT_TRUE(tuned && cpu);
#ifdef KILN_HAVE_CUDA
  const cuda::TacticCounts c0 = cuda::tactic_counts();
#endif
  for (int64_t n : {1, 2, 3, 4, 5, 8}) {
    HostTensor a = run(*tuned, n), b = run(*cpu, n);
    ASSERT_EQ(a.shape, b.shape);
    EXPECT_LT(rel_error(a, b), 1e-4) << "batch " << n;
  }
#ifdef KILN_HAVE_CUDA
  // Batches 2, 3 and 5 were never seen by the build: their algorithm choices are made here.
  // cuBLASLt accepts a tuned configuration at other M in general, so some tactics must apply
  // (none would if the encoding did not rebuild the algorithm); cuDNN may fall back where the
  // algorithm is not usable at a shape.
  const cuda::TacticCounts c1 = cuda::tactic_counts();
  std::printf("[ tactics at new shapes ] %llu applied, %llu fell back to the default\n",
              static_cast<unsigned long long>(c1.applied - c0.applied),
              static_cast<unsigned long long>(c1.fell_back - c0.fell_back));
  EXPECT_GT(c1.applied - c0.applied, 0u);
#endif
}

}  // namespace
}  // namespace kiln
