// The CUDA Cast kernels' element conversions (src/backends/cuda/cast_convert.h), run on the
// host, against the CPU reference (src/core/dtype.cc, convert_tensor): bit for bit, NaNs
// included. The header compiles without CUDA, so this runs in every build.
#include "backends/cuda/cast_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln {
namespace {

namespace cvt = cuda::cvt;

constexpr DType kFloat8s[] = {DType::kFloat8E4M3FN, DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2,
                              DType::kFloat8E5M2FNUZ};
constexpr E8M0Round kModes[] = {E8M0Round::kUp, E8M0Round::kDown, E8M0Round::kNearest};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Floats to convert: every float16 and every bfloat16 value (so every exponent), every code of
// the small formats with the halfway points between neighbours and their float neighbours,
// special values, and random bit patterns.
std::vector<float> sweep() {
  std::vector<float> v;
  for (uint32_t h = 0; h < 65536; ++h) {
    v.push_back(half_to_float(static_cast<uint16_t>(h)));
    v.push_back(bfloat16_to_float(static_cast<uint16_t>(h)));
  }
  std::vector<float> grid;
  for (DType t : kFloat8s) {
    for (int c = 0; c < 256; ++c) grid.push_back(float8_to_float(t, static_cast<uint8_t>(c)));
  }
  for (int c = 0; c < 16; ++c) grid.push_back(float4e2m1_to_float(static_cast<uint8_t>(c)));
  for (int c = 0; c < 256; ++c) grid.push_back(float8e8m0_to_float(static_cast<uint8_t>(c)));
  for (float g : std::vector<float>(grid)) {
    // Halfway to the next code of the same format (and 1.5x, 0.75x: e8m0 "nearest" cut points).
    for (float s : {1.0625f, 1.125f, 1.25f, 1.5f, 0.75f, 0.5f, 2.0f}) grid.push_back(g * s);
  }
  const size_t base = grid.size();
  for (size_t i = 0; i + 1 < base; ++i) grid.push_back((grid[i] + grid[i + 1]) / 2);
  for (float g : grid) {
    v.push_back(g);
    v.push_back(-g);
    v.push_back(std::nextafter(g, INFINITY));
    v.push_back(std::nextafter(g, -INFINITY));
  }
  const float lim = std::numeric_limits<float>::max();
  for (float s : {0.f,
                  lim,
                  std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::denorm_min(),
                  from_bits(0x007FFFFFu),
                  INFINITY,
                  std::nanf(""),
                  from_bits(0x7F800001u),
                  from_bits(0x7FFFFFFFu),
                  464.f,
                  480.f,
                  240.f,
                  248.f,
                  256.f,
                  57344.f,
                  61440.f,
                  65536.f,
                  6.f,
                  7.f,
                  0.25f,
                  0.75f}) {
    v.push_back(s);
    v.push_back(-s);
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 1 << 20; ++i) v.push_back(from_bits(rng()));
  return v;
}

const std::vector<float>& floats() {
  static const std::vector<float> v = sweep();
  return v;
}

TEST(CudaCastHost, Float8DecodeEveryCode) {
  for (DType t : kFloat8s) {
    for (int c = 0; c < 256; ++c) {
      const uint8_t v = static_cast<uint8_t>(c);
      ASSERT_EQ(bits(cvt::float8_to_f32(t, v)), bits(float8_to_float(t, v)))
          << dtype_name(t) << " code " << c;
    }
  }
}

TEST(CudaCastHost, E8M0AndFloat4DecodeEveryCode) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t v = static_cast<uint8_t>(c);
    ASSERT_EQ(bits(cvt::e8m0_to_f32(v)), bits(float8e8m0_to_float(v))) << "code " << c;
  }
  for (int c = 0; c < 16; ++c) {
    const uint8_t v = static_cast<uint8_t>(c);
    ASSERT_EQ(bits(cvt::float4_to_f32(v)), bits(float4e2m1_to_float(v))) << "nibble " << c;
  }
}

TEST(CudaCastHost, HalfAndBFloat16) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t v = static_cast<uint16_t>(h);
    ASSERT_EQ(bits(cvt::half_to_f32(v)), bits(half_to_float(v))) << h;
    ASSERT_EQ(bits(cvt::bf16_to_f32(v)), bits(bfloat16_to_float(v))) << h;
  }
  for (float f : floats()) {
    ASSERT_EQ(cvt::f32_to_half(f), float_to_half(f)) << std::hexfloat << f;
    ASSERT_EQ(cvt::f32_to_bf16(f), float_to_bfloat16(f)) << std::hexfloat << f;
  }
}

TEST(CudaCastHost, ToFloat8EveryFormatBothSaturations) {
  EXPECT_GT(floats().size(), size_t{1} << 20);
  for (DType t : kFloat8s) {
    for (bool sat : {true, false}) {
      for (float f : floats()) {
        ASSERT_EQ(cvt::f32_to_float8(t, f, sat), float_to_float8(t, f, sat))
            << dtype_name(t) << " saturate " << sat << " x " << std::hexfloat << f << " bits "
            << std::hex << bits(f);
      }
    }
  }
}

TEST(CudaCastHost, ToFloat4) {
  for (bool sat : {true, false}) {
    for (float f : floats()) {
      ASSERT_EQ(cvt::f32_to_float4(f), float_to_float4e2m1(f, sat))
          << "x " << std::hexfloat << f << " bits " << std::hex << bits(f);
    }
  }
}

TEST(CudaCastHost, ToE8M0EveryRoundingMode) {
  for (E8M0Round mode : kModes) {
    for (bool sat : {true, false}) {
      for (float f : floats()) {
        ASSERT_EQ(cvt::f32_to_e8m0(f, sat, mode), float_to_float8e8m0(f, sat, mode))
            << "mode " << static_cast<int>(mode) << " saturate " << sat << " x " << std::hexfloat
            << f << " bits " << std::hex << bits(f);
      }
    }
  }
}

TEST(CudaCastHost, RoundOddAndNaNConversions) {
  std::mt19937_64 rng(11);
  std::vector<double> ds = {0.0,
                            -0.0,
                            1e-320,
                            -1e-320,
                            1e-46,
                            1e-40,
                            3.4028235677973366e38,
                            3.4028235677973362e38,
                            1e39,
                            -1e300,
                            INFINITY,
                            -INFINITY,
                            std::nan(""),
                            -std::nan("")};
  for (int i = 0; i < 200000; ++i) {
    uint64_t u = rng();
    double d;
    std::memcpy(&d, &u, 8);
    ds.push_back(d);
    // Doubles near floats: a float plus a few units in the double's last places.
    const float f = from_bits(static_cast<uint32_t>(rng()));
    ds.push_back(static_cast<double>(f) * (1.0 + std::ldexp(static_cast<double>(i % 7) - 3, -40)));
  }
  for (double d : ds) {
    ASSERT_EQ(bits(cvt::round_odd(d)), bits(double_to_float_round_odd(d))) << std::hexfloat << d;
    ASSERT_EQ(bits(cvt::narrow(d)), bits(static_cast<float>(d))) << std::hexfloat << d;
  }
  for (float f : floats()) {
    const double w = static_cast<double>(f);
    double got = cvt::widen(f);
    ASSERT_EQ(std::memcmp(&got, &w, 8), 0) << std::hexfloat << f;
  }
}

// ---- whole casts: the kernel's per-unit function against convert_tensor ----

bool plain(DType t) {
  switch (t) {
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

std::vector<DType> numeric_dtypes() {
  std::vector<DType> v;
  for (int i = 1; i <= kMaxDType; ++i) {
    const DType t = static_cast<DType>(i);
    if (t != DType::kString && !is_complex(t)) v.push_back(t);
  }
  return v;
}

// Sources: raw random bytes (every code, NaN payloads) and, separately, values given as doubles
// and cast by the CPU (in-range numbers, halfway cases, integers near type limits).
std::vector<Tensor> sources(DType t) {
  std::vector<Tensor> out;
  std::mt19937_64 rng(static_cast<uint64_t>(t) * 977);
  const int64_t n = 1027;  // odd: packed outputs end in a partial byte
  Tensor raw = Tensor::zeros(t, {n});
  auto* p = static_cast<uint8_t*>(raw.mutable_raw());
  for (uint64_t k = 0; k < raw.nbytes(); ++k) p[k] = static_cast<uint8_t>(rng());
  if (t == DType::kBool) {
    for (uint64_t k = 0; k < raw.nbytes(); ++k) p[k] &= 1;  // bool storage holds 0 or 1
  }
  out.push_back(raw);
  Tensor d = Tensor::zeros(DType::kFloat64, {n});
  double* dp = d.mutable_data<double>();
  const double specials[] = {0.0,  -0.0, 0.5,   -0.5,  1.5,      -2.5,      3.0,     7.5,   -8.5,
                             15.5, 16.0, 127.5, 448.0, 464.0,    480.0,     57344.0, 61440, 1e5,
                             -1e5, 3e9,  1e19,  -1e19, 1e-3,     0.1,       6.0,     7.0,   0.25,
                             0.75, 1e-7, 2e-40, 1e300, INFINITY, -INFINITY, NAN};
  for (int64_t i = 0; i < n; ++i) {
    if (i < static_cast<int64_t>(std::size(specials))) {
      dp[i] = specials[i];
    } else if (i % 3 == 0) {
      dp[i] = std::ldexp(static_cast<double>(rng() % 20001) - 10000.0,
                         static_cast<int>(rng() % 40) - 30);
    } else if (i % 3 == 1) {
      dp[i] = static_cast<double>(rng() % 64) - 32.0 + 0.25 * static_cast<double>(rng() % 4);
    } else {
      dp[i] = static_cast<double>(static_cast<int64_t>(rng()) >> (rng() % 64));
    }
  }
  StatusOr<Tensor> v = convert_tensor(d, t, true);
  if (v.ok()) out.push_back(std::move(v).value());
  return out;
}

std::string mismatch(const Tensor& want, const std::vector<uint8_t>& got) {
  for (size_t k = 0; k < got.size(); ++k) {
    const uint8_t w = static_cast<const uint8_t*>(want.raw())[k];
    if (w != got[k]) {
      return "byte " + std::to_string(k) + ": want " + std::to_string(w) + " got " +
             std::to_string(got[k]);
    }
  }
  return {};
}

TEST(CudaCastHost, EveryPairWithANewDtypeMatchesConvertTensor) {
  int pairs = 0;
  for (DType from : numeric_dtypes()) {
    const std::vector<Tensor> srcs = sources(from);
    for (DType to : numeric_dtypes()) {
      if (from == to || (plain(from) && plain(to))) continue;
      ++pairs;
      for (const Tensor& x : srcs) {
        for (bool sat : {true, false}) {
          for (E8M0Round mode : kModes) {
            if (mode != E8M0Round::kUp && to != DType::kFloat8E8M0) continue;
            CastOptions o;
            o.saturate = sat;
            o.e8m0_round = mode;
            StatusOr<Tensor> want = convert_tensor(x, to, o);
            ASSERT_TRUE(want.ok()) << want.status().message();
            const int64_t n = x.numel();
            std::vector<uint8_t> got(want->nbytes(), 0xAB);
            cvt::CastParams params{sat, mode};
            for (int64_t u = 0; u < cvt::cast_units(to, n); ++u) {
              cvt::cast_unit(x.raw(), from, got.data(), to, n, u, params);
            }
            ASSERT_EQ(mismatch(*want, got), "")
                << dtype_name(from) << " -> " << dtype_name(to) << " saturate " << sat << " mode "
                << static_cast<int>(mode);
          }
        }
      }
    }
  }
  EXPECT_GT(pairs, 200);
}

}  // namespace
}  // namespace kiln
