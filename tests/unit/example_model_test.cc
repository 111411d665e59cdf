// The bundled example: traced vs If-exported models agree on the branch the trace saw, and only
// there.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/kiln.h"

namespace kiln {
namespace {

std::unique_ptr<Engine> load(const std::string& name) {
  auto e = Engine::from_onnx(std::string(KILN_SOURCE_DIR) + "/models/" + name);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(e).value() : nullptr;
}

HostTensor run(const Engine& engine, const HostTensor& x) {
  auto ctx = engine.create_execution_context();
  EXPECT_TRUE(ctx->set_input("x", x).ok());
  Status st = ctx->execute();
  EXPECT_TRUE(st.ok()) << st.to_string();
  const HostTensor* y = ctx->output("y");
  return y ? *y : HostTensor{};
}

double max_abs_diff(const HostTensor& a, const HostTensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a.as<float>()[i] - b.as<float>()[i])));
  }
  return m;
}

TEST(ExampleModel, TracingLosesTheGate) {
  auto traced = load("example_traced.onnx");
  auto scripted = load("example_if.onnx");
  ASSERT_TRUE(traced && scripted);

  // The branch the trace saw: an all-zeros input gives all-zero features (mean 0: else-branch).
  HostTensor zeros = HostTensor::zeros(DType::kFloat32, {2, 3, 32, 32});
  HostTensor yt = run(*traced, zeros), ys = run(*scripted, zeros);
  ASSERT_EQ(yt.shape, (std::vector<int64_t>{2, 3200}));
  ASSERT_EQ(ys.shape, yt.shape);
  EXPECT_EQ(max_abs_diff(yt, ys), 0.0);

  // Any other input: the features' mean is > 0; the If model returns them, the traced one
  // negates them.
  HostTensor x = HostTensor::zeros(DType::kFloat32, {3, 3, 32, 32});
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
  yt = run(*traced, x);
  ys = run(*scripted, x);
  ASSERT_EQ(ys.shape, (std::vector<int64_t>{3, 3200}));
  double sum = 0, max_abs = 0;
  for (int64_t i = 0; i < ys.numel(); ++i) {
    sum += ys.as<float>()[i];
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(ys.as<float>()[i])));
    ASSERT_EQ(yt.as<float>()[i], -ys.as<float>()[i]) << i;
  }
  EXPECT_GT(sum, 0.0);
  EXPECT_GT(max_abs, 0.0);
}

TEST(ExampleModel, BadInputIsRefused) {
  auto scripted = load("example_if.onnx");
  ASSERT_TRUE(scripted);
  auto ctx = scripted->create_execution_context();
  EXPECT_FALSE(ctx->set_input("nope", HostTensor::zeros(DType::kFloat32, {1, 3, 32, 32})).ok());
  // A fixed dimension of the wrong size is refused when bound, naming input and dimension.
  Status st = ctx->set_input("x", HostTensor::zeros(DType::kFloat32, {1, 3, 31, 32}));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'x' dimension 2"), std::string::npos) << st.message();
  // Running without the input names it.
  st = ctx->execute();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln
