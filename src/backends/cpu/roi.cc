// RoiAlign and MaxRoiPool.
#include <algorithm>
#include <cmath>

#include "backends/cpu/nn_internal.h"

namespace kiln::cpu {
namespace {

struct RoiAlignParams {
  int64_t out_h = 1, out_w = 1, sampling_ratio = 0;
  float spatial_scale = 1.f;
  bool half_pixel = true;
  bool max_mode = false;
};

template <typename T>
void roi_align_typed(const RoiAlignParams& prm, int64_t C, int64_t H, int64_t W, const T* x,
                     const T* rois, const int64_t* batch, int64_t R, T* y) {
#pragma omp parallel for if (R * C > 16) schedule(static)
  for (int64_t r = 0; r < R; ++r) {
    const T* roi = rois + r * 4;
    const double off = prm.half_pixel ? 0.5 : 0.0;
    const double x0 = static_cast<double>(roi[0]) * prm.spatial_scale - off;
    const double y0 = static_cast<double>(roi[1]) * prm.spatial_scale - off;
    const double x1 = static_cast<double>(roi[2]) * prm.spatial_scale - off;
    const double y1 = static_cast<double>(roi[3]) * prm.spatial_scale - off;
    double rw = x1 - x0, rh = y1 - y0;
    if (!prm.half_pixel) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const double bh = rh / static_cast<double>(prm.out_h), bw = rw / static_cast<double>(prm.out_w);
    const int64_t gh = prm.sampling_ratio > 0 ? prm.sampling_ratio
                                              : static_cast<int64_t>(std::ceil(rh / prm.out_h));
    const int64_t gw = prm.sampling_ratio > 0 ? prm.sampling_ratio
                                              : static_cast<int64_t>(std::ceil(rw / prm.out_w));
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    const T* xb = x + batch[r] * C * H * W;
    for (int64_t c = 0; c < C; ++c) {
      const T* plane = xb + c * H * W;
      T* out = y + (r * C + c) * prm.out_h * prm.out_w;
      for (int64_t ph = 0; ph < prm.out_h; ++ph) {
        for (int64_t pw = 0; pw < prm.out_w; ++pw) {
          double sum = 0, best = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy) {
            double yy = y0 + ph * bh + (iy + 0.5) * bh / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              double xx = x0 + pw * bw + (ix + 0.5) * bw / static_cast<double>(gw);
              double v1 = 0, v2 = 0, v3 = 0, v4 = 0;
              if (!(yy < -1.0 || yy > H || xx < -1.0 || xx > W)) {
                double ys = std::max(yy, 0.0), xs = std::max(xx, 0.0);
                int64_t yl = static_cast<int64_t>(ys), xl = static_cast<int64_t>(xs), yh, xh;
                if (yl >= H - 1) {
                  yh = yl = H - 1;
                  ys = static_cast<double>(yl);
                } else {
                  yh = yl + 1;
                }
                if (xl >= W - 1) {
                  xh = xl = W - 1;
                  xs = static_cast<double>(xl);
                } else {
                  xh = xl + 1;
                }
                const double ly = ys - yl, lx = xs - xl, hy = 1 - ly, hx = 1 - lx;
                v1 = hy * hx * static_cast<double>(plane[yl * W + xl]);
                v2 = hy * lx * static_cast<double>(plane[yl * W + xh]);
                v3 = ly * hx * static_cast<double>(plane[yh * W + xl]);
                v4 = ly * lx * static_cast<double>(plane[yh * W + xh]);
              }
              if (prm.max_mode) {
                const double v = std::max(std::max(v1, v2), std::max(v3, v4));
                best = first ? v : std::max(best, v);
                first = false;
              } else {
                sum += v1 + v2 + v3 + v4;
              }
            }
          }
          out[ph * prm.out_w + pw] = static_cast<T>(prm.max_mode ? best : sum / count);
        }
      }
    }
  }
}

Status roi_align_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const Tensor& rois = ctx.tensor(1);
  const Tensor& bi = ctx.tensor(2);
  const DType dt = X.dtype();
  if (X.rank() != 4) return ctx.invalid("X must have rank 4");
  if (rois.dtype() != dt) return ctx.invalid("rois must have X's dtype");
  if (rois.rank() != 2 || rois.dim(1) != 4) return ctx.invalid("rois must have shape [R, 4]");
  if (bi.rank() != 1 || bi.dim(0) != rois.dim(0))
    return ctx.invalid("batch_indices must have shape [R]");
  RoiAlignParams prm;
  prm.out_h = ctx.attr_int("output_height", 1);
  prm.out_w = ctx.attr_int("output_width", 1);
  prm.sampling_ratio = ctx.attr_int("sampling_ratio", 0);
  prm.spatial_scale = ctx.attr_float("spatial_scale", 1.f);
  const std::string mode = ctx.attr_string("mode", "avg");
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode",
                                          ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  if (prm.out_h < 1 || prm.out_w < 1) return ctx.invalid("output_height/width must be >= 1");
  if (prm.sampling_ratio < 0) return ctx.invalid("sampling_ratio must be >= 0");
  if (mode != "avg" && mode != "max") return ctx.invalid("mode must be avg or max");
  if (ctm != "half_pixel" && ctm != "output_half_pixel") {
    return ctx.invalid("coordinate_transformation_mode must be half_pixel or output_half_pixel");
  }
  prm.max_mode = mode == "max";
  prm.half_pixel = ctm == "half_pixel";
  const int64_t R = rois.dim(0), N = X.dim(0), C = X.dim(1), H = X.dim(2), W = X.dim(3);
  std::vector<int64_t> batch = read_int64s(bi);
  for (int64_t b : batch) {
    if (b < 0 || b >= N)
      return ctx.out_of_range("batch index " + std::to_string(b) + " out of range");
  }
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, {R, C, prm.out_h, prm.out_w}));
  if (Y->numel() == 0) return Status::Ok();
  if (H == 0 || W == 0) return ctx.invalid("X has an empty spatial dim");
  KILN_ASSIGN_OR_RETURN(Tensor rf, convert_tensor(rois, DType::kFloat64));
  for (int64_t i = 0; i < rf.numel(); ++i) {
    const double v = rf.data<double>()[i];
    if (!std::isfinite(v) || std::fabs(v * prm.spatial_scale) > 1e7) {
      return ctx.invalid("roi coordinate is not finite or too large");
    }
  }
  // Bound the work of adaptive sampling grids (huge rois would otherwise run for hours).
  {
    double work = 0;
    for (int64_t r = 0; r < R; ++r) {
      const double* roi = rf.data<double>() + r * 4;
      const double rw = std::max(std::fabs(roi[2] - roi[0]) * prm.spatial_scale, 1.0);
      const double rh = std::max(std::fabs(roi[3] - roi[1]) * prm.spatial_scale, 1.0);
      const double gh =
          prm.sampling_ratio > 0 ? double(prm.sampling_ratio) : std::ceil(rh / prm.out_h);
      const double gw =
          prm.sampling_ratio > 0 ? double(prm.sampling_ratio) : std::ceil(rw / prm.out_w);
      work += gh * gw * double(prm.out_h) * double(prm.out_w) * double(C);
    }
    if (work > 1e11) return ctx.out_of_range("RoiAlign sampling work is too large");
  }
  switch (dt) {
    case DType::kFloat32:
      roi_align_typed<float>(prm, C, H, W, X.data<float>(), rois.data<float>(), batch.data(), R,
                             Y->mutable_data<float>());
      return Status::Ok();
    case DType::kFloat64:
      roi_align_typed<double>(prm, C, H, W, X.data<double>(), rois.data<double>(), batch.data(), R,
                              Y->mutable_data<double>());
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor rfl, as_float(rois));
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, Y->shape(), "working tensor"));
      roi_align_typed<float>(prm, C, H, W, xf.data<float>(), rfl.data<float>(), batch.data(), R,
                             yf.mutable_data<float>());
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(dt);
  }
}

template <typename T>
Status max_roi_pool_typed(const KernelContext& ctx, const Tensor& X, const Tensor& rois,
                          int64_t ph_n, int64_t pw_n, float scale, T* y) {
  const int64_t N = X.dim(0), C = X.dim(1), H = X.dim(2), W = X.dim(3), R = rois.dim(0);
  const T* x = X.data<T>();
  const T* rp = rois.data<T>();
  for (int64_t r = 0; r < R; ++r) {
    const double bd = static_cast<double>(rp[r * 5]);
    if (!(bd >= 0 && bd < static_cast<double>(N)))
      return ctx.out_of_range("roi batch index out of range");
    const int64_t b = static_cast<int64_t>(bd);
    double coords[4];
    for (int i = 0; i < 4; ++i) {
      coords[i] = std::round(static_cast<double>(rp[r * 5 + 1 + i]) * scale);
      if (!std::isfinite(coords[i]) || std::fabs(coords[i]) > 1e9)
        return ctx.invalid("roi coordinate is invalid");
    }
    const int64_t x0 = static_cast<int64_t>(coords[0]), y0 = static_cast<int64_t>(coords[1]);
    const int64_t x1 = static_cast<int64_t>(coords[2]), y1 = static_cast<int64_t>(coords[3]);
    const int64_t rw = std::max<int64_t>(x1 - x0 + 1, 1), rh = std::max<int64_t>(y1 - y0 + 1, 1);
    const double bh = static_cast<double>(rh) / ph_n, bw = static_cast<double>(rw) / pw_n;
    for (int64_t c = 0; c < C; ++c) {
      const T* plane = x + (b * C + c) * H * W;
      T* out = y + (r * C + c) * ph_n * pw_n;
      for (int64_t ph = 0; ph < ph_n; ++ph) {
        int64_t hs = static_cast<int64_t>(std::floor(ph * bh)) + y0;
        int64_t he = static_cast<int64_t>(std::ceil((ph + 1) * bh)) + y0;
        hs = std::clamp<int64_t>(hs, 0, H);
        he = std::clamp<int64_t>(he, 0, H);
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          int64_t ws = static_cast<int64_t>(std::floor(pw * bw)) + x0;
          int64_t we = static_cast<int64_t>(std::ceil((pw + 1) * bw)) + x0;
          ws = std::clamp<int64_t>(ws, 0, W);
          we = std::clamp<int64_t>(we, 0, W);
          const bool empty = he <= hs || we <= ws;
          double best = empty ? 0.0 : -INFINITY;
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w)
              best = std::max(best, static_cast<double>(plane[h * W + w]));
          out[ph * pw_n + pw] = static_cast<T>(best);
        }
      }
    }
  }
  return Status::Ok();
}

Status max_roi_pool_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const Tensor& rois = ctx.tensor(1);
  const DType dt = X.dtype();
  if (X.rank() != 4) return ctx.invalid("X must have rank 4");
  if (rois.dtype() != dt || rois.rank() != 2 || rois.dim(1) != 5) {
    return ctx.invalid("rois must have X's dtype and shape [R, 5]");
  }
  const std::vector<int64_t> ps = ctx.attr_ints("pooled_shape");
  if (ps.size() != 2 || ps[0] < 1 || ps[1] < 1)
    return ctx.invalid("pooled_shape must be 2 positive ints");
  const float scale = ctx.attr_float("spatial_scale", 1.f);
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, {rois.dim(0), X.dim(1), ps[0], ps[1]}));
  if (Y->numel() == 0) return Status::Ok();
  switch (dt) {
    case DType::kFloat32:
      return max_roi_pool_typed<float>(ctx, X, rois, ps[0], ps[1], scale, Y->mutable_data<float>());
    case DType::kFloat64:
      return max_roi_pool_typed<double>(ctx, X, rois, ps[0], ps[1], scale,
                                        Y->mutable_data<double>());
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor rf, as_float(rois));
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, Y->shape(), "working tensor"));
      KILN_RETURN_IF_ERROR(
          max_roi_pool_typed<float>(ctx, xf, rf, ps[0], ps[1], scale, yf.mutable_data<float>()));
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(dt);
  }
}

}  // namespace

void register_roi_kernels(KernelRegistry& r) {
  r.add("", "RoiAlign", roi_align_kernel);
  r.add("", "MaxRoiPool", max_roi_pool_kernel);
}

}  // namespace kiln::cpu
