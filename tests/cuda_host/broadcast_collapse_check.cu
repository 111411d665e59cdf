// Host check (see run.sh): broadcast collapse check.
#include <cstdio>
#include <random>
#include "backends/cuda/ew_util.cuh"
using namespace kiln::cuda;
int64_t off(const BroadcastMap& m, int64_t linear) {
  int64_t o = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    o += (linear % m.out_dims[d]) * m.in_strides[d];
    linear /= m.out_dims[d];
  }
  return o;
}
int main() {
  std::mt19937 rng(1);
  int bad = 0;
  for (int it = 0; it < 20000; ++it) {
    int r = rng() % 6;
    std::vector<int64_t> out(r), in;
    for (auto& d : out) d = 1 + rng() % 4;
    int ri = rng() % (r + 1);
    for (int d = r - ri; d < r; ++d) in.push_back(rng() % 2 ? out[d] : 1);
    BroadcastMap a = make_broadcast_map(in, out);
    BroadcastMap b = ew::collapsed_map(in, out);
    int64_t n = 1;
    for (auto d : out) n *= d;
    for (int64_t i = 0; i < n; ++i)
      if (off(a, i) != off(b, i)) {
        ++bad;
        break;
      }
  }
  printf("bad=%d\n", bad);
}
