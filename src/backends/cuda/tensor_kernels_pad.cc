// CUDA kernels of the tensor family: Pad, CenterCropPad, DepthToSpace, SpaceToDepth (copy plans
// with borders or 6-D transposes) and ConstantOfShape (registration and host-side planning,
// mirroring src/backends/cpu/tensor.cc, tensor_sample.cc and tensor_create.cc).
#include <algorithm>

#include "backends/cpu/tensor_util.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/tensor_internal.h"
#include "ops/shape_util.h"

namespace kiln::cuda::tensor {
namespace {

std::string copy_supports(const ir::Node& n) {
  return check_data(n, {0}, true);
}

std::string pad_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  const std::string mode = n.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" &&
      !(mode == "wrap" && n.opset >= 19)) {
    return "mode '" + mode + "'";
  }
  r = check_input(n, 1, {DType::kInt64});
  if (r.empty()) r = check_input(n, 3, {DType::kInt32, DType::kInt64});
  return r;
}

Status pad_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.shape));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  const int rank = x.rank();
  const std::string mode_name = ctx.attr_string("mode", "constant");
  Border mode;
  if (mode_name == "constant")
    mode = Border::kConstant;
  else if (mode_name == "reflect")
    mode = Border::kReflect;
  else if (mode_name == "edge")
    mode = Border::kEdge;
  else if (mode_name == "wrap" && ctx.opset() >= 19)
    mode = Border::kWrap;
  else
    return ctx.unsupported("mode '" + mode_name + "'");
  std::vector<int64_t> pads, axes;
  uint64_t fill = 0;
  if (ctx.opset() < 11) {
    pads = ctx.attr_ints(ctx.opset() < 2 ? "paddings" : "pads");
    const float v = ctx.attr_float("value", 0.f);
    if (v != 0.f) fill = value_bits(x.dtype, v);
  } else {
    if (!ctx.has_input(1)) return ctx.invalid("needs the pads input");
    const Tensor& pt = ctx.host_input(1);
    if (pt.dtype() != DType::kInt64 || pt.rank() != 1) {
      return ctx.invalid("pads must be a 1-D int64 tensor, got " + pt.type_string());
    }
    pads = cpu::read_ints(pt);
    if (ctx.has_input(2)) {
      const Tensor& c = ctx.host_input(2);
      if (c.dtype() != x.dtype || c.numel() != 1) {
        return ctx.invalid("constant_value must be one " + std::string(dtype_name(x.dtype)) +
                           ", got " + c.type_string());
      }
      fill = element_bits(c, 0);
    }
    if (ctx.opset() >= 18 && ctx.has_input(3)) {
      KILN_ASSIGN_OR_RETURN(axes, host_ints(ctx, 3, "axes"));
    }
  }
  if (axes.empty()) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  const size_t na = axes.size();
  if (pads.size() != 2 * na) {
    return ctx.invalid("pads has " + std::to_string(pads.size()) + " entries, expected " +
                       std::to_string(2 * na));
  }
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t k = 0; k < na; ++k) {
    StatusOr<int> ax = normalize_axis(axes[k], rank);
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (seen[static_cast<size_t>(*ax)]) return ctx.invalid("axes has duplicates");
    seen[static_cast<size_t>(*ax)] = true;
    begin[static_cast<size_t>(*ax)] = pads[k];
    end[static_cast<size_t>(*ax)] = pads[k + na];
  }
  std::vector<int64_t> shape(static_cast<size_t>(rank));
  constexpr int64_t kPadLimit = int64_t{1} << 60;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (begin[d] > kPadLimit || begin[d] < -kPadLimit || end[d] > kPadLimit ||
        end[d] < -kPadLimit) {
      return ctx.out_of_range("pads are out of range");
    }
    shape[d] = x.shape[d] + begin[d] + end[d];
    if (shape[d] < 0) return ctx.invalid("pads make dimension " + std::to_string(d) + " negative");
    if (x.shape[d] == 0 && shape[d] > 0 && mode != Border::kConstant) {
      return ctx.invalid("cannot pad an empty dimension in mode '" + mode_name + "'");
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  CopyPlan p = direct_plan(shape, strides_of(x.shape));
  p.fill = fill;
  for (size_t d = 0; d < shape.size(); ++d) {
    p.src_dims[d] = x.shape[d];
    p.start[d] = -begin[d];
    // Only crops (or nothing) on this dim: every source coordinate is inside.
    if (!(begin[d] <= 0 && end[d] <= 0)) p.border[d] = mode;
  }
  run_plan(p, x, y, ctx.stream());
  return ctx.check_launch("Pad");
}

std::string center_crop_pad_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt32, DType::kInt64});
}

Status center_crop_pad_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.shape));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  const int rank = x.rank();
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> target, host_ints(ctx, 1, "shape"));
  std::vector<int64_t> axes = ctx.attr_ints("axes");
  if (!ctx.node().has_attr("axes")) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (target.size() != axes.size()) {
    return ctx.invalid("shape has " + std::to_string(target.size()) + " entries for " +
                       std::to_string(axes.size()) + " axes");
  }
  std::vector<int64_t> shape = x.shape;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t k = 0; k < axes.size(); ++k) {
    StatusOr<int> ax = normalize_axis(axes[k], rank);
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (seen[static_cast<size_t>(*ax)]) return ctx.invalid("axes has duplicates");
    seen[static_cast<size_t>(*ax)] = true;
    if (target[k] < 0) return ctx.invalid("shape has a negative entry");
    shape[static_cast<size_t>(*ax)] = target[k];
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  CopyPlan p = direct_plan(shape, strides_of(x.shape));
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t dim = x.shape[d], t = shape[d];
    const int64_t shift = t <= dim ? (dim - t) / 2 : -((t - dim) / 2);
    p.src_dims[d] = dim;
    p.start[d] = shift;
    if (t > dim) p.border[d] = Border::kConstant;
  }
  run_plan(p, x, y, ctx.stream());
  return ctx.check_launch("CenterCropPad");
}

std::string depth_space_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  const std::string mode = n.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return "mode '" + mode + "'";
  return {};
}

Status depth_space_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  if (x.rank() != 4) return ctx.invalid("input must be 4-D, got " + shape_to_string(x.shape));
  const int64_t b = ctx.attr_int("blocksize", 0);
  if (b <= 0 || b > (int64_t{1} << 20)) return ctx.invalid("blocksize must be positive");
  const std::string mode = ctx.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.unsupported("mode '" + mode + "'");
  const bool dcr = mode == "DCR";
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  std::vector<int64_t> view, perm, out;
  if (ctx.node().op_type == "DepthToSpace") {
    if (c % (b * b) != 0) return ctx.invalid("channels are not divisible by blocksize^2");
    const int64_t co = c / (b * b);
    view = dcr ? std::vector<int64_t>{n, b, b, co, h, w} : std::vector<int64_t>{n, co, b, b, h, w};
    perm = dcr ? std::vector<int64_t>{0, 3, 4, 1, 5, 2} : std::vector<int64_t>{0, 1, 4, 2, 5, 3};
    out = {n, co, h * b, w * b};
  } else {
    if (h % b != 0 || w % b != 0) {
      return ctx.invalid("height and width must be divisible by blocksize");
    }
    view = {n, c, h / b, b, w / b, b};
    perm = dcr ? std::vector<int64_t>{0, 3, 5, 1, 2, 4} : std::vector<int64_t>{0, 1, 3, 5, 2, 4};
    out = {n, c * b * b, h / b, w / b};
  }
  const std::vector<int64_t> vs = strides_of(view);
  std::vector<int64_t> shape6, strides;
  for (int64_t p : perm) {
    shape6.push_back(view[static_cast<size_t>(p)]);
    strides.push_back(vs[static_cast<size_t>(p)]);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, out));
  if (y->numel() == 0) return Status::Ok();
  run_plan(direct_plan(shape6, strides), x, y, ctx.stream());
  return ctx.check_launch(dcr ? "DepthToSpace/SpaceToDepth (DCR)" : "DepthToSpace (CRD)");
}

std::string constant_of_shape_supports(const ir::Node& n) {
  std::string r = check_data(n, {}, true);
  if (!r.empty()) return r;
  return check_input(n, 0, {DType::kInt64});
}

Status constant_of_shape_run(KernelContext& ctx) {
  if (!ctx.has_input(0)) return ctx.invalid("needs the shape input");
  const Tensor& s = ctx.host_input(0);
  if (s.dtype() != DType::kInt64 || s.rank() != 1) {
    return ctx.invalid("input must be a 1-D int64 tensor, got " + s.type_string());
  }
  const std::vector<int64_t> shape = cpu::read_ints(s);
  for (int64_t d : shape) {
    if (d < 0) return ctx.invalid("shape has a negative dimension");
  }
  const Tensor* value = ctx.node().has_attr("value") ? ctx.attr_tensor("value") : nullptr;
  if (value != nullptr && value->numel() != 1) {
    return ctx.invalid("value must hold one element, got " + value->type_string());
  }
  const DType dt = value != nullptr ? value->dtype() : DType::kFloat32;
  if (!movable_dtype(dt)) return ctx.unsupported_type(dt);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, shape));
  if (y->numel() == 0) return Status::Ok();
  launch_fill(y->data, y->numel(), element_size(dt), value ? element_bits(*value, 0) : 0,
              ctx.stream());
  return ctx.check_launch("ConstantOfShape");
}

void add(KernelRegistry& r, std::string_view op, SupportsFn s, RunFn f, uint64_t host) {
  KernelDef d;
  d.domain = "";
  d.op_type = op;
  d.supports = s;
  d.run = f;
  d.host_inputs = host;
  r.add(d);
}

}  // namespace

void register_tensor_pad_kernels(KernelRegistry& r) {
  add(r, "Pad", pad_supports, pad_run, 0b1110);
  add(r, "CenterCropPad", center_crop_pad_supports, center_crop_pad_run, 0b10);
  add(r, "DepthToSpace", depth_space_supports, depth_space_run, 0);
  add(r, "SpaceToDepth", depth_space_supports, depth_space_run, 0);
  add(r, "ConstantOfShape", constant_of_shape_supports, constant_of_shape_run, 0b1);
}

}  // namespace kiln::cuda::tensor
