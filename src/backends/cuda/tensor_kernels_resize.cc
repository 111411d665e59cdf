// CUDA kernels of the tensor family: Resize and Upsample (registration and host-side
// parameter handling, mirroring src/backends/cpu/tensor_resize.cc). The kernel is in
// tensor_resize.cu.
#include <algorithm>
#include <cmath>

#include "backends/cpu/tensor_util.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/tensor_internal.h"
#include "ops/shape_util.h"

namespace kiln::cuda::tensor {
namespace {

bool float_compute(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

bool is_v10(const ir::Node& n) {
  return n.op_type == "Upsample" || n.opset < 11;
}

std::string resize_supports(const ir::Node& n) {
  const bool v10 = is_v10(n);
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  const DType dt = input_dtype(n, 0);
  if (dt == DType::kBool || is_complex(dt)) return "dtype " + std::string(dtype_name(dt));
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "bilinear" && !(mode == "cubic" && !v10)) {
    return "mode '" + mode + "'";
  }
  if (mode != "nearest" && dt != DType::kUndefined && !float_compute(dt)) {
    return "mode '" + mode + "' on dtype " + std::string(dtype_name(dt));
  }
  if (!v10) {
    const std::string c = n.attr_string("coordinate_transformation_mode", "half_pixel");
    if (c != "half_pixel" && !(c == "half_pixel_symmetric" && n.opset >= 19) &&
        c != "pytorch_half_pixel" && c != "align_corners" && c != "asymmetric" &&
        c != "tf_half_pixel_for_nn" && c != "tf_crop_and_resize") {
      return "coordinate_transformation_mode '" + c + "'";
    }
    const std::string nm = n.attr_string("nearest_mode", "round_prefer_floor");
    if (nm != "round_prefer_floor" && nm != "round_prefer_ceil" && nm != "floor" && nm != "ceil") {
      return "nearest_mode '" + nm + "'";
    }
    if (n.opset >= 18) {
      const std::string pol = n.attr_string("keep_aspect_ratio_policy", "stretch");
      if (pol != "stretch" && pol != "not_larger" && pol != "not_smaller") {
        return "keep_aspect_ratio_policy '" + pol + "'";
      }
    }
  }
  return {};
}

StatusOr<std::vector<double>> float_values(KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.host_input(i);
  if (!is_floating(t.dtype()) || t.rank() > 1) {
    return ctx.invalid(std::string(what) + " must be a 1-D float tensor, got " + t.type_string());
  }
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t k = 0; k < t.numel(); ++k) v[static_cast<size_t>(k)] = t.get_double(k);
  return v;
}

Status resize_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const int rank = x.rank();
  if (rank > kRank) return ctx.unsupported("rank > 8 on CUDA");
  const bool upsample = ctx.node().op_type == "Upsample";
  const bool v10 = upsample || ctx.opset() < 11;
  ResizePlan p;
  const std::string mode = ctx.attr_string("mode", "nearest");
  if (mode == "nearest")
    p.mode = ResizeMode::kNearest;
  else if (mode == "linear" || mode == "bilinear")
    p.mode = ResizeMode::kLinear;
  else if (mode == "cubic" && !v10)
    p.mode = ResizeMode::kCubic;
  else
    return ctx.unsupported("mode '" + mode + "'");
  if (v10) {
    p.coord = CoordMode::kAsymmetric;
    p.nearest = NearestMode::kFloor;
  } else {
    const std::string c = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
    if (c == "half_pixel")
      p.coord = CoordMode::kHalfPixel;
    else if (c == "half_pixel_symmetric" && ctx.opset() >= 19)
      p.coord = CoordMode::kHalfPixelSymmetric;
    else if (c == "pytorch_half_pixel")
      p.coord = CoordMode::kPytorchHalfPixel;
    else if (c == "align_corners")
      p.coord = CoordMode::kAlignCorners;
    else if (c == "asymmetric")
      p.coord = CoordMode::kAsymmetric;
    else if (c == "tf_half_pixel_for_nn")
      p.coord = CoordMode::kTfHalfPixelForNn;
    else if (c == "tf_crop_and_resize")
      p.coord = CoordMode::kTfCropAndResize;
    else
      return ctx.unsupported("coordinate_transformation_mode '" + c + "'");
    const std::string nm = ctx.attr_string("nearest_mode", "round_prefer_floor");
    if (nm == "round_prefer_floor")
      p.nearest = NearestMode::kRoundPreferFloor;
    else if (nm == "round_prefer_ceil")
      p.nearest = NearestMode::kRoundPreferCeil;
    else if (nm == "floor")
      p.nearest = NearestMode::kFloor;
    else if (nm == "ceil")
      p.nearest = NearestMode::kCeil;
    else
      return ctx.unsupported("nearest_mode '" + nm + "'");
    p.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75f);
    p.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0 ? 1 : 0;
    p.extrapolation = ctx.attr_float("extrapolation_value", 0.f);
    p.antialias = ctx.opset() >= 18 && ctx.attr_int("antialias", 0) != 0 ? 1 : 0;
  }
  const DType dt = x.dtype;
  if (!movable_dtype(dt) || dt == DType::kBool || is_complex(dt)) {
    return ctx.unsupported_type(dt);
  }
  if (p.mode != ResizeMode::kNearest && !float_compute(dt)) return ctx.unsupported_type(dt);
  std::vector<int> axes;
  const std::vector<int64_t> axes_attr =
      !v10 && ctx.opset() >= 18 ? ctx.attr_ints("axes") : std::vector<int64_t>();
  if (axes_attr.empty()) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  } else {
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (int64_t a : axes_attr) {
      StatusOr<int> ax = normalize_axis(a, rank);
      if (!ax.ok()) return ctx.out_of_range(ax.status().message());
      if (seen[static_cast<size_t>(*ax)]) return ctx.invalid("axes has duplicates");
      seen[static_cast<size_t>(*ax)] = true;
      axes.push_back(*ax);
    }
  }
  const size_t na = axes.size();
  std::vector<double> scales, roi;
  std::vector<int64_t> sizes;
  if (upsample && ctx.opset() < 9) {
    const std::vector<float> f = ctx.attr_floats("scales");
    scales.assign(f.begin(), f.end());
  } else {
    const int si = v10 ? 1 : 2;
    if (ctx.has_input(si)) {
      KILN_ASSIGN_OR_RETURN(scales, float_values(ctx, si, "scales"));
    }
    if (!v10 && ctx.has_input(3)) {
      const Tensor& s = ctx.host_input(3);
      if (s.dtype() != DType::kInt64 || s.rank() != 1) {
        return ctx.invalid("sizes must be a 1-D int64 tensor, got " + s.type_string());
      }
      sizes = cpu::read_ints(s);
    }
    if (!v10 && ctx.has_input(1) && p.coord == CoordMode::kTfCropAndResize) {
      KILN_ASSIGN_OR_RETURN(roi, float_values(ctx, 1, "roi"));
    }
  }
  if (!scales.empty() && !sizes.empty()) {
    return ctx.invalid("only one of scales and sizes may be given");
  }
  if (scales.empty() && sizes.empty()) return ctx.invalid("needs scales or sizes");
  if (!roi.empty() && roi.size() != 2 * na) {
    return ctx.invalid("roi has " + std::to_string(roi.size()) + " entries, expected " +
                       std::to_string(2 * na));
  }
  std::vector<int64_t> out_dims = x.shape;
  std::vector<double> eff(static_cast<size_t>(rank), 1.0);
  std::vector<double> rs(static_cast<size_t>(rank), 0.0), re(static_cast<size_t>(rank), 1.0);
  for (size_t k = 0; k < na && !roi.empty(); ++k) {
    rs[static_cast<size_t>(axes[k])] = roi[k];
    re[static_cast<size_t>(axes[k])] = roi[k + na];
  }
  if (!sizes.empty()) {
    if (sizes.size() != na) {
      return ctx.invalid("sizes has " + std::to_string(sizes.size()) + " entries for " +
                         std::to_string(na) + " axes");
    }
    for (int64_t s : sizes) {
      if (s < 0) return ctx.invalid("sizes has a negative entry");
    }
    const std::string policy =
        ctx.opset() >= 18 ? ctx.attr_string("keep_aspect_ratio_policy", "stretch") : "stretch";
    if (policy == "stretch") {
      for (size_t k = 0; k < na; ++k) {
        const size_t a = static_cast<size_t>(axes[k]);
        out_dims[a] = sizes[k];
        eff[a] =
            x.shape[a] == 0 ? 1.0 : static_cast<double>(sizes[k]) / static_cast<double>(x.shape[a]);
      }
    } else if (policy == "not_larger" || policy == "not_smaller") {
      double scale = policy == "not_larger" ? 1e300 : 0.0;
      for (size_t k = 0; k < na; ++k) {
        const int64_t d = x.shape[static_cast<size_t>(axes[k])];
        if (d == 0) return ctx.invalid("cannot keep the aspect ratio of an empty dimension");
        const double s = static_cast<double>(sizes[k]) / static_cast<double>(d);
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (size_t k = 0; k < na; ++k) {
        const size_t a = static_cast<size_t>(axes[k]);
        const double v = std::round(scale * static_cast<double>(x.shape[a]));
        if (!(v >= 0) || v > 4.0e18) return ctx.out_of_range("resized dimension is out of range");
        out_dims[a] = static_cast<int64_t>(v);
        eff[a] = scale;
      }
    } else {
      return ctx.unsupported("keep_aspect_ratio_policy '" + policy + "'");
    }
  } else {
    if (scales.size() != na) {
      return ctx.invalid("scales has " + std::to_string(scales.size()) + " entries for " +
                         std::to_string(na) + " axes");
    }
    for (size_t k = 0; k < na; ++k) {
      const size_t a = static_cast<size_t>(axes[k]);
      if (!(scales[k] > 0) || !std::isfinite(scales[k])) {
        return ctx.invalid("scales has a non-positive entry " + std::to_string(scales[k]));
      }
      const double extent = p.coord == CoordMode::kTfCropAndResize ? re[a] - rs[a] : 1.0;
      const double d = std::floor(static_cast<double>(x.shape[a]) * extent * scales[k]);
      if (!(d >= 0) || d > 4.0e18) return ctx.out_of_range("scaled dimension is out of range");
      out_dims[a] = static_cast<int64_t>(d);
      eff[a] = scales[k];
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, out_dims));
  if (y->numel() == 0) return Status::Ok();
  for (int a : axes) {
    if (x.dim(a) == 0) return ctx.invalid("cannot resize an empty dimension to a non-empty one");
  }
  p.rank = rank;
  for (int d = 0; d < rank; ++d) {
    p.in_dims[d] = x.dim(d);
    p.out_dims[d] = out_dims[static_cast<size_t>(d)];
    p.scales[d] = eff[static_cast<size_t>(d)];
    p.roi_start[d] = rs[static_cast<size_t>(d)];
    p.roi_end[d] = re[static_cast<size_t>(d)];
  }
  for (int a : axes) {
    const size_t u = static_cast<size_t>(a);
    const bool identity =
        out_dims[u] == x.shape[u] && eff[u] == 1.0 && p.coord != CoordMode::kTfCropAndResize;
    p.resized[a] = identity ? 0 : 1;
  }
  launch_resize(p, dt, x.data, y->data, y->numel(), ctx.stream());
  return ctx.check_launch("Resize");
}

void add(KernelRegistry& r, std::string_view op) {
  KernelDef d;
  d.domain = "";
  d.op_type = op;
  d.supports = resize_supports;
  d.run = resize_run;
  d.host_inputs = 0b1110;  // roi, scales, sizes (Resize 11+); scales (Resize 10, Upsample 9)
  r.add(d);
}

}  // namespace

void register_tensor_resize_kernels(KernelRegistry& r) {
  add(r, "Resize");
  add(r, "Upsample");
}

}  // namespace kiln::cuda::tensor
