// Device check of cast_convert.h / quantize_convert.h (needs a GPU; not part of ctest): the element
// functions evaluated in GPU kernels must equal the same functions evaluated on the host, which
// tests/unit/cuda_{cast,quantize}_host_test.cc compare with the CPU reference. This catches what
// the host tests cannot: device NaN canonicalization, flush-to-zero, rounding intrinsics.
//   nvcc -std=c++20 -O2 --expt-relaxed-constexpr -arch=sm_90 -Isrc -Iinclude \
//     tests/cuda_device/cast_quantize_device_check.cu -o /tmp/cqdc && /tmp/cqdc
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "backends/cuda/cast_convert.h"
#include "backends/cuda/quantize_convert.h"
using namespace kiln;
namespace cvt = kiln::cuda::cvt;
namespace quant = kiln::cuda::quant;

#define CK(x)                                                     \
  do {                                                            \
    cudaError_t e = (x);                                          \
    if (e != cudaSuccess) {                                       \
      printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); \
      return 1;                                                   \
    }                                                             \
  } while (0)

struct Out {
  uint8_t f8[4][2];
  uint8_t f4;
  uint8_t e8[3][2];
  uint16_t h, b;
  uint32_t ro;
  float dq;
  uint8_t dyn;
  int64_t qi;
  float qf;
};

__host__ __device__ Out compute(float f, double d) {
  Out o;
  const DType t8[4] = {DType::kFloat8E4M3FN, DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2,
                       DType::kFloat8E5M2FNUZ};
  for (int k = 0; k < 4; ++k)
    for (int s = 0; s < 2; ++s) o.f8[k][s] = cvt::f32_to_float8(t8[k], f, s == 0);
  o.f4 = cvt::f32_to_float4(f);
  const E8M0Round m[3] = {E8M0Round::kUp, E8M0Round::kDown, E8M0Round::kNearest};
  for (int k = 0; k < 3; ++k)
    for (int s = 0; s < 2; ++s) o.e8[k][s] = cvt::f32_to_e8m0(f, s == 0, m[k]);
  o.h = cvt::f32_to_half(f);
  o.b = cvt::f32_to_bf16(f);
  o.ro = cvt::bits32(cvt::round_odd(d));
  o.dq = cvt::narrow(quant::dequantize(cvt::widen(f), 3.0, d, false));
  quant::DynamicParams p = quant::dynamic_params(-3.5f, 7.25f);
  o.dyn = quant::dynamic_quantize(f, p);
  o.qi = quant::quantize_int(cvt::widen(f), 0.37, 5.0, DType::kFloat16, -128, 127);
  o.qf = quant::quantize_float(cvt::widen(f), d, 1.0, DType::kFloat32);
  return o;
}

__global__ void k_compute(const float* f, const double* d, Out* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    o[i] = compute(f[i], d[i]);
}
__global__ void k_cast(const void* x, DType from, void* y, DType to, int64_t n, int64_t units,
                       cvt::CastParams o) {
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < units;
       u += (int64_t)blockDim.x * gridDim.x)
    cvt::cast_unit(x, from, y, to, n, u, o);
}
__global__ void k_dec(uint32_t* out) {
  int c = threadIdx.x + blockIdx.x * blockDim.x;
  if (c >= 256) return;
  const DType t8[4] = {DType::kFloat8E4M3FN, DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2,
                       DType::kFloat8E5M2FNUZ};
  for (int k = 0; k < 4; ++k) out[k * 256 + c] = cvt::bits32(cvt::float8_to_f32(t8[k], (uint8_t)c));
  out[4 * 256 + c] = cvt::bits32(cvt::e8m0_to_f32((uint8_t)c));
  out[5 * 256 + c] = cvt::bits32(cvt::float4_to_f32((uint8_t)(c & 15)));
  out[6 * 256 + c] = cvt::bits32(cvt::half_to_f32((uint16_t)(c * 257)));
}

int main() {
  std::vector<float> f;
  std::vector<double> d;
  for (uint32_t h = 0; h < 65536; ++h) {
    f.push_back(cvt::half_to_f32((uint16_t)h));
    f.push_back(cvt::bf16_to_f32((uint16_t)h));
  }
  std::mt19937_64 rng(1);
  for (int i = 0; i < (1 << 22); ++i) f.push_back(cvt::float32_of((uint32_t)rng()));
  for (size_t i = 0; i < f.size(); ++i) {
    uint64_t u = rng();
    double x;
    memcpy(&x, &u, 8);
    if (i % 3 == 0) x = (double)f[i] * (1 + 1e-12 * (double)(i % 5));
    if (i % 3 == 1) x = 0.1 + (double)(i % 1000) * 0.01;
    d.push_back(x);
  }
  const int64_t n = (int64_t)f.size();
  float* df;
  double* dd;
  Out* dout;
  CK(cudaMalloc(&df, n * 4));
  CK(cudaMalloc(&dd, n * 8));
  CK(cudaMalloc(&dout, n * sizeof(Out)));
  CK(cudaMemcpy(df, f.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dd, d.data(), n * 8, cudaMemcpyHostToDevice));
  k_compute<<<2048, 256>>>(df, dd, dout, n);
  CK(cudaGetLastError());
  std::vector<Out> g(n);
  CK(cudaMemcpy(g.data(), dout, n * sizeof(Out), cudaMemcpyDeviceToHost));
  long bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Out h = compute(f[i], d[i]);
    if (memcmp(&h, &g[i], sizeof(Out)) != 0) {
      if (bad < 10) printf("scalar mismatch at %ld f=%a d=%a\n", (long)i, f[i], d[i]);
      ++bad;
    }
  }
  printf("scalar functions: %ld values, %ld mismatches\n", (long)n, bad);
  uint32_t* ddec;
  CK(cudaMalloc(&ddec, 7 * 256 * 4));
  k_dec<<<1, 256>>>(ddec);
  std::vector<uint32_t> dec(7 * 256);
  CK(cudaMemcpy(dec.data(), ddec, 7 * 256 * 4, cudaMemcpyDeviceToHost));
  long bad2 = 0;
  const DType t8[4] = {DType::kFloat8E4M3FN, DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2,
                       DType::kFloat8E5M2FNUZ};
  for (int c = 0; c < 256; ++c) {
    for (int k = 0; k < 4; ++k)
      bad2 += dec[k * 256 + c] != cvt::bits32(cvt::float8_to_f32(t8[k], (uint8_t)c));
    bad2 += dec[4 * 256 + c] != cvt::bits32(cvt::e8m0_to_f32((uint8_t)c));
    bad2 += dec[5 * 256 + c] != cvt::bits32(cvt::float4_to_f32((uint8_t)(c & 15)));
    bad2 += dec[6 * 256 + c] != cvt::bits32(cvt::half_to_f32((uint16_t)(c * 257)));
  }
  printf("decoders: %ld mismatches\n", bad2);
  // Whole casts over every dtype pair with a new dtype, random raw bytes.
  long bad3 = 0, pairs = 0;
  const int64_t m = 100003;
  std::vector<uint8_t> src(m * 8);
  for (auto& b : src) b = (uint8_t)rng();
  void *dx, *dy;
  CK(cudaMalloc(&dx, m * 8));
  CK(cudaMalloc(&dy, m * 8));
  CK(cudaMemcpy(dx, src.data(), m * 8, cudaMemcpyHostToDevice));
  auto plain = [](DType t) {
    return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
           t == DType::kBFloat16 || t == DType::kInt8 || t == DType::kInt16 || t == DType::kInt32 ||
           t == DType::kInt64 || t == DType::kUInt8 || t == DType::kUInt16 || t == DType::kUInt32 ||
           t == DType::kUInt64 || t == DType::kBool;
  };
  for (int a = 1; a <= kMaxDType; ++a)
    for (int b = 1; b <= kMaxDType; ++b) {
      DType from = (DType)a, to = (DType)b;
      if (cvt::element_bits(from) == 0 || cvt::element_bits(to) == 0 || from == to ||
          (plain(from) && plain(to)) || from == DType::kBool)
        continue;
      for (int s = 0; s < 2; ++s) {
        cvt::CastParams o{
            s == 0, to == DType::kFloat8E8M0 && s == 1 ? E8M0Round::kNearest : E8M0Round::kUp};
        const int64_t units = cvt::cast_units(to, m);
        const size_t ob =
            (size_t)(cvt::element_bits(to) >= 8 ? m * cvt::element_bits(to) / 8 : units);
        CK(cudaMemset(dy, 0xAB, m * 8));
        k_cast<<<1024, 256>>>(dx, from, dy, to, m, units, o);
        CK(cudaGetLastError());
        std::vector<uint8_t> gy(ob), hy(ob, 0xAB);
        CK(cudaMemcpy(gy.data(), dy, ob, cudaMemcpyDeviceToHost));
        for (int64_t u = 0; u < units; ++u)
          cvt::cast_unit(src.data(), from, hy.data(), to, m, u, o);
        ++pairs;
        if (gy != hy) {
          if (bad3 < 10) printf("cast mismatch %d -> %d\n", a, b);
          ++bad3;
        }
      }
    }
  printf("casts: %ld pair runs, %ld mismatches\n", pairs, bad3);
  printf("%s\n", bad || bad2 || bad3 ? "DEVICE CHECK FAILED" : "DEVICE CHECK OK");
  return 0;
}
