// The epilogue of a convolution that cuDNN does not fuse (bfloat16, no bias, the identity
// activation with an algorithm other than IMPLICIT_PRECOMP_GEMM): y = act(y + bias[c] + z) in
// one pass over y, computed in float (double for float64). Channels-last callers pass inner = 1.
// Also the channels-last (NHWC) MaxPool / AveragePool of the layout pass: one thread per output
// element, consecutive threads on consecutive channels (coalesced loads).
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

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

template <typename T, bool kRelu>
__global__ void conv_epilogue_kernel(T* y, const T* bias, const T* z, int64_t n, int64_t channels,
                                     int64_t inner) {
  using A = AccOf<T>;
  KILN_GRID_STRIDE_LOOP(i, n) {
    A v = load_acc(y, i);
    if (bias) v += load_acc(bias, (i / inner) % channels);
    if (z) v += load_acc(z, i);
    if (kRelu) v = v < A(0) ? A(0) : v;  // NaN stays NaN
    if constexpr (std::is_same_v<T, double>) {
      y[i] = v;
    } else {
      y[i] = from_f<T>(v);
    }
  }
}

// Channels-last (inner == 1) form for 16-bit types: 8 channels per thread with 16-byte accesses
// and 32-bit index math; the same per-element arithmetic as conv_epilogue_kernel.
template <typename T, bool kRelu>
__global__ void conv_epilogue_vec_kernel(T* y, const T* bias, const T* z, uint32_t vectors,
                                         uint32_t channel_vectors) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= vectors) return;
  const uint4 yr = reinterpret_cast<const uint4*>(y)[i];
  const T* ye = reinterpret_cast<const T*>(&yr);
  uint4 br = {0, 0, 0, 0}, zr = {0, 0, 0, 0};
  if (bias) br = reinterpret_cast<const uint4*>(bias)[i % channel_vectors];
  if (z) zr = reinterpret_cast<const uint4*>(z)[i];
  const T* be = reinterpret_cast<const T*>(&br);
  const T* ze = reinterpret_cast<const T*>(&zr);
  T out[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    float v = load_f(ye, e);
    if (bias) v += load_f(be, e);
    if (z) v += load_f(ze, e);
    if (kRelu) v = v < 0.f ? 0.f : v;
    out[e] = from_f<T>(v);
  }
  reinterpret_cast<uint4*>(y)[i] = *reinterpret_cast<const uint4*>(out);
}

template <typename T, bool kMax>
__global__ void channels_last_pool_kernel(const T* x, T* y, ChannelsLastPoolGeom g, bool cip) {
  using A = AccOf<T>;
  const int64_t n = g.n * g.oh * g.ow * g.c;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t c = i % g.c;
    int64_t t = i / g.c;
    const int64_t ow = t % g.ow;
    t /= g.ow;
    const int64_t oh = t % g.oh;
    const int64_t b = t / g.oh;
    const int64_t hs = oh * g.sh - g.pt, ws = ow * g.sw - g.pl;
    const T* xb = x + b * g.h * g.w * g.c + c;
    if (kMax) {
      // As the CPU reference: the first element in the window, then strictly greater ones.
      A best = -std::numeric_limits<A>::infinity();
      bool any = false;
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = hs + kh * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = ws + kw * g.dw;
          if (iw < 0 || iw >= g.w) continue;
          const A v = load_acc(xb, (ih * g.w + iw) * g.c);
          if (v > best || !any) {
            best = v;
            any = true;
          }
        }
      }
      if constexpr (std::is_same_v<T, double>) {
        y[i] = best;
      } else {
        y[i] = from_f<T>(best);
      }
    } else {
      A sum = A(0);
      int64_t valid = 0, padded = 0;
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = hs + kh * g.dh;
        const bool h_in = ih >= 0 && ih < g.h;
        const bool h_pad = ih >= -g.pt && ih < g.h + g.pb;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = ws + kw * g.dw;
          const bool w_in = iw >= 0 && iw < g.w;
          if (h_pad && iw >= -g.pl && iw < g.w + g.pr) ++padded;
          if (!h_in || !w_in) continue;
          sum += load_acc(xb, (ih * g.w + iw) * g.c);
          ++valid;
        }
      }
      const int64_t count = cip ? padded : valid;
      const A v = count > 0 ? sum / static_cast<A>(count) : std::numeric_limits<A>::quiet_NaN();
      if constexpr (std::is_same_v<T, double>) {
        y[i] = v;
      } else {
        y[i] = from_f<T>(v);
      }
    }
  }
}

// The vectorized form for 16-bit types: one thread computes 8 neighbouring channels of one output
// pixel with 16-byte loads and stores and 32-bit multiply-shift index math. Same arithmetic per
// channel as channels_last_pool_kernel (float accumulation, the max's first-then-greater rule).
struct VecPoolGeom {
  ChannelsLastPoolGeom g;
  FastDiv32 cvec, ow, oh;  // c / 8, ow, oh
  uint32_t vectors = 0;
};

template <typename T, bool kMax>
__global__ void channels_last_pool_vec_kernel(const T* x, T* y, VecPoolGeom v, bool cip) {
  constexpr int VEC = 8;
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= v.vectors) return;
  const ChannelsLastPoolGeom& g = v.g;
  uint32_t t = v.cvec.div(i);
  const uint32_t cv = i - t * v.cvec.d;
  const uint32_t t2 = v.ow.div(t);
  const uint32_t ow = t - t2 * v.ow.d;
  const uint32_t b = v.oh.div(t2);
  const uint32_t oh = t2 - b * v.oh.d;
  const int hs = static_cast<int>(oh * g.sh) - static_cast<int>(g.pt);
  const int ws = static_cast<int>(ow * g.sw) - static_cast<int>(g.pl);
  const int H = static_cast<int>(g.h), W = static_cast<int>(g.w), C = static_cast<int>(g.c);
  const T* xb = x + static_cast<size_t>(b) * H * W * C + cv * VEC;
  float acc[VEC];
  bool any = false;
  int valid = 0, padded = 0;
#pragma unroll
  for (int j = 0; j < VEC; ++j) acc[j] = kMax ? -INFINITY : 0.f;
  for (int kh = 0; kh < g.kh; ++kh) {
    const int ih = hs + kh * static_cast<int>(g.dh);
    const bool h_in = ih >= 0 && ih < H;
    const bool h_pad = ih >= -static_cast<int>(g.pt) && ih < H + static_cast<int>(g.pb);
    for (int kw = 0; kw < g.kw; ++kw) {
      const int iw = ws + kw * static_cast<int>(g.dw);
      const bool w_in = iw >= 0 && iw < W;
      if (!kMax && h_pad && iw >= -static_cast<int>(g.pl) && iw < W + static_cast<int>(g.pr)) {
        ++padded;
      }
      if (!h_in || !w_in) continue;
      const uint4 raw =
          *reinterpret_cast<const uint4*>(xb + (static_cast<size_t>(ih) * W + iw) * C);
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float f = load_f(e, j);
        if (kMax) {
          if (f > acc[j] || !any) acc[j] = f;
        } else {
          acc[j] += f;
        }
      }
      any = true;
      ++valid;
    }
  }
  T out[VEC];
  const int count = cip ? padded : valid;
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    out[j] = from_f<T>(kMax ? acc[j] : (count > 0 ? acc[j] / static_cast<float>(count) : NAN));
  }
  *reinterpret_cast<uint4*>(y + static_cast<size_t>(i) * VEC) =
      *reinterpret_cast<const uint4*>(out);
}

}  // namespace

Status launch_conv_epilogue(KernelContext& ctx, DType dtype, void* y, const void* bias,
                            const ConvEpilogue& ep, int64_t outer, int64_t channels,
                            int64_t inner) {
  const int64_t n = outer * channels * inner;
  if (n <= 0) return Status::Ok();
  const bool relu = ep.act == ops::ConvActivation::kRelu;
  const auto aligned = [](const void* p) {
    return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
  };
  if ((dtype == DType::kFloat16 || dtype == DType::kBFloat16) && inner == 1 && channels % 8 == 0 &&
      n / 8 < (int64_t{1} << 31) && aligned(y) && aligned(bias) && aligned(ep.z)) {
    const auto vectors = static_cast<uint32_t>(n / 8);
    const auto channel_vectors = static_cast<uint32_t>(channels / 8);
    const unsigned block = 256, grid = (vectors + block - 1) / block;
    dispatch_float(dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (sizeof(T) == 2) {
        T* yt = static_cast<T*>(y);
        const T* bt = static_cast<const T*>(bias);
        const T* zt = static_cast<const T*>(ep.z);
        if (relu) {
          conv_epilogue_vec_kernel<T, true>
              <<<grid, block, 0, ctx.stream()>>>(yt, bt, zt, vectors, channel_vectors);
        } else {
          conv_epilogue_vec_kernel<T, false>
              <<<grid, block, 0, ctx.stream()>>>(yt, bt, zt, vectors, channel_vectors);
        }
      }
    });
    return ctx.check_launch("convolution epilogue");
  }
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* yt = static_cast<T*>(y);
    const T* bt = static_cast<const T*>(bias);
    const T* zt = static_cast<const T*>(ep.z);
    if (relu) {
      conv_epilogue_kernel<T, true>
          <<<l.grid, l.block, 0, ctx.stream()>>>(yt, bt, zt, n, channels, inner);
    } else {
      conv_epilogue_kernel<T, false>
          <<<l.grid, l.block, 0, ctx.stream()>>>(yt, bt, zt, n, channels, inner);
    }
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("convolution epilogue");
}

}  // namespace kiln::cuda

namespace kiln::cuda {

Status launch_channels_last_pool(KernelContext& ctx, DType dtype, const ChannelsLastPoolGeom& g,
                                 bool max, bool count_include_pad, const void* x, void* y) {
  const int64_t n = g.n * g.oh * g.ow * g.c;
  if (n <= 0) return Status::Ok();
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const int64_t x_numel = g.n * g.h * g.w * g.c;
  if ((dtype == DType::kFloat16 || dtype == DType::kBFloat16) && g.c % 8 == 0 && aligned(x) &&
      aligned(y) && n / 8 < (int64_t{1} << 31) && x_numel < (int64_t{1} << 31) &&
      g.kh * g.kw < (int64_t{1} << 20) && g.h + g.pb < (int64_t{1} << 30) &&
      g.w + g.pr < (int64_t{1} << 30)) {
    VecPoolGeom v;
    v.g = g;
    v.cvec = FastDiv32(static_cast<uint32_t>(g.c / 8));
    v.ow = FastDiv32(static_cast<uint32_t>(g.ow));
    v.oh = FastDiv32(static_cast<uint32_t>(g.oh));
    v.vectors = static_cast<uint32_t>(n / 8);
    const unsigned block = 256, grid = (v.vectors + block - 1) / block;
    dispatch_float(dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (sizeof(T) == 2) {
        const T* xt = static_cast<const T*>(x);
        T* yt = static_cast<T*>(y);
        if (max) {
          channels_last_pool_vec_kernel<T, true>
              <<<grid, block, 0, ctx.stream()>>>(xt, yt, v, count_include_pad);
        } else {
          channels_last_pool_vec_kernel<T, false>
              <<<grid, block, 0, ctx.stream()>>>(xt, yt, v, count_include_pad);
        }
      }
    });
    return ctx.check_launch("channels-last pooling");
  }
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    if (max) {
      channels_last_pool_kernel<T, true>
          <<<l.grid, l.block, 0, ctx.stream()>>>(xt, yt, g, count_include_pad);
    } else {
      channels_last_pool_kernel<T, false>
          <<<l.grid, l.block, 0, ctx.stream()>>>(xt, yt, g, count_include_pad);
    }
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("channels-last pooling");
}

}  // namespace kiln::cuda
