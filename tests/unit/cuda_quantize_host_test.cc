// The CUDA quantization kernels' element math (src/backends/cuda/quantize_convert.h), run on the
// host over every output unit exactly as the kernels do, against the CPU kernels
// (src/backends/cpu/misc_quantize.cc through the op harness): bit for bit, for every target
// dtype, every scale dtype, zero points present or not, per-tensor, per-axis and blocked scales,
// `saturate`, `output_dtype` and `precision`. The header compiles without CUDA.
#include "backends/cuda/quantize_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "support/op_harness.h"

namespace kiln {
namespace {

namespace quant = cuda::quant;
using testing::attr_int;
using testing::OpRun;
using testing::run_op;

const std::vector<int64_t> kShape{3, 5, 7};  // 105 elements: packed outputs end mid-byte

// A tensor of `t` and `shape` with random raw bytes (every code of small types, NaN payloads).
Tensor random_raw(DType t, std::vector<int64_t> shape, std::mt19937_64& rng) {
  Tensor x = Tensor::zeros(t, std::move(shape));
  auto* p = static_cast<uint8_t*>(x.mutable_raw());
  for (uint64_t k = 0; k < x.nbytes(); ++k) p[k] = static_cast<uint8_t>(rng());
  return x;
}

// x values that exercise rounding: halves of the scales, large values, signed zeros, infinity,
// NaN, then random magnitudes.
Tensor x_values(DType t, std::mt19937_64& rng) {
  Tensor d = Tensor::zeros(DType::kFloat64, kShape);
  double* p = d.mutable_data<double>();
  const double specials[] = {0.0,  -0.0, 0.5,  -0.5,  1.5,   2.5,  -2.5,     3.0,       0.25,
                             0.75, 1e9,  -1e9, 448.0, 464.0, 1e30, INFINITY, -INFINITY, NAN};
  for (int64_t i = 0; i < d.numel(); ++i) {
    if (i < static_cast<int64_t>(std::size(specials))) {
      p[i] = specials[i];
    } else if (i % 2 == 0) {
      p[i] = (static_cast<double>(rng() % 4001) - 2000.0) / 4.0;  // quarters: exact halves
    } else {
      p[i] =
          std::ldexp(static_cast<double>(rng() % 2001) - 1000.0, static_cast<int>(rng() % 24) - 12);
    }
  }
  if (t == DType::kInt32) {
    for (int64_t i = 0; i < d.numel(); ++i) {
      if (!std::isfinite(p[i])) p[i] = static_cast<double>(static_cast<int32_t>(rng()));
    }
  }
  return convert_tensor(d, t, true).value();
}

Tensor scale_values(DType t, std::vector<int64_t> shape, std::mt19937_64& rng) {
  Tensor d = Tensor::zeros(DType::kFloat64, std::move(shape));
  double* p = d.mutable_data<double>();
  const double choices[] = {0.5, 2.0, 0.1, 3.0, 1e-3, 0.7, 1.0, 0.25, 1.0 / 3.0, 6.0, 1e-20, 17.0};
  for (int64_t i = 0; i < d.numel(); ++i) p[i] = choices[rng() % std::size(choices)];
  return convert_tensor(d, t, true).value();
}

struct Layout {
  const char* name;
  std::vector<int64_t> scale_shape;
  std::vector<ir::Attribute> attrs;
  quant::ScaleMap map;
};

std::vector<Layout> layouts() {
  std::vector<Layout> v;
  v.push_back({"per-tensor", {}, {}, {}});
  Layout axis{"per-axis", {5}, {attr_int("axis", 1)}, {}};
  axis.map.kind = quant::ScaleMap::kAxis;
  axis.map.dim = 5;
  axis.map.inner = 7;
  v.push_back(axis);
  Layout blocked{"blocked", {3, 5, 3}, {attr_int("axis", 2), attr_int("block_size", 3)}, {}};
  blocked.map.kind = quant::ScaleMap::kBlocked;
  blocked.map.dim = 7;
  blocked.map.inner = 1;
  blocked.map.block = 3;
  blocked.map.scale_dim = 3;
  v.push_back(blocked);
  return v;
}

constexpr DType kPlainFloats[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                  DType::kFloat64};

std::string first_difference(const Tensor& want, const std::vector<uint8_t>& got) {
  if (want.nbytes() != got.size()) return "size differs";
  for (size_t k = 0; k < got.size(); ++k) {
    const uint8_t w = static_cast<const uint8_t*>(want.raw())[k];
    if (w != got[k]) {
      return "byte " + std::to_string(k) + ": want " + std::to_string(w) + " got " +
             std::to_string(got[k]);
    }
  }
  return {};
}

TEST(CudaQuantizeHost, QuantizeLinearMatchesCpu) {
  const DType outs[] = {DType::kInt8,           DType::kUInt8,      DType::kInt16,
                        DType::kUInt16,         DType::kInt4,       DType::kUInt4,
                        DType::kInt2,           DType::kUInt2,      DType::kFloat8E4M3FN,
                        DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2, DType::kFloat8E5M2FNUZ,
                        DType::kFloat4E2M1,     DType::kFloat8E8M0};
  const DType xs[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64,
                      DType::kInt32};
  const int64_t precisions[] = {0, 1, 10, 16, 11};  // scale's, float32, float16, bfloat16, double
  std::mt19937_64 rng(3);
  int runs = 0, k = 0;
  for (DType out : outs) {
    for (DType xt : xs) {
      for (const Layout& lay : layouts()) {
        for (int variant = 0; variant < 2; ++variant, ++k) {
          const DType st = kPlainFloats[k % 4];
          const bool sat = (k / 4) % 2 == 0;
          const int64_t prec = precisions[k % 5];
          const bool with_zp = variant == 0 || out == DType::kUInt8;
          Tensor x = x_values(xt, rng);
          Tensor scale = scale_values(st, lay.scale_shape, rng);
          Tensor zp = random_raw(out, lay.scale_shape, rng);
          OpRun run{"QuantizeLinear", {Datum::of(x), Datum::of(scale)}, lay.attrs, 1, 25};
          if (with_zp) run.inputs.push_back(Datum::of(zp));
          if (!with_zp || variant == 1) {
            run.attrs.push_back(attr_int("output_dtype", static_cast<int64_t>(out)));
          }
          run.attrs.push_back(attr_int("saturate", sat ? 1 : 0));
          if (prec != 0) run.attrs.push_back(attr_int("precision", prec));
          auto cpu = run_op(run);
          ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
          const Tensor& want = (*cpu)[0].tensor;
          ASSERT_EQ(want.dtype(), out);

          quant::QuantArgs a;
          a.x = x.raw();
          a.xt = xt;
          a.scale = scale.raw();
          a.st = st;
          a.zp = with_zp ? zp.raw() : nullptr;
          a.zt = out;
          a.yt = out;
          a.n = x.numel();
          a.map = lay.map;
          a.prec = prec == 0 ? st : static_cast<DType>(prec);
          a.int_out = is_integer(out);
          switch (out) {
            case DType::kInt8:
              a.lo = -128;
              a.hi = 127;
              break;
            case DType::kUInt8:
              a.lo = 0;
              a.hi = 255;
              break;
            case DType::kInt16:
              a.lo = -32768;
              a.hi = 32767;
              break;
            case DType::kUInt16:
              a.lo = 0;
              a.hi = 65535;
              break;
            case DType::kInt4:
              a.lo = -8;
              a.hi = 7;
              break;
            case DType::kUInt4:
              a.lo = 0;
              a.hi = 15;
              break;
            case DType::kInt2:
              a.lo = -2;
              a.hi = 1;
              break;
            case DType::kUInt2:
              a.lo = 0;
              a.hi = 3;
              break;
            default:
              break;
          }
          a.cast.saturate = sat;
          std::vector<uint8_t> got(want.nbytes(), 0xAB);
          a.y = got.data();
          for (int64_t u = 0; u < quant::units_of(a); ++u) quant::quantize_unit(a, u);
          ASSERT_EQ(first_difference(want, got), "")
              << dtype_name(xt) << " -> " << dtype_name(out) << " " << lay.name << " scale "
              << dtype_name(st) << " zp " << with_zp << " saturate " << sat << " precision "
              << prec;
          ++runs;
        }
      }
    }
  }
  EXPECT_EQ(runs, 14 * 5 * 3 * 2);
}

TEST(CudaQuantizeHost, DequantizeLinearMatchesCpu) {
  const DType xs[] = {DType::kInt8,           DType::kUInt8,          DType::kInt16,
                      DType::kUInt16,         DType::kInt32,          DType::kInt4,
                      DType::kUInt4,          DType::kInt2,           DType::kUInt2,
                      DType::kFloat8E4M3FN,   DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2,
                      DType::kFloat8E5M2FNUZ, DType::kFloat4E2M1,     DType::kFloat8E8M0};
  const int64_t out_attrs[] = {0, 1, 10, 16, 11};
  std::mt19937_64 rng(5);
  int runs = 0, k = 0;
  for (DType xt : xs) {
    for (const Layout& lay : layouts()) {
      for (int variant = 0; variant < 4; ++variant, ++k) {
        const DType st = kPlainFloats[k % 4];
        const int64_t out_attr = out_attrs[k % 5];
        const bool with_zp = variant % 2 == 0;
        Tensor x = random_raw(xt, kShape, rng);
        Tensor scale = scale_values(st, lay.scale_shape, rng);
        Tensor zp = random_raw(xt, lay.scale_shape, rng);
        OpRun run{"DequantizeLinear", {Datum::of(x), Datum::of(scale)}, lay.attrs, 1, 25};
        if (with_zp) run.inputs.push_back(Datum::of(zp));
        if (out_attr != 0) run.attrs.push_back(attr_int("output_dtype", out_attr));
        auto cpu = run_op(run);
        ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
        const Tensor& want = (*cpu)[0].tensor;

        quant::QuantArgs a;
        a.x = x.raw();
        a.xt = xt;
        a.scale = scale.raw();
        a.st = st;
        a.zp = with_zp ? zp.raw() : nullptr;
        a.zt = xt;
        a.yt = out_attr == 0 ? st : static_cast<DType>(out_attr);
        a.n = x.numel();
        a.map = lay.map;
        ASSERT_EQ(want.dtype(), a.yt);
        std::vector<uint8_t> got(want.nbytes(), 0xAB);
        a.y = got.data();
        for (int64_t u = 0; u < quant::units_of(a); ++u) quant::dequantize_unit(a, u);
        ASSERT_EQ(first_difference(want, got), "")
            << dtype_name(xt) << " " << lay.name << " scale " << dtype_name(st) << " zp " << with_zp
            << " output_dtype " << out_attr;
        ++runs;
      }
    }
  }
  EXPECT_EQ(runs, 15 * 3 * 4);
}

TEST(CudaQuantizeHost, DynamicQuantizeLinearMatchesCpu) {
  std::mt19937_64 rng(9);
  for (int c = 0; c < 60; ++c) {
    std::vector<float> x(static_cast<size_t>(1 + rng() % 300));
    const int kind = c % 6;
    for (float& v : x) {
      const float r = static_cast<float>(static_cast<double>(rng() % 100001) / 100000.0);
      switch (kind) {
        case 0:
          v = (r - 0.5f) * 20.f;
          break;  // both signs
        case 1:
          v = r * 7.f;
          break;  // non-negative: min is 0
        case 2:
          v = -r * 0.01f;
          break;  // non-positive: max is 0
        case 3:
          v = 0.f;
          break;  // scale 0
        case 4:
          v = (r - 0.3f) * 1e30f;
          break;  // large
        default:
          v = std::ldexp(r - 0.5f, -120);
          break;  // tiny
      }
    }
    OpRun run{"DynamicQuantizeLinear",
              {testing::tensor_of<float>({static_cast<int64_t>(x.size())}, x)},
              {},
              3,
              11};
    auto cpu = run_op(run);
    ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
    float mn = 0.f, mx = 0.f;
    // The GPU folds in another order (per block, then a tree); min and max do not care.
    for (size_t i = x.size(); i-- > 0;) {
      mn = quant::fold_min(mn, x[i]);
      mx = quant::fold_max(mx, x[i]);
    }
    const quant::DynamicParams p = quant::dynamic_params(mn, mx);
    const Tensor& y = (*cpu)[0].tensor;
    ASSERT_EQ(cuda::cvt::bits32(p.scale), cuda::cvt::bits32((*cpu)[1].tensor.data<float>()[0]))
        << "case " << c;
    ASSERT_EQ(static_cast<uint8_t>(p.zp), (*cpu)[2].tensor.data<uint8_t>()[0]) << "case " << c;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(quant::dynamic_quantize(x[i], p), y.data<uint8_t>()[i]) << "case " << c << " " << i;
    }
  }
}

TEST(CudaQuantizeHost, RoundingAndSaturationHelpers) {
  // Half to even, zero point added after rounding, clamped to the target's range; NaN gives 0.
  EXPECT_EQ(quant::quantize_int(5.0, 2.0, 0.0, DType::kFloat32, -128, 127), 2);
  EXPECT_EQ(quant::quantize_int(7.0, 2.0, 0.0, DType::kFloat32, -128, 127), 4);
  EXPECT_EQ(quant::quantize_int(-5.0, 2.0, 10.0, DType::kFloat32, -128, 127), 8);
  EXPECT_EQ(quant::quantize_int(1e9, 1.0, 0.0, DType::kFloat32, -8, 7), 7);
  EXPECT_EQ(quant::quantize_int(-1e9, 1.0, 0.0, DType::kFloat32, -2, 1), -2);
  EXPECT_EQ(quant::quantize_int(NAN, 1.0, 3.0, DType::kFloat32, 0, 255), 0);
  EXPECT_EQ(quant::quantize_int(INFINITY, 1.0, 0.0, DType::kFloat32, 0, 255), 255);
  // float16 precision: 1/3 rounds to 0.33325195..., times 3 stays below 1.
  EXPECT_EQ(quant::to_precision(1.0 / 3.0, DType::kFloat16), 0.333251953125);
  // Dequantize rounds to float unless the scale is double.
  EXPECT_EQ(quant::dequantize(1.0, 0.0, 0.1, false), static_cast<double>(0.1f * 1.0f));
  EXPECT_EQ(quant::dequantize(1.0, 0.0, 0.1, true), 0.1);
}

}  // namespace
}  // namespace kiln
