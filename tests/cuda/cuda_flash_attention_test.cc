// The fused (flash) Attention kernel on the GPU: one-node ONNX Attention models built for CUDA
// (strict) against the CPU engine of the same model (the CPU kernel computes in double), over
// dtypes, head sizes, sequence lengths, batch and heads, grouped heads, causal masking, additive
// and bool masks of several broadcast shapes, fully masked rows, 3-D inputs and the scale
// attribute. Each case also checks that the fused kernel ran (or, for the cases it does not
// handle, that it did not). A timing test prints the fused kernel against the GEMM path
// (KILN_ATTENTION_FLASH=0) at the BERT-base and ViT-B/16 shapes. Skipped (reported as skipped)
// without a usable GPU.
// Tolerances (max |diff| / max |reference|; inputs normal, masks uniform in [-3, 3] with some
// -inf): float16 5e-3 (P rounded to float16 before P V, unit roundoff 2^-11, plus both outputs
// rounded to float16), bfloat16 3e-2 (the same with unit roundoff 2^-9). The GEMM path in the
// cases the fused kernel refuses is checked loosely (1e-1, float32 1e-3): its scores are rounded
// to the input dtype before the softmax; the conformance suite covers its semantics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda_backend.h"
#include "core/tensor.h"
#include "kiln/kiln.h"
#include "support/gpu_test_util.h"
#include "unit/onnx_builder.h"

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
#include <cuda_runtime_api.h>

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
using SeqPair = std::pair<int64_t, int64_t>;

struct Case {
  DType dtype = DType::kFloat16;
  int rank = 4;
  int64_t b = 1, hq = 1, hkv = 1, sq = 1, skv = 1, d = 64;
  int64_t dv = 0;  // 0: d
  bool causal = false;
  Mask mask = Mask::kNone;
  std::vector<int64_t> mask_shape;
  bool mask_first_row_off = false;  // the mask's first row (its first last-dim run) fully masked
  bool has_scale = false;
  float scale = 1.f;
  // Cases the fused kernel refuses.
  float softcap = 0.f;
  bool present = false;    // present_key / present_value outputs
  bool qk_output = false;  // qk_matmul_output
  int64_t past = 0;        // past_key / past_value of this length
  bool nonpad = false;     // nonpad_kv_seqlen (opset 24)

  int64_t v_head() const { return dv > 0 ? dv : d; }
  std::string name() const {
    std::string s = std::string(dtype_name(dtype)) + " rank" + std::to_string(rank) +
                    " B=" + std::to_string(b) + " Hq=" + std::to_string(hq) +
                    " Hkv=" + std::to_string(hkv) + " Sq=" + std::to_string(sq) +
                    " Skv=" + std::to_string(skv) + " D=" + std::to_string(d);
    if (dv > 0) s += " Dv=" + std::to_string(dv);
    if (causal) s += " causal";
    if (mask != Mask::kNone) {
      s += mask == Mask::kBool ? " bool-mask[" : " float-mask[";
      for (size_t i = 0; i < mask_shape.size(); ++i) {
        s += (i ? "," : "") + std::to_string(mask_shape[i]);
      }
      s += "]";
      if (mask_first_row_off) s += " first-row-off";
    }
    if (has_scale) s += " scale=" + std::to_string(scale);
    if (softcap > 0) s += " softcap";
    if (present) s += " present";
    if (qk_output) s += " qk";
    if (past > 0) s += " past=" + std::to_string(past);
    if (nonpad) s += " nonpad";
    return s;
  }
  std::vector<int64_t> q_shape() const {
    return rank == 4 ? std::vector<int64_t>{b, hq, sq, d} : std::vector<int64_t>{b, sq, hq * d};
  }
  std::vector<int64_t> k_shape() const {
    return rank == 4 ? std::vector<int64_t>{b, hkv, skv, d} : std::vector<int64_t>{b, skv, hkv * d};
  }
  std::vector<int64_t> v_shape() const {
    return rank == 4 ? std::vector<int64_t>{b, hkv, skv, v_head()}
                     : std::vector<int64_t>{b, skv, hkv * v_head()};
  }
  std::vector<int64_t> y_shape() const {
    return rank == 4 ? std::vector<int64_t>{b, hq, sq, v_head()}
                     : std::vector<int64_t>{b, sq, hq * v_head()};
  }
};

double tolerance(DType dt) {
  switch (dt) {
    case DType::kFloat16:
      return 5e-3;
    case DType::kBFloat16:
      return 3e-2;
    default:
      return 1e-3;
  }
}

std::string model_bytes(const Case& c) {
  namespace ot = onnx::testing;
  const int32_t elem = static_cast<int32_t>(c.dtype);
  ot::GraphPb g;
  g.name = "attention";
  auto dims = [](const std::vector<int64_t>& s) {
    return std::vector<ot::Dim>(s.begin(), s.end());
  };
  g.inputs.push_back(ot::value_info("Q", elem, dims(c.q_shape())));
  g.inputs.push_back(ot::value_info("K", elem, dims(c.k_shape())));
  g.inputs.push_back(ot::value_info("V", elem, dims(c.v_shape())));
  std::vector<std::string> ins = {"Q", "K", "V", "", "", "", ""};
  if (c.mask != Mask::kNone) {
    const int32_t me = c.mask == Mask::kBool ? static_cast<int32_t>(DType::kBool) : elem;
    g.inputs.push_back(ot::value_info("M", me, dims(c.mask_shape)));
    ins[3] = "M";
  }
  if (c.past > 0) {
    g.inputs.push_back(ot::value_info("PK", elem, {c.b, c.hkv, c.past, c.d}));
    g.inputs.push_back(ot::value_info("PV", elem, {c.b, c.hkv, c.past, c.v_head()}));
    ins[4] = "PK";
    ins[5] = "PV";
  }
  if (c.nonpad) {
    g.inputs.push_back(ot::value_info("NP", static_cast<int32_t>(DType::kInt64), {c.b}));
    ins[6] = "NP";
  }
  while (!ins.empty() && ins.back().empty()) ins.pop_back();
  std::vector<std::string> outs = {"Y"};
  g.outputs.push_back(ot::value_info("Y", elem, dims(c.y_shape())));
  const int64_t total = c.past + c.skv;
  if (c.present || c.qk_output) {
    outs.push_back(c.present ? "PKo" : "");
    outs.push_back(c.present ? "PVo" : "");
    if (c.present) {
      g.outputs.push_back(ot::value_info("PKo", elem, {c.b, c.hkv, total, c.d}));
      g.outputs.push_back(ot::value_info("PVo", elem, {c.b, c.hkv, total, c.v_head()}));
    }
  }
  if (c.qk_output) {
    outs.push_back("QK");
    g.outputs.push_back(ot::value_info("QK", elem, {c.b, c.hq, c.sq, total}));
  }
  std::vector<std::string> attrs;
  if (c.rank == 3) {
    attrs.push_back(ot::attr_int("q_num_heads", c.hq));
    attrs.push_back(ot::attr_int("kv_num_heads", c.hkv));
  }
  if (c.causal) attrs.push_back(ot::attr_int("is_causal", 1));
  if (c.has_scale) attrs.push_back(ot::attr_float("scale", c.scale));
  if (c.softcap > 0) attrs.push_back(ot::attr_float("softcap", c.softcap));
  g.nodes.push_back(ot::node("Attention", ins, outs, "attention", attrs));
  return ot::model(g.bytes(), {ot::opset("", c.nonpad ? 24 : 23)});
}

HostTensor host_of(const Tensor& t) {
  HostTensor h = HostTensor::zeros(t.dtype(), t.shape());
  std::memcpy(h.data.data(), t.raw(), t.nbytes());
  return h;
}

int64_t count_of(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t x : s) n *= x;
  return n;
}

// Normal values (or the given ones) rounded to dt.
HostTensor float_input(DType dt, const std::vector<int64_t>& shape, std::vector<float> v) {
  Tensor t = convert_tensor(Tensor::from_vector<float>(shape, v), dt).value();
  return host_of(t);
}
HostTensor normal_input(DType dt, const std::vector<int64_t>& shape, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(count_of(shape)));
  for (float& x : v) x = nd(rng);
  return float_input(dt, shape, std::move(v));
}

std::vector<std::pair<std::string, HostTensor>> make_inputs(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::pair<std::string, HostTensor>> in;
  in.emplace_back("Q", normal_input(c.dtype, c.q_shape(), rng));
  in.emplace_back("K", normal_input(c.dtype, c.k_shape(), rng));
  in.emplace_back("V", normal_input(c.dtype, c.v_shape(), rng));
  if (c.mask != Mask::kNone) {
    const int64_t n = count_of(c.mask_shape);
    const int64_t row = c.mask_shape.back();
    std::uniform_real_distribution<float> u(0.f, 1.f);
    if (c.mask == Mask::kBool) {
      HostTensor m = HostTensor::zeros(DType::kBool, c.mask_shape);
      for (int64_t i = 0; i < n; ++i) {
        const bool off = (c.mask_first_row_off && i < row) || u(rng) < 0.2f;
        m.as<uint8_t>()[i] = off ? 0 : 1;
      }
      in.emplace_back("M", m);
    } else {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const float r = u(rng);
        const bool off = (c.mask_first_row_off && i < row) || r < 0.15f;
        v[static_cast<size_t>(i)] = off ? -INFINITY : 6.f * u(rng) - 3.f;
      }
      in.emplace_back("M", float_input(c.dtype, c.mask_shape, std::move(v)));
    }
  }
  if (c.past > 0) {
    in.emplace_back("PK", normal_input(c.dtype, {c.b, c.hkv, c.past, c.d}, rng));
    in.emplace_back("PV", normal_input(c.dtype, {c.b, c.hkv, c.past, c.v_head()}, rng));
  }
  if (c.nonpad) {
    HostTensor np = HostTensor::zeros(DType::kInt64, {c.b});
    for (int64_t i = 0; i < c.b; ++i)
      np.as<int64_t>()[i] = std::max<int64_t>(1, c.past + c.skv - i);
    in.emplace_back("NP", np);
  }
  return in;
}

StatusOr<Tensor> run_y(Engine& e, const std::vector<std::pair<std::string, HostTensor>>& in) {
  KILN_ASSIGN_OR_RETURN(auto ctx, e.create_context());
  for (const auto& [name, t] : in) KILN_RETURN_IF_ERROR(ctx->set_input(name, t));
  KILN_RETURN_IF_ERROR(ctx->execute());
  const HostTensor* y = ctx->output("Y");
  if (y == nullptr) return internal_error("no output Y");
  Tensor t = Tensor::zeros(y->dtype, y->shape);
  std::memcpy(t.mutable_raw(), y->data.data(), y->data.size());
  return convert_tensor(t, DType::kFloat32);
}

struct Outcome {
  Status status;
  double rel_error = 0;   // max |gpu - cpu| / max |cpu| (absolute when the reference is all 0)
  uint64_t launches = 0;  // fused kernel launches during the GPU run
};

Outcome run_case(const Case& c, uint32_t seed = 1) {
  Outcome r;
  static int id = 0;
  const std::string path = ::testing::TempDir() + "/flash_attention_" + std::to_string(getpid()) +
                           "_" + std::to_string(id++) + ".onnx";
  auto all = [&]() -> Status {
    {
      std::ofstream f(path, std::ios::binary);
      const std::string bytes = model_bytes(c);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!f) return internal_error("cannot write " + path);
    }
    BuilderConfig config;
    config.device = Device::kCuda;
    config.strict = true;
    config.tf32 = false;
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_engine(path, config));
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> gpu, Engine::deserialize(bytes));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Engine> cpu, Engine::from_onnx(path));
    const auto in = make_inputs(c, seed);
    const uint64_t before = flash_launches();
    KILN_ASSIGN_OR_RETURN(Tensor got, run_y(*gpu, in));
    r.launches = flash_launches() - before;
    KILN_ASSIGN_OR_RETURN(Tensor want, run_y(*cpu, in));
    if (got.shape() != want.shape()) {
      return internal_error("shape " + got.type_string() + " vs " + want.type_string());
    }
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double a = got.data<float>()[i], b = want.data<float>()[i];
      diff = std::max(diff, std::isnan(a) != std::isnan(b) ? INFINITY : std::fabs(a - b));
      if (!std::isnan(b)) mag = std::max(mag, std::fabs(b));
    }
    r.rel_error = mag > 0 ? diff / mag : diff;
    return Status::Ok();
  };
  r.status = all();
  std::remove(path.c_str());
  return r;
}

// A case the fused kernel handles: it ran once and agrees with the CPU reference.
void expect_flash(const Case& c) {
  const Outcome r = run_case(c);
  ASSERT_TRUE(r.status.ok()) << c.name() << ": " << r.status.to_string();
  EXPECT_EQ(r.launches, 1u) << c.name();
  EXPECT_LE(r.rel_error, tolerance(c.dtype)) << c.name();
}

const DType kDtypes[] = {DType::kFloat16, DType::kBFloat16};
const int64_t kSeqs[] = {1, 7, 64, 128, 197, 300};

TEST(CudaFlashAttention, SequenceLengths) {
  REQUIRE_GPU();
  int i = 0;
  for (DType dt : kDtypes) {
    for (int64_t sq : kSeqs) {
      for (int64_t skv : kSeqs) {
        Case c;
        c.dtype = dt;
        c.b = 1 + i % 3;
        c.hq = c.hkv = 1 + (i / 3) % 4;
        c.sq = sq;
        c.skv = skv;
        c.d = 64;
        ++i;
        expect_flash(c);
      }
    }
  }
}

TEST(CudaFlashAttention, HeadSizes) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (int64_t d : {32, 64, 80, 96, 128}) {
      for (auto [sq, skv] :
           std::initializer_list<SeqPair>{{197, 197}, {7, 300}, {300, 7}, {1, 128}}) {
        Case c;
        c.dtype = dt;
        c.b = 2;
        c.hq = c.hkv = 3;
        c.sq = sq;
        c.skv = skv;
        c.d = d;
        expect_flash(c);
      }
    }
  }
}

TEST(CudaFlashAttention, HeadSize128Sequences) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (int64_t sq : {1, 64, 197, 300}) {
      for (int64_t skv : {7, 128, 300}) {
        Case c;
        c.dtype = dt;
        c.b = 1;
        c.hq = c.hkv = 2;
        c.sq = sq;
        c.skv = skv;
        c.d = 128;
        expect_flash(c);
      }
    }
  }
}

TEST(CudaFlashAttention, GroupedHeadsAndCausal) {
  REQUIRE_GPU();
  const SeqPair seqs[] = {{1, 1}, {7, 7}, {128, 128}, {197, 197}, {64, 300}, {300, 64}, {1, 300}};
  for (DType dt : kDtypes) {
    for (auto [hq, hkv] : std::initializer_list<SeqPair>{{4, 2}, {4, 1}, {3, 3}}) {
      for (bool causal : {false, true}) {
        for (auto [sq, skv] : seqs) {
          Case c;
          c.dtype = dt;
          c.b = 2;
          c.hq = hq;
          c.hkv = hkv;
          c.sq = sq;
          c.skv = skv;
          c.d = 64;
          c.causal = causal;
          expect_flash(c);
        }
      }
    }
  }
}

// Mask shapes for B=2, H=3: [Skv], [Sq, Skv], [B, 1, 1, Skv], [1, H, Sq, Skv], [B, H, Sq, Skv],
// [B, 1, Sq, Skv], and a mask shorter than the keys ([Sq, Skv - 3]: the rest masked).
std::vector<std::vector<int64_t>> mask_shapes(int64_t b, int64_t h, int64_t sq, int64_t skv) {
  std::vector<std::vector<int64_t>> s = {{skv},           {sq, skv},       {b, 1, 1, skv},
                                         {1, h, sq, skv}, {b, h, sq, skv}, {b, 1, sq, skv}};
  if (skv > 3) s.push_back({sq, skv - 3});
  return s;
}

void mask_sweep(Mask kind) {
  const SeqPair seqs[] = {{1, 7}, {7, 7}, {64, 64}, {128, 128}, {197, 197}, {300, 130}, {65, 300}};
  for (DType dt : kDtypes) {
    for (auto [sq, skv] : seqs) {
      for (const auto& shape : mask_shapes(2, 3, sq, skv)) {
        for (int variant = 0; variant < 2; ++variant) {
          Case c;
          c.dtype = dt;
          c.b = 2;
          c.hq = 3;
          c.hkv = 3;
          c.sq = sq;
          c.skv = skv;
          c.d = variant == 0 ? 64 : 128;
          c.mask = kind;
          c.mask_shape = shape;
          c.causal = variant == 1;
          c.mask_first_row_off = variant == 1;
          expect_flash(c);
        }
      }
    }
  }
}

TEST(CudaFlashAttention, AdditiveMasks) {
  REQUIRE_GPU();
  mask_sweep(Mask::kFloat);
}

TEST(CudaFlashAttention, BoolMasks) {
  REQUIRE_GPU();
  mask_sweep(Mask::kBool);
}

// Every key masked: [Skv] of -inf (all rows), and rows masked only by the mask's first row.
TEST(CudaFlashAttention, FullyMaskedRowsGiveZeros) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (Mask kind : {Mask::kFloat, Mask::kBool}) {
      for (auto shape : std::vector<std::vector<int64_t>>{{70}, {1, 1, 1, 70}, {2, 1, 1, 70}}) {
        Case c;
        c.dtype = dt;
        c.b = 2;
        c.hq = c.hkv = 2;
        c.sq = 5;
        c.skv = 70;
        c.mask = kind;
        c.mask_shape = shape;
        c.mask_first_row_off = true;
        expect_flash(c);
      }
    }
  }
}

TEST(CudaFlashAttention, ThreeDimensionalInputs) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (auto [hq, hkv] : std::initializer_list<SeqPair>{{4, 4}, {4, 2}, {2, 1}}) {
      for (int64_t d : {64, 128, 80}) {
        for (int variant = 0; variant < 3; ++variant) {
          Case c;
          c.dtype = dt;
          c.rank = 3;
          c.b = 3;
          c.hq = hq;
          c.hkv = hkv;
          c.sq = variant == 0 ? 197 : 7;
          c.skv = variant == 0 ? 197 : 300;
          c.d = d;
          c.causal = variant == 2;
          if (variant >= 1) {
            c.mask = variant == 1 ? Mask::kFloat : Mask::kBool;
            c.mask_shape = {c.b, 1, 1, c.skv};
          }
          expect_flash(c);
        }
      }
    }
  }
}

TEST(CudaFlashAttention, ScaleAttribute) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (float scale : {0.3f, 1.f, 0.01f}) {
      Case c;
      c.dtype = dt;
      c.b = 2;
      c.hq = c.hkv = 2;
      c.sq = 128;
      c.skv = 128;
      c.has_scale = true;
      c.scale = scale;
      c.mask = Mask::kFloat;
      c.mask_shape = {c.b, 1, 1, c.skv};
      expect_flash(c);
    }
  }
}

// The exported BERT and ViT shapes at small batch, several random inputs.
TEST(CudaFlashAttention, BertAndVitShapes) {
  REQUIRE_GPU();
  for (DType dt : kDtypes) {
    for (uint32_t seed : {1u, 2u}) {
      Case bert;
      bert.dtype = dt;
      bert.b = 3;
      bert.hq = bert.hkv = 12;
      bert.sq = bert.skv = 128;
      bert.mask = Mask::kFloat;
      bert.mask_shape = {3, 1, 1, 128};
      Outcome r = run_case(bert, seed);
      ASSERT_TRUE(r.status.ok()) << r.status.to_string();
      EXPECT_EQ(r.launches, 1u) << bert.name();
      EXPECT_LE(r.rel_error, tolerance(dt)) << bert.name();
      Case vit = bert;
      vit.sq = vit.skv = 197;
      vit.mask = Mask::kNone;
      r = run_case(vit, seed);
      ASSERT_TRUE(r.status.ok()) << r.status.to_string();
      EXPECT_EQ(r.launches, 1u) << vit.name();
      EXPECT_LE(r.rel_error, tolerance(dt)) << vit.name();
    }
  }
}

// Cases the fused kernel does not handle run the GEMM path (and still agree with the CPU).
TEST(CudaFlashAttention, NotTakenForUnhandledCases) {
  REQUIRE_GPU();
  Case base;
  base.b = 2;
  base.hq = base.hkv = 2;
  base.sq = 7;
  base.skv = 33;
  std::vector<Case> cases;
  Case c = base;
  c.dtype = DType::kFloat32;
  cases.push_back(c);
  c = base;
  c.d = 48;  // head size not handled
  cases.push_back(c);
  c = base;
  c.d = 16;
  cases.push_back(c);
  c = base;
  c.dv = 32;  // V's head size differs
  cases.push_back(c);
  c = base;
  c.present = true;
  cases.push_back(c);
  c = base;
  c.qk_output = true;
  cases.push_back(c);
  c = base;
  c.past = 5;
  cases.push_back(c);
  c = base;
  c.softcap = 5.f;
  cases.push_back(c);
  c = base;
  c.nonpad = true;
  cases.push_back(c);
  for (Case& k : cases) {
    for (DType dt : {k.dtype, DType::kBFloat16}) {
      if (k.dtype == DType::kFloat32 && dt == DType::kBFloat16) continue;
      k.dtype = dt;
      const Outcome r = run_case(k);
      ASSERT_TRUE(r.status.ok()) << k.name() << ": " << r.status.to_string();
      EXPECT_EQ(r.launches, 0u) << k.name();
      EXPECT_LE(r.rel_error, k.dtype == DType::kFloat32 ? 1e-3 : 1e-1) << k.name();
    }
  }
  // KILN_ATTENTION_FLASH=0 forces the GEMM path.
  setenv("KILN_ATTENTION_FLASH", "0", 1);
  const Outcome r = run_case(base);
  unsetenv("KILN_ATTENTION_FLASH");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.launches, 0u);
  EXPECT_LE(r.rel_error, 1e-1);
}

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
// Prints (asserts nothing about speed) the time of one Attention node at the BERT-base shape
// (B=64, H=12, S=128, D=64, additive mask [B, 1, 1, 128]) and the ViT-B/16 shape (S=197, no
// mask), float16, the fused kernel against the GEMM path; inputs bound on the device; runs
// enqueued back to back, with and without CUDA graphs, timed with events on the stream.
double time_engine(Engine& e, const Case& c, bool flash, bool graphs, int iters) {
  if (flash) {
    unsetenv("KILN_ATTENTION_FLASH");
  } else {
    setenv("KILN_ATTENTION_FLASH", "0", 1);
  }
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok());
  if (!ctx.ok()) return -1;
  (*ctx)->set_cuda_graph(graphs);
  std::vector<void*> buffers;
  auto bind = [&](const char* name, DType dt, const std::vector<int64_t>& shape) {
    void* p = nullptr;
    const size_t bytes = static_cast<size_t>(count_of(shape)) * dtype_storage_bytes(dt, 1);
    EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, 0, bytes), cudaSuccess);
    buffers.push_back(p);
    EXPECT_TRUE((*ctx)->set_input_device(name, DeviceTensorView{p, dt, shape}).ok()) << name;
  };
  bind("Q", c.dtype, c.q_shape());
  bind("K", c.dtype, c.k_shape());
  bind("V", c.dtype, c.v_shape());
  if (c.mask != Mask::kNone) bind("M", c.dtype, c.mask_shape);
  auto stream = static_cast<cudaStream_t>((*ctx)->stream());
  double ms = -1;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*ctx)->enqueue(nullptr).ok());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < iters; ++i) EXPECT_TRUE((*ctx)->enqueue(nullptr).ok());
  cudaEventRecord(stop, stream);
  if (cudaEventSynchronize(stop) == cudaSuccess) {
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms = t / iters;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  for (void* p : buffers) cudaFree(p);
  unsetenv("KILN_ATTENTION_FLASH");
  return ms;
}

TEST(CudaFlashAttention, PrintsTimeAgainstTheGemmPath) {
  REQUIRE_GPU();
  Case bert;
  bert.dtype = DType::kFloat16;
  bert.b = 64;
  bert.hq = bert.hkv = 12;
  bert.sq = bert.skv = 128;
  bert.mask = Mask::kFloat;
  bert.mask_shape = {64, 1, 1, 128};
  Case vit = bert;
  vit.sq = vit.skv = 197;
  vit.mask = Mask::kNone;
  Case bert1 = bert;
  bert1.b = 1;
  bert1.mask_shape = {1, 1, 1, 128};
  for (const Case& c : {bert, vit, bert1}) {
    const std::string path =
        ::testing::TempDir() + "/flash_attention_timing_" + std::to_string(getpid()) + ".onnx";
    {
      std::ofstream f(path, std::ios::binary);
      const std::string bytes = model_bytes(c);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    BuilderConfig config;
    config.device = Device::kCuda;
    config.strict = true;
    auto bytes = build_engine(path, config);
    std::remove(path.c_str());
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    auto engine = Engine::deserialize(*bytes);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    const uint64_t before = flash_launches();
    const double flash = time_engine(**engine, c, true, false, 50);
    const uint64_t flash_runs = flash_launches() - before;
    const double gemm = time_engine(**engine, c, false, false, 50);
    EXPECT_EQ(flash_runs, 55u);
    std::printf("[ timing ] %s, enqueue: fused %.4f ms, GEMM path %.4f ms (%.2fx)\n",
                c.name().c_str(), flash, gemm, flash > 0 ? gemm / flash : 0.0);
    // CUDA graph replay (no host work between runs; each replay also copies the bound inputs
    // into the graph's addresses, the same for both paths).
    const double flash_g = time_engine(**engine, c, true, true, 50);
    const double gemm_g = time_engine(**engine, c, false, true, 50);
    std::printf("[ timing ] %s, graph: fused %.4f ms, GEMM path %.4f ms (%.2fx)\n",
                c.name().c_str(), flash_g, gemm_g, flash_g > 0 ? gemm_g / flash_g : 0.0);
  }
}
#endif

}  // namespace
}  // namespace kiln
