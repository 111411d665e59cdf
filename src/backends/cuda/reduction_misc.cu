// CUDA kernels of Det, CumSum and CumProd (axis host input; exclusive, reverse) and TopK (K host
// input, axis, largest, sorted).
//
// CumSum: one thread per (outer, inner) column scans its n elements sequentially; float types
// accumulate in double, integers wrap like the integer type (as the CPU kernel does).
// TopK: one block per row; the row (up to kMaxTopK = 4096 elements) is bitonic-sorted in shared
// memory by (value, index): largest or smallest first, NaN ranking above every number, ties by
// the lower index; the first K are written (always sorted, which `sorted=0` allows).
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

// ---- CumSum ----

template <typename T>
__global__ void cumsum_kernel(const T* x, T* y, int64_t cols, int64_t n, int64_t inner,
                              bool exclusive, bool reverse, bool prod) {
  KILN_GRID_STRIDE_LOOP(c, cols) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    if constexpr (kFloatLike<T>) {
      double acc = prod ? 1.0 : 0.0;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t at = base + (reverse ? n - 1 - s : s) * inner;
        const double v = static_cast<double>(load_c(x, at));
        if (exclusive) y[at] = to_t<T>(static_cast<Compute<T>>(acc));
        acc = prod ? acc * v : acc + v;
        if (!exclusive) y[at] = to_t<T>(static_cast<Compute<T>>(acc));
      }
    } else {
      uint64_t acc = prod ? 1 : 0;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t at = base + (reverse ? n - 1 - s : s) * inner;
        const uint64_t v = static_cast<uint64_t>(x[at]);
        if (exclusive) y[at] = static_cast<T>(acc);
        acc = prod ? acc * v : acc + v;
        if (!exclusive) y[at] = static_cast<T>(acc);
      }
    }
  }
}

// An axis given as a scalar or one-element int32/int64 host tensor.
StatusOr<int64_t> scalar_axis(KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64) {
    return ctx.invalid(std::string(what) + " must be int32 or int64, got " + dtype_name(t.dtype()));
  }
  if (t.numel() != 1 || t.rank() > 1) {
    return ctx.invalid(std::string(what) + " must be a scalar or a 1-element 1-D tensor, got " +
                       t.type_string());
  }
  return t.get_int64(0);
}

std::string cumsum_supports(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t) && !is_int_dtype(t)) return std::string("dtype ") + dtype_name(t);
  const DType a = input_dtype(node, 1);
  if (a != DType::kInt32 && a != DType::kInt64) return "axis dtype";
  return {};
}

Status cumsum_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (!ctx.has_input(1)) return ctx.invalid("input axis is required");
  KILN_ASSIGN_OR_RETURN(int64_t axis_v, scalar_axis(ctx, ctx.host_input(1), "axis"));
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  StatusOr<int> ax = normalize_axis(axis_v, x.rank(), "axis");
  if (!ax.ok()) return ctx.out_of_range(ax.status().message());
  const int axis = *ax;
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.attr_int("reverse", 0) != 0;
  const bool prod = ctx.node().op_type == "CumProd";
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (d < axis) outer *= x.dim(d);
    if (d > axis) inner *= x.dim(d);
  }
  const int64_t n = x.dim(axis);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, x.shape));
  if (x.numel() == 0) return Status::Ok();
  const Launch l = launch_for(outer * inner);
  const bool ok = dispatch_all<false>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    cumsum_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(), outer * inner, n,
                                                           inner, exclusive, reverse, prod);
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return ctx.check_launch(prod ? "CumProd" : "CumSum");
}

// ---- TopK ----

constexpr int64_t kMaxTopK = 4096;

template <typename K>
__host__ __device__ __forceinline__ bool topk_before(K va, int ia, K vb, int ib, int n, bool largest) {
  if (ia >= n) return false;  // padding goes last
  if (ib >= n) return true;
  if (largest ? greater_key(va, vb) : less_key(va, vb)) return true;
  if (largest ? greater_key(vb, va) : less_key(vb, va)) return false;
  return ia < ib;
}

template <typename T>
__global__ void topk_kernel(const T* x, T* vals, int64_t* idxs, int64_t rows, int n, int npad,
                            int64_t inner, int64_t k, bool largest) {
  using K = Compute<T>;
  extern __shared__ __align__(16) unsigned char smem[];
  K* key = reinterpret_cast<K*>(smem);
  int* idx = reinterpret_cast<int*>(smem + static_cast<size_t>(npad) * sizeof(K));
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t o = row / inner, i = row % inner;
    const T* s = x + o * n * inner + i;
    for (int j = threadIdx.x; j < npad; j += blockDim.x) {
      key[j] = j < n ? load_c(s, j * inner) : K(0);
      idx[j] = j;
    }
    __syncthreads();
    for (int size = 2; size <= npad; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int j = threadIdx.x; j < npad; j += blockDim.x) {
          const int p = j ^ stride;
          if (p > j) {
            const bool up = (j & size) == 0;
            const bool swap = up ? topk_before(key[p], idx[p], key[j], idx[j], n, largest)
                                 : topk_before(key[j], idx[j], key[p], idx[p], n, largest);
            if (swap) {
              const K tk = key[j];
              key[j] = key[p];
              key[p] = tk;
              const int ti = idx[j];
              idx[j] = idx[p];
              idx[p] = ti;
            }
          }
        }
        __syncthreads();
      }
    }
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const int src = idx[j];
      const int64_t dst = (o * k + j) * inner + i;
      vals[dst] = s[static_cast<int64_t>(src) * inner];
      if (idxs != nullptr) idxs[dst] = src;
    }
    __syncthreads();
  }
}

std::string topk_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t) && !is_int_dtype(t)) return std::string("dtype ") + dtype_name(t);
  if (node.has_input(1)) {
    const DType kt = input_dtype(node, 1);
    if (kt != DType::kInt64 && kt != DType::kInt32) return "K dtype";
  }
  // Rows longer than kMaxTopK do not fit the shared-memory sort.
  const ir::TypeInfo& ti = node.inputs[0]->type;
  if (ti.is_tensor() && ti.shape.rank_known && ti.shape.rank() > 0) {
    const int rank = ti.shape.rank();
    int64_t axis = node.attr_int("axis", -1);
    if (axis < -rank || axis >= rank) return "axis out of range";
    if (axis < 0) axis += rank;
    const ir::Dim& d = ti.shape.dims[static_cast<size_t>(axis)];
    if (d.known() && d.value > kMaxTopK) return "row longer than 4096";
  }
  return {};
}

Status topk_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  int64_t k = 0;
  if (ctx.opset() < 10 && !ctx.has_input(1)) {
    if (!ctx.node().has_attr("k")) return ctx.invalid("attribute k is required");
    k = ctx.attr_int("k", 0);
  } else {
    if (!ctx.has_input(1)) return ctx.invalid("input K is required");
    const Tensor& kt = ctx.host_input(1);
    if (kt.dtype() != DType::kInt64 && kt.dtype() != DType::kInt32) {
      return ctx.invalid(std::string("K must be int64, got ") + dtype_name(kt.dtype()));
    }
    if (kt.numel() != 1 || kt.rank() > 1) {
      return ctx.invalid("K must hold one value, got " + kt.type_string());
    }
    k = kt.get_int64(0);
  }
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  StatusOr<int> ax = normalize_axis(ctx.attr_int("axis", -1), x.rank(), "axis");
  if (!ax.ok()) return ctx.out_of_range(ax.status().message());
  const int axis = *ax;
  const bool largest = ctx.attr_int("largest", 1) != 0;
  const int64_t n = x.dim(axis);
  if (k < 0 || k > n) {
    return ctx.out_of_range("K = " + std::to_string(k) + " is outside [0, " + std::to_string(n) +
                            "] for axis " + std::to_string(axis));
  }
  if (n > kMaxTopK) return ctx.unsupported("TopK rows longer than 4096 are not implemented");
  std::vector<int64_t> out_shape = x.shape;
  out_shape[static_cast<size_t>(axis)] = k;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (d < axis) outer *= x.dim(d);
    if (d > axis) inner *= x.dim(d);
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * vals, ctx.allocate(0, x.dtype, out_shape));
  DeviceTensor* idxs = nullptr;
  if (ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(idxs, ctx.allocate(1, DType::kInt64, out_shape));
  }
  if (numel_of(out_shape) == 0) return Status::Ok();
  int npad = 1;
  while (npad < n) npad <<= 1;
  const int64_t rows = outer * inner;
  const unsigned grid = static_cast<unsigned>(rows < 65535LL * 16 ? rows : 65535LL * 16);
  const bool ok = dispatch_all<false>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const size_t smem = static_cast<size_t>(npad) * (sizeof(Compute<T>) + sizeof(int));
    topk_kernel<T><<<grid, 256, smem, ctx.stream()>>>(
        x.as<T>(), vals->as<T>(), idxs != nullptr ? idxs->as<int64_t>() : nullptr, rows,
        static_cast<int>(n), npad, inner, k, largest);
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return ctx.check_launch("TopK");
}

// ---- Det: LU with partial pivoting in double, one thread per matrix (workspace copy) ----

template <typename T>
__global__ void det_kernel(const T* x, T* y, double* work, int64_t batch, int64_t m) {
  KILN_GRID_STRIDE_LOOP(b, batch) {
    double* a = work + b * m * m;
    for (int64_t i = 0; i < m * m; ++i) a[i] = static_cast<double>(load_c(x, b * m * m + i));
    double det = 1.0;
    for (int64_t c = 0; c < m && det != 0.0; ++c) {
      int64_t piv = c;
      for (int64_t r = c + 1; r < m; ++r) {
        if (fabs(a[r * m + c]) > fabs(a[piv * m + c])) piv = r;
      }
      const double pv = a[piv * m + c];
      if (pv == 0.0) {
        det = 0.0;
        break;
      }
      if (piv != c) {
        for (int64_t j = 0; j < m; ++j) {
          const double t = a[piv * m + j];
          a[piv * m + j] = a[c * m + j];
          a[c * m + j] = t;
        }
        det = -det;
      }
      det *= pv;
      for (int64_t r = c + 1; r < m; ++r) {
        const double f = a[r * m + c] / pv;
        if (f == 0.0) continue;
        for (int64_t j = c + 1; j < m; ++j) a[r * m + j] -= f * a[c * m + j];
      }
    }
    y[b] = to_t<T>(static_cast<Compute<T>>(det));
  }
}

std::string det_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t)) return std::string("dtype ") + dtype_name(t);
  return {};
}

Status det_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2");
  const int64_t m = x.dim(x.rank() - 1);
  if (x.dim(x.rank() - 2) != m) return ctx.invalid("the last two dims must be equal");
  std::vector<int64_t> out_shape(x.shape.begin(), x.shape.end() - 2);
  const int64_t batch = numel_of(out_shape);
  if (!is_float_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, out_shape));
  if (batch == 0) return Status::Ok();
  double* work = nullptr;
  if (m > 0) {
    KILN_ASSIGN_OR_RETURN(void* ws,
                          ctx.workspace(static_cast<uint64_t>(batch * m * m) * sizeof(double)));
    work = static_cast<double*>(ws);
  }
  const Launch l = launch_for(batch, 64);
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    det_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(), work, batch, m);
  });
  return ctx.check_launch("Det");
}

}  // namespace

void register_red_misc_kernels(KernelRegistry& r) {
  KernelDef det;
  det.op_type = "Det";
  det.supports = &det_supports;
  det.run = &det_run;
  r.add(det);
  for (const char* name : {"CumSum", "CumProd"}) {
    KernelDef c;
    c.op_type = name;
    c.supports = &cumsum_supports;
    c.run = &cumsum_run;
    c.host_inputs = 0b10;
    r.add(c);
  }
  KernelDef t;
  t.op_type = "TopK";
  t.supports = &topk_supports;
  t.run = &topk_run;
  t.host_inputs = 0b10;
  r.add(t);
}

}  // namespace kiln::cuda
