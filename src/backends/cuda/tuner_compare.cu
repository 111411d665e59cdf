// Device-side comparison of a tactic candidate's output with the default tactic's, and the
// stream hold of the timed runs (tuner.cc).
#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/tuner.h"

namespace kiln::cuda {
namespace {

// Non-negative floats order like their bit patterns: atomicMax on the bits is a float max.
__device__ __forceinline__ void atomic_max_nonneg(unsigned* p, float v) {
  atomicMax(p, __float_as_uint(v));
}

template <typename T>
__device__ __forceinline__ float load_any(const T* p, int64_t i) {
  return load_f<T>(p, i);
}
template <>
__device__ __forceinline__ float load_any<double>(const double* p, int64_t i) {
  const double v = p[i];
  return static_cast<float>(fmin(fmax(v, -3.0e38), 3.0e38));
}

template <typename T>
__global__ void max_abs_kernel(const T* ref, int64_t n, unsigned* out) {
  float m = 0.f;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float v = fabsf(load_any<T>(ref, i));
    if (isfinite(v)) m = fmaxf(m, v);
  }
  atomic_max_nonneg(out, m);
}

template <typename T>
__global__ void mismatch_kernel(const T* ref, const T* cand, int64_t n, float rtol,
                                const unsigned* max_ref_bits, unsigned long long* bad,
                                unsigned* max_diff) {
  const float tol = rtol * fmaxf(__uint_as_float(*max_ref_bits), 1e-30f);
  unsigned long long count = 0;
  float worst = 0.f;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float r = load_any<T>(ref, i), c = load_any<T>(cand, i);
    bool ok;
    if (isnan(r)) {
      ok = isnan(c);
    } else if (isinf(r)) {
      ok = c == r;
    } else {
      const float d = fabsf(c - r);
      ok = d <= tol;  // false for a NaN or infinite candidate
      if (isfinite(d)) worst = fmaxf(worst, d);
    }
    if (!ok) ++count;
  }
  if (count) atomicAdd(bad, count);
  atomic_max_nonneg(max_diff, worst);
}

template <typename T>
Status launch_compare(cudaStream_t s, const void* ref, const void* cand, int64_t n, float rtol,
                      unsigned* scratch) {
  unsigned* max_ref = scratch;
  unsigned* max_diff = scratch + 1;
  auto* bad = reinterpret_cast<unsigned long long*>(scratch + 2);
  const Launch l = launch_for(n);
  max_abs_kernel<T><<<l.grid, l.block, 0, s>>>(static_cast<const T*>(ref), n, max_ref);
  KILN_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  mismatch_kernel<T><<<l.grid, l.block, 0, s>>>(
      static_cast<const T*>(ref), static_cast<const T*>(cand), n, rtol, max_ref, bad, max_diff);
  KILN_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return Status::Ok();
}

// Holds the stream until the host sets *flag (or `max_cycles` pass, so a run that waits on the
// stream itself only delays the timing instead of deadlocking it).
__global__ void hold_kernel(const volatile int* flag, long long max_cycles) {
  const long long t0 = clock64();
  while (*flag == 0 && clock64() - t0 < max_cycles) {
  }
}

}  // namespace

Status launch_stream_hold(cudaStream_t s, const int* flag, long long max_cycles) {
  hold_kernel<<<1, 1, 0, s>>>(flag, max_cycles);
  KILN_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return Status::Ok();
}

Status launch_output_compare(cudaStream_t s, DType dtype, const void* ref, const void* cand,
                             int64_t n, float rtol, void* scratch) {
  unsigned* u = static_cast<unsigned*>(scratch);
  switch (dtype) {
    case DType::kFloat32:
      return launch_compare<float>(s, ref, cand, n, rtol, u);
    case DType::kFloat16:
      return launch_compare<__half>(s, ref, cand, n, rtol, u);
    case DType::kBFloat16:
      return launch_compare<__nv_bfloat16>(s, ref, cand, n, rtol, u);
    case DType::kFloat64:
      return launch_compare<double>(s, ref, cand, n, rtol, u);
    default:
      return Status(StatusCode::kInternal, "output comparison of an unsupported dtype");
  }
}

}  // namespace kiln::cuda
