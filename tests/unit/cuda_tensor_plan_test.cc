// The CUDA copy plan's host-side simplification (folding starts/steps, dropping unit dims,
// merging contiguous dims, widening elements) preserves what the plan selects: a host
// evaluation of the plan with the kernel's addressing rule gives the same bytes before and after
// simplify_plan, for random slices, transposes, broadcasts, tiles and pads. Runs without a GPU.
#include <gtest/gtest.h>

#ifdef KILN_HAVE_CUDA

#include <cstring>
#include <random>
#include <vector>

#include "backends/cuda/tensor_internal.h"

namespace kiln::cuda::tensor {
namespace {

int64_t map_border(int64_t s, int64_t dim, Border b, bool* outside) {
  if (s >= 0 && s < dim) return s;
  switch (b) {
    case Border::kDirect:
      return s;
    case Border::kConstant:
      *outside = true;
      return 0;
    case Border::kEdge:
      return s < 0 ? 0 : dim - 1;
    case Border::kWrap:
      return ((s % dim) + dim) % dim;
    case Border::kReflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      const int64_t r = ((s % period) + period) % period;
      return r >= dim ? period - r : r;
    }
  }
  return 0;
}

// The kernel's addressing, on the host (src and dst in bytes).
std::vector<uint8_t> evaluate(const CopyPlan& p, const std::vector<uint8_t>& src) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.out_dims[d];
  std::vector<uint8_t> dst(static_cast<size_t>(n * p.esize));
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = p.base;
    bool outside = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t od = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      int64_t s = p.start[d] + od * p.step[d];
      if (p.border[d] != Border::kDirect) s = map_border(s, p.src_dims[d], p.border[d], &outside);
      off += s * p.strides[d];
    }
    if (outside) {
      EXPECT_LE(p.esize, 8) << "16-byte plans have no constant border";
      if (p.esize > 8) return {};
      std::memcpy(&dst[static_cast<size_t>(i * p.esize)], &p.fill, static_cast<size_t>(p.esize));
    } else {
      EXPECT_GE(off, 0);
      EXPECT_LE((off + 1) * p.esize, static_cast<int64_t>(src.size()));
      if (off < 0 || (off + 1) * p.esize > static_cast<int64_t>(src.size())) return {};
      std::memcpy(&dst[static_cast<size_t>(i * p.esize)], &src[static_cast<size_t>(off * p.esize)],
                  static_cast<size_t>(p.esize));
    }
  }
  return dst;
}

std::vector<int64_t> strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

TEST(CudaTensorPlan, SimplifyPreservesTheSelection) {
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  alignas(16) static uint8_t aligned[32];
  int widened = 0, merged = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const int rank = pick(1, 5);
    const int esize = 1 << pick(0, 3);
    std::vector<int64_t> in(static_cast<size_t>(rank));
    for (auto& d : in) d = pick(1, 6) * (pick(0, 3) == 0 ? 2 : 1);
    int64_t numel = 1;
    for (int64_t d : in) numel *= d;
    std::vector<uint8_t> src(static_cast<size_t>(numel * esize));
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    const std::vector<int64_t> st = strides(in);
    // A random permutation of the input dims, then per dim a slice, broadcast or border.
    std::vector<int> perm(static_cast<size_t>(rank));
    for (int d = 0; d < rank; ++d) perm[static_cast<size_t>(d)] = d;
    if (pick(0, 1) == 1) std::shuffle(perm.begin(), perm.end(), rng);
    CopyPlan p;
    p.rank = rank;
    p.esize = esize;
    p.fill = rng();
    for (int d = 0; d < rank; ++d) {
      const int a = perm[static_cast<size_t>(d)];
      const int64_t dim = in[static_cast<size_t>(a)];
      p.src_dims[d] = dim;
      p.strides[d] = st[static_cast<size_t>(a)];
      p.start[d] = 0;
      p.step[d] = 1;
      p.out_dims[d] = dim;
      switch (pick(0, 5)) {
        case 0: {  // slice (possibly reversed)
          const int64_t step = pick(0, 1) == 1 ? -pick(1, 2) : pick(1, 2);
          const int64_t first =
              step > 0 ? pick(0, static_cast<int>(dim) - 1) : pick(0, static_cast<int>(dim) - 1);
          const int64_t room = step > 0 ? (dim - first + step - 1) / step : first / -step + 1;
          p.start[d] = first;
          p.step[d] = step;
          p.out_dims[d] = pick(1, static_cast<int>(room));
          break;
        }
        case 1:  // broadcast
          if (dim == 1) {
            p.strides[d] = 0;
            p.out_dims[d] = pick(1, 4);
          }
          break;
        case 2: {  // border (pad / tile)
          p.border[d] = static_cast<Border>(pick(1, 4));
          p.start[d] = -pick(0, 3);
          p.out_dims[d] = dim + pick(0, 6);
          break;
        }
        default:
          break;
      }
    }
    const std::vector<uint8_t> want = evaluate(p, src);
    CopyPlan q = p;
    simplify_plan(&q, aligned, aligned);
    if (q.esize > p.esize) ++widened;
    if (q.rank < p.rank) ++merged;
    const std::vector<uint8_t> got = evaluate(q, src);
    ASSERT_EQ(got, want) << "iteration " << iter;
  }
  EXPECT_GT(widened, 100);
  EXPECT_GT(merged, 100);
}

TEST(CudaTensorPlan, TransposeKeepsItsShape) {
  // [2, 3, 4] -> perm (0, 2, 1): the plan keeps three dims with strides (12, 1, 4).
  CopyPlan p;
  p.rank = 3;
  p.esize = 4;
  const int64_t out[3] = {2, 4, 3}, str[3] = {12, 1, 4};
  for (int d = 0; d < 3; ++d) {
    p.out_dims[d] = out[d];
    p.src_dims[d] = out[d];
    p.strides[d] = str[d];
    p.step[d] = 1;
  }
  alignas(16) static uint8_t buf[16];
  simplify_plan(&p, buf, buf);
  ASSERT_EQ(p.rank, 3);
  EXPECT_EQ(p.strides[0], 12);
  EXPECT_EQ(p.strides[1], 1);
  EXPECT_EQ(p.strides[2], 4);
  EXPECT_EQ(p.esize, 4);
}

}  // namespace
}  // namespace kiln::cuda::tensor

#endif  // KILN_HAVE_CUDA
