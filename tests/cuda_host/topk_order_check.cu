// Host check (see run.sh): topk order check.
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include "backends/cuda/reduction_misc.cu"
using namespace kiln::cuda;
int main() {
  std::mt19937 rng(3);
  int bad = 0;
  for (int it = 0; it < 3000; ++it) {
    int n = 1 + rng() % 300;
    bool largest = rng() % 2;
    std::vector<float> v(n);
    for (auto& x : v) {
      int q = rng() % 12;
      x = q == 0 ? NAN : (float)(q % 5);
    }
    int npad = 1;
    while (npad < n) npad <<= 1;
    std::vector<float> key(npad);
    std::vector<int> idx(npad);
    for (int j = 0; j < npad; ++j) {
      key[j] = j < n ? v[j] : 0.f;
      idx[j] = j;
    }
    for (int size = 2; size <= npad; size <<= 1)
      for (int stride = size >> 1; stride > 0; stride >>= 1)
        for (int j = 0; j < npad; ++j) {
          const int p = j ^ stride;
          if (p > j) {
            const bool up = (j & size) == 0;
            const bool swap = up ? topk_before(key[p], idx[p], key[j], idx[j], n, largest)
                                 : topk_before(key[j], idx[j], key[p], idx[p], n, largest);
            if (swap) {
              std::swap(key[j], key[p]);
              std::swap(idx[j], idx[p]);
            }
          }
        }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return largest ? greater_key(v[a], v[b]) : less_key(v[a], v[b]);
    });
    for (int j = 0; j < n; ++j)
      if (order[j] != idx[j]) {
        ++bad;
        break;
      }
  }
  printf("bad=%d\n", bad);
}
