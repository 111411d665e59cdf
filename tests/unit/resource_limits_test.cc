// Resource limits: models that ask for absurd sizes are refused with an error naming the node and
// tensor before anything is allocated — at import (type inference) when the shape is static, at
// run time in the CPU kernels when it is not; Loops with huge trip counts; host allocations that
// fail come back as errors and leave the process usable.
#include <gtest/gtest.h>

#include <limits>

#include "backends/cpu/executor.h"
#include "core/tensor.h"
#include "onnx/importer.h"
#include "onnx_builder.h"

namespace kiln {
namespace {

namespace t = onnx::testing;
using t::node;
using t::TensorPb;
using t::value_info;

constexpr int32_t kF = 1, kI64 = 7, kB = 9;  // ONNX element types

StatusOr<std::unique_ptr<ir::Model>> load(const t::GraphPb& g) {
  const std::string m = t::model(g.bytes());
  return onnx::load_model_from_bytes(t::as_span(m), "limits.onnx");
}

void expect_names(const Status& st, const std::vector<std::string>& words) {
  for (const std::string& w : words)
    EXPECT_NE(st.message().find(w), std::string::npos) << "'" << w << "' not in: " << st.message();
}

// ---- static shapes: refused at import ----

TEST(ResourceLimits, StaticHugeOutputsAreRefusedAtImport) {
  const int64_t k20 = int64_t{1} << 20;
  struct Case {
    std::string op;
    t::GraphPb g;
  };
  std::vector<Case> cases;
  {
    t::GraphPb g;  // Expand a [1] to [2^20, 2^20]
    g.inputs = {value_info("x", kF, {1})};
    g.initializers = {TensorPb("s", kI64, {2}).int64s({k20, k20}).bytes()};
    g.nodes = {node("Expand", {"x", "s"}, {"y"}, "big_expand")};
    g.outputs = {value_info("y")};
    cases.push_back({"big_expand", g});
  }
  {
    t::GraphPb g;  // ConstantOfShape [2^40]
    g.initializers = {TensorPb("s", kI64, {1}).int64s({int64_t{1} << 40}).bytes()};
    g.nodes = {node("ConstantOfShape", {"s"}, {"y"}, "big_cos")};
    g.outputs = {value_info("y")};
    cases.push_back({"big_cos", g});
  }
  {
    t::GraphPb g;  // Tile a [1, 1] by [2^20, 2^20]
    g.inputs = {value_info("x", kF, {1, 1})};
    g.initializers = {TensorPb("r", kI64, {2}).int64s({k20, k20}).bytes()};
    g.nodes = {node("Tile", {"x", "r"}, {"y"}, "big_tile")};
    g.outputs = {value_info("y")};
    cases.push_back({"big_tile", g});
  }
  {
    t::GraphPb g;  // Reshape of a declared [2^20, 2^20] input to [2^40]
    g.inputs = {value_info("x", kF, {k20, k20})};
    g.initializers = {TensorPb("s", kI64, {1}).int64s({-1}).bytes()};
    g.nodes = {node("Reshape", {"x", "s"}, {"y"}, "big_reshape")};
    g.outputs = {value_info("y")};
    cases.push_back({"big_reshape", g});
  }
  {
    t::GraphPb g;  // Expand whose element count overflows int64 altogether
    g.inputs = {value_info("x", kF, {1})};
    g.initializers = {
        TensorPb("s", kI64, {4}).int64s({int64_t{1} << 40, int64_t{1} << 40, 4, 4}).bytes()};
    g.nodes = {node("Expand", {"x", "s"}, {"y"}, "overflow_expand")};
    g.outputs = {value_info("y")};
    cases.push_back({"overflow_expand", g});
  }
  for (const Case& c : cases) {
    auto m = load(c.g);
    ASSERT_FALSE(m.ok()) << c.op << " was accepted";
    EXPECT_EQ(m.status().code(), StatusCode::kOutOfRange) << m.status().to_string();
    expect_names(m.status(), {c.op, "'y'", "limit"});
  }
}

// ---- dynamic shapes: refused by the kernels before allocating ----

struct Prepared {
  std::unique_ptr<ir::Model> model;
  std::unique_ptr<cpu::Executor> ex;
};

Prepared prepare(const t::GraphPb& g, cpu::Executor::Options options = {}) {
  Prepared r;
  auto m = load(g);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return r;
  r.model = std::move(*m);
  auto ex = cpu::Executor::create(*r.model->graph, options);
  EXPECT_TRUE(ex.ok()) << ex.status().to_string();
  if (ex.ok()) r.ex = std::move(*ex);
  return r;
}

Datum ints(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Datum::of(Tensor::from_vector<int64_t>({n}, v));
}

TEST(ResourceLimits, DynamicHugeShapesAreRefusedAtRunTime) {
  const int64_t k20 = int64_t{1} << 20;
  const Datum x = Datum::of(Tensor::from_vector<float>({1, 1}, {1.f}));
  for (const std::string op : {"Expand", "Tile", "ConstantOfShape"}) {
    t::GraphPb g;
    g.inputs = {value_info("s", kI64, {2})};
    if (op == "ConstantOfShape") {
      g.nodes = {node(op, {"s"}, {"y"}, "n_" + op)};
    } else {
      g.inputs.push_back(value_info("x", kF, {1, 1}));
      g.nodes = {node(op, {"x", "s"}, {"y"}, "n_" + op)};
    }
    g.outputs = {value_info("y")};
    Prepared r = prepare(g);
    ASSERT_TRUE(r.ex) << op;
    auto feeds = [&](std::vector<int64_t> shape) {
      std::vector<std::pair<std::string, Datum>> f = {{"s", ints(std::move(shape))}};
      if (op != "ConstantOfShape") f.emplace_back("x", x);
      return f;
    };
    auto out = r.ex->run(feeds({k20, k20}));
    ASSERT_FALSE(out.ok()) << op;
    EXPECT_EQ(out.status().code(), StatusCode::kOutOfRange) << out.status().to_string();
    expect_names(out.status(), {"n_" + op, "limit"});
    // The executor is still good for sensible sizes.
    out = r.ex->run(feeds({2, 3}));
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.shape(), (std::vector<int64_t>{2, 3}));
  }
}

// A Loop over [v] running `body` (inputs i, cond, v; outputs cond, v and the scan outputs).
t::GraphPb loop_graph(bool with_cond, const std::vector<std::string>& body_nodes, int n_scan) {
  t::GraphPb body;
  body.name = "body";
  body.inputs = {value_info("i", kI64, {}), value_info("c", kB, {}), value_info("v", kF, {1})};
  body.nodes = body_nodes;
  body.outputs = {value_info("c_out", kB, {}), value_info("v_out", kF, {1})};
  for (int k = 0; k < n_scan; ++k) body.outputs.push_back(value_info("scan_" + std::to_string(k)));
  t::GraphPb g;
  g.inputs = {value_info("m", kI64, {}), value_info("v0", kF, {1})};
  g.initializers = {TensorPb("c0", kB, {}).raw_values<uint8_t>({1}).bytes()};
  std::vector<std::string> outs = {"v_final"};
  for (int k = 0; k < n_scan; ++k) outs.push_back("scans_" + std::to_string(k));
  g.nodes = {node("Loop", {"m", with_cond ? "c0" : "", "v0"}, outs, "the_loop",
                  {t::attr_graph("body", body.bytes())})};
  for (const std::string& o : outs) g.outputs.push_back(value_info(o));
  return g;
}

TEST(ResourceLimits, LoopTripCounts) {
  const Datum v0 = Datum::of(Tensor::from_vector<float>({1}, {0.f}));
  const Datum huge = Datum::of(Tensor::scalar<int64_t>(int64_t{1} << 40));
  const std::string add_one = node("Add", {"v", "one"}, {"v_out"}, "add", {}),
                    one = node(
                        "Constant", {}, {"one"}, "one_c",
                        {t::attr_tensor("value", TensorPb("", kF, {1}).floats({1.f}).bytes())}),
                    keep = node("Identity", {"c"}, {"c_out"}, "keep");

  // No condition input: a trip count over the limit is refused before the first iteration.
  {
    Prepared r = prepare(loop_graph(false, {one, add_one, keep}, 0));
    ASSERT_TRUE(r.ex);
    auto out = r.ex->run({{"m", huge}, {"v0", v0}});
    ASSERT_FALSE(out.ok());
    expect_names(out.status(), {"the_loop", "trip count", "1099511627776"});
    out = r.ex->run({{"m", Datum::of(Tensor::scalar<int64_t>(5))}, {"v0", v0}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.data<float>()[0], 5.f);
  }
  // The limit is the executor's to set; a condition that could end the loop lets it start, and
  // it stops with an error at the limit.
  {
    cpu::Executor::Options o;
    o.max_loop_iterations = 1000;
    Prepared r = prepare(loop_graph(true, {one, add_one, keep}, 0), o);
    ASSERT_TRUE(r.ex);
    auto out = r.ex->run({{"m", huge}, {"v0", v0}});
    ASSERT_FALSE(out.ok());
    expect_names(out.status(), {"the_loop", "1000 iterations"});
  }
  // A huge trip count whose body ends the loop early runs.
  {
    const std::string three =
        node("Constant", {}, {"three"}, "three_c",
             {t::attr_tensor("value", TensorPb("", kI64, {}).int64s({3}).bytes())});
    const std::string less = node("Less", {"i", "three"}, {"c_out"}, "less");
    Prepared r = prepare(loop_graph(true, {one, add_one, three, less}, 0));
    ASSERT_TRUE(r.ex);
    auto out = r.ex->run({{"m", huge}, {"v0", v0}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.data<float>()[0], 4.f);  // iterations 0..3
  }
  // Scan outputs that could not fit in the memory limit: refused after the first iteration.
  {
    cpu::Executor::Options o;
    o.max_loop_iterations = std::numeric_limits<int64_t>::max();
    const std::string scan = node("Identity", {"v_out"}, {"scan_0"}, "scan");
    Prepared r = prepare(loop_graph(false, {one, add_one, keep, scan}, 1), o);
    ASSERT_TRUE(r.ex);
    auto out = r.ex->run({{"m", huge}, {"v0", v0}});
    ASSERT_FALSE(out.ok());
    expect_names(out.status(), {"the_loop", "scan output 0", "limit"});
  }
}

// ---- host allocation failures ----

TEST(ResourceLimits, FailedHostAllocationIsAnErrorAndTheProcessGoesOn) {
  // 2^50 bytes: within an unlimited size limit, but no host can give it.
  auto t =
      Tensor::create(DType::kFloat32, {int64_t{1} << 48}, std::numeric_limits<uint64_t>::max());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kOutOfMemory);
  expect_names(t.status(), {"1125899906842624 bytes", "float32"});
  auto small = Tensor::create(DType::kFloat32, {1024});
  ASSERT_TRUE(small.ok());

  // Through a kernel: the error names the node and its output; the executor runs on.
  t::GraphPb g;
  g.inputs = {value_info("x", kF, {1}), value_info("s", kI64, {1})};
  g.nodes = {node("Expand", {"x", "s"}, {"y"}, "oom_expand")};
  g.outputs = {value_info("y")};
  cpu::Executor::Options o;
  o.max_tensor_bytes = std::numeric_limits<uint64_t>::max();
  Prepared r = prepare(g, o);
  ASSERT_TRUE(r.ex);
  const Datum x = Datum::of(Tensor::from_vector<float>({1}, {2.f}));
  auto out = r.ex->run({{"x", x}, {"s", ints({int64_t{1} << 48})}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kOutOfMemory) << out.status().to_string();
  expect_names(out.status(), {"oom_expand", "output 0", "could not allocate"});
  out = r.ex->run({{"x", x}, {"s", ints({3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.data<float>()[2], 2.f);
}

// ---- external data ----

TEST(ResourceLimits, HugeExternalInitializerIsRefusedWithoutReading) {
  t::GraphPb g;
  TensorPb w("w", kF, {int64_t{1} << 20, int64_t{1} << 20});
  w.external("weights.bin");
  g.initializers = {w.bytes()};
  g.nodes = {node("Identity", {"w"}, {"y"})};
  g.outputs = {value_info("y")};
  const std::string m = t::model(g.bytes());
  auto model = onnx::load_model_from_bytes(t::as_span(m), "ext.onnx", "/nonexistent-kiln-dir");
  ASSERT_FALSE(model.ok());
  expect_names(model.status(), {"'w'"});
}

}  // namespace
}  // namespace kiln
