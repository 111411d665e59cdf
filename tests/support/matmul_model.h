// Test support: small ONNX models of MatMul/Gemm + bias + activation (the chains the
// fuse_matmul_epilogue pass turns into kiln.FusedMatMul), written with Kiln's own wire writer.
// Input "x", output "y"; weights random in [-1, 1] (fixed seeds), stored in the model's dtype.
// compare_with_unfused_cpu builds an engine of such a model and compares it with the CPU engine
// of the unfused graph (Engine::from_onnx runs no fusions).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/builder.h"
#include "kiln/kiln.h"
#include "unit/onnx_builder.h"

namespace kiln::testing {

struct MatMulModel {
  std::string op = "MatMul";  // or "Gemm" (x must be 2-D)
  DType dtype = DType::kFloat32;
  std::vector<int64_t> x_shape;  // [..., K]
  int64_t n = 0;
  bool bias = true;
  std::string act;       // "", "Relu", "Gelu", "GeluTanh" (Gelu with approximate "tanh")
  bool trans_b = false;  // Gemm only: the weight stored [N, K]
};

inline std::string weight_pb(const std::string& name, const std::vector<int64_t>& shape, DType dt,
                             uint32_t seed) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = u(rng);
  const Tensor t = convert_tensor(Tensor::from_vector<float>(shape, v), dt).value();
  onnx::testing::TensorPb pb(name, static_cast<int32_t>(dt), shape);
  pb.raw(t.raw(), t.nbytes());
  return pb.bytes();
}

// The model's bytes.
inline std::string matmul_model_bytes(const MatMulModel& m) {
  namespace ot = onnx::testing;
  const int64_t k = m.x_shape.back();
  const int32_t elem = static_cast<int32_t>(m.dtype);
  ot::GraphPb g;
  g.name = "matmul_epilogue";
  const bool gemm = m.op == "Gemm";
  const std::vector<int64_t> w_shape =
      gemm && m.trans_b ? std::vector<int64_t>{m.n, k} : std::vector<int64_t>{k, m.n};
  g.initializers.push_back(weight_pb("w", w_shape, m.dtype, 7));
  if (m.bias) g.initializers.push_back(weight_pb("b", {m.n}, m.dtype, 8));
  const std::string last = m.act.empty() ? "y" : "pre";
  if (gemm) {
    std::vector<std::string> ins = {"x", "w"};
    if (m.bias) ins.push_back("b");
    g.nodes.push_back(ot::node("Gemm", ins, {last}, "gemm", {ot::attr_int("transB", m.trans_b)}));
  } else {
    g.nodes.push_back(ot::node("MatMul", {"x", "w"}, {m.bias ? "mm" : last}, "matmul"));
    if (m.bias) g.nodes.push_back(ot::node("Add", {"mm", "b"}, {last}, "bias"));
  }
  if (m.act == "Relu") {
    g.nodes.push_back(ot::node("Relu", {last}, {"y"}, "act"));
  } else if (m.act == "Gelu" || m.act == "GeluTanh") {
    g.nodes.push_back(
        ot::node("Gelu", {last}, {"y"}, "act",
                 {ot::attr_string("approximate", m.act == "Gelu" ? "none" : "tanh")}));
  }
  std::vector<ot::Dim> x_dims(m.x_shape.begin(), m.x_shape.end());
  std::vector<ot::Dim> y_dims = x_dims;
  y_dims.back() = m.n;
  g.inputs.push_back(ot::value_info("x", elem, x_dims));
  g.outputs.push_back(ot::value_info("y", elem, y_dims));
  return ot::model(g.bytes(), {ot::opset("", 20)});
}

// Writes the model to `path`; false on failure.
inline bool write_matmul_model(const MatMulModel& m, const std::string& path) {
  std::ofstream f(path, std::ios::binary);
  const std::string bytes = matmul_model_bytes(m);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

struct EngineComparison {
  Status status;            // why the comparison could not run
  double rel_error = 0;     // max |engine - reference| / max |reference|, in float
  int nodes = 0;            // top-level nodes of the engine (1: the chain fused)
  int nodes_on_device = 0;  // of them, placed on the build's device
};

inline HostTensor host_of(const Tensor& t) {
  HostTensor h = HostTensor::zeros(t.dtype(), t.shape());
  std::memcpy(h.data.data(), t.raw(), t.nbytes());
  return h;
}

inline StatusOr<Tensor> float_of(const HostTensor& h) {
  Tensor t = Tensor::zeros(h.dtype, h.shape);
  if (t.nbytes() != h.data.size()) return internal_error("output size mismatch");
  std::memcpy(t.mutable_raw(), h.data.data(), h.data.size());
  return convert_tensor(t, DType::kFloat32);
}

inline StatusOr<Tensor> run_engine(Engine& e, const HostTensor& x) {
  KILN_ASSIGN_OR_RETURN(auto ctx, e.create_context());
  KILN_RETURN_IF_ERROR(ctx->set_input("x", x));
  KILN_RETURN_IF_ERROR(ctx->execute());
  const HostTensor* y = ctx->output("y");
  if (y == nullptr) return internal_error("no output y");
  return float_of(*y);
}

// Builds `m` with `config`, runs it and the unfused CPU engine on the same random x (normal
// values, seed `seed`), and compares. The model is written under `dir` as `name`.onnx.
inline EngineComparison compare_with_unfused_cpu(const MatMulModel& m, const BuilderConfig& config,
                                                 const std::string& dir, const std::string& name,
                                                 uint32_t seed = 1) {
  EngineComparison r;
  const std::string path = dir + "/" + name + "_" + std::to_string(getpid()) + ".onnx";
  if (!write_matmul_model(m, path)) {
    r.status = internal_error("cannot write " + path);
    return r;
  }
  auto run_all = [&]() -> Status {
    BuildReport report;
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_engine(path, config, &report));
    r.nodes = report.nodes;
    r.nodes_on_device = report.nodes_on_device;
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, Engine::deserialize(bytes));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Engine> reference, Engine::from_onnx(path));
    int64_t count = 1;
    for (int64_t d : m.x_shape) count *= d;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> xv(static_cast<size_t>(count));
    for (float& v : xv) v = nd(rng);
    KILN_ASSIGN_OR_RETURN(Tensor xt,
                          convert_tensor(Tensor::from_vector<float>(m.x_shape, xv), m.dtype));
    const HostTensor x = host_of(xt);
    KILN_ASSIGN_OR_RETURN(Tensor got, run_engine(*engine, x));
    KILN_ASSIGN_OR_RETURN(Tensor want, run_engine(*reference, x));
    if (got.shape() != want.shape()) {
      return internal_error("shape " + got.type_string() + " vs " + want.type_string());
    }
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double a = got.data<float>()[i], b = want.data<float>()[i];
      diff = std::max(diff, std::isnan(a) != std::isnan(b) ? INFINITY : std::fabs(a - b));
      mag = std::max(mag, std::fabs(b));
    }
    r.rel_error = mag > 0 ? diff / mag : diff;
    return Status::Ok();
  };
  r.status = run_all();
  std::remove(path.c_str());
  return r;
}

}  // namespace kiln::testing
