// Helpers the GPU tests share: skipping without a usable GPU, and comparing outputs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cuda_backend.h"
#include "kiln/kiln.h"

// Skips the test (reported as skipped, with the reason) when no usable CUDA device is present.
#define REQUIRE_GPU()                                        \
  do {                                                       \
    auto gpu_ = ::kiln::backend::cuda_device();              \
    if (!gpu_.ok()) GTEST_SKIP() << gpu_.status().message(); \
  } while (0)

namespace kiln::testing {

// n floats drawn uniformly from [lo, hi) with a fixed seed.
inline std::vector<float> randf(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// Max |a - b| relative to max |b| over float32 tensors; infinity when the sizes differ or the
// tensors are empty (an empty output is never the expected one in these tests).
inline double rel_error(const HostTensor& a, const HostTensor& b) {
  if (a.numel() != b.numel() || a.numel() == 0) return INFINITY;
  double diff = 0, mag = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a.as<float>()[i] - b.as<float>()[i])));
    mag = std::max(mag, static_cast<double>(std::fabs(b.as<float>()[i])));
  }
  return mag > 0 ? diff / mag : diff;
}

}  // namespace kiln::testing
