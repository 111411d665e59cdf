// Device kernels of Attention: past/current key-value concatenation and the per-row score
// pass (mask, causal/window/nonpad masking, softcap, softmax, qk_matmul_output), one block per
// (batch, head, query) row. Semantics follow src/backends/cpu/misc_attention.cc: a row whose
// every key is masked gives zero probabilities.
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

template <typename T>
__global__ void concat_seq_kernel(const T* past, const T* cur, T* out, int64_t bh, int64_t past_len,
                                  int64_t cur_len, int64_t row) {
  const int64_t total = past_len + cur_len;
  const int64_t n = bh * total * row;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t x = i % row;
    const int64_t t = (i / row) % total;
    const int64_t b = i / (row * total);
    out[i] = t < past_len ? past[(b * past_len + t) * row + x]
                          : cur[(b * cur_len + (t - past_len)) * row + x];
  }
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccOf<T> ld(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return p[i];
  } else {
    return load_f(p, i);
  }
}
template <typename T>
__device__ __forceinline__ T st(AccOf<T> v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return from_f<T>(v);
  }
}

template <typename A>
__device__ A block_sum(A v, A* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  A t = lane < nw ? shared[lane] : A(0);
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}
// Max ignoring NaN (as std::max(max, v) over a row starting from -inf).
template <typename A>
__device__ __forceinline__ A nan_skip_max(A a, A b) {
  return b > a ? b : a;
}
template <typename A>
__device__ A block_max(A v, A* shared) {
  for (int o = 16; o > 0; o >>= 1) v = nan_skip_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  A t = lane < nw ? shared[lane] : A(-INFINITY);
  for (int o = 16; o > 0; o >>= 1) t = nan_skip_max(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

template <typename T>
__global__ void attention_scores_kernel(AttentionScoreArgs a) {
  using A = AccOf<T>;
  __shared__ A shared[32];
  T* scores = static_cast<T*>(a.scores);
  T* qk = static_cast<T*>(a.qk);
  const T* fmask = static_cast<const T*>(a.mask);
  const uint8_t* bmask = static_cast<const uint8_t*>(a.mask);
  const int64_t rows = a.batch * a.heads * a.sq;
  const A neg_inf = -INFINITY;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % a.sq;
    const int64_t h = (r / a.sq) % a.heads;
    const int64_t b = r / (a.sq * a.heads);
    int64_t offset = a.past, valid = a.total;
    if (a.nonpad != nullptr) {
      int64_t np = a.nonpad[b];
      np = np < 0 ? 0 : (np > a.total ? a.total : np);  // the CPU kernel rejects these
      offset = np - a.sq;
      valid = np;
    }
    const int64_t pos = i + offset;
    T* sr = scores + r * a.total;
    T* qr = qk != nullptr ? qk + r * a.total : nullptr;
    A mx = neg_inf, unmasked = 0;
    for (int64_t j = threadIdx.x; j < a.total; j += blockDim.x) {
      A s = ld(sr, j);
      if (qr != nullptr && a.qk_mode == 0) qr[j] = st<T>(s);
      if (a.softcap > 0.f) s = A(a.softcap) * tanh(s / A(a.softcap));
      if (qr != nullptr && a.qk_mode == 1) qr[j] = st<T>(s);
      A bj = 0;
      if (a.mask != nullptr) {
        if (j < a.mask_last) {
          const int64_t mo = b * a.mask_stride[0] + h * a.mask_stride[1] + i * a.mask_stride[2] + j;
          bj += a.mask_bool ? (bmask[mo] ? A(0) : neg_inf) : ld(fmask, mo);
        } else {
          bj += neg_inf;
        }
      }
      if (a.causal && j > pos) bj += neg_inf;
      if (a.left >= 0 && pos - j > a.left) bj += neg_inf;
      if (a.right >= 0 && j - pos > a.right) bj += neg_inf;
      if (j >= valid) bj += neg_inf;
      if (!(bj == neg_inf)) unmasked += A(1);
      s += bj;
      if (qr != nullptr && a.qk_mode == 2) qr[j] = st<T>(s);
      sr[j] = st<T>(s);
      mx = nan_skip_max(mx, s);
    }
    mx = block_max(mx, shared);
    unmasked = block_sum(unmasked, shared);
    const bool mx_neg_inf = isinf(mx) && mx < A(0);
    A sum = 0;
    for (int64_t j = threadIdx.x; j < a.total; j += blockDim.x) {
      sum += mx_neg_inf ? A(0) : exp(ld(sr, j) - mx);
    }
    sum = block_sum(sum, shared);
    const bool zero = unmasked == A(0) || sum == A(0);
    for (int64_t j = threadIdx.x; j < a.total; j += blockDim.x) {
      const A e = mx_neg_inf ? A(0) : exp(ld(sr, j) - mx);
      const A p = zero ? A(0) : e / sum;
      sr[j] = st<T>(p);
      if (qr != nullptr && a.qk_mode == 3) qr[j] = st<T>(p);
    }
  }
}

}  // namespace

Status concat_seq(KernelContext& ctx, int elem_bytes, const void* past, const void* cur, void* out,
                  int64_t bh, int64_t past_len, int64_t cur_len, int64_t row) {
  const int64_t n = bh * (past_len + cur_len) * row;
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  switch (elem_bytes) {
    case 2:
      concat_seq_kernel<uint16_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint16_t*>(past), static_cast<const uint16_t*>(cur),
          static_cast<uint16_t*>(out), bh, past_len, cur_len, row);
      break;
    case 4:
      concat_seq_kernel<uint32_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint32_t*>(past), static_cast<const uint32_t*>(cur),
          static_cast<uint32_t*>(out), bh, past_len, cur_len, row);
      break;
    case 8:
      concat_seq_kernel<uint64_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint64_t*>(past), static_cast<const uint64_t*>(cur),
          static_cast<uint64_t*>(out), bh, past_len, cur_len, row);
      break;
    default:
      return ctx.unsupported("element size " + std::to_string(elem_bytes));
  }
  return ctx.check_launch("past/present concat");
}

Status launch_attention_scores(KernelContext& ctx, const AttentionScoreArgs& a) {
  const int64_t rows = a.batch * a.heads * a.sq;
  if (rows <= 0 || a.total <= 0) return Status::Ok();
  const unsigned block = a.total >= 1024 ? 256 : (a.total >= 128 ? 128 : 32);
  const unsigned grid = static_cast<unsigned>(rows < 65535LL * 16 ? rows : 65535LL * 16);
  const bool ok = dispatch_float(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    attention_scores_kernel<T><<<grid, block, 0, ctx.stream()>>>(a);
  });
  if (!ok) return ctx.unsupported_type(a.dtype);
  return ctx.check_launch("attention softmax");
}

}  // namespace kiln::cuda
