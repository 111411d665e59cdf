// CUDA kernels of the tensor family, index sub-family (registration and host-side checks):
// Gather, GatherElements, GatherND, ScatterElements (and Scatter), ScatterND, Trilu, EyeLike,
// OneHot, Range, NonZero. Kernels are in tensor_index.cu.
//
// Index tensors are on the device: out-of-range gather indices are clamped into range and
// out-of-range scatter indices skip their update (the CPU kernels report errors instead); see
// tensor_index.cu.
#include <algorithm>
#include <cmath>

#include "backends/cpu/tensor_util.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/tensor_internal.h"
#include "ops/shape_util.h"

namespace kiln::cuda::tensor {
namespace {

constexpr std::initializer_list<DType> kIndexTypes = {DType::kInt32, DType::kInt64};

Status index_dtype_ok(KernelContext& ctx, const DeviceTensor& idx, const char* what) {
  if (idx.dtype != DType::kInt32 && idx.dtype != DType::kInt64) {
    return ctx.invalid(std::string(what) + " must be int32 or int64, got " + dtype_name(idx.dtype));
  }
  return Status::Ok();
}

Status rank_ok(KernelContext& ctx, int rank) {
  if (rank > kRank) return ctx.unsupported("rank " + std::to_string(rank) + " > 8 on CUDA");
  return Status::Ok();
}

std::string gather_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  return check_input(n, 1, kIndexTypes);
}

Status gather_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& idx = ctx.input(1);
  KILN_RETURN_IF_ERROR(index_dtype_ok(ctx, idx, "indices"));
  if (x.rank() == 0) return ctx.invalid("data must have rank >= 1");
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", 0), x.rank());
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  std::vector<int64_t> shape;
  for (int i = 0; i < *axis; ++i) shape.push_back(x.dim(i));
  for (int64_t d : idx.shape) shape.push_back(d);
  for (int i = *axis + 1; i < x.rank(); ++i) shape.push_back(x.dim(i));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  const int64_t dim = x.dim(*axis);
  if (dim == 0) return ctx.out_of_range("cannot gather from an empty axis");
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < *axis; ++i) outer *= x.dim(i);
  for (int i = *axis + 1; i < x.rank(); ++i) inner *= x.dim(i);
  launch_gather(x.data, idx.data, idx.dtype == DType::kInt64, y->data, outer, dim, idx.numel(),
                inner * element_size(x.dtype), ctx.stream());
  return ctx.check_launch("Gather");
}

StatusOr<ElementsPlan> elements_plan(KernelContext& ctx, const DeviceTensor& x,
                                     const DeviceTensor& idx) {
  if (x.rank() == 0 || idx.rank() != x.rank()) {
    return ctx.invalid("data " + shape_to_string(x.shape) + " and indices " +
                       shape_to_string(idx.shape) + " must have the same rank >= 1");
  }
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.rank()));
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", 0), x.rank());
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  for (int d = 0; d < x.rank(); ++d) {
    if (d != *axis && idx.dim(d) > x.dim(d)) {
      return ctx.invalid("indices " + shape_to_string(idx.shape) + " exceed data " +
                         shape_to_string(x.shape) + " in dimension " + std::to_string(d));
    }
  }
  ElementsPlan p;
  p.rank = x.rank();
  p.axis = *axis;
  const std::vector<int64_t> xs = strides_of(x.shape);
  for (int d = 0; d < x.rank(); ++d) {
    p.idx_dims[d] = idx.dim(d);
    p.data_strides[d] = xs[static_cast<size_t>(d)];
  }
  p.axis_dim = x.dim(*axis);
  if (p.axis_dim == 0 && idx.numel() > 0) {
    return ctx.out_of_range("indices address an empty axis");
  }
  return p;
}

Status gather_elements_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& idx = ctx.input(1);
  KILN_RETURN_IF_ERROR(index_dtype_ok(ctx, idx, "indices"));
  KILN_ASSIGN_OR_RETURN(ElementsPlan p, elements_plan(ctx, x, idx));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, idx.shape));
  if (y->numel() == 0) return Status::Ok();
  launch_gather_elements(p, x.data, idx.data, idx.dtype == DType::kInt64, y->data, y->numel(),
                         element_size(x.dtype), ctx.stream());
  return ctx.check_launch("GatherElements");
}

// GatherND/ScatterND addressing for data x, indices idx and batch_dims b.
StatusOr<NdPlan> nd_plan(KernelContext& ctx, const DeviceTensor& x, const DeviceTensor& idx,
                         int64_t b, int64_t* tuples, int64_t* slice) {
  const int64_t last = idx.dim(idx.rank() - 1);
  NdPlan p;
  p.last = static_cast<int32_t>(last);
  const std::vector<int64_t> xs = strides_of(x.shape);
  *slice = 1;
  for (int64_t d = b + last; d < x.rank(); ++d) *slice *= x.dim(static_cast<int>(d));
  *tuples = 1;
  for (int d = 0; d + 1 < idx.rank(); ++d) *tuples *= idx.dim(d);
  int64_t batch = 1;
  for (int64_t d = 0; d < b; ++d) batch *= x.dim(static_cast<int>(d));
  if (*slice == 0 || *tuples == 0) return p;
  for (int64_t k = 0; k < last; ++k) {
    const int64_t dim = x.dim(static_cast<int>(b + k));
    if (dim == 0) return ctx.out_of_range("indices address an empty dimension");
    p.dims[k] = dim;
    p.strides[k] = xs[static_cast<size_t>(b + k)] / *slice;
  }
  p.per_batch = batch == 0 ? 0 : *tuples / batch;
  p.batch_stride = b > 0 ? xs[static_cast<size_t>(b - 1)] / *slice : 0;
  return p;
}

Status gather_nd_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& idx = ctx.input(1);
  KILN_RETURN_IF_ERROR(index_dtype_ok(ctx, idx, "indices"));
  const int64_t b = ctx.opset() >= 12 ? ctx.attr_int("batch_dims", 0) : 0;
  if (x.rank() < 1 || idx.rank() < 1) return ctx.invalid("data and indices need rank >= 1");
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.rank()));
  const int64_t last = idx.dim(idx.rank() - 1);
  if (b < 0 || b >= std::min(x.rank(), idx.rank()) || last > x.rank() - b || last < 0) {
    return ctx.invalid("batch_dims " + std::to_string(b) + " with indices " +
                       shape_to_string(idx.shape) + " does not fit data " +
                       shape_to_string(x.shape));
  }
  for (int64_t d = 0; d < b; ++d) {
    if (x.dim(static_cast<int>(d)) != idx.dim(static_cast<int>(d))) {
      return ctx.invalid("batch dimensions of data and indices differ");
    }
  }
  std::vector<int64_t> shape(idx.shape.begin(), idx.shape.end() - 1);
  for (int64_t d = b + last; d < x.rank(); ++d) shape.push_back(x.dim(static_cast<int>(d)));
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, shape));
  if (y->numel() == 0) return Status::Ok();
  int64_t tuples = 0, slice = 0;
  KILN_ASSIGN_OR_RETURN(NdPlan p, nd_plan(ctx, x, idx, b, &tuples, &slice));
  launch_gather_nd(p, x.data, idx.data, idx.dtype == DType::kInt64, y->data, tuples,
                   slice * element_size(x.dtype), ctx.stream());
  return ctx.check_launch("GatherND");
}

StatusOr<Reduce> reduction_of(KernelContext& ctx) {
  if (ctx.opset() < 16) return Reduce::kNone;
  const std::string r = ctx.attr_string("reduction", "none");
  if (r == "none") return Reduce::kNone;
  if (r == "add") return Reduce::kAdd;
  if (r == "mul") return Reduce::kMul;
  if (ctx.opset() >= 18 && r == "max") return Reduce::kMax;
  if (ctx.opset() >= 18 && r == "min") return Reduce::kMin;
  return ctx.unsupported("reduction '" + r + "'");
}

bool num_kind(DType t, NumKind* k) {
  switch (t) {
    case DType::kFloat32:
      *k = NumKind::kF32;
      return true;
    case DType::kFloat64:
      *k = NumKind::kF64;
      return true;
    case DType::kInt32:
      *k = NumKind::kI32;
      return true;
    case DType::kUInt32:
      *k = NumKind::kU32;
      return true;
    case DType::kInt64:
      *k = NumKind::kI64;
      return true;
    case DType::kUInt64:
      *k = NumKind::kU64;
      return true;
    default:
      return false;
  }
}

std::string scatter_supports(const ir::Node& n) {
  std::string r = check_data(n, {0, 2}, true);
  if (!r.empty()) return r;
  r = check_input(n, 1, kIndexTypes);
  if (!r.empty()) return r;
  if (n.opset >= 16) {
    const std::string red = n.attr_string("reduction", "none");
    if (red != "none") {
      if (red != "add" && red != "mul" && !(n.opset >= 18 && (red == "max" || red == "min"))) {
        return "reduction '" + red + "'";
      }
      NumKind k;
      if (!num_kind(input_dtype(n, 0), &k)) {
        return "reduction on dtype " + std::string(dtype_name(input_dtype(n, 0)));
      }
    }
  }
  return {};
}

// y = copy of x, then the scatter. Checks the reduction's dtype.
StatusOr<DeviceTensor*> scatter_prologue(KernelContext& ctx, const DeviceTensor& x,
                                         const DeviceTensor& upd, Reduce red, NumKind* kind) {
  if (upd.dtype != x.dtype) return ctx.invalid("updates and data differ in dtype");
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  *kind = NumKind::kF32;
  if (red != Reduce::kNone && !num_kind(x.dtype, kind)) {
    return ctx.unsupported("reduction on dtype " + std::string(dtype_name(x.dtype)));
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, x.shape));
  if (y->numel() > 0) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(y->data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
  }
  return y;
}

Status scatter_elements_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& idx = ctx.input(1);
  const DeviceTensor& upd = ctx.input(2);
  KILN_RETURN_IF_ERROR(index_dtype_ok(ctx, idx, "indices"));
  if (upd.shape != idx.shape) {
    return ctx.invalid("updates " + shape_to_string(upd.shape) + " and indices " +
                       shape_to_string(idx.shape) + " differ in shape");
  }
  KILN_ASSIGN_OR_RETURN(Reduce red, reduction_of(ctx));
  KILN_ASSIGN_OR_RETURN(ElementsPlan p, elements_plan(ctx, x, idx));
  NumKind kind;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, scatter_prologue(ctx, x, upd, red, &kind));
  launch_scatter_elements(p, idx.data, idx.dtype == DType::kInt64, upd.data, y->data, idx.numel(),
                          element_size(x.dtype), red, kind, ctx.stream());
  return ctx.check_launch("ScatterElements");
}

Status scatter_nd_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& idx = ctx.input(1);
  const DeviceTensor& upd = ctx.input(2);
  KILN_RETURN_IF_ERROR(index_dtype_ok(ctx, idx, "indices"));
  KILN_ASSIGN_OR_RETURN(Reduce red, reduction_of(ctx));
  if (x.rank() < 1 || idx.rank() < 1) return ctx.invalid("data and indices need rank >= 1");
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.rank()));
  const int64_t last = idx.dim(idx.rank() - 1);
  if (last > x.rank()) {
    return ctx.invalid("index depth " + std::to_string(last) + " exceeds data rank " +
                       std::to_string(x.rank()));
  }
  std::vector<int64_t> want(idx.shape.begin(), idx.shape.end() - 1);
  for (int64_t d = last; d < x.rank(); ++d) want.push_back(x.dim(static_cast<int>(d)));
  if (upd.shape != want) {
    return ctx.invalid("updates is " + shape_to_string(upd.shape) + ", expected shape " +
                       shape_to_string(want));
  }
  NumKind kind;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, scatter_prologue(ctx, x, upd, red, &kind));
  int64_t tuples = 0, slice = 0;
  KILN_ASSIGN_OR_RETURN(NdPlan p, nd_plan(ctx, x, idx, 0, &tuples, &slice));
  launch_scatter_nd(p, idx.data, idx.dtype == DType::kInt64, upd.data, y->data, tuples, slice,
                    element_size(x.dtype), red, kind, ctx.stream());
  return ctx.check_launch("ScatterND");
}

std::string trilu_supports(const ir::Node& n) {
  std::string r = check_data(n, {0}, true);
  if (!r.empty()) return r;
  return check_input(n, 1, {DType::kInt64});
}

Status trilu_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2");
  int64_t k = 0;
  if (ctx.has_input(1)) {
    const Tensor& kt = ctx.host_input(1);
    if (kt.dtype() != DType::kInt64 || kt.numel() != 1) {
      return ctx.invalid("k must be an int64 scalar, got " + kt.type_string());
    }
    k = kt.get_int64(0);
  }
  const bool upper = ctx.attr_int("upper", 1) != 0;
  if (!movable_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, x.shape));
  if (y->numel() == 0) return Status::Ok();
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  launch_trilu(x.data, y->data, x.numel() / (rows * cols), rows, cols, k, upper,
               element_size(x.dtype), ctx.stream());
  return ctx.check_launch("Trilu");
}

std::string eye_like_supports(const ir::Node& n) {
  std::string r = check_data(n, {}, true);
  if (!r.empty()) return r;
  const DType out = output_dtype(n, 0);
  if (out != DType::kUndefined && (!movable_dtype(out) || is_complex(out)))
    return "output dtype " + std::string(dtype_name(out));
  return {};
}

Status eye_like_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (x.rank() != 2) return ctx.invalid("input must be 2-D, got " + shape_to_string(x.shape));
  DType dt = x.dtype;
  if (ctx.node().has_attr("dtype")) {
    const int64_t v = ctx.attr_int("dtype", 0);
    if (!is_valid_dtype(static_cast<int>(v)) || v == 0) {
      return ctx.invalid("dtype " + std::to_string(v) + " is not a valid type");
    }
    dt = static_cast<DType>(v);
  }
  if (!movable_dtype(dt) || is_complex(dt)) return ctx.unsupported_type(dt);
  const int64_t k = ctx.attr_int("k", 0);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, x.shape));
  if (y->numel() == 0) return Status::Ok();
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(y->data, 0, y->nbytes(), ctx.stream()));
  const int64_t rows = x.dim(0), cols = x.dim(1);
  if (k < cols && k > -rows) {
    launch_eye(y->data, rows, cols, k, element_size(dt), value_bits(dt, 1.0), ctx.stream());
  }
  return ctx.check_launch("EyeLike");
}

std::string one_hot_supports(const ir::Node& n) {
  std::string r =
      check_input(n, 0, {DType::kInt32, DType::kInt64, DType::kFloat32, DType::kFloat64});
  if (!r.empty()) return r;
  return check_data(n, {2}, true);
}

Status one_hot_run(KernelContext& ctx) {
  const DeviceTensor& idx = ctx.input(0);
  if (!ctx.has_input(1) || !ctx.has_input(2)) return ctx.invalid("needs depth and values");
  const Tensor& depth_t = ctx.host_input(1);
  const Tensor& values = ctx.host_input(2);
  if (depth_t.numel() != 1 || depth_t.dtype() == DType::kString) {
    return ctx.invalid("depth must be one number, got " + depth_t.type_string());
  }
  if (values.numel() != 2) {
    return ctx.invalid("values must hold [off, on], got " + values.type_string());
  }
  IndexKind kind;
  switch (idx.dtype) {
    case DType::kInt32:
      kind = IndexKind::kI32;
      break;
    case DType::kInt64:
      kind = IndexKind::kI64;
      break;
    case DType::kFloat32:
      kind = IndexKind::kF32;
      break;
    case DType::kFloat64:
      kind = IndexKind::kF64;
      break;
    default:
      return ctx.unsupported_type(idx.dtype);
  }
  if (!movable_dtype(values.dtype())) return ctx.unsupported_type(values.dtype());
  const double depth_d = depth_t.get_double(0);
  if (!(depth_d >= 1) || depth_d > 9.0e18) return ctx.invalid("depth must be positive");
  const int64_t depth = static_cast<int64_t>(depth_d);
  const int rank = idx.rank() + 1;
  StatusOr<int> axis = normalize_axis(ctx.attr_int("axis", -1), rank);
  if (!axis.ok()) return ctx.out_of_range(axis.status().message());
  std::vector<int64_t> shape = idx.shape;
  shape.insert(shape.begin() + *axis, depth);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, values.dtype(), shape));
  if (y->numel() == 0) return Status::Ok();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < *axis; ++i) outer *= idx.dim(i);
  for (int i = *axis; i < idx.rank(); ++i) inner *= idx.dim(i);
  launch_one_hot(idx.data, kind, y->data, outer, depth, inner, element_size(values.dtype()),
                 element_bits(values, 0), element_bits(values, 1), ctx.stream());
  return ctx.check_launch("OneHot");
}

constexpr std::initializer_list<DType> kRangeTypes = {
    DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
    DType::kInt16,   DType::kInt32,   DType::kInt64};

std::string range_supports(const ir::Node& n) {
  for (int i = 0; i < 3; ++i) {
    std::string r = check_input(n, i, kRangeTypes);
    if (!r.empty()) return r;
  }
  const DType out = output_dtype(n, 0);
  if (out != DType::kUndefined &&
      std::find(kRangeTypes.begin(), kRangeTypes.end(), out) == kRangeTypes.end()) {
    return "output dtype " + std::string(dtype_name(out));
  }
  return {};
}

Status range_run(KernelContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2)) {
    return ctx.invalid("needs start, limit and delta");
  }
  const Tensor& a = ctx.host_input(0);
  const Tensor& b = ctx.host_input(1);
  const Tensor& c = ctx.host_input(2);
  const DType dt = a.dtype();
  if (b.dtype() != dt || c.dtype() != dt || a.numel() != 1 || b.numel() != 1 || c.numel() != 1) {
    return ctx.invalid("start, limit and delta must be scalars of one type, got " +
                       a.type_string() + ", " + b.type_string() + ", " + c.type_string());
  }
  if (std::find(kRangeTypes.begin(), kRangeTypes.end(), dt) == kRangeTypes.end()) {
    return ctx.unsupported_type(dt);
  }
  if (is_integer(dt)) {
    const int64_t start = a.get_int64(0), limit = b.get_int64(0), delta = c.get_int64(0);
    if (delta == 0) return ctx.invalid("delta is 0");
    const __int128 diff = static_cast<__int128>(limit) - start;
    const __int128 d = delta;
    __int128 n = 0;
    if (d > 0 && diff > 0) n = (diff + d - 1) / d;
    if (d < 0 && diff < 0) n = (-diff + -d - 1) / -d;
    if (n > (__int128{1} << 62)) return ctx.out_of_range("range has too many elements");
    KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, {static_cast<int64_t>(n)}));
    launch_range(y->data, dt, y->numel(), 0, 0, start, delta, ctx.stream());
    return ctx.check_launch("Range");
  }
  const double start = a.get_double(0), limit = b.get_double(0), delta = c.get_double(0);
  if (delta == 0 || std::isnan(delta)) return ctx.invalid("delta is 0 or NaN");
  const double count = std::ceil((limit - start) / delta);
  if (std::isnan(count)) return ctx.invalid("range of NaN or infinite bounds");
  if (count > 4.0e18) return ctx.out_of_range("range has too many elements");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, dt, {n}));
  launch_range(y->data, dt, n, start, delta, 0, 0, ctx.stream());
  return ctx.check_launch("Range");
}

// Mask of the bits that make an element nonzero (the sign bit of a float does not).
bool nonzero_mask(DType t, uint64_t* mask) {
  switch (t) {
    case DType::kFloat32:
      *mask = 0x7fffffffULL;
      return true;
    case DType::kFloat64:
      *mask = 0x7fffffffffffffffULL;
      return true;
    case DType::kFloat16:
    case DType::kBFloat16:
      *mask = 0x7fffULL;
      return true;
    case DType::kBool:
    case DType::kInt8:
    case DType::kUInt8:
      *mask = 0xffULL;
      return true;
    case DType::kInt16:
    case DType::kUInt16:
      *mask = 0xffffULL;
      return true;
    case DType::kInt32:
    case DType::kUInt32:
      *mask = 0xffffffffULL;
      return true;
    case DType::kInt64:
    case DType::kUInt64:
      *mask = ~0ULL;
      return true;
    default:
      return false;
  }
}

std::string nonzero_supports(const ir::Node& n) {
  uint64_t mask = 0;
  const DType t = input_dtype(n, 0);
  if (t != DType::kUndefined && !nonzero_mask(t, &mask)) {
    return "input dtype " + std::string(dtype_name(input_dtype(n, 0)));
  }
  return check_data(n, {0}, true);
}

Status nonzero_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  uint64_t mask = 0;
  if (!nonzero_mask(x.dtype, &mask)) return ctx.unsupported_type(x.dtype);
  KILN_RETURN_IF_ERROR(rank_ok(ctx, x.rank()));
  const int64_t n = x.numel();
  const int rank = x.rank();
  if (n == 0) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, DType::kInt64, {rank, 0}));
    (void)y;
    return Status::Ok();
  }
  if (nonzero_workspace(n) / sizeof(int64_t) > (int64_t{1} << 31)) {
    return ctx.unsupported("input too large for the CUDA NonZero");
  }
  KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(nonzero_workspace(n)));
  const int64_t blocks = static_cast<int64_t>(nonzero_workspace(n) / sizeof(int64_t)) - 1;
  int64_t* total_dev = static_cast<int64_t*>(ws) + blocks;
  const int es = element_size(x.dtype);
  launch_nonzero_count(x.data, n, es, mask, ws, total_dev, ctx.stream());
  KILN_RETURN_IF_ERROR(ctx.check_launch("NonZero count"));
  int64_t total = 0;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(&total, total_dev, sizeof(int64_t), cudaMemcpyDeviceToHost, ctx.stream()));
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ctx.stream()));
  if (total < 0 || total > n) return ctx.invalid("NonZero count out of range");
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, DType::kInt64, {rank, total}));
  if (total == 0 || rank == 0) return Status::Ok();
  launch_nonzero_write(x.data, n, es, mask, ws, rank, x.shape.data(), total,
                       static_cast<int64_t*>(y->data), ctx.stream());
  return ctx.check_launch("NonZero write");
}

void add(KernelRegistry& r, std::string_view op, SupportsFn s, RunFn f, uint64_t host = 0,
         bool sync = false) {
  KernelDef d;
  d.domain = "";
  d.op_type = op;
  d.supports = s;
  d.run = f;
  d.host_inputs = host;
  d.synchronizes = sync;
  r.add(d);
}

}  // namespace

void register_tensor_index_kernels(KernelRegistry& r) {
  add(r, "Gather", gather_supports, gather_run);
  add(r, "GatherElements", gather_supports, gather_elements_run);
  add(r, "GatherND", gather_supports, gather_nd_run);
  add(r, "Scatter", scatter_supports, scatter_elements_run);
  add(r, "ScatterElements", scatter_supports, scatter_elements_run);
  add(r, "ScatterND", scatter_supports, scatter_nd_run);
  add(r, "Trilu", trilu_supports, trilu_run, 0b10);
  add(r, "EyeLike", eye_like_supports, eye_like_run);
  add(r, "OneHot", one_hot_supports, one_hot_run, 0b110);
  add(r, "Range", range_supports, range_run, 0b111);
  add(r, "NonZero", nonzero_supports, nonzero_run, 0, true);
  register_tensor_resize_kernels(r);
  register_tensor_misc_kernels(r);
}

}  // namespace kiln::cuda::tensor
