// DeformConv, Col2Im and CausalConvWithState.
#include <algorithm>
#include <cmath>

#include "backends/cpu/gemm.h"
#include "backends/cpu/nn_internal.h"

namespace kiln::cpu {
namespace {

// ---- DeformConv (2-D) ----

inline float bilinear_zero(const float* plane, int64_t H, int64_t W, float h, float w) {
  if (!(h > -1.f && h < static_cast<float>(H) && w > -1.f && w < static_cast<float>(W))) return 0.f;
  const float hf = std::floor(h), wf = std::floor(w);
  const int64_t h0 = static_cast<int64_t>(hf), w0 = static_cast<int64_t>(wf);
  const float lh = h - hf, lw = w - wf;
  auto at = [&](int64_t y, int64_t x) {
    return (y >= 0 && y < H && x >= 0 && x < W) ? plane[y * W + x] : 0.f;
  };
  return (1 - lh) * (1 - lw) * at(h0, w0) + (1 - lh) * lw * at(h0, w0 + 1) +
         lh * (1 - lw) * at(h0 + 1, w0) + lh * lw * at(h0 + 1, w0 + 1);
}

Status deform_conv_kernel(KernelContext& ctx) {
  const DType dt = ctx.tensor(0).dtype();
  if (dt != DType::kFloat32 && dt != DType::kFloat64 && !is_half_like(dt)) {
    return ctx.unsupported_type(dt);
  }
  for (int i = 1; i < 5; ++i) {
    if (ctx.has_input(i) && ctx.tensor(i).dtype() != dt)
      return ctx.invalid("inputs must share X's dtype");
  }
  KILN_ASSIGN_OR_RETURN(Tensor X, as_float(ctx.tensor(0)));
  KILN_ASSIGN_OR_RETURN(Tensor Wt, as_float(ctx.tensor(1)));
  KILN_ASSIGN_OR_RETURN(Tensor Off, as_float(ctx.tensor(2)));
  Tensor Bt, Mk;
  const bool has_b = ctx.has_input(3), has_m = ctx.has_input(4);
  if (has_b) {
    KILN_ASSIGN_OR_RETURN(Bt, as_float(ctx.tensor(3)));
  }
  if (has_m) {
    KILN_ASSIGN_OR_RETURN(Mk, as_float(ctx.tensor(4)));
  }
  if (X.rank() != 4 || Wt.rank() != 4)
    return ctx.unsupported("DeformConv supports 2-D inputs only");
  const int64_t N = X.dim(0), C = X.dim(1), H = X.dim(2), Wd = X.dim(3), M = Wt.dim(0);
  const int64_t group = ctx.attr_int("group", 1), og = ctx.attr_int("offset_group", 1);
  if (group < 1 || og < 1 || C % group || M % group || C % og) {
    return ctx.invalid("group/offset_group must divide the channel counts");
  }
  if (Wt.dim(1) * group != C) return ctx.invalid("W does not match X channels / group");
  ops::WindowOptions opts;
  opts.kernel_from_weight = {Wt.dim(2), Wt.dim(3)};
  opts.allow_auto_pad = false;
  if (Wt.dim(2) < 1 || Wt.dim(3) < 1) return ctx.invalid("W has an empty kernel dim");
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), 2, opts));
  KILN_ASSIGN_OR_RETURN(int64_t OH, ops::window_output(ctx.node(), w, 0, H));
  KILN_ASSIGN_OR_RETURN(int64_t OW, ops::window_output(ctx.node(), w, 1, Wd));
  const int64_t kh = w.kernel[0], kw = w.kernel[1], ks = kh * kw, P = OH * OW;
  if (Off.shape() != std::vector<int64_t>{N, og * ks * 2, OH, OW}) {
    return ctx.invalid("offset must have shape " +
                       shape_to_string(std::vector<int64_t>{N, og * ks * 2, OH, OW}));
  }
  if (has_m && Mk.shape() != std::vector<int64_t>{N, og * ks, OH, OW}) {
    return ctx.invalid("mask has the wrong shape");
  }
  if (has_b && (Bt.rank() != 1 || Bt.dim(0) != M)) return ctx.invalid("B must have shape [M]");
  const std::vector<int64_t> out_shape{N, M, OH, OW};
  KILN_ASSIGN_OR_RETURN(Tensor * Yo, ctx.allocate(0, dt, out_shape));
  if (Yo->numel() == 0) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(Tensor Y, ctx.scratch(DType::kFloat32, out_shape, "working tensor"));
  const int64_t Cg = C / group, Mg = M / group, cpo = C / og, K = Cg * ks;
  std::vector<float> col(static_cast<size_t>(C * ks * P));
  const float* x = X.data<float>();
  const float* off = Off.data<float>();
  for (int64_t n = 0; n < N; ++n) {
#pragma omp parallel for if (C * ks * P > 16384) schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = c / cpo;
      const float* plane = x + (n * C + c) * H * Wd;
      for (int64_t i = 0; i < kh; ++i) {
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t k = i * kw + j;
          const float* oh_p = off + ((n * og + g) * ks * 2 + 2 * k) * P;
          const float* ow_p = oh_p + P;
          const float* m_p = has_m ? Mk.data<float>() + ((n * og + g) * ks + k) * P : nullptr;
          float* dst = col.data() + (c * ks + k) * P;
          for (int64_t oy = 0; oy < OH; ++oy) {
            for (int64_t ox = 0; ox < OW; ++ox) {
              const int64_t p = oy * OW + ox;
              const float hh =
                  static_cast<float>(oy * w.strides[0] - w.pads[0] + i * w.dilations[0]) + oh_p[p];
              const float ww =
                  static_cast<float>(ox * w.strides[1] - w.pads[1] + j * w.dilations[1]) + ow_p[p];
              float v = bilinear_zero(plane, H, Wd, hh, ww);
              if (m_p) v *= m_p[p];
              dst[p] = v;
            }
          }
        }
      }
    }
    float* yn = Y.mutable_data<float>() + n * M * P;
    if (has_b) {
      for (int64_t m = 0; m < M; ++m) std::fill(yn + m * P, yn + (m + 1) * P, Bt.data<float>()[m]);
    }
    for (int64_t gi = 0; gi < group; ++gi) {
      GemmShape s;
      s.m = Mg;
      s.n = P;
      s.k = K;
      s.lda = K;
      s.ldb = P;
      s.ldc = P;
      sgemm(s, 1.f, Wt.data<float>() + gi * Mg * K, col.data() + gi * K * P, has_b ? 1.f : 0.f,
            yn + gi * Mg * P);
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, convert_tensor(Y, dt));
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Col2Im ----

template <typename T>
void col2im_batches(const Im2ColGeom& g, int64_t N, const T* in, T* out) {
  const int64_t in_batch = g.channels * g.kernel_size() * g.col_size();
  const int64_t out_batch = g.channels * g.img_size();
  for (int64_t n = 0; n < N; ++n) col2im(g, in + n * in_batch, out + n * out_batch, true);
}

Status col2im_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const DType dt = X.dtype();
  if (X.rank() != 3) return ctx.invalid("input must have rank 3");
  const std::vector<int64_t> image = read_int64s(ctx.tensor(1));
  const std::vector<int64_t> block = read_int64s(ctx.tensor(2));
  const int n = static_cast<int>(image.size());
  if (n < 1 || block.size() != image.size()) {
    return ctx.invalid("image_shape and block_shape must be 1-D of equal, non-zero length");
  }
  if (n > 3) return ctx.unsupported("Col2Im over more than 3 spatial dims");
  int64_t bprod = 1;
  for (int i = 0; i < n; ++i) {
    if (image[static_cast<size_t>(i)] < 0 || block[static_cast<size_t>(i)] < 1 ||
        block[static_cast<size_t>(i)] > (int64_t{1} << 31)) {
      return ctx.invalid("image_shape / block_shape values are invalid");
    }
    bprod *= block[static_cast<size_t>(i)];
  }
  if (X.dim(1) % bprod != 0)
    return ctx.invalid("input dim 1 is not divisible by prod(block_shape)");
  ops::WindowOptions opts;
  opts.kernel_from_weight = block;
  opts.allow_auto_pad = false;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), n, opts));
  Im2ColGeom g;
  g.channels = X.dim(1) / bprod;
  KILN_RETURN_IF_ERROR(fill_geom(ctx, w, &g));
  int64_t L = 1;
  for (int i = 0; i < n; ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t o,
                          ops::window_output(ctx.node(), w, i, image[static_cast<size_t>(i)]));
    g.img[3 - n + i] = image[static_cast<size_t>(i)];
    g.cols[3 - n + i] = o;
    L *= o;
  }
  if (L != X.dim(2)) {
    return ctx.invalid("input dim 2 is " + std::to_string(X.dim(2)) + ", the blocks need " +
                       std::to_string(L));
  }
  std::vector<int64_t> out_shape{X.dim(0), g.channels};
  out_shape.insert(out_shape.end(), image.begin(), image.end());
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, out_shape));
  if (Y->numel() == 0 || X.numel() == 0) return Status::Ok();
  switch (dt) {
    case DType::kFloat32:
      col2im_batches<float>(g, X.dim(0), X.data<float>(), Y->mutable_data<float>());
      return Status::Ok();
    case DType::kFloat64:
      col2im_batches<double>(g, X.dim(0), X.data<double>(), Y->mutable_data<double>());
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, out_shape, "working tensor"));
      col2im_batches<float>(g, X.dim(0), xf.data<float>(), yf.mutable_data<float>());
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(dt);
  }
}

// ---- CausalConvWithState ----

Status causal_conv_kernel(KernelContext& ctx) {
  const DType dt = ctx.tensor(0).dtype();
  if (dt != DType::kFloat32 && dt != DType::kFloat64 && !is_half_like(dt)) {
    return ctx.unsupported_type(dt);
  }
  for (int i = 1; i < 4; ++i) {
    if (ctx.has_input(i) && ctx.tensor(i).dtype() != dt)
      return ctx.invalid("inputs must share input's dtype");
  }
  const std::string act = ctx.attr_string("activation", "none");
  if (act != "none" && act != "silu" && act != "swish") {
    return ctx.invalid("activation must be 'none', 'silu' or 'swish'");
  }
  const bool silu = act != "none";
  KILN_ASSIGN_OR_RETURN(Tensor X, as_float(ctx.tensor(0)));
  KILN_ASSIGN_OR_RETURN(Tensor Wt, as_float(ctx.tensor(1)));
  if (X.rank() != 3) return ctx.invalid("input must have rank 3");
  const int64_t B = X.dim(0), C = X.dim(1), L = X.dim(2);
  if (Wt.rank() != 3 || Wt.dim(0) != C || Wt.dim(1) != 1 || Wt.dim(2) < 1) {
    return ctx.invalid("weight must have shape [channels, 1, k] with k >= 1");
  }
  const int64_t K = Wt.dim(2), S = K - 1;
  Tensor Bt, Ps;
  const bool has_b = ctx.has_input(2), has_p = ctx.has_input(3);
  if (has_b) {
    KILN_ASSIGN_OR_RETURN(Bt, as_float(ctx.tensor(2)));
    if (Bt.rank() != 1 || Bt.dim(0) != C) return ctx.invalid("bias must have shape [channels]");
  }
  if (has_p) {
    KILN_ASSIGN_OR_RETURN(Ps, as_float(ctx.tensor(3)));
    if (Ps.shape() != std::vector<int64_t>{B, C, S}) {
      return ctx.invalid("past_state must have shape [batch, channels, k - 1]");
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor Y, ctx.scratch(DType::kFloat32, {B, C, L}, "working tensor"));
  KILN_ASSIGN_OR_RETURN(Tensor St, ctx.scratch(DType::kFloat32, {B, C, S}, "working tensor"));
  std::vector<float> buf(static_cast<size_t>(S + L));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t bc = b * C + c;
      for (int64_t i = 0; i < S; ++i) buf[i] = has_p ? Ps.data<float>()[bc * S + i] : 0.f;
      std::copy(X.data<float>() + bc * L, X.data<float>() + (bc + 1) * L, buf.begin() + S);
      const float* wk = Wt.data<float>() + c * K;
      const float bias = has_b ? Bt.data<float>()[c] : 0.f;
      float* y = Y.mutable_data<float>() + bc * L;
      for (int64_t t = 0; t < L; ++t) {
        float acc = bias;
        for (int64_t j = 0; j < K; ++j) acc += wk[j] * buf[t + j];
        if (silu) acc = acc / (1.f + std::exp(-acc));
        y[t] = acc;
      }
      std::copy(buf.begin() + L, buf.end(), St.mutable_data<float>() + bc * S);
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor yo, convert_tensor(Y, dt));
  ctx.set_output(0, std::move(yo));
  if (ctx.num_outputs() > 1) {
    KILN_ASSIGN_OR_RETURN(Tensor so, convert_tensor(St, dt));
    ctx.set_output(1, std::move(so));
  }
  return Status::Ok();
}

}  // namespace

void register_conv_misc_kernels(KernelRegistry& r) {
  r.add("", "DeformConv", deform_conv_kernel);
  r.add("", "Col2Im", col2im_kernel);
  r.add("", "CausalConvWithState", causal_conv_kernel);
}

}  // namespace kiln::cpu
