// kiln.PackedAttention on the GPU: small ONNX models whose 3-D Attention reads Q, K, V from a
// last-axis Split of one tensor, or from three projections of one input (MatMul + Add with
// constant weights, as BERT exports them), built for CUDA (strict) so that fuse_packed_qkv makes
// a PackedAttention, against the unfused CPU engine of the same model (opt level 0: Split and
// Attention on the CPU reference, in float32). Covers the flash path reading Q/K/V in place
// (float16, head sizes it handles, grouped heads, causal, bool and float masks: the flash launch
// count rises by one per run) and the GEMM fallback (head size 16, which the flash kernel
// refuses, with Hq = Hkv (one permute) and grouped heads (three crops), and float32). Skipped
// (reported as skipped) without a usable GPU.
// Tolerances (max |diff| / max |reference|): float16 engines 2e-2 (inputs, weights and
// activations rounded to float16: 10-bit mantissa, through a projection and the attention);
// float32 (TF32 off) 1e-4.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
#include "backends/cuda/attention_flash.h"
#endif

namespace kiln {
namespace {

uint64_t flash_launches() {
#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
  return cuda::flash_attention_launch_count();
#else
  return 0;
#endif
}

enum class Mask { kNone, kFloat, kBool };

struct Case {
  bool projections = false;  // three MatMul + Add of X [B, S, E] (else Split of X)
  bool fp16 = true;
  int64_t b = 2, s = 77, hq = 4, hkv = 4, d = 64, e = 48;
  bool causal = false;
  Mask mask = Mask::kNone;  // bool [B, 1, 1, S] (padding) or float [S, S]
  std::string name() const {
    return std::string(projections ? "projections" : "split") + (fp16 ? " fp16" : " fp32") +
           " B=" + std::to_string(b) + " S=" + std::to_string(s) + " Hq=" + std::to_string(hq) +
           " Hkv=" + std::to_string(hkv) + " D=" + std::to_string(d) + (causal ? " causal" : "") +
           (mask == Mask::kBool    ? " bool-mask"
            : mask == Mask::kFloat ? " float-mask"
                                   : "");
  }
  int64_t width() const { return (hq + 2 * hkv) * d; }
};

std::vector<float> normal(int64_t n, std::mt19937& rng, float sd = 1.f) {
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

std::string model_bytes(const Case& c) {
  namespace ot = onnx::testing;
  ot::GraphPb g;
  g.name = "packed";
  const int32_t f32 = 1;
  std::mt19937 rng(3);
  std::vector<std::string> qkv = {"Q", "K", "V"};
  if (c.projections) {
    g.inputs.push_back(ot::value_info("X", f32, {c.b, c.s, c.e}));
    const int64_t n[3] = {c.hq * c.d, c.hkv * c.d, c.hkv * c.d};
    for (int i = 0; i < 3; ++i) {
      const std::string t = qkv[size_t(i)];
      g.initializers.push_back(
          ot::TensorPb("W" + t, f32, {c.e, n[i]}).floats(normal(c.e * n[i], rng, 0.3f)).bytes());
      g.initializers.push_back(
          ot::TensorPb("B" + t, f32, {n[i]}).floats(normal(n[i], rng, 0.1f)).bytes());
      g.nodes.push_back(ot::node("MatMul", {"X", "W" + t}, {"M" + t}, "mm_" + t));
      g.nodes.push_back(ot::node("Add", {"M" + t, "B" + t}, {t}, "add_" + t));
    }
  } else {
    g.inputs.push_back(ot::value_info("X", f32, {c.b, c.s, c.width()}));
    g.initializers.push_back(
        ot::TensorPb("sizes", 7, {3}).int64s({c.hq * c.d, c.hkv * c.d, c.hkv * c.d}).bytes());
    g.nodes.push_back(ot::node("Split", {"X", "sizes"}, qkv, "split", {ot::attr_int("axis", -1)}));
  }
  std::vector<std::string> ins = qkv;
  if (c.mask == Mask::kBool) {
    g.inputs.push_back(ot::value_info("M", 9, {c.b, 1, 1, c.s}));
    ins.push_back("M");
  } else if (c.mask == Mask::kFloat) {
    g.inputs.push_back(ot::value_info("M", f32, {c.s, c.s}));
    ins.push_back("M");
  }
  std::vector<std::string> attrs = {ot::attr_int("q_num_heads", c.hq),
                                    ot::attr_int("kv_num_heads", c.hkv)};
  if (c.causal) attrs.push_back(ot::attr_int("is_causal", 1));
  g.nodes.push_back(ot::node("Attention", ins, {"Y"}, "attention", attrs));
  g.outputs.push_back(ot::value_info("Y", f32, {c.b, c.s, c.hq * c.d}));
  return ot::model(g.bytes(), {ot::opset("", 23)});
}

std::vector<std::pair<std::string, HostTensor>> make_inputs(const Case& c) {
  std::mt19937 rng(7);
  std::vector<std::pair<std::string, HostTensor>> in;
  const std::vector<int64_t> xs = {c.b, c.s, c.projections ? c.e : c.width()};
  HostTensor x = HostTensor::zeros(DType::kFloat32, xs);
  const std::vector<float> xv = normal(x.numel(), rng);
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = xv[size_t(i)];
  in.emplace_back("X", x);
  if (c.mask == Mask::kBool) {  // the second sequence padded after 40 positions
    HostTensor m = HostTensor::zeros(DType::kBool, {c.b, 1, 1, c.s});
    for (int64_t i = 0; i < m.numel(); ++i) m.as<uint8_t>()[i] = i < c.s || i % c.s < 40 ? 1 : 0;
    in.emplace_back("M", m);
  } else if (c.mask == Mask::kFloat) {
    HostTensor m = HostTensor::zeros(DType::kFloat32, {c.s, c.s});
    std::uniform_real_distribution<float> u(-3.f, 3.f);
    for (int64_t i = 0; i < m.numel(); ++i) m.as<float>()[i] = u(rng);
    in.emplace_back("M", m);
  }
  return in;
}

StatusOr<HostTensor> run_y(Engine& e, const std::vector<std::pair<std::string, HostTensor>>& in) {
  KILN_ASSIGN_OR_RETURN(auto ctx, e.create_context());
  for (const auto& [name, t] : in) KILN_RETURN_IF_ERROR(ctx->set_input(name, t));
  KILN_RETURN_IF_ERROR(ctx->execute());
  const HostTensor* y = ctx->output("Y");
  if (y == nullptr) return internal_error("no output Y");
  return *y;
}

struct Outcome {
  Status status;
  double rel_error = 0;
  uint64_t launches = 0;
  int gpu_nodes = 0, ref_nodes = 0;
};

Outcome run_case(const Case& c) {
  Outcome r;
  static int id = 0;
  const std::string path = ::testing::TempDir() + "/packed_attention_" + std::to_string(getpid()) +
                           "_" + std::to_string(id++) + ".onnx";
  auto all = [&]() -> Status {
    {
      std::ofstream f(path, std::ios::binary);
      const std::string bytes = model_bytes(c);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!f) return internal_error("cannot write " + path);
    }
    BuilderConfig gc;
    gc.device = Device::kCuda;
    gc.strict = true;
    gc.tf32 = false;
    gc.fp16 = c.fp16;
    BuildReport gr;
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> gb, build_engine(path, gc, &gr));
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> gpu, Engine::deserialize(gb));
    BuilderConfig cc;
    cc.device = Device::kCpu;
    cc.opt_level = 0;  // unfused reference
    BuildReport cr;
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> cb, build_engine(path, cc, &cr));
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> cpu, Engine::deserialize(cb));
    r.gpu_nodes = gr.nodes;
    r.ref_nodes = cr.nodes;
    const auto in = make_inputs(c);
    const uint64_t before = flash_launches();
    KILN_ASSIGN_OR_RETURN(HostTensor got, run_y(*gpu, in));
    r.launches = flash_launches() - before;
    KILN_ASSIGN_OR_RETURN(HostTensor want, run_y(*cpu, in));
    if (got.numel() != want.numel() || got.dtype != DType::kFloat32) {
      return internal_error("output shape or dtype differs");
    }
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double a = got.as<float>()[i], b = want.as<float>()[i];
      diff = std::max(diff, std::isnan(a) ? INFINITY : std::fabs(a - b));
      mag = std::max(mag, std::fabs(b));
    }
    r.rel_error = mag > 0 ? diff / mag : diff;
    return Status::Ok();
  };
  r.status = all();
  std::remove(path.c_str());
  return r;
}

void expect_case(const Case& c, bool flash) {
  const Outcome r = run_case(c);
  ASSERT_TRUE(r.status.ok()) << c.name() << ": " << r.status.to_string();
  EXPECT_EQ(r.launches, flash ? 1u : 0u) << c.name();
  EXPECT_LE(r.rel_error, c.fp16 ? 2e-2 : 1e-4) << c.name();
  // Split + Attention → PackedAttention; three projections, their bias Adds and Attention →
  // FusedMatMul + PackedAttention. FP16 adds the Casts of X, Y and a float mask.
  const int fused = c.projections ? 2 : 1;
  const int casts = c.fp16 ? 2 + (c.mask == Mask::kFloat ? 1 : 0) : 0;
  EXPECT_EQ(r.gpu_nodes, fused + casts) << c.name();
  EXPECT_EQ(r.ref_nodes, c.projections ? 7 : 2) << c.name();
}

TEST(CudaPackedAttention, SplitFlash) {
  REQUIRE_GPU();
  Case c;
  expect_case(c, true);
  c.mask = Mask::kBool;
  expect_case(c, true);
  c.mask = Mask::kFloat;
  c.hkv = 2;  // grouped heads
  c.d = 32;
  expect_case(c, true);
  c.mask = Mask::kNone;
  c.causal = true;
  c.hkv = 1;
  c.d = 128;
  expect_case(c, true);
}

TEST(CudaPackedAttention, ProjectionsFlash) {
  REQUIRE_GPU();
  Case c;
  c.projections = true;
  c.mask = Mask::kBool;
  expect_case(c, true);
  c.hkv = 2;
  c.mask = Mask::kFloat;
  expect_case(c, true);
}

// Head size 16: the flash kernel refuses it; the GEMM path runs on copies.
TEST(CudaPackedAttention, FallbackHeadSize) {
  REQUIRE_GPU();
  Case c;
  c.d = 16;
  c.mask = Mask::kBool;
  expect_case(c, false);  // Hq = Hkv: one permute
  c.hkv = 2;
  c.causal = true;
  expect_case(c, false);  // grouped heads: three crops
  c.projections = true;
  c.mask = Mask::kFloat;
  expect_case(c, false);
}

TEST(CudaPackedAttention, FallbackFloat32) {
  REQUIRE_GPU();
  Case c;
  c.fp16 = false;
  c.mask = Mask::kBool;
  expect_case(c, false);
  c.projections = true;
  c.hkv = 2;
  expect_case(c, false);
}

}  // namespace
}  // namespace kiln
