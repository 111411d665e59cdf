// Concurrency stress on CPU engines: many threads, each with its own ExecutionContext on one
// shared engine, run many iterations and must give outputs bit-identical to a single-threaded run;
// other threads load and unload engines all the while. Run under the cpu-asan preset, this also
// has LeakSanitizer and AddressSanitizer watch contexts and engines come and go on threads.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.h"

namespace kiln {
namespace {

constexpr int kThreads = 8;

std::string model_file(const std::string& rel) {
  return std::string(KILN_SOURCE_DIR) + "/" + rel;
}

BuilderConfig cpu_config() {
  BuilderConfig c;
  c.device = Device::kCpu;
  return c;
}

// One set of inputs for every input of `e`: dynamic dims become `dyn`; floats are random,
// integers (attention masks) are ones.
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

// Runs `ctx` on `xs`; the outputs' bytes in the engine's output order (empty on failure).
std::vector<std::vector<std::byte>> run(const Engine& e, ExecutionContext& ctx,
                                        const std::vector<HostTensor>& xs) {
  for (size_t i = 0; i < xs.size(); ++i)
    if (!ctx.set_input(e.inputs()[i].name, xs[i]).ok()) return {};
  if (!ctx.execute().ok()) return {};
  std::vector<std::vector<std::byte>> out;
  for (const TensorInfo& info : e.outputs()) {
    const HostTensor* y = ctx.output(info.name);
    if (y == nullptr) return {};
    out.push_back(y->data);
  }
  return out;
}

struct Case {
  std::string model;
  int64_t dyn;  // value of the dynamic dims
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " dyn " << c.dyn;
}

class ConcurrencyStress : public ::testing::TestWithParam<Case> {};

TEST_P(ConcurrencyStress, ThreadsWithOwnContextsMatchOneThread) {
  const Case& c = GetParam();
  auto bytes = build_engine(model_file(c.model), cpu_config());
  ASSERT_TRUE(bytes.ok()) << c.model << ": " << bytes.status().to_string();
  auto e = Engine::deserialize(*bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const Engine& engine = **e;

  // Reference outputs, one thread, one context per input set.
  constexpr int kSets = 3;
  std::vector<std::vector<HostTensor>> inputs;
  std::vector<std::vector<std::vector<std::byte>>> expected;
  for (int s = 0; s < kSets; ++s) {
    inputs.push_back(make_inputs(engine, c.dyn + s % 2, 1000u + static_cast<uint32_t>(s)));
    auto ctx = engine.create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    expected.push_back(run(engine, **ctx, inputs.back()));
    ASSERT_FALSE(expected.back().empty()) << c.model << " set " << s;
  }

  // Other threads keep loading, running once and dropping engines of the same bytes while the
  // workers run; they stop when the workers are done.
  std::atomic<bool> done{false};
  std::atomic<int> churn_failures{0}, churn_loads{0};
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&] {
      do {
        auto other = Engine::deserialize(*bytes);
        if (!other.ok()) {
          churn_failures++;
          return;
        }
        auto ctx = (*other)->create_context();
        if (!ctx.ok() || run(**other, **ctx, inputs[0]) != expected[0]) churn_failures++;
        churn_loads++;
      } while (!done.load());
    });
  }

  constexpr int kIterations = 40;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      auto ctx = engine.create_context();
      if (!ctx.ok()) {
        mismatches[static_cast<size_t>(t)] = -1;
        return;
      }
      for (int it = 0; it < kIterations; ++it) {
        const size_t s = static_cast<size_t>(t + it) % kSets;
        if (run(engine, **ctx, inputs[s]) != expected[s]) mismatches[static_cast<size_t>(t)]++;
      }
    });
  }
  for (auto& th : workers) th.join();
  done = true;
  for (auto& th : churners) th.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << "thread " << t;
  EXPECT_EQ(churn_failures.load(), 0);
  EXPECT_GE(churn_loads.load(), 2);
}

INSTANTIATE_TEST_SUITE_P(Models, ConcurrencyStress,
                         ::testing::Values(Case{"models/example_if.onnx", 1},
                                           Case{"models/example_traced.onnx", 1},
                                           Case{"tests/passes/data/bert_layer.onnx", 2},
                                           Case{"tests/passes/data/vit_block.onnx", 1}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = info.param.model;
                           n = n.substr(n.rfind('/') + 1);
                           n = n.substr(0, n.find('.'));
                           return n;
                         });

// A context outliving every other handle on its engine keeps working: the engine is shared.
TEST(ConcurrencyStress, ContextKeepsItsEngineAlive) {
  auto bytes = build_engine(model_file("models/example_if.onnx"), cpu_config());
  ASSERT_TRUE(bytes.ok());
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<HostTensor> xs;
  std::vector<std::vector<std::byte>> want;
  {
    auto e = Engine::deserialize(*bytes);
    ASSERT_TRUE(e.ok());
    xs = make_inputs(**e, 1, 5);
    auto c = (*e)->create_context();
    ASSERT_TRUE(c.ok());
    want = run(**e, **c, xs);
    ASSERT_FALSE(want.empty());
    auto c2 = (*e)->create_context();
    ASSERT_TRUE(c2.ok());
    ctx = std::move(*c2);
    ASSERT_TRUE(ctx->set_input((*e)->inputs()[0].name, xs[0]).ok());
  }
  ASSERT_TRUE(ctx->execute().ok());
  ASSERT_EQ(ctx->output("y") != nullptr, true);
  EXPECT_EQ(ctx->output("y")->data, want[0]);
}

}  // namespace
}  // namespace kiln
