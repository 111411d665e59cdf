// Device-side helpers shared by the CUDA kernel families: element conversions, launch
// configuration, broadcasting index maps, and host-side dtype dispatch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

inline constexpr int kMaxRank = 8;  // kernels refuse (in supports) tensors of higher rank

// Loads and stores of float-like element types, computing in float.
template <typename T>
__device__ __forceinline__ float load_f(const T* p, int64_t i) {
  return static_cast<float>(p[i]);
}
template <>
__device__ __forceinline__ float load_f<__half>(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
template <>
__device__ __forceinline__ float load_f<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
template <typename T>
__device__ __forceinline__ T from_f(float v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Grid-stride launch shape for n elements.
struct Launch {
  unsigned grid = 1;
  unsigned block = 256;
};
inline Launch launch_for(int64_t n, unsigned block = 256) {
  Launch l;
  l.block = block;
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65535LL * 32) g = 65535LL * 32;  // grid-stride loops cover the rest
  l.grid = static_cast<unsigned>(g);
  return l;
}

#define KILN_GRID_STRIDE_LOOP(i, n)                                                      \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Division of 32-bit values below 2^31 by a fixed divisor d >= 1 with a multiply-high and a
// shift (round-up reciprocal: s = ceil(log2 d), m = floor(2^32 (2^s - d) / d) + 1, then
// n / d = (umulhi(n, m) + n) >> s), set up once on the host.
struct FastDiv32 {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv32() = default;
  explicit FastDiv32(uint32_t divisor) : d(divisor) {
    s = 0;
    while ((uint64_t{1} << s) < divisor) ++s;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - divisor)) / divisor + 1);
  }
  __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    return (__umulhi(n, m) + n) >> s;
#else
    return (static_cast<uint32_t>((static_cast<uint64_t>(n) * m) >> 32) + n) >> s;
#endif
  }
};

// Maps a linear index of an output of shape `out` to the offset of an input broadcast to it
// (numpy rules; strides of broadcast dims are 0). Passed to kernels by value. When the output and
// the input's offsets stay below 2^31 (`small`), the index math runs in 32 bits with
// multiply-shift divisions instead of 64-bit divisions, several times cheaper on the GPU.
struct BroadcastMap {
  int rank = 0;
  bool small = false;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};
  FastDiv32 div32[kMaxRank];
  uint32_t strides32[kMaxRank] = {};

  __host__ __device__ __forceinline__ int64_t offset(int64_t linear) const {
    if (small) {
      uint32_t l = static_cast<uint32_t>(linear), off = 0;
      for (int d = rank - 1; d >= 0; --d) {
        const uint32_t q = div32[d].div(l);
        off += (l - q * div32[d].d) * strides32[d];
        l = q;
      }
      return off;
    }
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t idx = linear % out_dims[d];
      linear /= out_dims[d];
      off += idx * in_strides[d];
    }
    return off;
  }

  // Host side, after out_dims and in_strides are set: the 32-bit form when it applies.
  void prepare() {
    uint64_t n = 1, last = 0;
    for (int d = 0; d < rank; ++d) {
      if (out_dims[d] <= 0) return;
      n *= static_cast<uint64_t>(out_dims[d]);
      if (n >= (uint64_t{1} << 31)) return;
      last += static_cast<uint64_t>(out_dims[d] - 1) * static_cast<uint64_t>(in_strides[d]);
      if (last >= (uint64_t{1} << 31)) return;
    }
    for (int d = 0; d < rank; ++d) {
      div32[d] = FastDiv32(static_cast<uint32_t>(out_dims[d]));
      strides32[d] = static_cast<uint32_t>(in_strides[d]);
    }
    small = true;
  }
};

// Host side: the map for an input of shape `in` read as `out` (in's rank <= out's rank, aligned
// to the right). Both ranks must be <= kMaxRank (checked by supports()).
inline BroadcastMap make_broadcast_map(const std::vector<int64_t>& in,
                                       const std::vector<int64_t>& out) {
  BroadcastMap m;
  m.rank = static_cast<int>(out.size());
  int64_t stride = 1;
  int shift = m.rank - static_cast<int>(in.size());
  for (int d = m.rank - 1; d >= 0; --d) {
    m.out_dims[d] = out[static_cast<size_t>(d)];
    int id = d - shift;
    int64_t extent = id >= 0 ? in[static_cast<size_t>(id)] : 1;
    m.in_strides[d] = extent == 1 ? 0 : stride;
    stride *= extent;
  }
  m.prepare();
  return m;
}

// Host-side dispatch over the float types kernels compute in float:
//   return dispatch_float(dt, [&](auto tag) { using T = decltype(tag); ... });
// Returns false (did nothing) for other dtypes.
template <typename F>
bool dispatch_float(DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat32:
      f(float{});
      return true;
    case DType::kFloat16:
      f(__half{});
      return true;
    case DType::kBFloat16:
      f(__nv_bfloat16{});
      return true;
    case DType::kFloat64:
      f(double{});
      return true;
    default:
      return false;
  }
}

}  // namespace kiln::cuda
