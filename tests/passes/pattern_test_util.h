// Graph builder and CPU comparison helpers for the pattern-fusion tests (fuse_layer_norm,
// fuse_gelu, fuse_attention).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "ir/verifier.h"
#include "ops/type_inference.h"
#include "passes/pass_manager.h"

namespace kiln::pattern_test {

inline ir::Attribute attr_int(const std::string& name, int64_t v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInt;
  a.i = v;
  return a;
}
inline ir::Attribute attr_float(const std::string& name, float v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kFloat;
  a.f = v;
  return a;
}
inline ir::Attribute attr_ints(const std::string& name, std::vector<int64_t> v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInts;
  a.ints = std::move(v);
  return a;
}

struct Builder {
  ir::Graph g;
  explicit Builder(int64_t opset = 17) { g.opsets[""] = opset; }
  // A float32 input of a known shape (the shape the tests feed).
  ir::Value* input(const std::string& name, std::vector<int64_t> shape) {
    ir::Value* v = g.add_value(name);
    v->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of(shape));
    v->is_graph_input = true;
    g.inputs.push_back(v);
    inputs.push_back({name, shape});
    return v;
  }
  // A float32 input typed with `dims` (symbols, unknown dims) that the tests feed as run_shape.
  ir::Value* input_dims(const std::string& name, std::vector<ir::Dim> dims,
                        std::vector<int64_t> run_shape) {
    ir::Value* v = input(name, run_shape);
    v->type.shape.dims = std::move(dims);
    return v;
  }
  ir::Value* constant(const std::string& name, std::vector<int64_t> shape,
                      std::vector<float> data) {
    ir::Value* v = g.add_value(name);
    v->constant = std::make_shared<Tensor>(Tensor::from_vector<float>(shape, data));
    v->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of(shape));
    return v;
  }
  ir::Value* scalar(const std::string& name, float x) { return constant(name, {}, {x}); }
  ir::Value* ints(const std::string& name, std::vector<int64_t> data) {
    ir::Value* v = g.add_value(name);
    v->constant = std::make_shared<Tensor>(
        Tensor::from_vector<int64_t>({static_cast<int64_t>(data.size())}, data));
    v->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({int64_t(data.size())}));
    return v;
  }
  ir::Node* last = nullptr;
  ir::Value* node(const std::string& op, std::vector<ir::Value*> ins, const std::string& out,
                  std::vector<ir::Attribute> attrs = {}) {
    ir::Node* n = g.add_node(op, "", op + "_" + out);
    n->inputs = std::move(ins);
    n->attrs = std::move(attrs);
    ir::Value* v = g.add_value(out);
    n->outputs.push_back(v);
    g.relink();
    last = n;
    return v;
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
  std::vector<std::pair<std::string, std::vector<int64_t>>> inputs;
};

// Random feeds (seeded) for every graph input, in [-2, 2).
inline std::vector<std::pair<std::string, Datum>> random_feeds(const Builder& b, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  std::vector<std::pair<std::string, Datum>> feeds;
  for (const auto& [name, shape] : b.inputs) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> data(static_cast<size_t>(n));
    for (float& x : data) x = dist(rng);
    feeds.push_back({name, Datum::of(Tensor::from_vector<float>(shape, data))});
  }
  return feeds;
}

// Runs the graph on the CPU; the outputs as float vectors.
inline std::vector<std::vector<float>> run_cpu(
    const ir::Graph& g, const std::vector<std::pair<std::string, Datum>>& f) {
  std::vector<std::vector<float>> out;
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.ok()) << ex.status().to_string();
  if (!ex.ok()) return out;
  auto outs = (*ex)->run(f);
  EXPECT_TRUE(outs.ok()) << outs.status().to_string();
  if (!outs.ok()) return out;
  for (const Datum& d : *outs) {
    const Tensor& t = d.tensor;
    EXPECT_EQ(t.dtype(), DType::kFloat32);
    out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  }
  return out;
}

// Runs one pass (verifying after it), like the PassManager does in a build.
inline Status run_pass(passes::Pass p, ir::Graph& g) {
  passes::PassManager pm;
  pm.add(p);
  pm.set_verify(true);
  KILN_RETURN_IF_ERROR(ir::verify_graph(g));
  return pm.run(g);
}

// Outputs agree within float rounding: |a - b| <= atol + rtol * |b| (or both NaN).
inline void expect_close(const std::vector<std::vector<float>>& a,
                         const std::vector<std::vector<float>>& b, float atol = 1e-5f,
                         float rtol = 1e-4f) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].size(), b[k].size());
    for (size_t i = 0; i < a[k].size(); ++i) {
      if (std::isnan(a[k][i]) && std::isnan(b[k][i])) continue;
      ASSERT_LE(std::fabs(a[k][i] - b[k][i]), atol + rtol * std::fabs(b[k][i]))
          << "output " << k << " element " << i << ": " << a[k][i] << " vs " << b[k][i];
    }
  }
}

// Infers types, runs `pass` and compares CPU outputs before and after on random inputs.
inline void check_pass(Builder& b, passes::Pass pass) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = random_feeds(b, 7);
  const auto before = run_cpu(b.g, feeds);
  Status st = run_pass(pass, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const auto after = run_cpu(b.g, feeds);
  expect_close(after, before);
}

}  // namespace kiln::pattern_test
