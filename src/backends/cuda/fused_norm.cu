// CUDA kernel of kiln.SkipLayerNorm (ops/fused_norm.h), also used by LayerNormalization over the
// last axis with 1-D Scale/B and no Mean/InvStdDev outputs: one warp per row. The row's sums
// X + Skip (rounded to the dtype, as the Add kernel rounds them) stay in registers when the row
// has at most 32 × kMaxPerLane elements, so X and Skip are read once and Y (and Sum) written
// once; longer rows read X and Skip again per pass. Float16/bfloat16 rows of a multiple of 8 up to
// 1024 elements move as 16-byte vectors. Statistics in float, two passes (mean, then
// squared deviations), as the LayerNormalization kernel computes them.
#include "backends/cuda/common.cuh"
#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"
#include "ops/fused_norm.h"

namespace kiln::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kMaxPerLane = 32;  // rows up to 1024 elements held in registers

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Element i of the row: X + Skip rounded to the dtype (and stored to `sum` when given), or X
// alone without a Skip (plain LayerNormalization).
template <typename T>
__device__ __forceinline__ float rounded_sum(const T* x, const T* skip, T* sum, int64_t i) {
  if (skip == nullptr) return load_f(x, i);
  const T s = from_f<T>(load_f(x, i) + load_f(skip, i));
  if (sum != nullptr) sum[i] = s;
  return load_f(&s, 0);
}

// kPer > 0: each lane keeps kPer elements (j = lane + 32 k) in registers; kPer == 0: any length,
// recomputing the sums in each pass.
template <typename T, int kPer>
__global__ void skip_layer_norm_kernel(const T* x, const T* skip, const T* scale, const T* bias,
                                       T* y, T* sum, int64_t rows, int len, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t base = row * len;
  const float inv_len = 1.f / static_cast<float>(len);
  if constexpr (kPer > 0) {
    float v[kPer];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int j = lane + 32 * k;
      v[k] = j < len ? rounded_sum(x, skip, sum, base + j) : 0.f;
      s += v[k];
    }
    const float m = warp_sum(s) * inv_len;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int j = lane + 32 * k;
      const float d = j < len ? v[k] - m : 0.f;
      q += d * d;
    }
    const float inv = 1.f / sqrtf(warp_sum(q) * inv_len + eps);
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int j = lane + 32 * k;
      if (j >= len) break;
      float o = (v[k] - m) * inv * load_f(scale, j);
      if (bias != nullptr) o += load_f(bias, j);
      y[base + j] = from_f<T>(o);
    }
  } else {
    float s = 0.f;
    for (int j = lane; j < len; j += 32) s += rounded_sum(x, skip, sum, base + j);
    const float m = warp_sum(s) * inv_len;
    float q = 0.f;
    for (int j = lane; j < len; j += 32) {
      const float d = rounded_sum<T>(x, skip, nullptr, base + j) - m;
      q += d * d;
    }
    const float inv = 1.f / sqrtf(warp_sum(q) * inv_len + eps);
    for (int j = lane; j < len; j += 32) {
      float o = (rounded_sum<T>(x, skip, nullptr, base + j) - m) * inv * load_f(scale, j);
      if (bias != nullptr) o += load_f(bias, j);
      y[base + j] = from_f<T>(o);
    }
  }
}

// The vectorized form for 16-bit types, rows of len % 8 == 0 and 16-byte aligned tensors: lane
// `lane` holds the 8-element vectors lane + 32 k (k < kVec) of its row, read and written with
// 16-byte accesses. The same per-element arithmetic as above.
template <typename T, int kVec>
__global__ void skip_layer_norm_vec_kernel(const T* x, const T* skip, const T* scale, const T* bias,
                                           T* y, T* sum, int64_t rows, int len, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int vecs = len / 8;
  const int64_t base = row * len;
  const float inv_len = 1.f / static_cast<float>(len);
  float v[kVec][8];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int j = lane + 32 * k;
    if (j < vecs) {
      const uint4 xr = *reinterpret_cast<const uint4*>(x + base + 8 * j);
      const T* xe = reinterpret_cast<const T*>(&xr);
      if (skip != nullptr) {
        const uint4 sr = *reinterpret_cast<const uint4*>(skip + base + 8 * j);
        const T* se = reinterpret_cast<const T*>(&sr);
        T r[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          r[e] = from_f<T>(load_f(xe, e) + load_f(se, e));
          v[k][e] = load_f(r, e);
        }
        if (sum != nullptr) {
          *reinterpret_cast<uint4*>(sum + base + 8 * j) = *reinterpret_cast<const uint4*>(r);
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[k][e] = load_f(xe, e);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) v[k][e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) s += v[k][e];
  }
  const float m = warp_sum(s) * inv_len;
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    if (lane + 32 * k < vecs) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = v[k][e] - m;
        q += d * d;
      }
    }
  }
  const float inv = 1.f / sqrtf(warp_sum(q) * inv_len + eps);
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int j = lane + 32 * k;
    if (j >= vecs) break;
    const uint4 gr = *reinterpret_cast<const uint4*>(scale + 8 * j);
    const T* ge = reinterpret_cast<const T*>(&gr);
    uint4 br = {0, 0, 0, 0};
    if (bias != nullptr) br = *reinterpret_cast<const uint4*>(bias + 8 * j);
    const T* be = reinterpret_cast<const T*>(&br);
    T o[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float t = (v[k][e] - m) * inv * load_f(ge, e);
      if (bias != nullptr) t += load_f(be, e);
      o[e] = from_f<T>(t);
    }
    *reinterpret_cast<uint4*>(y + base + 8 * j) = *reinterpret_cast<const uint4*>(o);
  }
}

template <typename T, int kVec>
void launch_vec(const void* x, const void* skip, const void* scale, const void* bias, void* y,
                void* sum, int64_t rows, int len, float eps, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  skip_layer_norm_vec_kernel<T, kVec><<<blocks, 32 * kWarpsPerBlock, 0, s>>>(
      static_cast<const T*>(x), static_cast<const T*>(skip), static_cast<const T*>(scale),
      static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(sum), rows, len, eps);
}

// Whether the 16-byte form applies: a 16-bit dtype, len a multiple of 8 up to 1024, every
// pointer 16-byte aligned.
template <typename T>
bool try_launch_vec(const void* x, const void* skip, const void* scale, const void* bias, void* y,
                    void* sum, int64_t rows, int len, float eps, cudaStream_t s) {
  if constexpr (sizeof(T) != 2) {
    return false;
  } else {
    const auto aligned = [](const void* p) {
      return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
    };
    if (len % 8 != 0 || len > 32 * 4 * 8 || !aligned(x) || !aligned(skip) || !aligned(scale) ||
        !aligned(bias) || !aligned(y) || !aligned(sum)) {
      return false;
    }
    const int vecs = len / 8;
    if (vecs <= 32) {
      launch_vec<T, 1>(x, skip, scale, bias, y, sum, rows, len, eps, s);
    } else if (vecs <= 64) {
      launch_vec<T, 2>(x, skip, scale, bias, y, sum, rows, len, eps, s);
    } else if (vecs <= 96) {
      launch_vec<T, 3>(x, skip, scale, bias, y, sum, rows, len, eps, s);
    } else {
      launch_vec<T, 4>(x, skip, scale, bias, y, sum, rows, len, eps, s);
    }
    return true;
  }
}

template <typename T, int kPer>
void launch(const void* x, const void* skip, const void* scale, const void* bias, void* y,
            void* sum, int64_t rows, int len, float eps, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  skip_layer_norm_kernel<T, kPer><<<blocks, 32 * kWarpsPerBlock, 0, s>>>(
      static_cast<const T*>(x), static_cast<const T*>(skip), static_cast<const T*>(scale),
      static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(sum), rows, len, eps);
}

template <typename T>
void launch_for_len(const void* x, const void* skip, const void* scale, const void* bias, void* y,
                    void* sum, int64_t rows, int len, float eps, cudaStream_t s) {
  if (try_launch_vec<T>(x, skip, scale, bias, y, sum, rows, len, eps, s)) return;
  if (len <= 32 * 4) {
    launch<T, 4>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  } else if (len <= 32 * 8) {
    launch<T, 8>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  } else if (len <= 32 * 16) {
    launch<T, 16>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  } else if (len <= 32 * 24) {
    launch<T, 24>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  } else if (len <= 32 * kMaxPerLane) {
    launch<T, kMaxPerLane>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  } else {
    launch<T, 0>(x, skip, scale, bias, y, sum, rows, len, eps, s);
  }
}

std::string skip_layer_norm_supports(const ir::Node& node) {
  return require_dtypes(node, {DType::kFloat32, DType::kFloat16, DType::kBFloat16});
}

Status skip_layer_norm_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  const DeviceTensor& S = ctx.input(1);
  const DeviceTensor& G = ctx.input(2);
  const DeviceTensor* B = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (X.rank() < 1) return ctx.invalid("X must have rank >= 1");
  if (S.shape != X.shape) return ctx.invalid("Skip must have X's shape");
  const int64_t len = X.shape.back();
  if (G.rank() != 1 || G.dim(0) != len || (B && (B->rank() != 1 || B->dim(0) != len))) {
    return ctx.invalid("Scale and B must be 1-D with X's last dim");
  }
  if (S.dtype != X.dtype || G.dtype != X.dtype || (B && B->dtype != X.dtype)) {
    return ctx.invalid("inputs differ in dtype");
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, X.shape));
  DeviceTensor* Sum = nullptr;
  if (ctx.num_outputs() > 1 && ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(Sum, ctx.allocate(1, X.dtype, X.shape));
  }
  const int64_t rows = len > 0 ? X.numel() / len : 0;
  return launch_last_axis_layer_norm(ctx, X.dtype, X.data, S.data, G.data, B ? B->data : nullptr,
                                     Y->data, Sum ? Sum->data : nullptr, rows, len, eps);
}

}  // namespace

Status launch_last_axis_layer_norm(KernelContext& ctx, DType dtype, const void* x, const void* skip,
                                   const void* scale, const void* bias, void* y, void* sum,
                                   int64_t rows, int64_t len, float eps) {
  if (rows == 0 || len == 0) return Status::Ok();
  if (len > INT32_MAX) return ctx.unsupported("rows longer than 2^31 elements");
  if ((rows + kWarpsPerBlock - 1) / kWarpsPerBlock > INT32_MAX) {
    return ctx.unsupported("too many rows for one launch");
  }
  const int n = static_cast<int>(len);
  switch (dtype) {
    case DType::kFloat32:
      launch_for_len<float>(x, skip, scale, bias, y, sum, rows, n, eps, ctx.stream());
      break;
    case DType::kFloat16:
      launch_for_len<__half>(x, skip, scale, bias, y, sum, rows, n, eps, ctx.stream());
      break;
    case DType::kBFloat16:
      launch_for_len<__nv_bfloat16>(x, skip, scale, bias, y, sum, rows, n, eps, ctx.stream());
      break;
    default:
      return ctx.unsupported_type(dtype);
  }
  return ctx.check_launch(skip != nullptr ? "SkipLayerNorm" : "LayerNormalization");
}

void register_fused_norm_kernels(KernelRegistry& r) {
  r.add({ir::kKilnDomain, ops::kSkipLayerNorm, skip_layer_norm_supports, skip_layer_norm_run});
}

}  // namespace kiln::cuda
