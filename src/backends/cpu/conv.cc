// Conv, ConvInteger, QLinearConv and ConvTranspose: im2col (or the input itself for 1x1
// stride-1 convolutions) followed by the blocked GEMM; ConvTranspose is GEMM then col2im.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "backends/cpu/gemm.h"
#include "backends/cpu/nn_internal.h"
#include "backends/cpu/nn_util.h"

namespace kiln::cpu {
namespace {

void gemm_t(const GemmShape& s, const float* a, const float* b, float beta, float* c) {
  sgemm(s, 1.f, a, b, beta, c);
}
void gemm_t(const GemmShape& s, const double* a, const double* b, double beta, double* c) {
  dgemm(s, 1.0, a, b, beta, c);
}

// Scratch of rows x cols elements must stay within the tensor size limit.
Status check_scratch(const KernelContext& ctx, int64_t rows, int64_t cols, int64_t elem_bytes) {
  const uint64_t limit = ctx.max_tensor_bytes() / static_cast<uint64_t>(elem_bytes);
  if (rows < 0 || cols < 0 ||
      (cols > 0 && static_cast<uint64_t>(rows) > limit / static_cast<uint64_t>(cols))) {
    return ctx.out_of_range("scratch buffer of " + std::to_string(rows) + " x " +
                            std::to_string(cols) + " elements exceeds the tensor size limit");
  }
  return Status::Ok();
}

template <typename T>
Status run_conv(const KernelContext& ctx, const ConvSetup& cs, const T* x, const T* w,
                const T* bias, T* y) {
  const Im2ColGeom& g = cs.geom;
  const int64_t plane = g.img_size(), P = g.col_size(), ks = g.kernel_size();
  const int64_t Cg = cs.C / cs.group, Mg = cs.M / cs.group, K = Cg * ks;
  const bool identity = g.is_identity();
  KILN_RETURN_IF_ERROR(check_scratch(ctx, K, P, sizeof(T)));
  const int64_t col_elems = identity ? 0 : K * P;
  GemmShape s;
  s.m = Mg;
  s.n = P;
  s.k = K;
  s.lda = K;
  s.ldb = P;
  s.ldc = P;
  const T beta = bias ? T(1) : T(0);
  // Scratch is written before it is read: no zero fill.
  std::unique_ptr<T[]> col_shared(
      cs.group == 1 && col_elems > 0 ? new T[static_cast<size_t>(col_elems)] : nullptr);
  if (cs.group > 1 && Cg == 1 && Mg == 1) {
    // Depthwise: direct accumulation, no im2col (the GEMMs would be 1 x P x ks).
    if (bias) {
      for (int64_t p = 0; p < cs.N * cs.M; ++p)
        std::fill(y + p * P, y + (p + 1) * P, bias[p % cs.M]);
    }
    Im2ColGeom gg = g;
    gg.channels = cs.C;
    depthwise_conv(gg, cs.N * cs.C, x, w, y);
    return Status::Ok();
  }
  std::unique_ptr<float[]> packed_w;
  for (int64_t n = 0; n < cs.N; ++n) {
    const T* xn = x + n * cs.C * plane;
    T* yn = y + n * cs.M * P;
    if (bias) {
      for (int64_t m = 0; m < cs.M; ++m) std::fill(yn + m * P, yn + (m + 1) * P, bias[m]);
    }
    if (cs.group == 1) {
      const T* b = xn;
      if (!identity) {
        Im2ColGeom gg = g;
        gg.channels = Cg;
        im2col(gg, xn, col_shared.get(), T(0), true);
        b = col_shared.get();
      }
      if constexpr (std::is_same_v<T, float>) {
        // Weights packed once and shared by the threads and every batch element.
        if (!packed_w) {
          packed_w.reset(new float[static_cast<size_t>(sgemm_packed_a_size(Mg, K))]);
          sgemm_pack_a(s, w, packed_w.get());
        }
        sgemm_packed_a(s, 1.f, packed_w.get(), b, beta, yn);
      } else {
        gemm_t(s, w, b, beta, yn);
      }
      continue;
    }
    const bool par = cs.group > 1 && static_cast<double>(cs.M) * P * K > 65536.0;
#pragma omp parallel if (par)
    {
      std::unique_ptr<T[]> col(col_elems > 0 ? new T[static_cast<size_t>(col_elems)] : nullptr);
#pragma omp for schedule(dynamic, 1)
      for (int64_t gi = 0; gi < cs.group; ++gi) {
        const T* xg = xn + gi * Cg * plane;
        const T* b = xg;
        if (!identity) {
          Im2ColGeom gg = g;
          gg.channels = Cg;
          im2col(gg, xg, col.get(), T(0), false);
          b = col.get();
        }
        gemm_t(s, w + gi * Mg * K, b, beta, yn + gi * Mg * P);
      }
    }
  }
  return Status::Ok();
}

// ---- integer convolutions ----

template <typename TX, typename TW>
Status run_conv_int(const KernelContext& ctx, const ConvSetup& cs, const TX* x, TX xz, const TW* w,
                    const TW* wz, int64_t wz_stride, int32_t* y) {
  const Im2ColGeom& g = cs.geom;
  const int64_t plane = g.img_size(), P = g.col_size(), ks = g.kernel_size();
  const int64_t Cg = cs.C / cs.group, Mg = cs.M / cs.group, K = Cg * ks;
  KILN_RETURN_IF_ERROR(check_scratch(ctx, K, P, sizeof(TX)));
  std::vector<TX> col(static_cast<size_t>(K * P));
  Im2ColGeom gg = g;
  gg.channels = Cg;
  for (int64_t n = 0; n < cs.N; ++n) {
    for (int64_t gi = 0; gi < cs.group; ++gi) {
      im2col(gg, x + (n * cs.C + gi * Cg) * plane, col.data(), xz, true);
      igemm<TW, TX>(Mg, P, K, w + gi * Mg * K, K, wz ? wz + gi * Mg * wz_stride : nullptr,
                    wz_stride, col.data(), P, &xz, 0, y + (n * cs.M + gi * Mg) * P, P);
    }
  }
  return Status::Ok();
}

// Zero points: x scalar; w scalar or one per output channel.
Status read_zero_points(const KernelContext& ctx, const Tensor* xz, const Tensor* wz,
                        const Tensor& X, const Tensor& W, int64_t M, int64_t* wz_stride) {
  if (xz && (xz->dtype() != X.dtype() || xz->numel() != 1)) {
    return ctx.invalid("x_zero_point must be a scalar of X's dtype");
  }
  *wz_stride = 0;
  if (wz) {
    if (wz->dtype() != W.dtype()) return ctx.invalid("w_zero_point must have W's dtype");
    if (wz->numel() == M && M != 1) {
      *wz_stride = 1;
    } else if (wz->numel() != 1) {
      return ctx.invalid("w_zero_point must be a scalar or have one value per output channel");
    }
  }
  return Status::Ok();
}

template <typename TX, typename TW>
Status conv_int_dispatch(const KernelContext& ctx, const ConvSetup& cs, const Tensor& X,
                         const Tensor* xz, const Tensor& W, const Tensor* wz, int64_t wz_stride,
                         int32_t* y) {
  const TX xzv = xz ? xz->data<TX>()[0] : TX(0);
  return run_conv_int<TX, TW>(ctx, cs, X.data<TX>(), xzv, W.data<TW>(),
                              wz ? wz->data<TW>() : nullptr, wz_stride, y);
}

Status conv_int_any(const KernelContext& ctx, const ConvSetup& cs, const Tensor& X,
                    const Tensor* xz, const Tensor& W, const Tensor* wz, int32_t* y) {
  int64_t wz_stride = 0;
  KILN_RETURN_IF_ERROR(read_zero_points(ctx, xz, wz, X, W, cs.M, &wz_stride));
  const bool xu = X.dtype() == DType::kUInt8, wu = W.dtype() == DType::kUInt8;
  if ((!xu && X.dtype() != DType::kInt8)) return ctx.unsupported_type(X.dtype());
  if ((!wu && W.dtype() != DType::kInt8)) return ctx.unsupported_type(W.dtype());
  if (xu && wu) return conv_int_dispatch<uint8_t, uint8_t>(ctx, cs, X, xz, W, wz, wz_stride, y);
  if (xu) return conv_int_dispatch<uint8_t, int8_t>(ctx, cs, X, xz, W, wz, wz_stride, y);
  if (wu) return conv_int_dispatch<int8_t, uint8_t>(ctx, cs, X, xz, W, wz, wz_stride, y);
  return conv_int_dispatch<int8_t, int8_t>(ctx, cs, X, xz, W, wz, wz_stride, y);
}

Status conv_integer_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const Tensor& W = ctx.tensor(1);
  const Tensor* xz = ctx.has_input(2) ? &ctx.tensor(2) : nullptr;
  const Tensor* wz = ctx.has_input(3) ? &ctx.tensor(3) : nullptr;
  ConvSetup cs;
  KILN_RETURN_IF_ERROR(setup_conv(ctx, X, W, nullptr, false, &cs));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, DType::kInt32, cs.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  return conv_int_any(ctx, cs, X, xz, W, wz, Y->mutable_data<int32_t>());
}

}  // namespace

// Requantizes int32 accumulators: y = saturate(round(acc * scale[c]) + zero), per channel c of
// `channels` (scale_stride 0: one scale for all), `inner` values per channel.
template <typename TY>
void requantize(const int32_t* acc, int64_t outer, int64_t channels, int64_t inner,
                const float* scale, int64_t scale_stride, TY zero, TY* y) {
  constexpr float lo = static_cast<float>(std::numeric_limits<TY>::min());
  constexpr float hi = static_cast<float>(std::numeric_limits<TY>::max());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float sc = scale[c * scale_stride];
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        float v = std::nearbyint(static_cast<float>(acc[base + i]) * sc) + static_cast<float>(zero);
        v = std::min(hi, std::max(lo, v));
        y[base + i] = static_cast<TY>(v);
      }
    }
  }
}
template void requantize<uint8_t>(const int32_t*, int64_t, int64_t, int64_t, const float*, int64_t,
                                  uint8_t, uint8_t*);
template void requantize<int8_t>(const int32_t*, int64_t, int64_t, int64_t, const float*, int64_t,
                                 int8_t, int8_t*);

namespace {

StatusOr<std::vector<float>> read_scales(const KernelContext& ctx, const Tensor& t,
                                         const char* what) {
  KILN_ASSIGN_OR_RETURN(Tensor f, as_float(t));
  std::vector<float> v(f.data<float>(), f.data<float>() + f.numel());
  if (v.empty()) return ctx.invalid(std::string(what) + " is empty");
  return v;
}

Status qlinear_conv_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const Tensor& W = ctx.tensor(3);
  const Tensor* B = ctx.has_input(8) ? &ctx.tensor(8) : nullptr;
  if (B && B->dtype() != DType::kInt32) return ctx.invalid("B must be int32");
  ConvSetup cs;
  KILN_RETURN_IF_ERROR(setup_conv(ctx, X, W, B, false, &cs));
  const Tensor& yz = ctx.tensor(7);
  const DType yt = yz.dtype();
  if ((yt != DType::kUInt8 && yt != DType::kInt8) || yz.numel() != 1) {
    return ctx.invalid("y_zero_point must be a uint8/int8 scalar");
  }
  KILN_ASSIGN_OR_RETURN(std::vector<float> xs, read_scales(ctx, ctx.tensor(1), "x_scale"));
  KILN_ASSIGN_OR_RETURN(std::vector<float> ws, read_scales(ctx, ctx.tensor(4), "w_scale"));
  KILN_ASSIGN_OR_RETURN(std::vector<float> ys, read_scales(ctx, ctx.tensor(6), "y_scale"));
  if (xs.size() != 1 || ys.size() != 1) return ctx.invalid("x_scale and y_scale must be scalars");
  if (ws.size() != 1 && static_cast<int64_t>(ws.size()) != cs.M) {
    return ctx.invalid("w_scale must be a scalar or have one value per output channel");
  }
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, yt, cs.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(Tensor acc, ctx.scratch(DType::kInt32, cs.out_shape, "working tensor"));
  KILN_RETURN_IF_ERROR(
      conv_int_any(ctx, cs, X, &ctx.tensor(2), W, &ctx.tensor(5), acc.mutable_data<int32_t>()));
  int32_t* a = acc.mutable_data<int32_t>();
  const int64_t P = cs.geom.col_size();
  if (B) {
    if (B->numel() != cs.M) return ctx.invalid("B must have one value per output channel");
    for (int64_t n = 0; n < cs.N; ++n)
      for (int64_t m = 0; m < cs.M; ++m)
        for (int64_t p = 0; p < P; ++p) {
          int32_t& v = a[(n * cs.M + m) * P + p];
          v = static_cast<int32_t>(static_cast<uint32_t>(v) +
                                   static_cast<uint32_t>(B->data<int32_t>()[m]));
        }
  }
  std::vector<float> scale(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) scale[i] = xs[0] * ws[i] / ys[0];
  const int64_t stride = ws.size() == 1 ? 0 : 1;
  if (yt == DType::kUInt8) {
    requantize<uint8_t>(a, cs.N, cs.M, P, scale.data(), stride, yz.data<uint8_t>()[0],
                        Y->mutable_data<uint8_t>());
  } else {
    requantize<int8_t>(a, cs.N, cs.M, P, scale.data(), stride, yz.data<int8_t>()[0],
                       Y->mutable_data<int8_t>());
  }
  return Status::Ok();
}

// ---- ConvTranspose ----

template <typename T>
Status run_conv_transpose(const KernelContext& ctx, const ConvSetup& cs, const T* x, const T* w,
                          const T* bias, T* y) {
  const Im2ColGeom& g = cs.geom;  // img: output spatial, cols: input spatial
  const int64_t in_plane = g.col_size(), out_plane = g.img_size(), ks = g.kernel_size();
  const int64_t Cg = cs.C / cs.group, Mg = cs.M / cs.group;
  KILN_RETURN_IF_ERROR(check_scratch(ctx, Mg * ks, in_plane, sizeof(T)));
  std::unique_ptr<T[]> col(new T[static_cast<size_t>(std::max<int64_t>(1, Mg * ks * in_plane))]);
  GemmShape s;
  s.m = Mg * ks;
  s.n = in_plane;
  s.k = Cg;
  s.trans_a = true;
  s.lda = Mg * ks;
  s.ldb = in_plane;
  s.ldc = in_plane;
  Im2ColGeom gg = g;
  gg.channels = Mg;
  for (int64_t n = 0; n < cs.N; ++n) {
    for (int64_t gi = 0; gi < cs.group; ++gi) {
      gemm_t(s, w + gi * Cg * Mg * ks, x + (n * cs.C + gi * Cg) * in_plane, T(0), col.get());
      col2im(gg, col.get(), y + (n * cs.M + gi * Mg) * out_plane, true);
    }
    if (bias) {
      for (int64_t m = 0; m < cs.M; ++m) {
        T* row = y + (n * cs.M + m) * out_plane;
        for (int64_t p = 0; p < out_plane; ++p) row[p] += bias[m];
      }
    }
  }
  return Status::Ok();
}

template <typename T>
Status conv_typed(KernelContext& ctx, const ConvSetup& cs, bool transpose, const Tensor& X,
                  const Tensor& W, const Tensor* B, Tensor* Y) {
  const T* bias = B ? B->data<T>() : nullptr;
  if (transpose) {
    return run_conv_transpose<T>(ctx, cs, X.data<T>(), W.data<T>(), bias, Y->mutable_data<T>());
  }
  return run_conv<T>(ctx, cs, X.data<T>(), W.data<T>(), bias, Y->mutable_data<T>());
}

// Conv and ConvTranspose share validation, dtype dispatch and the fp16/bf16 path.
Status conv_or_transpose(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B,
                         bool transpose) {
  const DType dt = X.dtype();
  if (W.dtype() != dt || (B && B->dtype() != dt)) return ctx.invalid("X, W and B dtypes differ");
  ConvSetup cs;
  KILN_RETURN_IF_ERROR(setup_conv(ctx, X, W, B, transpose, &cs));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, cs.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  switch (dt) {
    case DType::kFloat32:
      return conv_typed<float>(ctx, cs, transpose, X, W, B, Y);
    case DType::kFloat64:
      return conv_typed<double>(ctx, cs, transpose, X, W, B, Y);
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor wf, as_float(W));
      Tensor bf;
      if (B) {
        KILN_ASSIGN_OR_RETURN(bf, as_float(*B));
      }
      KILN_ASSIGN_OR_RETURN(Tensor yf,
                            ctx.scratch(DType::kFloat32, cs.out_shape, "working tensor"));
      KILN_RETURN_IF_ERROR(conv_typed<float>(ctx, cs, transpose, xf, wf, B ? &bf : nullptr, &yf));
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(dt);
  }
}

Status conv_kernel(KernelContext& ctx) {
  return conv_forward(ctx, ctx.tensor(0), ctx.tensor(1),
                      ctx.has_input(2) ? &ctx.tensor(2) : nullptr);
}
Status conv_transpose_kernel(KernelContext& ctx) {
  return conv_or_transpose(ctx, ctx.tensor(0), ctx.tensor(1),
                           ctx.has_input(2) ? &ctx.tensor(2) : nullptr, true);
}

}  // namespace

Status conv_forward(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B) {
  return conv_or_transpose(ctx, X, W, B, false);
}

Status setup_conv(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B,
                  bool transpose, ConvSetup* cs) {
  if (X.rank() < 3) return ctx.invalid("X must have rank >= 3, got " + X.type_string());
  if (W.rank() != X.rank()) {
    return ctx.invalid("W " + W.type_string() + " must have the rank of X " + X.type_string());
  }
  const int n = X.rank() - 2;
  cs->N = X.dim(0);
  cs->C = X.dim(1);
  KernelContext& mctx = ctx;
  cs->group = mctx.attr_int("group", 1);
  if (cs->group < 1) return ctx.invalid("group must be >= 1");
  if (cs->C % cs->group != 0) return ctx.invalid("input channels are not divisible by group");
  if (!transpose) {
    cs->M = W.dim(0);
    if (W.dim(1) * cs->group != cs->C) {
      return ctx.invalid("W " + W.type_string() + " does not match X channels / group");
    }
    if (cs->M % cs->group != 0) return ctx.invalid("output channels are not divisible by group");
  } else {
    if (W.dim(0) != cs->C) return ctx.invalid("W dim 0 must equal X channels");
    cs->M = W.dim(1) * cs->group;
  }
  if (B && (B->rank() != 1 || B->dim(0) != cs->M)) {
    return ctx.invalid("B must have shape [" + std::to_string(cs->M) + "]");
  }
  ops::WindowOptions opts;
  opts.allow_output_padding = transpose;
  for (int i = 0; i < n; ++i) opts.kernel_from_weight.push_back(W.dim(i + 2));
  for (int64_t k : opts.kernel_from_weight) {
    if (k < 1) return ctx.invalid("W has an empty kernel dim");
  }
  KILN_ASSIGN_OR_RETURN(cs->window, ops::read_window(ctx.node(), n, opts));
  ops::Window& w = cs->window;
  cs->out_shape = {cs->N, cs->M};
  std::vector<int64_t> requested;
  if (transpose) {
    requested = mctx.attr_ints("output_shape");
    if (requested.size() == static_cast<size_t>(n + 2))
      requested.erase(requested.begin(), requested.begin() + 2);
    if (!requested.empty() && requested.size() != static_cast<size_t>(n)) {
      return ctx.invalid("output_shape has the wrong length");
    }
    for (int64_t r : requested)
      if (r < 0) return ctx.invalid("output_shape has a negative value");
  }
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const size_t si = static_cast<size_t>(i);
    if (transpose) {
      KILN_ASSIGN_OR_RETURN(out[si],
                            ops::conv_transpose_output(ctx.node(), w, i, X.dim(i + 2),
                                                       requested.empty() ? -1 : requested[si]));
    } else {
      KILN_ASSIGN_OR_RETURN(out[si], ops::window_output(ctx.node(), w, i, X.dim(i + 2)));
    }
    cs->out_shape.push_back(out[si]);
  }
  cs->geom.channels = transpose ? cs->M : cs->C;
  KILN_RETURN_IF_ERROR(fill_geom(ctx, w, &cs->geom));
  const int off = 3 - n;
  for (int i = 0; i < n; ++i) {
    const int64_t in = X.dim(i + 2), o = out[static_cast<size_t>(i)];
    cs->geom.img[off + i] = transpose ? o : in;
    cs->geom.cols[off + i] = transpose ? in : o;
  }
  return Status::Ok();
}

void register_conv_kernels(KernelRegistry& r) {
  r.add("", "Conv", conv_kernel);
  r.add("", "ConvInteger", conv_integer_kernel);
  r.add("", "QLinearConv", qlinear_conv_kernel);
  r.add("", "ConvTranspose", conv_transpose_kernel);
}

}  // namespace kiln::cpu
