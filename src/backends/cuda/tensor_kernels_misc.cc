// CUDA kernels of the tensor family, misc sub-family (registration and host-side checks):
// Shape, Size, Constant, Compress, ReverseSequence, TensorScatter, GridSample, AffineGrid,
// Unique. Small
// host data (shape values, kept indices, sequence lengths, constants) reaches the device through
// launch_upload (kernel parameters: no staging buffer, no synchronization).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/tensor_util.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/tensor_internal.h"
#include "ops/shape_util.h"

namespace kiln::cuda::tensor {
namespace {

// Shape and Size read only the input's shape: any tensor dtype that can live on the device.
std::string shape_supports(const ir::Node& n) {
  const DType t = input_dtype(n, 0);
  if (t == DType::kString) return "input dtype string";
  return check_input(n, 0, {t});  // a tensor (or undecided)
}

Status upload_ints(KernelContext& ctx, int out, const std::vector<int64_t>& values,
                   std::vector<int64_t> shape) {
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(out, DType::kInt64, std::move(shape)));
  if (values.empty()) return Status::Ok();
  launch_upload(y->data, values.data(), values.size() * sizeof(int64_t), ctx.stream());
  return ctx.check_launch("upload");
}

Status shape_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const int64_t r = x.rank();
  int64_t start = ctx.opset() >= 15 ? ctx.attr_int("start", 0) : 0;
  int64_t end = ctx.opset() >= 15 ? ctx.attr_int("end", r) : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  const int64_t n = std::max<int64_t>(0, end - start);
  std::vector<int64_t> dims(x.shape.begin() + start, x.shape.begin() + start + n);
  return upload_ints(ctx, 0, dims, {n});
}

Status size_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  return upload_ints(ctx, 0, {x.numel()}, {});
}

// The tensor a Constant node produces, when it is one the CUDA kernel uploads.
StatusOr<Tensor> constant_value(const ir::Node& n) {
  if (n.attrs.size() != 1) return Status(StatusCode::kInvalidModel, "needs one value attribute");
  const ir::Attribute& a = n.attrs[0];
  if (a.name == "value" && a.t.defined()) return a.t;
  if (a.name == "value_float" && a.type == ir::AttrType::kFloat) return Tensor::scalar<float>(a.f);
  if (a.name == "value_floats" && a.type == ir::AttrType::kFloats) {
    return Tensor::from_vector<float>({static_cast<int64_t>(a.floats.size())}, a.floats);
  }
  if (a.name == "value_int" && a.type == ir::AttrType::kInt) return Tensor::scalar<int64_t>(a.i);
  if (a.name == "value_ints" && a.type == ir::AttrType::kInts) {
    return Tensor::from_vector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints);
  }
  return Status(StatusCode::kUnsupportedAttribute, "attribute '" + a.name + "'");
}

std::string constant_supports(const ir::Node& n) {
  StatusOr<Tensor> t = constant_value(n);
  if (!t.ok()) return std::string(t.status().message());
  if (!movable_dtype(t->dtype())) return "dtype " + std::string(dtype_name(t->dtype()));
  return {};
}

Status constant_run(KernelContext& ctx) {
  StatusOr<Tensor> t = constant_value(ctx.node());
  if (!t.ok()) return ctx.invalid(t.status().message());
  if (!movable_dtype(t->dtype())) return ctx.unsupported_type(t->dtype());
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, t->dtype(), t->shape()));
  if (y->numel() == 0) return Status::Ok();
  launch_upload(y->data, t->raw(), t->nbytes(), ctx.stream());
  return ctx.check_launch("Constant upload");
}

std::string compress_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  if (input_dtype(n, 1) == DType::kString) return "condition dtype string";
  return {};
}

Status compress_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (!ctx.has_input(1)) return ctx.invalid("needs the condition input");
  const Tensor& cond = ctx.host_input(1);
  if (cond.rank() != 1 || cond.dtype() == DType::kString) {
    return ctx.invalid("condition must be a 1-D bool tensor, got " + cond.type_string());
  }
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  const bool has_axis = ctx.node().has_attr("axis");
  int axis = 0;
  int64_t outer = 1, dim = x.numel(), inner = 1;
  std::vector<int64_t> shape{0};
  if (has_axis) {
    StatusOr<int> a = normalize_axis(ctx.attr_int("axis", 0), x.rank());
    if (!a.ok()) return ctx.out_of_range(a.status().message());
    axis = *a;
    dim = x.dim(axis);
    for (int i = 0; i < axis; ++i) outer *= x.dim(i);
    for (int i = axis + 1; i < x.rank(); ++i) inner *= x.dim(i);
    shape = x.shape;
  }
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (cond.get_int64(i) == 0) continue;
    if (i >= dim) {
      return ctx.out_of_range("condition selects index " + std::to_string(i) +
                              " beyond the axis size " + std::to_string(dim));
    }
    keep.push_back(i);
  }
  const int64_t k = static_cast<int64_t>(keep.size());
  shape[static_cast<size_t>(axis)] = k;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(static_cast<uint64_t>(k) * sizeof(int64_t)));
  launch_upload(ws, keep.data(), keep.size() * sizeof(int64_t), ctx.stream());
  launch_gather(x.data, ws, true, y->data, outer, dim, k, inner * element_size(x.dtype),
                ctx.stream());
  return ctx.check_launch("Compress");
}

std::string reverse_sequence_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt32, DType::kInt64});
}

Status reverse_sequence_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (!ctx.has_input(1)) return ctx.invalid("needs sequence_lens");
  const Tensor& lens_t = ctx.host_input(1);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2");
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  const int64_t batch_axis = ctx.attr_int("batch_axis", 1);
  const int64_t time_axis = ctx.attr_int("time_axis", 0);
  if (!((batch_axis == 0 && time_axis == 1) || (batch_axis == 1 && time_axis == 0))) {
    return ctx.invalid("batch_axis and time_axis must be 0 and 1 in some order");
  }
  const int64_t batch = x.dim(static_cast<int>(batch_axis));
  const int64_t steps = x.dim(static_cast<int>(time_axis));
  if (!cpu::is_index_dtype(lens_t.dtype()) || lens_t.rank() != 1 || lens_t.numel() != batch) {
    return ctx.invalid("sequence_lens must be a 1-D int64 tensor of length " +
                       std::to_string(batch) + ", got " + lens_t.type_string());
  }
  const std::vector<int64_t> lens = cpu::read_ints(lens_t);
  for (size_t b = 0; b < lens.size(); ++b) {
    if (lens[b] < 0 || lens[b] > steps) {
      return ctx.out_of_range("sequence_lens[" + std::to_string(b) +
                              "] = " + std::to_string(lens[b]) + " is outside [0, " +
                              std::to_string(steps) + "]");
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, x.shape));
  if (y->numel() == 0) return Status::Ok();
  int64_t inner = 1;
  for (int i = 2; i < x.rank(); ++i) inner *= x.dim(i);
  KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(lens.size() * sizeof(int64_t)));
  launch_upload(ws, lens.data(), lens.size() * sizeof(int64_t), ctx.stream());
  launch_reverse_sequence(x.data, y->data, static_cast<const int64_t*>(ws), batch, steps, inner,
                          batch_axis == 0, element_size(x.dtype), ctx.stream());
  return ctx.check_launch("ReverseSequence");
}

std::string tensor_scatter_supports(const ir::Node& n) {
  std::string r = check_data(n, {0, 1}, true);
  if (!r.empty()) return r;
  const std::string mode = n.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") return "mode '" + mode + "'";
  return check_input(n, 2, {DType::kInt32, DType::kInt64});
}

Status tensor_scatter_run(KernelContext& ctx) {
  const DeviceTensor& past = ctx.input(0);
  const DeviceTensor& upd = ctx.input(1);
  if (upd.dtype != past.dtype || upd.rank() != past.rank() || past.rank() < 2) {
    return ctx.invalid("past_cache " + shape_to_string(past.shape) + " and update " +
                       shape_to_string(upd.shape) + " do not match");
  }
  if (!movable_dtype(past.dtype)) return ctx.unsupported_type(past.dtype);
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", -2), past.rank());
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  if (*axis == 0) return ctx.invalid("axis cannot be the batch dimension");
  const std::string mode = ctx.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") return ctx.unsupported("mode '" + mode + "'");
  for (int d = 0; d < past.rank(); ++d) {
    if (d != *axis && past.dim(d) != upd.dim(d)) {
      return ctx.invalid("past_cache and update differ outside the sequence axis");
    }
  }
  const int64_t max_seq = past.dim(*axis), seq = upd.dim(*axis), batch = past.dim(0);
  if (seq > max_seq) return ctx.invalid("update is longer than the cache");
  std::vector<int64_t> wi(static_cast<size_t>(batch), 0);
  if (ctx.has_input(2)) {
    const Tensor& w = ctx.host_input(2);
    if (!cpu::is_index_dtype(w.dtype()) || w.rank() != 1 || w.numel() != batch) {
      return ctx.invalid("write_indices must be a 1-D int64 tensor of length " +
                         std::to_string(batch) + ", got " + w.type_string());
    }
    wi = cpu::read_ints(w);
  }
  for (size_t b = 0; b < wi.size(); ++b) {
    const bool ok = mode == "circular" ? wi[b] >= 0 : wi[b] >= 0 && wi[b] <= max_seq - seq;
    if (!ok) {
      return ctx.out_of_range("write_indices[" + std::to_string(b) +
                              "] = " + std::to_string(wi[b]) +
                              " is out of range for cache length " + std::to_string(max_seq));
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, past.dtype, past.shape));
  if (y->numel() == 0) return Status::Ok();
  KILN_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(y->data, past.data, past.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
  if (upd.numel() == 0) return Status::Ok();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < *axis; ++d) outer *= past.dim(d);
  for (int d = *axis + 1; d < past.rank(); ++d) inner *= past.dim(d);
  const int64_t per_batch = batch == 0 ? 0 : outer / batch;
  KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(wi.size() * sizeof(int64_t)));
  launch_upload(ws, wi.data(), wi.size() * sizeof(int64_t), ctx.stream());
  launch_tensor_scatter(upd.data, y->data, static_cast<const int64_t*>(ws), outer, per_batch,
                        max_seq, seq, inner, mode == "circular", element_size(past.dtype),
                        ctx.stream());
  return ctx.check_launch("TensorScatter");
}

bool float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

std::string float_inputs(const ir::Node& n, std::initializer_list<int> inputs) {
  for (int i : inputs) {
    std::string r =
        check_input(n, i, {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64});
    if (!r.empty()) return r;
  }
  return {};
}

std::string grid_sample_supports(const ir::Node& n) {
  std::string r = float_inputs(n, {0, 1});
  if (!r.empty()) return r;
  const DType a = input_dtype(n, 0), b = input_dtype(n, 1);
  if (a != DType::kUndefined && b != DType::kUndefined && a != b) {
    return "X and grid of different dtypes";
  }
  std::string mode = n.attr_string("mode", n.opset < 20 ? "bilinear" : "linear");
  if (mode != "bilinear" && mode != "linear" && mode != "bicubic" && mode != "cubic" &&
      mode != "nearest") {
    return "mode '" + mode + "'";
  }
  const std::string pad = n.attr_string("padding_mode", "zeros");
  if (pad != "zeros" && pad != "border" && pad != "reflection") {
    return "padding_mode '" + pad + "'";
  }
  return {};
}

Status grid_sample_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& grid = ctx.input(1);
  const int rank = x.rank();
  const int sd = rank - 2;
  if (rank < 3 || grid.rank() != rank || grid.dim(rank - 1) != sd || grid.dim(0) != x.dim(0)) {
    return ctx.invalid("X " + shape_to_string(x.shape) + " and grid " +
                       shape_to_string(grid.shape) + " do not match");
  }
  if (ctx.opset() < 20 && rank != 4) {
    return ctx.invalid("GridSample before opset 20 takes 4-D input");
  }
  if (!float_dtype(x.dtype) || grid.dtype != x.dtype) return ctx.unsupported_type(grid.dtype);
  std::string mode = ctx.attr_string("mode", ctx.opset() < 20 ? "bilinear" : "linear");
  GridPlan p;
  if (mode == "bilinear" || mode == "linear")
    p.mode = GridMode::kLinear;
  else if (mode == "bicubic" || mode == "cubic")
    p.mode = GridMode::kCubic;
  else if (mode == "nearest")
    p.mode = GridMode::kNearest;
  else
    return ctx.unsupported("mode '" + mode + "'");
  if (sd > kMaxGridDims) return ctx.unsupported("more than 6 spatial dims");
  const std::string pad = ctx.attr_string("padding_mode", "zeros");
  if (pad == "zeros")
    p.pad = GridPad::kZeros;
  else if (pad == "border")
    p.pad = GridPad::kBorder;
  else if (pad == "reflection")
    p.pad = GridPad::kReflection;
  else
    return ctx.unsupported("padding_mode '" + pad + "'");
  p.align = ctx.attr_int("align_corners", 0) != 0 ? 1 : 0;
  p.sd = sd;
  p.c = x.dim(1);
  p.in_count = 1;
  p.out_count = 1;
  std::vector<int64_t> shape{x.dim(0), x.dim(1)};
  for (int d = 0; d < sd; ++d) {
    p.in_sp[d] = x.dim(d + 2);
    p.in_count *= p.in_sp[d];
    shape.push_back(grid.dim(d + 1));
    p.out_count *= grid.dim(d + 1);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  launch_grid_sample(p, x.dtype, x.data, grid.data, y->data, y->numel(), ctx.stream());
  return ctx.check_launch("GridSample");
}

std::string affine_grid_supports(const ir::Node& n) {
  std::string r = float_inputs(n, {0});
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status affine_grid_run(KernelContext& ctx) {
  const DeviceTensor& theta = ctx.input(0);
  if (!ctx.has_input(1)) return ctx.invalid("needs the size input");
  const Tensor& size_t_ = ctx.host_input(1);
  if (size_t_.dtype() != DType::kInt64 || size_t_.rank() != 1 ||
      (size_t_.numel() != 4 && size_t_.numel() != 5)) {
    return ctx.invalid("size must be a 1-D int64 tensor of 4 or 5 entries, got " +
                       size_t_.type_string());
  }
  if (!float_dtype(theta.dtype)) return ctx.unsupported_type(theta.dtype);
  const std::vector<int64_t> size = cpu::read_ints(size_t_);
  const int sd = static_cast<int>(size.size()) - 2;
  const int64_t n = size[0];
  if (theta.rank() != 3 || theta.dim(0) != n || theta.dim(1) != sd || theta.dim(2) != sd + 1) {
    return ctx.invalid("theta " + shape_to_string(theta.shape) + " does not match size " +
                       shape_to_string(size));
  }
  AffinePlan p;
  p.sd = sd;
  p.align = ctx.attr_int("align_corners", 0) != 0 ? 1 : 0;
  p.count = 1;
  std::vector<int64_t> shape{n};
  for (int d = 0; d < sd; ++d) {
    const int64_t v = size[static_cast<size_t>(d + 2)];
    if (v < 0) return ctx.invalid("size has a negative entry");
    p.sp[d] = v;
    p.count *= v;
    shape.push_back(v);
  }
  shape.push_back(sd);
  if (n < 0) return ctx.invalid("size has a negative entry");
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, theta.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  launch_affine_grid(p, theta.dtype, theta.data, y->data, y->numel(), ctx.stream());
  return ctx.check_launch("AffineGrid");
}

// Unique: synchronizes. The input comes to the host, the groups are found there exactly as the
// CPU reference finds them (stable sort of the slices along the axis), and the outputs go back
// through launch_upload.
int compare_elements(const Tensor& x, int64_t i, int64_t j) {
  const DType t = x.dtype();
  if (t == DType::kUInt64) {
    const uint64_t a = static_cast<uint64_t>(x.get_int64(i)),
                   b = static_cast<uint64_t>(x.get_int64(j));
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (is_integer(t) || t == DType::kBool) {
    const int64_t a = x.get_int64(i), b = x.get_int64(j);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const double a = x.get_double(i), b = x.get_double(j);
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? (std::isnan(b) ? 0 : 1) : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

std::string unique_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  if (is_complex(input_dtype(n, 0))) return "complex input";
  return {};
}

Status upload_tensor(KernelContext& ctx, int out, const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(out, t.dtype(), t.shape()));
  if (y->numel() == 0) return Status::Ok();
  launch_upload(y->data, t.raw(), t.nbytes(), ctx.stream());
  return ctx.check_launch("Unique upload");
}

Status unique_run(KernelContext& ctx) {
  const DeviceTensor& xd = ctx.input(0);
  if (!movable_dtype(xd.dtype) || is_complex(xd.dtype)) return ctx.unsupported_type(xd.dtype);
  KILN_ASSIGN_OR_RETURN(Tensor x, Tensor::create(xd.dtype, xd.shape));
  if (x.numel() > 0) {
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(x.mutable_raw(), xd.data, x.nbytes(),
                                              cudaMemcpyDeviceToHost, ctx.stream()));
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ctx.stream()));
  }
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  const bool has_axis = ctx.node().has_attr("axis");
  int axis = 0;
  int64_t outer = 1, dim = x.numel(), inner = 1;
  if (has_axis) {
    StatusOr<int> a = normalize_axis(ctx.attr_int("axis", 0), x.rank());
    if (!a.ok()) return ctx.out_of_range(a.status().message());
    axis = *a;
    dim = x.dim(axis);
    for (int i = 0; i < axis; ++i) outer *= x.dim(i);
    for (int i = axis + 1; i < x.rank(); ++i) inner *= x.dim(i);
  }
  if (x.numel() == 0 && dim > 0) return ctx.unsupported("Unique over empty slices");
  auto cmp = [&](int64_t a, int64_t b) {
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t k = 0; k < inner; ++k) {
        const int c = compare_elements(x, (o * dim + a) * inner + k, (o * dim + b) * inner + k);
        if (c != 0) return c;
      }
    }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(dim));
  for (int64_t i = 0; i < dim; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
  std::vector<int64_t> group_first, group_count, group_of(static_cast<size_t>(dim));
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
      group_first.push_back(order[i]);
      group_count.push_back(0);
    }
    group_count.back()++;
    group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(group_first.size()) - 1;
  }
  const int64_t u = static_cast<int64_t>(group_first.size());
  std::vector<int64_t> out_order(static_cast<size_t>(u));
  for (int64_t r = 0; r < u; ++r) out_order[static_cast<size_t>(r)] = r;
  if (!sorted) {
    std::sort(out_order.begin(), out_order.end(), [&](int64_t a, int64_t b) {
      return group_first[static_cast<size_t>(a)] < group_first[static_cast<size_t>(b)];
    });
  }
  std::vector<int64_t> rank_of(static_cast<size_t>(u));
  for (int64_t r = 0; r < u; ++r)
    rank_of[static_cast<size_t>(out_order[static_cast<size_t>(r)])] = r;
  std::vector<int64_t> shape{u};
  if (has_axis) {
    shape = x.shape();
    shape[static_cast<size_t>(axis)] = u;
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, Tensor::create(x.dtype(), shape));
  const int64_t es = element_size(x.dtype());
  for (int64_t r = 0; r < u; ++r) {
    const int64_t src = group_first[static_cast<size_t>(out_order[static_cast<size_t>(r)])];
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(static_cast<uint8_t*>(y.mutable_raw()) + (o * u + r) * inner * es,
                  static_cast<const uint8_t*>(x.raw()) + (o * dim + src) * inner * es,
                  static_cast<size_t>(inner * es));
    }
  }
  KILN_RETURN_IF_ERROR(upload_tensor(ctx, 0, y));
  std::vector<int64_t> v;
  if (ctx.wants_output(1)) {
    v.resize(static_cast<size_t>(u));
    for (int64_t r = 0; r < u; ++r) {
      v[static_cast<size_t>(r)] =
          group_first[static_cast<size_t>(out_order[static_cast<size_t>(r)])];
    }
    KILN_RETURN_IF_ERROR(upload_ints(ctx, 1, v, {u}));
  }
  if (ctx.wants_output(2)) {
    v.resize(static_cast<size_t>(dim));
    for (int64_t i = 0; i < dim; ++i) {
      v[static_cast<size_t>(i)] = rank_of[static_cast<size_t>(group_of[static_cast<size_t>(i)])];
    }
    KILN_RETURN_IF_ERROR(upload_ints(ctx, 2, v, {dim}));
  }
  if (ctx.wants_output(3)) {
    v.resize(static_cast<size_t>(u));
    for (int64_t r = 0; r < u; ++r) {
      v[static_cast<size_t>(r)] =
          group_count[static_cast<size_t>(out_order[static_cast<size_t>(r)])];
    }
    KILN_RETURN_IF_ERROR(upload_ints(ctx, 3, v, {u}));
  }
  return Status::Ok();
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

void register_tensor_misc_kernels(KernelRegistry& r) {
  add(r, "Shape", shape_supports, shape_run);
  add(r, "Size", shape_supports, size_run);
  add(r, "Constant", constant_supports, constant_run);
  add(r, "Compress", compress_supports, compress_run, 0b10);
  add(r, "ReverseSequence", reverse_sequence_supports, reverse_sequence_run, 0b10);
  add(r, "TensorScatter", tensor_scatter_supports, tensor_scatter_run, 0b100);
  add(r, "GridSample", grid_sample_supports, grid_sample_run);
  add(r, "AffineGrid", affine_grid_supports, affine_grid_run, 0b10);
  KernelDef u;
  u.domain = "";
  u.op_type = "Unique";
  u.supports = unique_supports;
  u.run = unique_run;
  u.synchronizes = true;
  r.add(u);
}

}  // namespace kiln::cuda::tensor
