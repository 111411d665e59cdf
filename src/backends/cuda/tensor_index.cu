// CUDA kernels of the tensor family: index-driven moves (Gather, GatherElements, GatherND,
// ScatterElements, ScatterND), Trilu, EyeLike, OneHot, Range and NonZero.
//
// Indices live on the device, so they cannot be validated on the host: gathers clamp an
// out-of-range index (after negative wrap-around) into [0, dim) and scatters skip updates whose
// index is out of range, so nothing is ever read or written out of bounds. (The CPU kernels
// report an error in those cases instead.)
#include <cstdint>

#include "backends/cuda/common.cuh"
#include "backends/cuda/tensor_internal.h"

namespace kiln::cuda::tensor {
namespace {

__device__ __forceinline__ int64_t load_index(const void* idx, bool idx64, int64_t k) {
  return idx64 ? static_cast<const int64_t*>(idx)[k]
               : static_cast<int64_t>(static_cast<const int32_t*>(idx)[k]);
}

__device__ __forceinline__ int64_t clamp_index(int64_t v, int64_t dim) {
  if (v < 0) v += dim;
  return v < 0 ? 0 : (v >= dim ? dim - 1 : v);
}

// Wraps a negative index; returns false when it is out of range.
__device__ __forceinline__ bool wrap_index(int64_t* v, int64_t dim) {
  if (*v < 0) *v += dim;
  return *v >= 0 && *v < dim;
}

// Widest unit (<= 16 bytes) dividing `bytes` and both addresses.
int unit_for(int64_t bytes, const void* a, const void* b) {
  uint64_t g = 16 | static_cast<uint64_t>(bytes) | reinterpret_cast<uintptr_t>(a) |
               reinterpret_cast<uintptr_t>(b);
  return static_cast<int>(g & (~g + 1));
}

// ------------------------------------------------------------------------------- Gather

// I: the index type (int32_t when the output and the data both have at most 2^30 units).
template <typename U, typename I>
__global__ void gather_kernel(const U* __restrict__ x, const void* __restrict__ idx, bool idx64,
                              U* __restrict__ y, I dim, I nidx, I inner, I n) {
  const I stride = static_cast<I>(blockDim.x) * static_cast<I>(gridDim.x);
  for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
       i < n; i += stride) {
    const I r = i % inner;
    const I t = i / inner;
    const I j = t % nidx, o = t / nidx;
    const I v = static_cast<I>(clamp_index(load_index(idx, idx64, j), dim));
    y[i] = x[(o * dim + v) * inner + r];
  }
}

template <typename U>
void gather_t(const void* x, const void* idx, bool idx64, void* y, int64_t outer, int64_t dim,
              int64_t nidx, int64_t inner_bytes, cudaStream_t s) {
  const int64_t inner = inner_bytes / static_cast<int64_t>(sizeof(U));
  const int64_t n = outer * nidx * inner;
  const Launch l = launch_for(n);
  constexpr int64_t kLimit = int64_t{1} << 30;
  if (n <= kLimit && outer * dim * inner <= kLimit) {
    gather_kernel<U, int32_t><<<l.grid, l.block, 0, s>>>(
        static_cast<const U*>(x), idx, idx64, static_cast<U*>(y), static_cast<int32_t>(dim),
        static_cast<int32_t>(nidx), static_cast<int32_t>(inner), static_cast<int32_t>(n));
  } else {
    gather_kernel<U, int64_t><<<l.grid, l.block, 0, s>>>(static_cast<const U*>(x), idx, idx64,
                                                         static_cast<U*>(y), dim, nidx, inner, n);
  }
}

// ------------------------------------------------------------------------ GatherElements

__device__ __forceinline__ bool elements_offset(const ElementsPlan& p, int64_t i, int64_t v,
                                                int64_t* off) {
  int64_t rem = i, o = 0;
  for (int d = p.rank - 1; d >= 0; --d) {
    const int64_t c = rem % p.idx_dims[d];
    rem /= p.idx_dims[d];
    o += (d == p.axis ? v : c) * p.data_strides[d];
  }
  *off = o;
  return true;
}

template <typename U>
__global__ void gather_elements_kernel(ElementsPlan p, const U* __restrict__ x,
                                       const void* __restrict__ idx, bool idx64, U* __restrict__ y,
                                       int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t v = clamp_index(load_index(idx, idx64, i), p.axis_dim);
    int64_t off = 0;
    elements_offset(p, i, v, &off);
    y[i] = x[off];
  }
}

// ------------------------------------------------------------------ scatter combinations

template <typename T>
__device__ __forceinline__ T combine(Reduce r, T a, T b) {
  switch (r) {
    case Reduce::kNone:
      return b;
    case Reduce::kAdd:
      return static_cast<T>(a + b);
    case Reduce::kMul:
      return static_cast<T>(a * b);
    case Reduce::kMax:
      return a < b ? b : a;
    case Reduce::kMin:
      return b < a ? b : a;
  }
  return b;
}

// Atomic read-modify-write of a 4- or 8-byte element through compare-and-swap.
template <typename T>
__device__ __forceinline__ void atomic_combine(T* p, T v, Reduce r) {
  if constexpr (sizeof(T) == 4) {
    unsigned int* a = reinterpret_cast<unsigned int*>(p);
    unsigned int old = *a, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 4);
      const T nv = combine<T>(r, cur, v);
      unsigned int bits;
      memcpy(&bits, &nv, 4);
      old = atomicCAS(a, assumed, bits);
    } while (assumed != old);
  } else {
    unsigned long long* a = reinterpret_cast<unsigned long long*>(p);
    unsigned long long old = *a, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 8);
      const T nv = combine<T>(r, cur, v);
      unsigned long long bits;
      memcpy(&bits, &nv, 8);
      old = atomicCAS(a, assumed, bits);
    } while (assumed != old);
  }
}

template <typename T>
__global__ void scatter_elements_kernel(ElementsPlan p, const void* __restrict__ idx, bool idx64,
                                        const T* __restrict__ upd, T* y, int64_t n, Reduce r) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t v = load_index(idx, idx64, i);
    if (!wrap_index(&v, p.axis_dim)) continue;
    int64_t off = 0;
    elements_offset(p, i, v, &off);
    if constexpr (sizeof(T) < 4) {
      y[off] = upd[i];  // no reductions on 1- and 2-byte types (refused by supports)
    } else if (r == Reduce::kNone) {
      y[off] = upd[i];
    } else {
      atomic_combine<T>(y + off, upd[i], r);
    }
  }
}

// ----------------------------------------------------------------------- GatherND/ScatterND

__device__ __forceinline__ bool nd_offset(const NdPlan& p, const void* idx, bool idx64, int64_t t,
                                          bool clamp, int64_t* off) {
  int64_t o = (p.per_batch > 0 ? t / p.per_batch : 0) * p.batch_stride;
  for (int k = 0; k < p.last; ++k) {
    int64_t v = load_index(idx, idx64, t * p.last + k);
    if (clamp) {
      v = clamp_index(v, p.dims[k]);
    } else if (!wrap_index(&v, p.dims[k])) {
      return false;
    }
    o += v * p.strides[k];
  }
  *off = o;
  return true;
}

template <typename U>
__global__ void gather_nd_kernel(NdPlan p, const U* __restrict__ x, const void* __restrict__ idx,
                                 bool idx64, U* __restrict__ y, int64_t slice, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t t = i / slice, r = i - t * slice;
    int64_t off = 0;
    nd_offset(p, idx, idx64, t, true, &off);
    y[i] = x[off * slice + r];
  }
}

template <typename T>
__global__ void scatter_nd_kernel(NdPlan p, const void* __restrict__ idx, bool idx64,
                                  const T* __restrict__ upd, T* y, int64_t slice, int64_t n,
                                  Reduce r) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t t = i / slice, e = i - t * slice;
    int64_t off = 0;
    if (!nd_offset(p, idx, idx64, t, false, &off)) continue;
    if constexpr (sizeof(T) < 4) {
      y[off * slice + e] = upd[i];  // no reductions on 1- and 2-byte types
    } else if (r == Reduce::kNone) {
      y[off * slice + e] = upd[i];
    } else {
      atomic_combine<T>(y + off * slice + e, upd[i], r);
    }
  }
}

// --------------------------------------------------------- ReverseSequence / TensorScatter

template <typename U>
__global__ void reverse_sequence_kernel(const U* __restrict__ x, U* __restrict__ y,
                                        const int64_t* __restrict__ lens, int64_t batch,
                                        int64_t steps, int64_t inner, bool batch_major, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t r = i % inner, q = i / inner;
    const int64_t b = batch_major ? q / steps : q % batch;
    const int64_t t = batch_major ? q % steps : q / batch;
    const int64_t len = lens[b];
    const int64_t src_t = t < len ? len - 1 - t : t;
    const int64_t sq = batch_major ? b * steps + src_t : src_t * batch + b;
    y[i] = x[sq * inner + r];
  }
}

template <typename U>
__global__ void tensor_scatter_kernel(const U* __restrict__ upd, U* __restrict__ y,
                                      const int64_t* __restrict__ wi, int64_t per_batch,
                                      int64_t max_seq, int64_t seq, int64_t inner, bool circular,
                                      int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t r = i % inner, q = i / inner;
    const int64_t s = q % seq, o = q / seq;
    const int64_t w = wi[per_batch > 0 ? o / per_batch : 0];
    const int64_t t = circular ? (w % max_seq + s) % max_seq : w + s;
    y[(o * max_seq + t) * inner + r] = upd[i];
  }
}

// ------------------------------------------------------------------------- Trilu / EyeLike

template <typename U>
__global__ void trilu_kernel(const U* __restrict__ x, U* __restrict__ y, int64_t rows, int64_t cols,
                             int64_t k, bool upper, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t j = i % cols, r = (i / cols) % rows;
    const int64_t diff = j - r;
    const bool keep = upper ? diff >= k : diff <= k;
    y[i] = keep ? x[i] : U(0);
  }
}

template <typename U>
__global__ void eye_kernel(U* y, int64_t rows, int64_t cols, int64_t k, U one) {
  KILN_GRID_STRIDE_LOOP(i, rows) {
    const int64_t j = i + k;
    if (j >= 0 && j < cols) y[i * cols + j] = one;
  }
}

// ---------------------------------------------------------------------------------- OneHot

template <typename U>
__global__ void one_hot_kernel(const void* __restrict__ idx, IndexKind kind, U* __restrict__ y,
                               int64_t depth, int64_t inner, U off, U on, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t r = i % inner;
    const int64_t t = i / inner;
    const int64_t d = t % depth, o = t / depth;
    const int64_t k = o * inner + r;
    int64_t v = 0;
    bool valid = true;
    switch (kind) {
      case IndexKind::kI32:
        v = static_cast<const int32_t*>(idx)[k];
        break;
      case IndexKind::kI64:
        v = static_cast<const int64_t*>(idx)[k];
        break;
      case IndexKind::kF32:
      case IndexKind::kF64: {
        double f = kind == IndexKind::kF32 ? static_cast<double>(static_cast<const float*>(idx)[k])
                                           : static_cast<const double*>(idx)[k];
        if (f != f) {
          valid = false;
        } else {
          f = f < -9e18 ? -9e18 : (f > 9e18 ? 9e18 : f);
          v = static_cast<int64_t>(trunc(f));
        }
        break;
      }
    }
    if (valid && v < 0) v += depth;
    y[i] = (valid && v == d) ? on : off;
  }
}

// ----------------------------------------------------------------------------------- Range

template <typename T>
__global__ void range_int_kernel(T* y, int64_t n, int64_t start, int64_t delta) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] = static_cast<T>(static_cast<int64_t>(
        static_cast<uint64_t>(start) + static_cast<uint64_t>(i) * static_cast<uint64_t>(delta)));
  }
}

__global__ void range_f32_kernel(float* y, int64_t n, float start, float delta) {
  // Unfused, as the CPU reference computes start + float(i) * delta.
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] = __fadd_rn(start, __fmul_rn(static_cast<float>(i), delta));
  }
}

template <typename T>
__global__ void range_f64_kernel(T* y, int64_t n, double start, double delta) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const double v = __dadd_rn(start, __dmul_rn(static_cast<double>(i), delta));
    if constexpr (sizeof(T) == 8) {
      y[i] = v;
    } else {
      y[i] = from_f<T>(static_cast<float>(v));  // double -> float -> half, as the CPU does
    }
  }
}

// --------------------------------------------------------------------------------- NonZero

constexpr int kNzThreads = 256;
constexpr int kNzRounds = 8;
constexpr int64_t kNzChunk = kNzThreads * kNzRounds;

__device__ __forceinline__ bool nz_at(const void* x, int64_t i, int esize, uint64_t mask) {
  uint64_t b = 0;
  switch (esize) {
    case 1:
      b = static_cast<const uint8_t*>(x)[i];
      break;
    case 2:
      b = static_cast<const uint16_t*>(x)[i];
      break;
    case 4:
      b = static_cast<const uint32_t*>(x)[i];
      break;
    default:
      b = static_cast<const unsigned long long*>(x)[i];
      break;
  }
  return (b & mask) != 0;
}

__global__ void nz_count_kernel(const void* x, int64_t n, int esize, uint64_t mask,
                                int64_t* counts) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kNzChunk;
  int c = 0;
  for (int k = 0; k < kNzRounds; ++k) {
    const int64_t i = base + k * kNzThreads + threadIdx.x;
    if (i < n && nz_at(x, i, esize, mask)) ++c;
  }
  __shared__ int warp_sums[kNzThreads / 32];
  int v = c;
  for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t s = 0;
    for (int w = 0; w < kNzThreads / 32; ++w) s += warp_sums[w];
    counts[blockIdx.x] = s;
  }
}

// Exclusive prefix sum of counts[0..m) in place; counts[m] = total. One block of 1024 threads.
__global__ void nz_scan_kernel(int64_t* counts, int64_t m) {
  __shared__ int64_t buf[1024];
  __shared__ int64_t carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (int64_t first = 0; first < m; first += 1024) {
    const int64_t i = first + threadIdx.x;
    const int64_t v = i < m ? counts[i] : 0;
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int o = 1; o < 1024; o *= 2) {
      const int64_t add = threadIdx.x >= o ? buf[threadIdx.x - o] : 0;
      __syncthreads();
      buf[threadIdx.x] += add;
      __syncthreads();
    }
    if (i < m) counts[i] = carry + buf[threadIdx.x] - v;
    __syncthreads();
    if (threadIdx.x == 0) carry += buf[1023];
    __syncthreads();
  }
  if (threadIdx.x == 0) counts[m] = carry;
}

struct NzDims {
  int rank = 0;
  int64_t dims[kRank] = {};
};

__global__ void nz_write_kernel(const void* x, int64_t n, int esize, uint64_t mask,
                                const int64_t* offsets, NzDims dims, int64_t total, int64_t* y) {
  __shared__ int warp_sums[kNzThreads / 32];
  __shared__ int64_t running;
  if (threadIdx.x == 0) running = offsets[blockIdx.x];
  __syncthreads();
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kNzChunk;
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  for (int k = 0; k < kNzRounds; ++k) {
    const int64_t i = base + k * kNzThreads + threadIdx.x;
    const bool hit = i < n && nz_at(x, i, esize, mask);
    const unsigned ballot = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_sums[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, round_total = 0;
    for (int w = 0; w < kNzThreads / 32; ++w) {
      if (w < warp) before += warp_sums[w];
      round_total += warp_sums[w];
    }
    before += __popc(ballot & ((1u << lane) - 1u));
    if (hit) {
      const int64_t pos = running + before;
      int64_t rem = i;
      for (int d = dims.rank - 1; d >= 0; --d) {
        y[d * total + pos] = rem % dims.dims[d];
        rem /= dims.dims[d];
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) running += round_total;
    __syncthreads();
  }
}

}  // namespace

void launch_gather(const void* x, const void* idx, bool idx64, void* y, int64_t outer, int64_t dim,
                   int64_t nidx, int64_t inner_bytes, cudaStream_t s) {
  if (outer * nidx * inner_bytes == 0) return;
  switch (unit_for(inner_bytes, x, y)) {
    case 16:
      gather_t<uint4>(x, idx, idx64, y, outer, dim, nidx, inner_bytes, s);
      return;
    case 8:
      gather_t<unsigned long long>(x, idx, idx64, y, outer, dim, nidx, inner_bytes, s);
      return;
    case 4:
      gather_t<uint32_t>(x, idx, idx64, y, outer, dim, nidx, inner_bytes, s);
      return;
    case 2:
      gather_t<uint16_t>(x, idx, idx64, y, outer, dim, nidx, inner_bytes, s);
      return;
    default:
      gather_t<uint8_t>(x, idx, idx64, y, outer, dim, nidx, inner_bytes, s);
      return;
  }
}

void launch_gather_elements(const ElementsPlan& p, const void* x, const void* idx, bool idx64,
                            void* y, int64_t n, int esize, cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  switch (esize) {
    case 1:
      gather_elements_kernel<uint8_t><<<l.grid, l.block, 0, s>>>(
          p, static_cast<const uint8_t*>(x), idx, idx64, static_cast<uint8_t*>(y), n);
      return;
    case 2:
      gather_elements_kernel<uint16_t><<<l.grid, l.block, 0, s>>>(
          p, static_cast<const uint16_t*>(x), idx, idx64, static_cast<uint16_t*>(y), n);
      return;
    case 4:
      gather_elements_kernel<uint32_t><<<l.grid, l.block, 0, s>>>(
          p, static_cast<const uint32_t*>(x), idx, idx64, static_cast<uint32_t*>(y), n);
      return;
    default:
      gather_elements_kernel<unsigned long long>
          <<<l.grid, l.block, 0, s>>>(p, static_cast<const unsigned long long*>(x), idx, idx64,
                                      static_cast<unsigned long long*>(y), n);
      return;
  }
}

namespace {
// Runs `f(T{})` with T the element type for a reduction (by kind) or a plain move (by size).
template <typename F>
void dispatch_scatter(int esize, Reduce red, NumKind kind, F&& f) {
  if (red == Reduce::kNone) {
    switch (esize) {
      case 1:
        f(uint8_t{});
        return;
      case 2:
        f(uint16_t{});
        return;
      case 4:
        f(uint32_t{});
        return;
      default:
        f(static_cast<unsigned long long>(0));
        return;
    }
  }
  switch (kind) {
    case NumKind::kF32:
      f(float{});
      return;
    case NumKind::kF64:
      f(double{});
      return;
    case NumKind::kI32:
      f(int32_t{});
      return;
    case NumKind::kU32:
      f(uint32_t{});
      return;
    case NumKind::kI64:
      f(static_cast<long long>(0));
      return;
    case NumKind::kU64:
      f(static_cast<unsigned long long>(0));
      return;
  }
}
}  // namespace

void launch_scatter_elements(const ElementsPlan& p, const void* idx, bool idx64, const void* upd,
                             void* y, int64_t n, int esize, Reduce red, NumKind kind,
                             cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  dispatch_scatter(esize, red, kind, [&](auto tag) {
    using T = decltype(tag);
    scatter_elements_kernel<T><<<l.grid, l.block, 0, s>>>(p, idx, idx64, static_cast<const T*>(upd),
                                                          static_cast<T*>(y), n, red);
  });
}

void launch_gather_nd(const NdPlan& p, const void* x, const void* idx, bool idx64, void* y,
                      int64_t tuples, int64_t slice_bytes, cudaStream_t s) {
  if (tuples * slice_bytes == 0) return;
  auto go = [&](auto tag) {
    using U = decltype(tag);
    const int64_t slice = slice_bytes / static_cast<int64_t>(sizeof(U));
    const int64_t n = tuples * slice;
    const Launch l = launch_for(n);
    gather_nd_kernel<U><<<l.grid, l.block, 0, s>>>(p, static_cast<const U*>(x), idx, idx64,
                                                   static_cast<U*>(y), slice, n);
  };
  switch (unit_for(slice_bytes, x, y)) {
    case 16:
      go(uint4{});
      return;
    case 8:
      go(static_cast<unsigned long long>(0));
      return;
    case 4:
      go(uint32_t{});
      return;
    case 2:
      go(uint16_t{});
      return;
    default:
      go(uint8_t{});
      return;
  }
}

void launch_scatter_nd(const NdPlan& p, const void* idx, bool idx64, const void* upd, void* y,
                       int64_t tuples, int64_t slice, int esize, Reduce red, NumKind kind,
                       cudaStream_t s) {
  const int64_t n = tuples * slice;
  if (n <= 0) return;
  const Launch l = launch_for(n);
  dispatch_scatter(esize, red, kind, [&](auto tag) {
    using T = decltype(tag);
    scatter_nd_kernel<T><<<l.grid, l.block, 0, s>>>(p, idx, idx64, static_cast<const T*>(upd),
                                                    static_cast<T*>(y), slice, n, red);
  });
}

namespace {
// Runs f(U{}) for the unsigned type of esize bytes.
template <typename F>
void by_size(int esize, F&& f) {
  switch (esize) {
    case 1:
      f(uint8_t{});
      return;
    case 2:
      f(uint16_t{});
      return;
    case 4:
      f(uint32_t{});
      return;
    default:
      f(static_cast<unsigned long long>(0));
      return;
  }
}
}  // namespace

void launch_reverse_sequence(const void* x, void* y, const int64_t* lens, int64_t batch,
                             int64_t steps, int64_t inner, bool batch_major, int esize,
                             cudaStream_t s) {
  const int64_t n = batch * steps * inner;
  if (n <= 0) return;
  const Launch l = launch_for(n);
  by_size(esize, [&](auto tag) {
    using U = decltype(tag);
    reverse_sequence_kernel<U><<<l.grid, l.block, 0, s>>>(
        static_cast<const U*>(x), static_cast<U*>(y), lens, batch, steps, inner, batch_major, n);
  });
}

void launch_tensor_scatter(const void* upd, void* y, const int64_t* write_idx, int64_t outer,
                           int64_t per_batch, int64_t max_seq, int64_t seq, int64_t inner,
                           bool circular, int esize, cudaStream_t s) {
  const int64_t n = outer * seq * inner;
  if (n <= 0) return;
  const Launch l = launch_for(n);
  by_size(esize, [&](auto tag) {
    using U = decltype(tag);
    tensor_scatter_kernel<U><<<l.grid, l.block, 0, s>>>(static_cast<const U*>(upd),
                                                        static_cast<U*>(y), write_idx, per_batch,
                                                        max_seq, seq, inner, circular, n);
  });
}

void launch_trilu(const void* x, void* y, int64_t mats, int64_t rows, int64_t cols, int64_t k,
                  bool upper, int esize, cudaStream_t s) {
  const int64_t n = mats * rows * cols;
  if (n <= 0) return;
  const Launch l = launch_for(n);
  auto go = [&](auto tag) {
    using U = decltype(tag);
    trilu_kernel<U><<<l.grid, l.block, 0, s>>>(static_cast<const U*>(x), static_cast<U*>(y), rows,
                                               cols, k, upper, n);
  };
  switch (esize) {
    case 1:
      go(uint8_t{});
      return;
    case 2:
      go(uint16_t{});
      return;
    case 4:
      go(uint32_t{});
      return;
    default:
      go(static_cast<unsigned long long>(0));
      return;
  }
}

void launch_eye(void* y, int64_t rows, int64_t cols, int64_t k, int esize, uint64_t one,
                cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const Launch l = launch_for(rows);
  auto go = [&](auto tag) {
    using U = decltype(tag);
    eye_kernel<U>
        <<<l.grid, l.block, 0, s>>>(static_cast<U*>(y), rows, cols, k, static_cast<U>(one));
  };
  switch (esize) {
    case 1:
      go(uint8_t{});
      return;
    case 2:
      go(uint16_t{});
      return;
    case 4:
      go(uint32_t{});
      return;
    default:
      go(static_cast<unsigned long long>(0));
      return;
  }
}

void launch_one_hot(const void* idx, IndexKind kind, void* y, int64_t outer, int64_t depth,
                    int64_t inner, int esize, uint64_t off, uint64_t on, cudaStream_t s) {
  const int64_t n = outer * depth * inner;
  if (n <= 0) return;
  const Launch l = launch_for(n);
  auto go = [&](auto tag) {
    using U = decltype(tag);
    one_hot_kernel<U><<<l.grid, l.block, 0, s>>>(idx, kind, static_cast<U*>(y), depth, inner,
                                                 static_cast<U>(off), static_cast<U>(on), n);
  };
  switch (esize) {
    case 1:
      go(uint8_t{});
      return;
    case 2:
      go(uint16_t{});
      return;
    case 4:
      go(uint32_t{});
      return;
    default:
      go(static_cast<unsigned long long>(0));
      return;
  }
}

void launch_range(void* y, DType dt, int64_t n, double fstart, double fdelta, int64_t istart,
                  int64_t idelta, cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  switch (dt) {
    case DType::kFloat32:
      range_f32_kernel<<<l.grid, l.block, 0, s>>>(
          static_cast<float*>(y), n, static_cast<float>(fstart), static_cast<float>(fdelta));
      return;
    case DType::kFloat64:
      range_f64_kernel<double>
          <<<l.grid, l.block, 0, s>>>(static_cast<double*>(y), n, fstart, fdelta);
      return;
    case DType::kFloat16:
      range_f64_kernel<__half>
          <<<l.grid, l.block, 0, s>>>(static_cast<__half*>(y), n, fstart, fdelta);
      return;
    case DType::kBFloat16:
      range_f64_kernel<__nv_bfloat16>
          <<<l.grid, l.block, 0, s>>>(static_cast<__nv_bfloat16*>(y), n, fstart, fdelta);
      return;
    case DType::kInt16:
      range_int_kernel<int16_t>
          <<<l.grid, l.block, 0, s>>>(static_cast<int16_t*>(y), n, istart, idelta);
      return;
    case DType::kInt32:
      range_int_kernel<int32_t>
          <<<l.grid, l.block, 0, s>>>(static_cast<int32_t*>(y), n, istart, idelta);
      return;
    case DType::kInt64:
      range_int_kernel<long long>
          <<<l.grid, l.block, 0, s>>>(static_cast<long long*>(y), n, istart, idelta);
      return;
    default:
      return;
  }
}

uint64_t nonzero_workspace(int64_t n) {
  const int64_t blocks = (n + kNzChunk - 1) / kNzChunk;
  return static_cast<uint64_t>(blocks + 1) * sizeof(int64_t);
}

void launch_nonzero_count(const void* x, int64_t n, int esize, uint64_t value_mask, void* workspace,
                          int64_t* device_total, cudaStream_t s) {
  const int64_t blocks = (n + kNzChunk - 1) / kNzChunk;
  int64_t* counts = static_cast<int64_t*>(workspace);
  (void)device_total;  // == counts + blocks
  if (blocks > 0) {
    nz_count_kernel<<<static_cast<unsigned>(blocks), kNzThreads, 0, s>>>(x, n, esize, value_mask,
                                                                         counts);
  }
  nz_scan_kernel<<<1, 1024, 0, s>>>(counts, blocks);
}

void launch_nonzero_write(const void* x, int64_t n, int esize, uint64_t value_mask,
                          const void* workspace, int rank, const int64_t* dims, int64_t total,
                          int64_t* y, cudaStream_t s) {
  const int64_t blocks = (n + kNzChunk - 1) / kNzChunk;
  if (blocks == 0 || total == 0 || rank == 0) return;
  NzDims d;
  d.rank = rank;
  for (int i = 0; i < rank; ++i) d.dims[i] = dims[i];
  nz_write_kernel<<<static_cast<unsigned>(blocks), kNzThreads, 0, s>>>(
      x, n, esize, value_mask, static_cast<const int64_t*>(workspace), d, total, y);
}

}  // namespace kiln::cuda::tensor
