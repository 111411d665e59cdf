// Host check (see run.sh): cast check.
#include <cstdio>
#include <random>
#include "backends/cuda/elementwise_cast.cu"
using namespace kiln;
int main() {
  const DType all[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                       DType::kInt8,    DType::kInt16,   DType::kInt32,   DType::kInt64,
                       DType::kUInt8,   DType::kUInt16,  DType::kUInt32,  DType::kUInt64,
                       DType::kBool};
  std::mt19937_64 rng(5);
  const double specials[] = {0.0,    -0.0,  0.5,        -0.5,     1.5,       -2.5,  127.9,  128.0,
                             255.5,  256.0, -129.0,     65504.0,  65520.0,   1e5,   -1e5,   3e9,
                             -3e9,   1e19,  -1e19,      2e19,     9.3e18,    1e300, -1e300, 1e-40,
                             1e-300, 0.1,   16777217.0, INFINITY, -INFINITY, NAN};
  int bad = 0;
  for (DType from : all) {
    const int n = 400;
    Tensor src = Tensor::zeros(DType::kFloat64, {n});
    double* sp = src.mutable_data<double>();
    for (int i = 0; i < n; ++i) {
      if (i < 29)
        sp[i] = specials[i];
      else if (i == 29)
        sp[i] = 1.0;
      else if (i % 3 == 0)
        sp[i] = (double)(int64_t)rng();
      else if (i % 3 == 1)
        sp[i] = std::ldexp((double)(rng() % 100000) - 50000, (int)(rng() % 80) - 40);
      else
        sp[i] = (double)(rng() % 70000) - 35000.0 + 0.25 * (rng() % 4);
    }
    Tensor x = convert_tensor(src, from, true).value();
    if (from == DType::kInt64 || from == DType::kUInt64) {  // full-range integers
      for (int i = 30; i < n; i += 2) {
        uint64_t r = rng();
        std::memcpy(static_cast<char*>(x.mutable_raw()) + 8 * i, &r, 8);
      }
    }
    for (DType to : all) {
      Tensor want = convert_tensor(x, to, true).value();
      std::vector<unsigned char> got(want.nbytes());
      for (int i = 0; i < n; ++i) {
        auto e = kiln::cuda::load_elem(x.raw(), from, i);
        kiln::cuda::store_elem(got.data(), to, i, e);
      }
      if (std::memcmp(got.data(), want.raw(), want.nbytes()) != 0) {
        int sz = dtype_bits(to) / 8, first = -1;
        for (int i = 0; i < n; ++i)
          if (std::memcmp(got.data() + i * sz, (const char*)want.raw() + i * sz, sz)) {
            first = i;
            break;
          }
        printf("mismatch %s -> %s at %d (src %g)\n", dtype_name(from), dtype_name(to), first,
               x.get_double(first));
        ++bad;
      }
    }
  }
  printf("bad=%d\n", bad);
}
