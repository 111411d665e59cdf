// Concurrency stress on CUDA engines: eight threads, each with its own ExecutionContext (half of
// them replaying CUDA graphs) on one shared engine, many iterations, outputs bit-identical to a
// single-threaded run; other threads load, run and drop engines of the same bytes all the while.
// Skipped (reported as skipped) without a usable GPU.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"

namespace kiln {
namespace {

constexpr int kThreads = 8;

std::vector<HostTensor> make_inputs(const Engine& e, int64_t dyn, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<HostTensor> xs;
  for (const TensorInfo& info : e.inputs()) {
    std::vector<int64_t> shape = info.shape;
    for (int64_t& d : shape)
      if (d < 0) d = dyn;
    HostTensor x = HostTensor::zeros(info.dtype, shape);
    if (info.dtype == DType::kFloat32) {
      for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
    } else if (info.dtype == DType::kInt64) {
      for (int64_t i = 0; i < x.numel(); ++i) x.as<int64_t>()[i] = 1;
    }
    xs.push_back(std::move(x));
  }
  return xs;
}

// The outputs' bytes in the engine's output order; `note` gets the error on failure.
std::vector<std::vector<std::byte>> run(const Engine& e, ExecutionContext& ctx,
                                        const std::vector<HostTensor>& xs, std::string* note) {
  for (size_t i = 0; i < xs.size(); ++i) {
    Status st = ctx.set_input(e.inputs()[i].name, xs[i]);
    if (!st.ok()) {
      *note += st.to_string() + "\n";
      return {};
    }
  }
  Status st = ctx.execute();
  if (!st.ok()) {
    *note += st.to_string() + "\n";
    return {};
  }
  std::vector<std::vector<std::byte>> out;
  for (const TensorInfo& info : e.outputs()) {
    const HostTensor* y = ctx.output(info.name);
    if (y == nullptr) {
      *note += "no output " + info.name + "\n";
      return {};
    }
    out.push_back(y->data);
  }
  return out;
}

struct Case {
  std::string model;
  bool fp16;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.fp16 ? " fp16" : "");
}

class CudaConcurrencyStress : public ::testing::TestWithParam<Case> {};

TEST_P(CudaConcurrencyStress, ThreadsWithOwnContextsMatchOneThread) {
  REQUIRE_GPU();
  const Case& c = GetParam();
  BuilderConfig config;
  config.device = Device::kCuda;
  config.fp16 = c.fp16;
  auto bytes = build_engine(std::string(KILN_SOURCE_DIR) + "/" + c.model, config);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const Engine& engine = **e;

  constexpr int kSets = 3;
  std::vector<std::vector<HostTensor>> inputs;
  std::vector<std::vector<std::vector<std::byte>>> expected;
  {
    auto ctx = engine.create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    for (int s = 0; s < kSets; ++s) {
      inputs.push_back(make_inputs(engine, 1, 2000u + static_cast<uint32_t>(s)));
      std::string note;
      expected.push_back(run(engine, **ctx, inputs.back(), &note));
      ASSERT_FALSE(expected.back().empty()) << note;
    }
  }

  std::atomic<bool> done{false};
  std::atomic<int> churn_loads{0};
  std::vector<std::string> churn_notes(2);
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&, t] {
      std::string& note = churn_notes[static_cast<size_t>(t)];
      do {
        auto other = Engine::deserialize(*bytes);
        if (!other.ok()) {
          note += other.status().to_string() + "\n";
          return;
        }
        auto ctx = (*other)->create_context();
        if (!ctx.ok()) {
          note += ctx.status().to_string() + "\n";
          return;
        }
        if (run(**other, **ctx, inputs[0], &note) != expected[0]) note += "churn run differs\n";
        churn_loads++;
      } while (!done.load());
    });
  }

  constexpr int kIterations = 25;
  std::vector<std::string> bad(kThreads);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::string& note = bad[static_cast<size_t>(t)];
      auto ctx = engine.create_context();
      if (!ctx.ok()) {
        note = ctx.status().to_string();
        return;
      }
      (*ctx)->set_cuda_graph(t % 2 == 1);
      for (int it = 0; it < kIterations; ++it) {
        const size_t s = static_cast<size_t>(t + it) % kSets;
        if (run(engine, **ctx, inputs[s], &note) != expected[s]) {
          note += "iteration " + std::to_string(it) + " set " + std::to_string(s) + " differs; " +
                  (*ctx)->run_notes() + "\n";
        }
      }
    });
  }
  for (auto& th : workers) th.join();
  done = true;
  for (auto& th : churners) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[static_cast<size_t>(t)], "") << "thread " << t;
  for (const std::string& n : churn_notes) EXPECT_EQ(n, "");
  EXPECT_GE(churn_loads.load(), 2);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaConcurrencyStress,
                         ::testing::Values(Case{"models/example_if.onnx", false},
                                           Case{"models/example_traced.onnx", false},
                                           Case{"tests/passes/data/bert_layer.onnx", true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = info.param.model;
                           n = n.substr(n.rfind('/') + 1);
                           n = n.substr(0, n.find('.'));
                           return n + (info.param.fp16 ? "_fp16" : "");
                         });

}  // namespace
}  // namespace kiln
