// Small device helpers of the nn family: fills, broadcast copies, per-channel bias adds and
// a row softmax (Attention).
#include <cfloat>
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* y, int64_t n, T v) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] = v;
  }
}

template <typename T>
__global__ void broadcast_copy_kernel(const T* x, T* y, int64_t n, BroadcastMap map) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] = x[map.offset(i)];
  }
}

template <typename T>
__global__ void channel_bias_kernel(T* y, const T* bias, int64_t n, int64_t channels,
                                    int64_t inner) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t c = (i / inner) % channels;
    y[i] = from_f<T>(load_f(y, i) + load_f(bias, c));
  }
}
template <>
__global__ void channel_bias_kernel<double>(double* y, const double* bias, int64_t n,
                                            int64_t channels, int64_t inner) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] += bias[(i / inner) % channels];
  }
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccOf<T> load_acc(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return p[i];
  } else {
    return load_f(p, i);
  }
}
template <typename T>
__device__ __forceinline__ T store_acc(AccOf<T> v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return from_f<T>(v);
  }
}

// Block-wide reductions over blockDim.x (a multiple of 32, <= 1024) threads.
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
template <typename A>
__device__ A block_max(A v, A* shared) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  A t = lane < nw ? shared[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) t = max(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

// One block per row: y = exp(x - max) / sum.
template <typename T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t len) {
  using A = AccOf<T>;
  __shared__ A shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    A mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) mx = max(mx, load_acc(xr, j));
    mx = block_max(mx, shared);
    A s = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += exp(load_acc(xr, j) - mx);
    s = block_sum(s, shared);
    // A fully masked row (all -inf) gives NaN in the reference too (0/0); keep that.
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      yr[j] = store_acc<T>(exp(load_acc(xr, j) - mx) / s);
    }
  }
}

template <typename T>
__global__ void shift_copy_kernel(const T* x, T* y, ShiftGeom g) {
  const int64_t total = g.planes * g.out[0] * g.out[1] * g.out[2];
  KILN_GRID_STRIDE_LOOP(idx, total) {
    int64_t rem = idx;
    const int64_t o2 = rem % g.out[2];
    rem /= g.out[2];
    const int64_t o1 = rem % g.out[1];
    rem /= g.out[1];
    const int64_t o0 = rem % g.out[0];
    const int64_t pl = rem / g.out[0];
    const int64_t i0 = o0 + g.shift[0], i1 = o1 + g.shift[1], i2 = o2 + g.shift[2];
    T v = T(0);
    if (i0 >= 0 && i0 < g.in[0] && i1 >= 0 && i1 < g.in[1] && i2 >= 0 && i2 < g.in[2]) {
      v = x[((pl * g.in[0] + i0) * g.in[1] + i1) * g.in[2] + i2];
    }
    y[idx] = v;
  }
}

struct PermuteMap {
  int rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};  // stride in x of out dim i
};

template <typename T>
__global__ void permute_kernel(const T* x, T* y, int64_t n, PermuteMap m) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t rem = i, off = 0;
    for (int d = m.rank - 1; d >= 0; --d) {
      off += (rem % m.out_dims[d]) * m.in_strides[d];
      rem /= m.out_dims[d];
    }
    y[i] = x[off];
  }
}

template <typename T>
__global__ void row_sum_kernel(const T* x, T* y, int64_t rows, int64_t len) {
  KILN_GRID_STRIDE_LOOP(r, rows) {
    AccOf<T> s = 0;
    for (int64_t j = 0; j < len; ++j) s += load_acc(x, r * len + j);
    y[r] = store_acc<T>(s);
  }
}

}  // namespace

Status permute(KernelContext& ctx, int elem_bytes, const void* x,
               const std::vector<int64_t>& in_shape, const std::vector<int>& perm, void* y) {
  const int r = static_cast<int>(in_shape.size());
  if (r > kMaxRank || perm.size() != in_shape.size()) return ctx.unsupported("permute rank");
  PermuteMap m;
  m.rank = r;
  std::vector<int64_t> st(in_shape.size(), 1);
  for (int d = r - 1; d > 0; --d)
    st[static_cast<size_t>(d - 1)] = st[static_cast<size_t>(d)] * in_shape[static_cast<size_t>(d)];
  int64_t n = 1;
  for (int i = 0; i < r; ++i) {
    const int p = perm[static_cast<size_t>(i)];
    if (p < 0 || p >= r) return ctx.invalid("bad permutation");
    m.out_dims[i] = in_shape[static_cast<size_t>(p)];
    m.in_strides[i] = st[static_cast<size_t>(p)];
    n *= m.out_dims[i];
  }
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  switch (elem_bytes) {
    case 1:
      permute_kernel<uint8_t><<<l.grid, l.block, 0, ctx.stream()>>>(static_cast<const uint8_t*>(x),
                                                                    static_cast<uint8_t*>(y), n, m);
      break;
    case 2:
      permute_kernel<uint16_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y), n, m);
      break;
    case 4:
      permute_kernel<uint32_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint32_t*>(x), static_cast<uint32_t*>(y), n, m);
      break;
    case 8:
      permute_kernel<uint64_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint64_t*>(x), static_cast<uint64_t*>(y), n, m);
      break;
    default:
      return ctx.unsupported("element size " + std::to_string(elem_bytes));
  }
  return ctx.check_launch("permute");
}

Status launch_row_sum(KernelContext& ctx, DType dtype, const void* x, void* y, int64_t rows,
                      int64_t len) {
  if (rows <= 0) return Status::Ok();
  const Launch l = launch_for(rows);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    row_sum_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(static_cast<const T*>(x),
                                                            static_cast<T*>(y), rows, len);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("row sum");
}

Status shift_copy(KernelContext& ctx, int elem_bytes, const void* x, void* y, const ShiftGeom& g) {
  const int64_t total = g.planes * g.out[0] * g.out[1] * g.out[2];
  if (total <= 0) return Status::Ok();
  const Launch l = launch_for(total);
  switch (elem_bytes) {
    case 2:
      shift_copy_kernel<uint16_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y), g);
      break;
    case 4:
      shift_copy_kernel<uint32_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint32_t*>(x), static_cast<uint32_t*>(y), g);
      break;
    case 8:
      shift_copy_kernel<uint64_t><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const uint64_t*>(x), static_cast<uint64_t*>(y), g);
      break;
    default:
      return ctx.unsupported("element size " + std::to_string(elem_bytes));
  }
  return ctx.check_launch("pad/crop copy");
}

Status fill_float(KernelContext& ctx, DType dtype, void* data, int64_t n, double value) {
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (std::is_same_v<T, __half>) {
      v = __float2half_rn(static_cast<float>(value));
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      v = __float2bfloat16_rn(static_cast<float>(value));
    } else {
      v = static_cast<T>(value);
    }
    fill_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(static_cast<T*>(data), n, v);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("fill");
}

Status broadcast_copy(KernelContext& ctx, DType dtype, const void* x, void* y,
                      const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape) {
  if (in_shape.size() > static_cast<size_t>(kMaxRank) ||
      out_shape.size() > static_cast<size_t>(kMaxRank)) {
    return ctx.unsupported("rank > 8");
  }
  int64_t n = 1;
  for (int64_t d : out_shape) n *= d;
  if (n <= 0) return Status::Ok();
  const BroadcastMap map = make_broadcast_map(in_shape, out_shape);
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    broadcast_copy_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(static_cast<const T*>(x),
                                                                   static_cast<T*>(y), n, map);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("broadcast copy");
}

Status add_channel_bias(KernelContext& ctx, DType dtype, void* y, const void* bias, int64_t outer,
                        int64_t channels, int64_t inner) {
  const int64_t n = outer * channels * inner;
  if (n <= 0) return Status::Ok();
  if (inner == 1 && (dtype == DType::kFloat16 || dtype == DType::kBFloat16)) {
    // Channels innermost: the convolution epilogue's vector form (same arithmetic).
    return launch_conv_epilogue(ctx, dtype, y, bias, ConvEpilogue{}, outer, channels, inner);
  }
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    channel_bias_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), n, channels, inner);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("bias add");
}

Status launch_softmax_rows(KernelContext& ctx, DType dtype, const void* x, void* y, int64_t rows,
                           int64_t len) {
  if (rows <= 0 || len <= 0) return Status::Ok();
  const unsigned block = len >= 1024 ? 512 : (len >= 256 ? 256 : 128);
  const unsigned grid = static_cast<unsigned>(rows < 65535 * 16 ? rows : 65535 * 16);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    softmax_rows_kernel<T>
        <<<grid, block, 0, ctx.stream()>>>(static_cast<const T*>(x), static_cast<T*>(y), rows, len);
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("softmax");
}

}  // namespace kiln::cuda
