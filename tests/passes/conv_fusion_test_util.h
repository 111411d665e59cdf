// Graph builder and CPU run helpers shared by the BN-folding and conv-fusion pass tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "ir/verifier.h"
#include "ops/type_inference.h"
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln::conv_fusion_test {

inline std::vector<float> randf(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

inline int64_t numel(const std::vector<int64_t>& s) {
  int64_t p = 1;
  for (int64_t d : s) p *= d;
  return p;
}

struct GraphBuilder {
  ir::Graph g;
  std::map<std::string, std::vector<int64_t>> input_shapes;
  uint32_t seed = 100;

  GraphBuilder() { g.opsets[""] = 17; }
  ir::Value* input(const std::string& name, std::vector<int64_t> shape) {
    ir::Value* v = g.add_value(name);
    v->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of(shape));
    v->is_graph_input = true;
    g.inputs.push_back(v);
    input_shapes[name] = shape;
    return v;
  }
  ir::Value* constant(const std::string& name, std::vector<int64_t> shape,
                      std::vector<float> data) {
    ir::Value* v = g.add_value(name);
    v->constant = std::make_shared<Tensor>(Tensor::from_vector<float>(shape, data));
    v->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of(shape));
    return v;
  }
  // A constant of random values in [lo, hi).
  ir::Value* random(const std::string& name, std::vector<int64_t> shape, float lo = -1.f,
                    float hi = 1.f) {
    return constant(name, shape, randf(numel(shape), seed++, lo, hi));
  }
  ir::Value* node(const std::string& op, std::vector<ir::Value*> inputs, const std::string& out,
                  std::vector<ir::Attribute> attrs = {}) {
    ir::Node* n = g.add_node(op, "", op + "_" + out);
    n->opset = 17;
    n->inputs = std::move(inputs);
    n->attrs = std::move(attrs);
    ir::Value* v = g.add_value(out);
    n->outputs.push_back(v);
    g.relink();
    return v;
  }
  // BatchNormalization with random parameters (variances positive).
  ir::Value* batch_norm(ir::Value* x, int64_t c, const std::string& out) {
    ir::Value* scale = random(out + "_scale", {c}, 0.5f, 1.5f);
    ir::Value* bias = random(out + "_bias", {c});
    ir::Value* mean = random(out + "_mean", {c});
    ir::Value* var = random(out + "_var", {c}, 0.1f, 2.f);
    return node("BatchNormalization", {x, scale, bias, mean, var}, out,
                {attr_float("epsilon", 1e-3f)});
  }
  void output(ir::Value* v) { g.outputs.push_back(v); }
  int count(const std::string& op) const {
    int c = 0;
    for (const auto& n : g.nodes()) c += n->op_type == op;
    return c;
  }
  const ir::Node* find(const std::string& op) const {
    for (const auto& n : g.nodes())
      if (n->op_type == op) return n.get();
    return nullptr;
  }

  // The attribute makers of pattern_test_util.h, under the names these tests use.
  static constexpr auto attr_int = &pattern_test::attr_int;
  static constexpr auto attr_float = &pattern_test::attr_float;
  static constexpr auto attr_ints = &pattern_test::attr_ints;

  // Random inputs for every graph input (same values for the same seed).
  std::map<std::string, Datum> feeds(uint32_t s) const {
    std::map<std::string, Datum> f;
    for (const auto& [name, shape] : input_shapes) {
      f[name] = Datum::of(Tensor::from_vector<float>(shape, randf(numel(shape), s++)));
    }
    return f;
  }
};

// Runs the graph on the CPU; every output flattened to float.
inline std::vector<std::vector<float>> run_cpu(const ir::Graph& g,
                                               const std::map<std::string, Datum>& feeds) {
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.ok()) << ex.status().to_string();
  if (!ex.ok()) return {};
  std::vector<std::pair<std::string, Datum>> in(feeds.begin(), feeds.end());
  auto outs = (*ex)->run(in);
  EXPECT_TRUE(outs.ok()) << outs.status().to_string();
  if (!outs.ok()) return {};
  std::vector<std::vector<float>> r;
  for (const Datum& d : *outs) {
    const Tensor& t = d.tensor;
    r.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  }
  return r;
}

// Runs `pass` with the verifier on (after type inference).
inline Status run_pass(passes::Pass p, ir::Graph& g) {
  KILN_RETURN_IF_ERROR(ops::infer_graph_types(g));
  KILN_RETURN_IF_ERROR(ir::verify_graph(g));
  passes::PassManager pm;
  pm.add(p);
  pm.set_verify(true);
  return pm.run(g);
}

// Max |a - b| / (1 + |b|) over all outputs.
inline double max_rel_diff(const std::vector<std::vector<float>>& a,
                           const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return INFINITY;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return INFINITY;
    for (size_t j = 0; j < a[i].size(); ++j) {
      d = std::max(d,
                   std::fabs(static_cast<double>(a[i][j]) - b[i][j]) / (1.0 + std::fabs(b[i][j])));
    }
  }
  return d;
}

}  // namespace kiln::conv_fusion_test
