// CUDA kernels of the tensor family (registration and host-side planning): views (Reshape,
// Flatten, Squeeze, Unsqueeze, Identity, Dropout) and copies (Transpose, Concat, Split, Slice,
// Expand, Tile). Pad, CenterCropPad, DepthToSpace, SpaceToDepth and ConstantOfShape are in
// tensor_kernels_pad.cc, the index sub-family (Gather..., Scatter..., NonZero, ...) in
// tensor_kernels_index.cc, Resize in tensor_kernels_resize.cc, the rest in
// tensor_kernels_misc.cc.
//
// Semantics follow the CPU reference kernels (src/backends/cpu/tensor*.cc): the same attribute
// handling, validation and error classes.
#include <algorithm>
#include <cstring>

#include "backends/cpu/tensor_util.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/tensor_internal.h"
#include "ops/shape_util.h"
#include "ops/tensor_util.h"

namespace kiln::cuda {
namespace tensor {

bool movable_dtype(DType t) {
  if (t == DType::kString || t == DType::kUndefined) return false;
  const int b = dtype_bits(t);
  return b == 8 || b == 16 || b == 32 || b == 64;
}

int element_size(DType t) {
  return dtype_bits(t) / 8;
}

namespace {
std::string check_value(const ir::Value* v, const std::string& what, bool copy) {
  if (v == nullptr) return {};
  // Types inference could not decide are accepted: run() checks the actual dtype and rank.
  if (v->type.kind == ir::TypeInfo::Kind::kUnknown) return {};
  if (!v->type.is_tensor()) return what + " is not a tensor";
  const DType t = v->type.dtype;
  if (t == DType::kUndefined) return {};
  if (copy ? !movable_dtype(t) : (t == DType::kString || t == DType::kUndefined)) {
    return what + " has dtype " + dtype_name(t);
  }
  if (copy && v->type.shape.rank_known && v->type.shape.rank() > kRank) {
    return what + " has rank > 8";
  }
  return {};
}
}  // namespace

std::string check_data(const ir::Node& n, std::initializer_list<int> inputs, bool copy) {
  for (int i : inputs) {
    if (!n.has_input(i)) continue;
    std::string r =
        check_value(n.inputs[static_cast<size_t>(i)], "input " + std::to_string(i), copy);
    if (!r.empty()) return r;
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    std::string r = check_value(n.outputs[i], "output " + std::to_string(i), copy);
    if (!r.empty()) return r;
  }
  return {};
}

std::string check_input(const ir::Node& n, int i, std::initializer_list<DType> allowed) {
  if (!n.has_input(i)) return {};
  const ir::TypeInfo& t = n.inputs[static_cast<size_t>(i)]->type;
  if (t.kind == ir::TypeInfo::Kind::kUnknown) return {};  // checked by run()
  if (!t.is_tensor()) return "input " + std::to_string(i) + " is not a tensor";
  if (t.dtype == DType::kUndefined) return {};
  if (std::find(allowed.begin(), allowed.end(), t.dtype) == allowed.end()) {
    return "input " + std::to_string(i) + " has dtype " + dtype_name(t.dtype);
  }
  return {};
}

uint64_t element_bits(const Tensor& t, int64_t i) {
  uint64_t bits = 0;
  const int es = element_size(t.dtype());
  if (es <= 0 || es > 8 || i < 0 || i >= t.numel()) return 0;
  std::memcpy(&bits, static_cast<const uint8_t*>(t.raw()) + i * es, static_cast<size_t>(es));
  return bits;
}

uint64_t value_bits(DType dt, double v) {
  Tensor t = Tensor::zeros(dt, {1});
  cpu::set_double(&t, 0, v);
  return element_bits(t, 0);
}

StatusOr<std::vector<int64_t>> host_ints(KernelContext& ctx, int i, const char* what) {
  if (!ctx.has_input(i)) return ctx.invalid(std::string("needs the ") + what + " input");
  const Tensor& t = ctx.host_input(i);
  if ((t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) || t.rank() > 1) {
    return ctx.invalid(std::string(what) + " must be a 1-D int32/int64 tensor, got " +
                       t.type_string());
  }
  return cpu::read_ints(t);
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  return contiguous_strides(shape);
}

void run_plan(CopyPlan p, const DeviceTensor& x, DeviceTensor* y, cudaStream_t s) {
  if (y->numel() == 0) return;
  p.esize = element_size(x.dtype);
  simplify_plan(&p, x.data, y->data);
  launch_plan(p, x.data, y->data, s);
}

Status rank_ok(KernelContext& ctx, const std::vector<int64_t>& shape) {
  if (shape.size() > static_cast<size_t>(kRank)) {
    return ctx.unsupported("rank " + std::to_string(shape.size()) + " > 8 on CUDA");
  }
  return Status::Ok();
}

CopyPlan direct_plan(const std::vector<int64_t>& out, const std::vector<int64_t>& strides) {
  CopyPlan p;
  p.rank = static_cast<int32_t>(out.size());
  for (size_t d = 0; d < out.size(); ++d) {
    p.out_dims[d] = out[d];
    p.src_dims[d] = out[d];
    p.strides[d] = strides[d];
    p.step[d] = 1;
  }
  return p;
}

}  // namespace tensor

namespace {
using namespace tensor;

// ---------------------------------------------------------------------------------- views

std::string view_supports(const ir::Node& n) {
  return check_data(n, {0}, false);
}

Status reshape_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  std::vector<int64_t> target;
  if (ctx.opset() < 5) {
    target = ctx.attr_ints("shape");
  } else {
    if (!ctx.has_input(1)) return ctx.invalid("needs the shape input");
    const Tensor& s = ctx.host_input(1);
    if (s.dtype() != DType::kInt64 || s.rank() != 1) {
      return ctx.invalid("shape must be a 1-D int64 tensor, got " + s.type_string());
    }
    target = cpu::read_ints(s);
  }
  const bool allowzero = ctx.opset() >= 14 && ctx.attr_int("allowzero", 0) != 0;
  int infer_at = -1;
  int64_t product = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t& v = target[i];
    if (v == -1) {
      if (infer_at >= 0) return ctx.invalid("shape has more than one -1");
      infer_at = static_cast<int>(i);
      continue;
    }
    if (v < -1) return ctx.invalid("shape has a negative dimension " + std::to_string(v));
    if (v == 0 && !allowzero) {
      if (i >= static_cast<size_t>(x.rank())) {
        return ctx.invalid("shape copies dimension " + std::to_string(i) + " of a rank " +
                           std::to_string(x.rank()) + " input");
      }
      v = x.dim(static_cast<int>(i));
    }
    if (v != 0 && product > INT64_MAX / v) return ctx.out_of_range("shape overflows int64");
    product *= v;
  }
  const int64_t numel = x.numel();
  if (infer_at >= 0) {
    if (product == 0) {
      if (numel != 0) return ctx.invalid("cannot infer -1 next to a zero dimension");
      target[static_cast<size_t>(infer_at)] = 0;
    } else {
      if (numel % product != 0) {
        return ctx.invalid("cannot reshape " + shape_to_string(x.shape) + " to " +
                           shape_to_string(target));
      }
      target[static_cast<size_t>(infer_at)] = numel / product;
    }
  } else if (product != numel) {
    return ctx.invalid("cannot reshape " + shape_to_string(x.shape) + " to " +
                       shape_to_string(target));
  }
  return ctx.alias(0, 0, std::move(target));
}

std::string reshape_supports(const ir::Node& n) {
  std::string r = view_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status flatten_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += x.rank();
  if (axis < 0 || axis > x.rank()) {
    return ctx.out_of_range("axis " + std::to_string(ctx.attr_int("axis", 1)) +
                            " is out of range for rank " + std::to_string(x.rank()));
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < x.rank(); ++i) (i < axis ? outer : inner) *= x.dim(i);
  return ctx.alias(0, 0, {outer, inner});
}

StatusOr<std::vector<int64_t>> axes_of(KernelContext& ctx, int input, int first_input_opset) {
  if (ctx.opset() < first_input_opset) return ctx.attr_ints("axes");
  if (!ctx.has_input(input)) return std::vector<int64_t>{};
  const Tensor& a = ctx.host_input(input);
  if (a.dtype() != DType::kInt64 || a.rank() > 1) {
    return ctx.invalid("axes must be a 1-D int64 tensor, got " + a.type_string());
  }
  return cpu::read_ints(a);
}

Status squeeze_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_of(ctx, 1, 13));
  std::vector<bool> drop(static_cast<size_t>(x.rank()), false);
  if (axes.empty()) {
    for (int i = 0; i < x.rank(); ++i) drop[static_cast<size_t>(i)] = x.dim(i) == 1;
  }
  for (int64_t a : axes) {
    StatusOr<int> ax = normalize_axis(a, x.rank());
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (x.dim(*ax) != 1) {
      return ctx.invalid("cannot squeeze axis " + std::to_string(a) + " of size " +
                         std::to_string(x.dim(*ax)));
    }
    drop[static_cast<size_t>(*ax)] = true;
  }
  std::vector<int64_t> shape;
  for (int i = 0; i < x.rank(); ++i) {
    if (!drop[static_cast<size_t>(i)]) shape.push_back(x.dim(i));
  }
  return ctx.alias(0, 0, std::move(shape));
}

Status unsqueeze_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_of(ctx, 1, 13));
  if (axes.empty()) return ctx.invalid("axes is empty");
  const int64_t out_rank = x.rank() + static_cast<int64_t>(axes.size());
  if (out_rank > 1024) return ctx.out_of_range("output rank is too large");
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) {
    StatusOr<int> ax = normalize_axis(a, static_cast<int>(out_rank));
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (inserted[static_cast<size_t>(*ax)]) return ctx.invalid("axes has duplicates");
    inserted[static_cast<size_t>(*ax)] = true;
  }
  std::vector<int64_t> shape;
  int k = 0;
  for (int64_t i = 0; i < out_rank; ++i) {
    shape.push_back(inserted[static_cast<size_t>(i)] ? 1 : x.dim(k++));
  }
  return ctx.alias(0, 0, std::move(shape));
}

std::string axes_view_supports(const ir::Node& n) {
  std::string r = view_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status identity_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  return ctx.alias(0, 0, x.shape);
}

std::string dropout_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, false);
  if (!r.empty()) return r;
  if (n.has_output(1) && output_dtype(n, 1) != DType::kUndefined &&
      !movable_dtype(output_dtype(n, 1))) {
    return "mask dtype " + std::string(dtype_name(output_dtype(n, 1)));
  }
  if (n.opset >= 12 && n.has_input(2)) {
    const ir::Value* t = n.inputs[2];
    if (t->constant == nullptr || t->constant->numel() != 1 || t->constant->get_int64(0) != 0) {
      return "training_mode is not a constant false (training Dropout runs on the CPU)";
    }
  }
  return {};
}

Status dropout_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  double ratio = 0.5;
  bool training = false;
  if (ctx.opset() < 12) {
    ratio = ctx.attr_float("ratio", 0.5f);
  } else {
    if (ctx.has_input(1)) ratio = cpu::scalar_double(ctx.host_input(1));
    if (ctx.has_input(2)) training = cpu::scalar_int(ctx.host_input(2)) != 0;
  }
  if (!(ratio >= 0.0 && ratio < 1.0)) {
    return ctx.invalid("ratio " + std::to_string(ratio) + " is not in [0, 1)");
  }
  if (training && ratio != 0.0) {
    return ctx.unsupported("training-mode Dropout is not implemented on CUDA");
  }
  KILN_RETURN_IF_ERROR(ctx.alias(0, 0, x.shape));
  if (ctx.wants_output(1)) {
    const DType mask_dt = ctx.opset() >= 10 ? DType::kBool : x.dtype;
    if (!movable_dtype(mask_dt)) return ctx.unsupported_type(mask_dt);
    KILN_ASSIGN_OR_RETURN(DeviceTensor * mask, ctx.allocate(1, mask_dt, x.shape));
    launch_fill(mask->data, mask->numel(), element_size(mask_dt), value_bits(mask_dt, 1.0),
                ctx.stream());
    return ctx.check_launch("Dropout mask fill");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------- copies

std::string copy_supports(const ir::Node& n) {
  return check_data(n, {0}, true);
}

Status transpose_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.shape));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (!ctx.node().has_attr("perm")) {
    for (int i = x.rank() - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != x.rank()) {
    return ctx.invalid("perm has " + std::to_string(perm.size()) + " entries for rank " +
                       std::to_string(x.rank()));
  }
  const std::vector<int64_t> in_strides = strides_of(x.shape);
  std::vector<int64_t> shape, strides;
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    StatusOr<int> ax = normalize_axis(p, x.rank(), "perm entry");
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (seen[static_cast<size_t>(*ax)]) return ctx.invalid("perm is not a permutation");
    seen[static_cast<size_t>(*ax)] = true;
    shape.push_back(x.dim(*ax));
    strides.push_back(in_strides[static_cast<size_t>(*ax)]);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  run_plan(direct_plan(shape, strides), x, y, ctx.stream());
  return ctx.check_launch("Transpose");
}

std::string concat_supports(const ir::Node& n) {
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (!n.has_input(static_cast<int>(i))) continue;
    std::string r = check_value(n.inputs[i], "input " + std::to_string(i), true);
    if (!r.empty()) return r;
  }
  return check_data(n, {}, true);
}

Status concat_run(KernelContext& ctx) {
  int first = -1;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.has_input(i)) {
      first = i;
      break;
    }
  }
  if (first < 0) return ctx.invalid("has no inputs");
  const DeviceTensor& x0 = ctx.input(first);
  const int rank = x0.rank();
  if (rank == 0) return ctx.invalid("cannot concatenate scalars");
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", ctx.opset() < 4 ? 1 : 0), rank);
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  std::vector<int64_t> shape = x0.shape;
  shape[static_cast<size_t>(*axis)] = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const DeviceTensor& x = ctx.input(i);
    bool same = x.dtype == x0.dtype && x.rank() == rank;
    for (int d = 0; same && d < rank; ++d) same = d == *axis || x.dim(d) == x0.dim(d);
    if (!same) {
      return ctx.invalid("input " + std::to_string(i) + " " + shape_to_string(x.shape) +
                         " does not match input " + std::to_string(first) + " " +
                         shape_to_string(x0.shape));
    }
    shape[static_cast<size_t>(*axis)] += x.dim(*axis);
  }
  if (!movable_dtype(x0.dtype)) return ctx.unsupported_type(x0.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x0.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  const int64_t es = element_size(x0.dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < *axis; ++d) outer *= shape[static_cast<size_t>(d)];
  for (int d = *axis + 1; d < rank; ++d) inner *= shape[static_cast<size_t>(d)];
  const int64_t out_row = shape[static_cast<size_t>(*axis)] * inner * es;
  std::vector<RowPiece> pieces;
  int64_t offset = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const DeviceTensor& x = ctx.input(i);
    const int64_t row = x.dim(*axis) * inner * es;
    if (row > 0) {
      RowPiece p;
      p.src = x.data;
      p.dst = static_cast<uint8_t*>(y->data) + offset;
      p.src_row = row;
      p.dst_row = out_row;
      p.row = row;
      pieces.push_back(p);
    }
    offset += row;
  }
  launch_rows(pieces, outer, ctx.stream());
  return ctx.check_launch("Concat");
}

std::string split_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status split_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (x.rank() == 0) return ctx.invalid("cannot split a scalar");
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", 0), x.rank());
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  const int n = ctx.num_outputs();
  const int64_t dim = x.dim(*axis);
  std::vector<int64_t> split;
  if (ctx.has_input(1) && ctx.host_input(1).numel() > 0) {
    const Tensor& s = ctx.host_input(1);
    if (s.dtype() != DType::kInt64 || s.rank() > 1) {
      return ctx.invalid("split must be a 1-D int64 tensor, got " + s.type_string());
    }
    split = cpu::read_ints(s);
  } else if (ctx.opset() < 13 && ctx.node().has_attr("split")) {
    split = ctx.attr_ints("split");
  } else {
    int64_t parts = n;
    if (ctx.opset() >= 18 && ctx.node().has_attr("num_outputs")) {
      parts = ctx.attr_int("num_outputs", n);
      if (parts != n) {
        return ctx.invalid("num_outputs is " + std::to_string(parts) + " but the node has " +
                           std::to_string(n) + " outputs");
      }
    }
    if (parts <= 0) return ctx.invalid("needs at least one output");
    const int64_t chunk = (dim + parts - 1) / parts;
    int64_t left = dim;
    for (int64_t i = 0; i < parts; ++i) {
      split.push_back(std::min(chunk, left));
      left -= split.back();
    }
  }
  if (static_cast<int>(split.size()) != n) {
    return ctx.invalid("split has " + std::to_string(split.size()) + " entries for " +
                       std::to_string(n) + " outputs");
  }
  int64_t total = 0;
  for (int64_t v : split) {
    if (v < 0) return ctx.invalid("split has a negative entry " + std::to_string(v));
    if (v > dim) return ctx.invalid("split entry " + std::to_string(v) + " exceeds the axis");
    total += v;
  }
  if (total != dim) {
    return ctx.invalid("split sums to " + std::to_string(total) + " but the axis has " +
                       std::to_string(dim));
  }
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  const int64_t es = element_size(x.dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < *axis; ++d) outer *= x.dim(d);
  for (int d = *axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  std::vector<RowPiece> pieces;
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t row = split[static_cast<size_t>(i)] * inner * es;
    if (ctx.wants_output(i)) {
      std::vector<int64_t> shape = x.shape;
      shape[static_cast<size_t>(*axis)] = split[static_cast<size_t>(i)];
      KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(i, x.dtype, shape));
      if (row > 0 && outer > 0) {
        RowPiece p;
        p.src = static_cast<const uint8_t*>(x.data) + offset;
        p.dst = y->data;
        p.src_row = dim * inner * es;
        p.dst_row = row;
        p.row = row;
        pieces.push_back(p);
      }
    }
    offset += row;
  }
  launch_rows(pieces, outer, ctx.stream());
  return ctx.check_launch("Split");
}

std::string slice_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  for (int i = 1; i <= 4 && r.empty(); ++i) r = check_input(n, i, {DType::kInt32, DType::kInt64});
  return r;
}

Status slice_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.shape));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.attr_ints("starts");
    ends = ctx.attr_ints("ends");
    axes = ctx.attr_ints("axes");
  } else {
    KILN_ASSIGN_OR_RETURN(starts, host_ints(ctx, 1, "starts"));
    KILN_ASSIGN_OR_RETURN(ends, host_ints(ctx, 2, "ends"));
    if (ctx.has_input(3)) {
      KILN_ASSIGN_OR_RETURN(axes, host_ints(ctx, 3, "axes"));
    }
    if (ctx.has_input(4)) {
      KILN_ASSIGN_OR_RETURN(steps, host_ints(ctx, 4, "steps"));
    }
  }
  if (starts.size() != ends.size()) return ctx.invalid("starts and ends differ in length");
  if (axes.empty()) {
    if (starts.size() > static_cast<size_t>(x.rank())) {
      return ctx.invalid("starts has more entries than the input has dims");
    }
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) {
    return ctx.invalid("starts, ends, axes and steps differ in length");
  }
  std::vector<int64_t> shape = x.shape;
  std::vector<int64_t> first(static_cast<size_t>(x.rank()), 0);
  std::vector<int64_t> step_of(static_cast<size_t>(x.rank()), 1);
  std::vector<bool> seen(static_cast<size_t>(x.rank()), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    StatusOr<int> ax = normalize_axis(axes[i], x.rank());
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    if (seen[static_cast<size_t>(*ax)]) return ctx.invalid("axes has duplicates");
    seen[static_cast<size_t>(*ax)] = true;
    if (steps[i] == 0) return ctx.invalid("slice step is 0");
    const size_t a = static_cast<size_t>(*ax);
    shape[a] =
        ops::tensor_detail::slice_extent(starts[i], ends[i], steps[i], x.dim(*ax), &first[a]);
    const int64_t lim = std::max<int64_t>(x.dim(*ax), 1);
    step_of[a] = std::clamp<int64_t>(steps[i], -lim, lim);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  const std::vector<int64_t> in_strides = strides_of(x.shape);
  CopyPlan p = direct_plan(shape, in_strides);
  for (size_t d = 0; d < shape.size(); ++d) {
    p.start[d] = first[d];
    p.step[d] = step_of[d];
  }
  run_plan(p, x, y, ctx.stream());
  return ctx.check_launch("Slice");
}

std::string expand_supports(const ir::Node& n) {
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status expand_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  if (!ctx.has_input(1)) return ctx.invalid("needs the shape input");
  const Tensor& s = ctx.host_input(1);
  if (s.dtype() != DType::kInt64 || s.rank() != 1) {
    return ctx.invalid("shape must be a 1-D int64 tensor, got " + s.type_string());
  }
  const std::vector<int64_t> target = cpu::read_ints(s);
  for (int64_t d : target) {
    if (d < 0) return ctx.invalid("shape " + shape_to_string(target) + " has a negative dimension");
  }
  StatusOr<std::vector<int64_t>> shape = broadcast_shapes(x.shape, target);
  if (!shape.ok()) return ctx.invalid(shape.status().message());
  KILN_RETURN_IF_ERROR(rank_ok(ctx, *shape));
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, *shape));
  if (y->numel() == 0) return Status::Ok();
  const std::vector<int64_t> in_strides = strides_of(x.shape);
  std::vector<int64_t> strides(shape->size(), 0);
  const size_t lead = shape->size() - static_cast<size_t>(x.rank());
  for (size_t d = 0; d < static_cast<size_t>(x.rank()); ++d) {
    strides[lead + d] = x.shape[d] == 1 ? 0 : in_strides[d];
  }
  run_plan(direct_plan(*shape, strides), x, y, ctx.stream());
  return ctx.check_launch("Expand");
}

std::string tile_supports(const ir::Node& n) {
  if (n.opset < 6) return "Tile before opset 6";
  std::string r = copy_supports(n);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt32, DType::kInt64});
}

Status tile_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.shape));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  if (!ctx.has_input(1)) return ctx.invalid("needs the repeats input");
  const Tensor& r = ctx.host_input(1);
  if (!cpu::is_index_dtype(r.dtype()) || r.rank() != 1 || r.numel() != x.rank()) {
    return ctx.invalid("repeats must be a 1-D int64 tensor of length " + std::to_string(x.rank()) +
                       ", got " + r.type_string());
  }
  const std::vector<int64_t> reps = cpu::read_ints(r);
  std::vector<int64_t> shape(static_cast<size_t>(x.rank()));
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reps[d] < 0) return ctx.invalid("repeats has a negative entry");
    if (reps[d] != 0 && x.shape[d] > INT64_MAX / reps[d]) {
      return ctx.out_of_range("tiled shape overflows int64");
    }
    shape[d] = x.shape[d] * reps[d];
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  CopyPlan p = direct_plan(shape, strides_of(x.shape));
  for (size_t d = 0; d < shape.size(); ++d) {
    p.src_dims[d] = x.shape[d];
    if (reps[d] != 1) p.border[d] = Border::kWrap;
  }
  run_plan(p, x, y, ctx.stream());
  return ctx.check_launch("Tile");
}

void add(KernelRegistry& r, std::string_view op, SupportsFn s, RunFn f, uint64_t host = 0) {
  KernelDef d;
  d.domain = "";
  d.op_type = op;
  d.supports = s;
  d.run = f;
  d.host_inputs = host;
  r.add(d);
}

}  // namespace

void register_tensor_kernels(KernelRegistry& r) {
  add(r, "Reshape", reshape_supports, reshape_run, 0b10);
  add(r, "Flatten", view_supports, flatten_run);
  add(r, "Squeeze", axes_view_supports, squeeze_run, 0b10);
  add(r, "Unsqueeze", axes_view_supports, unsqueeze_run, 0b10);
  add(r, "Identity", view_supports, identity_run);
  add(r, "Dropout", dropout_supports, dropout_run, 0b110);
  add(r, "Transpose", copy_supports, transpose_run);
  add(r, "Concat", concat_supports, concat_run);
  add(r, "Split", split_supports, split_run, 0b10);
  add(r, "Slice", slice_supports, slice_run, 0b11110);
  add(r, "Expand", expand_supports, expand_run, 0b10);
  add(r, "Tile", tile_supports, tile_run, 0b10);
  tensor::register_tensor_pad_kernels(r);
  tensor::register_tensor_index_kernels(r);
}

}  // namespace kiln::cuda
