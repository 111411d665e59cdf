// CUDA kernels of Softmax, LogSoftmax and Hardmax.
//
// Opset < 13 coerces the input to 2-D [prod(dims[:axis]), prod(dims[axis:])] and normalizes each
// row (axis defaults to 1); opset >= 13 normalizes along the single `axis` (default -1). Both are
// `outer x n x inner` blocks. Contiguous rows (inner == 1) get one block per row with warp-shuffle
// reductions; strided ones (inner > 1) one thread per (outer, inner) column. Accumulation in
// float (double for double). NaN wins the max so it propagates; Hardmax marks the first maximum.
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

enum SoftKind : int { kSoftmax, kLogSoftmax, kHardmax };

// (value, index) max where NaN beats numbers and ties keep the lower index.
template <typename A>
__host__ __device__ __forceinline__ void max_combine(A& m, int64_t& arg, A v, int64_t j) {
  const bool m_nan = isnan(m), v_nan = isnan(v);
  bool take;
  if (m_nan || v_nan) {
    take = v_nan && (!m_nan || j < arg);
  } else {
    take = v > m || (v == m && j < arg);
  }
  if (take) {
    m = v;
    arg = j;
  }
}

template <typename T>
__global__ void soft_rows(const T* x, T* y, int64_t rows, int64_t n, int kind) {
  using A = Compute<T>;
  __shared__ A s_val[32];
  __shared__ int64_t s_arg[32];
  const int nwarps = static_cast<int>(blockDim.x) / 32;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    // Max (and its first index).
    A m = -std::numeric_limits<A>::infinity();
    int64_t arg = INT64_MAX;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) max_combine(m, arg, load_c(xr, j), j);
    for (int s = 16; s >= 1; s >>= 1) {
      const A om = __shfl_xor_sync(0xffffffffu, m, s);
      const int64_t oa = __shfl_xor_sync(0xffffffffu, arg, s);
      max_combine(m, arg, om, oa);
    }
    if (lane == 0) {
      s_val[warp] = m;
      s_arg[warp] = arg;
    }
    __syncthreads();
    m = s_val[0];
    arg = s_arg[0];
    for (int w = 1; w < nwarps; ++w) max_combine(m, arg, s_val[w], s_arg[w]);
    __syncthreads();
    if (kind == kHardmax) {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = to_t<T>(A(j == arg ? 1 : 0));
      continue;
    }
    // Sum of exp(x - max).
    A sum = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += exp(load_c(xr, j) - m);
    for (int s = 16; s >= 1; s >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, s);
    if (lane == 0) s_val[warp] = sum;
    __syncthreads();
    sum = 0;
    for (int w = 0; w < nwarps; ++w) sum += s_val[w];
    __syncthreads();
    if (kind == kSoftmax) {
      const A inv = A(1) / sum;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        yr[j] = to_t<T>(exp(load_c(xr, j) - m) * inv);
      }
    } else {
      // (x - max) - log(sum): adding max to log(sum) first would round at max's magnitude.
      const A ls = log(sum);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = to_t<T>((load_c(xr, j) - m) - ls);
    }
  }
}

template <typename T>
__global__ void soft_cols(const T* x, T* y, int64_t cols, int64_t n, int64_t inner, int kind) {
  using A = Compute<T>;
  KILN_GRID_STRIDE_LOOP(c, cols) {
    const int64_t o = c / inner, i = c % inner;
    const T* xs = x + o * n * inner + i;
    T* ys = y + o * n * inner + i;
    A m = -std::numeric_limits<A>::infinity();
    int64_t arg = INT64_MAX;
    for (int64_t j = 0; j < n; ++j) max_combine(m, arg, load_c(xs, j * inner), j);
    if (kind == kHardmax) {
      for (int64_t j = 0; j < n; ++j) ys[j * inner] = to_t<T>(A(j == arg ? 1 : 0));
      continue;
    }
    A sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += exp(load_c(xs, j * inner) - m);
    if (kind == kSoftmax) {
      const A inv = A(1) / sum;
      for (int64_t j = 0; j < n; ++j) ys[j * inner] = to_t<T>(exp(load_c(xs, j * inner) - m) * inv);
    } else {
      const A ls = log(sum);
      for (int64_t j = 0; j < n; ++j) ys[j * inner] = to_t<T>((load_c(xs, j * inner) - m) - ls);
    }
  }
}

int kind_of(const std::string& op) {
  if (op == "Softmax") return kSoftmax;
  if (op == "LogSoftmax") return kLogSoftmax;
  return kHardmax;
}

std::string soft_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t)) return std::string("dtype ") + dtype_name(t);
  return {};
}

Status soft_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const int kind = kind_of(ctx.node().op_type);
  const bool legacy = ctx.opset() < 13;
  const int64_t axis_attr = ctx.attr_int("axis", legacy ? 1 : -1);
  int64_t outer = 1, n = 1, inner = 1;
  if (x.rank() == 0) {
    if (axis_attr != -1 && !(legacy && (axis_attr == 0 || axis_attr == 1))) {
      return ctx.out_of_range("axis " + std::to_string(axis_attr) + " is out of range for rank 0");
    }
  } else {
    StatusOr<int> ax = normalize_axis(axis_attr, x.rank(), "axis");
    if (!ax.ok()) return ctx.out_of_range(ax.status().message());
    const int axis = *ax;
    for (int d = 0; d < x.rank(); ++d) {
      if (d < axis) {
        outer *= x.dim(d);
      } else if (d == axis || legacy) {
        n *= x.dim(d);
      } else {
        inner *= x.dim(d);
      }
    }
  }
  if (!is_float_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, x.shape));
  if (x.numel() == 0) return Status::Ok();
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (inner == 1) {
      unsigned block = 32;
      while (block < 1024 && static_cast<int64_t>(block) < n) block *= 2;
      if (block > 256) block = 256;
      const int64_t grid = outer < 65535LL * 16 ? outer : 65535LL * 16;
      soft_rows<T><<<static_cast<unsigned>(grid), block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(),
                                                                            outer, n, kind);
    } else {
      const Launch l = launch_for(outer * inner);
      soft_cols<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(), outer * inner, n,
                                                         inner, kind);
    }
  });
  return ctx.check_launch(ctx.node().op_type.c_str());
}

}  // namespace

void register_red_softmax_kernels(KernelRegistry& r) {
  for (const char* name : {"Softmax", "LogSoftmax", "Hardmax"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &soft_supports;
    d.run = &soft_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
