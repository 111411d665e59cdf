// The 32-bit multiply-shift division of BroadcastMap (src/backends/cuda/common.cuh), checked on the
// host against plain division: every divisor up to 4096 and chosen large ones, numerators at the
// edges and at random below 2^31.
#ifdef KILN_HAVE_CUDA

#include <gtest/gtest.h>

#include <random>

#include "backends/cuda/common.cuh"

namespace kiln::cuda {
namespace {

TEST(FastDiv32, MatchesDivisionBelowTwoToThe31) {
  std::mt19937 rng(5);
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (uint32_t d :
       {65535u, 65536u, 65537u, 1000003u, (1u << 30) - 1, 1u << 30, (1u << 31) - 1, 1u << 31}) {
    divisors.push_back(d);
  }
  for (int i = 0; i < 2000; ++i) divisors.push_back(1 + rng() % (1u << 31));
  int bad = 0;
  for (uint32_t d : divisors) {
    const FastDiv32 f(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, (1u << 31) - 1, (1u << 31) - 2};
    for (int i = 0; i < 200; ++i) ns.push_back(rng() % (1u << 31));
    for (uint32_t n : ns) {
      if (n >= (1u << 31)) continue;
      if (f.div(n) != n / d && ++bad < 10) {
        ADD_FAILURE() << n << " / " << d << ": got " << f.div(n) << ", want " << n / d;
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(FastDiv32, BroadcastMapOffsetsMatchTheSixtyFourBitPath) {
  BroadcastMap m = make_broadcast_map({1, 7, 1, 5}, {3, 7, 11, 5});
  ASSERT_TRUE(m.small);
  BroadcastMap wide = m;
  wide.small = false;
  for (int64_t i = 0; i < 3 * 7 * 11 * 5; ++i) {
    ASSERT_EQ(m.offset(i), wide.offset(i)) << i;
  }
  EXPECT_FALSE(make_broadcast_map({1}, {int64_t{1} << 31}).small);
}

}  // namespace
}  // namespace kiln::cuda

#endif  // KILN_HAVE_CUDA
