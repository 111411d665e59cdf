// Host check (see run.sh): reduce plan check.
#include <cstdio>
#include <random>
#include "backends/cuda/reduction_reduce.cu"
using namespace kiln::cuda;
int main() {
  std::mt19937 rng(2);
  int bad = 0, rows_cases = 0;
  for (int it = 0; it < 20000; ++it) {
    int r = rng() % 6;
    std::vector<int64_t> shape(r);
    for (auto& d : shape) d = rng() % 4;  // includes 0 and 1
    std::vector<bool> red(r);
    for (int d = 0; d < r; ++d) red[d] = rng() % 2;
    int64_t count = 1, n_out = 1, numel = 1;
    for (int d = 0; d < r; ++d) {
      numel *= shape[d];
      if (red[d])
        count *= shape[d];
      else
        n_out *= shape[d];
    }
    std::vector<double> x(numel);
    for (auto& v : x) v = rng() % 1000;
    // naive: sum per output over reduced
    std::vector<double> want(n_out, 0.0);
    std::vector<int64_t> idx(r, 0);
    for (int64_t i = 0; i < numel; ++i) {
      int64_t rem = i;
      for (int d = r - 1; d >= 0; --d) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
      }
      int64_t o = 0;
      for (int d = 0; d < r; ++d)
        if (!red[d]) o = o * shape[d] + idx[d];
      want[o] += x[i];
    }
    bool rows = false;
    RedPlan p = plan_reduction(shape, red, count, &rows);
    if (rows) ++rows_cases;
    for (int64_t o = 0; o < n_out; ++o) {
      double got = 0;
      int64_t seen = 0;
      if (rows) {
        for (int64_t j = 0; j < p.count; ++j) got += x[o * p.count + j];
        seen = p.count;
      } else
        walk(p, base_offset(p, o), [&](int64_t off) {
          got += x[off];
          ++seen;
        });
      if (got != want[o] || seen != (numel ? count : 0)) {
        ++bad;
        break;
      }
    }
  }
  printf("bad=%d rows=%d\n", bad, rows_cases);
}
