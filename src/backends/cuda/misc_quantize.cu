// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear on the GPU, matching the CPU kernels
// (src/backends/cpu/misc_quantize.cc) bit for bit; the element math is quantize_convert.h.
//
//  - Quantize/DequantizeLinear: per-tensor, per-axis and blocked (block_size) scales; scales of
//    float32/float16/bfloat16/float64; zero points of every dtype the CPU accepts; targets int8,
//    uint8, int16, uint16, int4, uint4, int2, uint2 (Quantize; int32 too for Dequantize's input),
//    the float8 types, float8e8m0 and float4e2m1; `saturate`, `output_dtype` and `precision` as
//    the CPU reads them. One thread per output element, or per byte of a packed output.
//  - DynamicQuantizeLinear: per-block min/max partials into the workspace, one block folds them
//    into the scale and zero point (written to outputs 1 and 2 and to the workspace), then a
//    kernel quantizes. No synchronization: the CPU's errors on NaN or infinite inputs cannot be
//    raised here, so such inputs give the defined values documented in quantize_convert.h.
#include <string>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"
#include "backends/cuda/quantize_convert.h"
#include "ops/shape_util.h"

namespace kiln::cuda {
namespace {

using quant::QuantArgs;
using quant::ScaleMap;

__global__ void quantize_kernel(QuantArgs a, int64_t units) {
  KILN_GRID_STRIDE_LOOP(u, units) {
    quant::quantize_unit(a, u);
  }
}

__global__ void dequantize_kernel(QuantArgs a, int64_t units) {
  KILN_GRID_STRIDE_LOOP(u, units) {
    quant::dequantize_unit(a, u);
  }
}

// ---- dtype classes (misc_quantize.cc's) ----

bool is_plain_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

bool integer_range(DType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case DType::kInt8:
      *lo = -128;
      *hi = 127;
      return true;
    case DType::kUInt8:
      *lo = 0;
      *hi = 255;
      return true;
    case DType::kInt16:
      *lo = -32768;
      *hi = 32767;
      return true;
    case DType::kUInt16:
      *lo = 0;
      *hi = 65535;
      return true;
    case DType::kInt32:
      *lo = INT32_MIN;
      *hi = INT32_MAX;
      return true;
    case DType::kInt4:
      *lo = -8;
      *hi = 7;
      return true;
    case DType::kUInt4:
      *lo = 0;
      *hi = 15;
      return true;
    case DType::kInt2:
      *lo = -2;
      *hi = 1;
      return true;
    case DType::kUInt2:
      *lo = 0;
      *hi = 3;
      return true;
    default:
      return false;
  }
}

bool is_small_float(DType t) {
  return cvt::is_float8(t) || t == DType::kFloat4E2M1 || t == DType::kFloat8E8M0;
}

// QuantizeLinear's target: uint8, the zero point's dtype, or output_dtype (which must then agree
// with the zero point). kUndefined with a reason in *why otherwise.
DType quantize_target(const ir::Node& node, bool has_zp, DType zp_dtype, std::string* why) {
  DType out = has_zp ? zp_dtype : DType::kUInt8;
  const int64_t attr = node.attr_int("output_dtype", 0);
  if (attr != 0) {
    if (!is_valid_dtype(static_cast<int>(attr))) {
      *why = "bad output_dtype";
      return DType::kUndefined;
    }
    if (has_zp && static_cast<DType>(attr) != out) {
      *why = "output_dtype disagrees with the zero point's dtype";
      return DType::kUndefined;
    }
    out = static_cast<DType>(attr);
  }
  return out;
}

// The `precision` attribute (0: the scale's dtype); kUndefined when it is not a plain float.
DType quantize_precision(const ir::Node& node, DType scale) {
  const int64_t attr = node.attr_int("precision", 0);
  if (attr == 0) return scale;
  if (!is_valid_dtype(static_cast<int>(attr)) || !is_plain_float(static_cast<DType>(attr))) {
    return DType::kUndefined;
  }
  return static_cast<DType>(attr);
}

// DequantizeLinear's output: the scale's dtype or output_dtype (a plain float).
DType dequantize_target(const ir::Node& node, DType scale) {
  const int64_t attr = node.attr_int("output_dtype", 0);
  if (attr == 0) return scale;
  if (!is_valid_dtype(static_cast<int>(attr)) || !is_plain_float(static_cast<DType>(attr))) {
    return DType::kUndefined;
  }
  return static_cast<DType>(attr);
}

// ---- supports ----

std::string quantize_supports(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1)) return "missing x or scale";
  const DType x = input_dtype(node, 0), scale = input_dtype(node, 1);
  if (!is_plain_float(x) && x != DType::kInt32) return std::string("x dtype ") + dtype_name(x);
  if (!is_plain_float(scale)) return std::string("scale dtype ") + dtype_name(scale);
  const bool has_zp = node.has_input(2);
  if (has_zp && input_dtype(node, 2) == DType::kUndefined) return "zero point dtype unknown";
  std::string why;
  const DType out = quantize_target(node, has_zp, input_dtype(node, 2), &why);
  if (out == DType::kUndefined) return why;
  int64_t lo, hi;
  if (!(integer_range(out, &lo, &hi) && out != DType::kInt32) && !is_small_float(out)) {
    return std::string("output dtype ") + dtype_name(out);
  }
  if (quantize_precision(node, scale) == DType::kUndefined) return "precision not a float dtype";
  if (node.attr_int("block_size", 0) < 0) return "negative block_size";
  return {};
}

std::string dequantize_supports(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1)) return "missing x or scale";
  const DType x = input_dtype(node, 0), scale = input_dtype(node, 1);
  int64_t lo, hi;
  if (!integer_range(x, &lo, &hi) && !is_small_float(x)) {
    return std::string("x dtype ") + dtype_name(x);
  }
  if (!is_plain_float(scale)) return std::string("scale dtype ") + dtype_name(scale);
  if (node.has_input(2) && input_dtype(node, 2) != x) return "zero point dtype differs from x";
  if (dequantize_target(node, scale) == DType::kUndefined) return "output_dtype not a float";
  if (node.attr_int("block_size", 0) < 0) return "negative block_size";
  return {};
}

std::string dynamic_quantize_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing x";
  const DType x = input_dtype(node, 0);
  if (x != DType::kFloat32) return std::string("x dtype ") + dtype_name(x);
  return {};
}

// ---- run ----

// make_scale_map of the CPU kernel, on the device tensors' shapes.
Status make_scale_map(KernelContext& ctx, const DeviceTensor& x, const DeviceTensor& scale,
                      ScaleMap* m) {
  const int64_t block = ctx.attr_int("block_size", 0);
  if (block < 0) return ctx.invalid("block_size must not be negative");
  const bool per_tensor =
      scale.rank() == 0 || (scale.rank() == 1 && scale.numel() == 1 && block == 0);
  if (per_tensor) {
    if (scale.numel() != 1) return ctx.invalid("scale must hold one value");
    m->kind = ScaleMap::kTensor;
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(int axis, normalize_axis(ctx.attr_int("axis", 1), x.rank()));
  m->dim = x.dim(axis);
  m->inner = 1;
  for (int d = axis + 1; d < x.rank(); ++d) m->inner *= x.dim(d);
  if (block == 0) {
    if (scale.rank() != 1 || scale.dim(0) != m->dim) {
      return ctx.invalid("per-axis scale must be 1-D with " + std::to_string(m->dim) + " values");
    }
    m->kind = ScaleMap::kAxis;
    return Status::Ok();
  }
  if (scale.rank() != x.rank()) return ctx.invalid("blocked scale must have the rank of x");
  for (int d = 0; d < x.rank(); ++d) {
    if (d == axis) {
      const int64_t want = (x.dim(d) + block - 1) / block;
      if (scale.dim(d) != want) return ctx.invalid("blocked scale has a wrong size on axis");
    } else if (scale.dim(d) != x.dim(d)) {
      return ctx.invalid("blocked scale must match x outside the axis");
    }
  }
  m->kind = ScaleMap::kBlocked;
  m->block = block;
  m->scale_dim = scale.dim(axis);
  return Status::Ok();
}

// Reads scale and zero point into `a` (zero point: optional input 2, shaped like the scale).
Status bind_scale_and_zp(KernelContext& ctx, QuantArgs* a) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& scale = ctx.input(1);
  KILN_RETURN_IF_ERROR(make_scale_map(ctx, x, scale, &a->map));
  a->x = x.data;
  a->xt = x.dtype;
  a->scale = scale.data;
  a->st = scale.dtype;
  a->n = x.numel();
  if (ctx.has_input(2)) {
    const DeviceTensor& z = ctx.input(2);
    if (z.shape != scale.shape && !(z.numel() == 1 && scale.numel() == 1)) {
      return ctx.invalid("zero point must have the shape of the scale");
    }
    a->zp = z.data;
    a->zt = z.dtype;
  }
  return Status::Ok();
}

Status quantize_run(KernelContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("x and scale are required");
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& scale = ctx.input(1);
  const bool has_zp = ctx.has_input(2);
  std::string why;
  const DType out =
      quantize_target(ctx.node(), has_zp, has_zp ? ctx.input(2).dtype : DType::kUndefined, &why);
  if (out == DType::kUndefined) return ctx.invalid(why);
  QuantArgs a;
  a.int_out = integer_range(out, &a.lo, &a.hi) && out != DType::kInt32;
  if (!a.int_out && !is_small_float(out)) return ctx.unsupported_type(out);
  if (!is_plain_float(x.dtype) && x.dtype != DType::kInt32) return ctx.unsupported_type(x.dtype);
  if (!is_plain_float(scale.dtype)) return ctx.unsupported_type(scale.dtype);
  KILN_RETURN_IF_ERROR(bind_scale_and_zp(ctx, &a));
  a.prec = quantize_precision(ctx.node(), scale.dtype);
  if (a.prec == DType::kUndefined) return ctx.invalid("precision must be a float dtype");
  a.cast.saturate = ctx.attr_int("saturate", 1) != 0;
  a.cast.e8m0_round = E8M0Round::kUp;
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, out, x.shape));
  a.y = y->data;
  a.yt = out;
  if (a.n == 0) return Status::Ok();
  const int64_t units = quant::units_of(a);
  const Launch l = launch_for(units);
  quantize_kernel<<<l.grid, l.block, 0, ctx.stream()>>>(a, units);
  return ctx.check_launch("QuantizeLinear");
}

Status dequantize_run(KernelContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("x and scale are required");
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& scale = ctx.input(1);
  int64_t lo, hi;
  if (!integer_range(x.dtype, &lo, &hi) && !is_small_float(x.dtype)) {
    return ctx.unsupported_type(x.dtype);
  }
  if (!is_plain_float(scale.dtype)) return ctx.unsupported_type(scale.dtype);
  const DType out = dequantize_target(ctx.node(), scale.dtype);
  if (out == DType::kUndefined) return ctx.invalid("output_dtype must be a float dtype");
  if (ctx.has_input(2) && ctx.input(2).dtype != x.dtype) {
    return ctx.invalid("zero point must have the dtype of x");
  }
  QuantArgs a;
  KILN_RETURN_IF_ERROR(bind_scale_and_zp(ctx, &a));
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, out, x.shape));
  a.y = y->data;
  a.yt = out;
  if (a.n == 0) return Status::Ok();
  const Launch l = launch_for(a.n);
  dequantize_kernel<<<l.grid, l.block, 0, ctx.stream()>>>(a, a.n);
  return ctx.check_launch("DequantizeLinear");
}

// ---- DynamicQuantizeLinear ----

constexpr int kReduceThreads = 256;
constexpr int kMaxReduceBlocks = 1024;

// Folds this block's share of x into partial[blockIdx.x] = {min(0, x...), max(0, x...)}.
__global__ void dynamic_minmax_kernel(const float* x, int64_t n, float2* partial) {
  float mn = 0.f, mx = 0.f;
  KILN_GRID_STRIDE_LOOP(i, n) {
    mn = quant::fold_min(mn, x[i]);
    mx = quant::fold_max(mx, x[i]);
  }
  __shared__ float smin[kReduceThreads], smax[kReduceThreads];
  smin[threadIdx.x] = mn;
  smax[threadIdx.x] = mx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) {
      smin[threadIdx.x] = quant::fold_min(smin[threadIdx.x], smin[threadIdx.x + s]);
      smax[threadIdx.x] = quant::fold_max(smax[threadIdx.x], smax[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = make_float2(smin[0], smax[0]);
}

// One block: folds the partials, writes the scale and zero point (outputs 1 and 2 when wanted,
// and `params` for the quantize kernel).
__global__ void dynamic_params_kernel(const float2* partial, int parts, float* y_scale,
                                      uint8_t* y_zp, quant::DynamicParams* params) {
  __shared__ float smin[kReduceThreads], smax[kReduceThreads];
  float mn = 0.f, mx = 0.f;
  for (int k = threadIdx.x; k < parts; k += blockDim.x) {
    mn = quant::fold_min(mn, partial[k].x);
    mx = quant::fold_max(mx, partial[k].y);
  }
  smin[threadIdx.x] = mn;
  smax[threadIdx.x] = mx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) {
      smin[threadIdx.x] = quant::fold_min(smin[threadIdx.x], smin[threadIdx.x + s]);
      smax[threadIdx.x] = quant::fold_max(smax[threadIdx.x], smax[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const quant::DynamicParams p = quant::dynamic_params(smin[0], smax[0]);
    *params = p;
    if (y_scale != nullptr) *y_scale = p.scale;
    if (y_zp != nullptr) *y_zp = static_cast<uint8_t>(p.zp);
  }
}

__global__ void dynamic_quantize_kernel(const float* x, int64_t n,
                                        const quant::DynamicParams* params, uint8_t* y) {
  const quant::DynamicParams p = *params;
  KILN_GRID_STRIDE_LOOP(i, n) {
    y[i] = quant::dynamic_quantize(x[i], p);
  }
}

Status dynamic_quantize_run(KernelContext& ctx) {
  if (!ctx.has_input(0)) return ctx.invalid("x is required");
  const DeviceTensor& x = ctx.input(0);
  if (x.dtype != DType::kFloat32) return ctx.unsupported_type(x.dtype);
  const int64_t n = x.numel();
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, DType::kUInt8, x.shape));
  float* y_scale = nullptr;
  uint8_t* y_zp = nullptr;
  if (ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor * s, ctx.allocate(1, DType::kFloat32, {}));
    y_scale = s->as<float>();
  }
  if (ctx.wants_output(2)) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor * z, ctx.allocate(2, DType::kUInt8, {}));
    y_zp = z->as<uint8_t>();
  }
  int64_t blocks = (n + kReduceThreads - 1) / kReduceThreads;
  blocks = blocks < 1 ? 1 : (blocks > kMaxReduceBlocks ? kMaxReduceBlocks : blocks);
  const uint64_t partial_bytes = static_cast<uint64_t>(blocks) * sizeof(float2);
  KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(partial_bytes + sizeof(quant::DynamicParams)));
  auto* partial = static_cast<float2*>(ws);
  auto* params = reinterpret_cast<quant::DynamicParams*>(static_cast<char*>(ws) + partial_bytes);
  const cudaStream_t st = ctx.stream();
  dynamic_minmax_kernel<<<static_cast<unsigned>(blocks), kReduceThreads, 0, st>>>(x.as<float>(), n,
                                                                                  partial);
  KILN_RETURN_IF_ERROR(ctx.check_launch("DynamicQuantizeLinear (min/max)"));
  dynamic_params_kernel<<<1, kReduceThreads, 0, st>>>(partial, static_cast<int>(blocks), y_scale,
                                                      y_zp, params);
  KILN_RETURN_IF_ERROR(ctx.check_launch("DynamicQuantizeLinear (scale)"));
  if (n == 0) return Status::Ok();
  const Launch l = launch_for(n);
  dynamic_quantize_kernel<<<l.grid, l.block, 0, st>>>(x.as<float>(), n, params, y->as<uint8_t>());
  return ctx.check_launch("DynamicQuantizeLinear");
}

}  // namespace

void register_quantize_kernels(KernelRegistry& r) {
  r.add(KernelDef{"", "QuantizeLinear", quantize_supports, quantize_run});
  r.add(KernelDef{"", "DequantizeLinear", dequantize_supports, dequantize_run});
  r.add(KernelDef{"", "DynamicQuantizeLinear", dynamic_quantize_supports, dynamic_quantize_run});
}

}  // namespace kiln::cuda
