// CUDA kernels of the Reduce* ops (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare) and ArgMax/ArgMin.
//
// A reduction is planned on the host like the CPU kernel's (src/backends/cpu/reduction_reduce.cc):
// size-1 dims are dropped and neighbouring dims that are both reduced or both kept are merged.
// When the only reduced group is the innermost one, each output reduces one contiguous row: a
// warp (short rows) or a block (long rows) per row with shuffle reductions. Otherwise one thread
// per output walks its reduced elements with index math (coalesced when kept dims are inner).
// Float types accumulate in float (double for double); integer sums and products wrap like the
// integer type; integer Mean/L2/LogSum/LogSumExp compute in double and saturate.
// Empty reductions give the ONNX empty-set values: 0 (Sum, L1, L2, SumSquare), 1 (Prod), NaN
// (Mean), -inf (Max, LogSum, LogSumExp of floats; the lowest value for integers), +inf (Min).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

enum RK : int { kSum, kSumSquare, kL1, kL2, kMean, kProd, kMax, kMin, kLogSum, kLogSumExp };

template <typename A>
struct Acc {
  A m;  // the accumulator (LogSumExp: the running max)
  A s;  // LogSumExp: the sum of exp(x - m)
};

template <typename A>
__host__ __device__ __forceinline__ Acc<A> r_init(int k) {
  switch (k) {
    case kProd:
      return {A(1), A(0)};
    case kMax:
    case kLogSumExp:
      return {-std::numeric_limits<A>::infinity(), A(0)};
    case kMin:
      return {std::numeric_limits<A>::infinity(), A(0)};
    default:
      return {A(0), A(0)};
  }
}

// LogSumExp: one (max, sum) term rescaled to the max m.
template <typename A>
__host__ __device__ __forceinline__ A lse_term(A mi, A si, A m) {
  if (mi == m) return si;
  if (mi == -std::numeric_limits<A>::infinity()) return isnan(si) ? si : A(0);
  return si * exp(mi - m);
}

template <typename A>
__host__ __device__ __forceinline__ void r_step(int k, Acc<A>& a, A v) {
  switch (k) {
    case kSumSquare:
    case kL2:
      a.m += v * v;
      break;
    case kL1:
      a.m += fabs(v);
      break;
    case kProd:
      a.m *= v;
      break;
    case kMax:
      if (isnan(v) || v > a.m) a.m = v;
      break;
    case kMin:
      if (isnan(v) || v < a.m) a.m = v;
      break;
    case kLogSumExp:
      if (v > a.m) {
        a.s = lse_term(a.m, a.s, v) + A(1);
        a.m = v;
      } else if (v == a.m) {
        a.s += A(1);
      } else {
        a.s += exp(v - a.m);  // NaN propagates
      }
      break;
    default:
      a.m += v;  // Sum, Mean, LogSum
  }
}

template <typename A>
__host__ __device__ __forceinline__ void r_combine(int k, Acc<A>& a, const Acc<A>& b) {
  switch (k) {
    case kProd:
      a.m *= b.m;
      break;
    case kMax:
      if (isnan(b.m) || b.m > a.m) a.m = b.m;
      break;
    case kMin:
      if (isnan(b.m) || b.m < a.m) a.m = b.m;
      break;
    case kLogSumExp: {
      const A m = (isnan(a.m) || isnan(b.m)) ? (a.m + b.m) : fmax(a.m, b.m);
      a.s = lse_term(a.m, a.s, m) + lse_term(b.m, b.s, m);
      a.m = m;
      break;
    }
    default:
      a.m += b.m;
  }
}

template <typename A>
__host__ __device__ __forceinline__ A r_finish(int k, const Acc<A>& a, int64_t count) {
  switch (k) {
    case kL2:
      return sqrt(a.m);
    case kMean:
      return a.m / static_cast<A>(count);  // empty set: NaN
    case kLogSum:
      return log(a.m);
    case kLogSumExp:
      if (isinf(a.m)) return a.m;  // empty set or infinite max
      return a.m + log(a.s);
    default:
      return a.m;
  }
}

template <typename A>
__device__ __forceinline__ Acc<A> shfl_xor(const Acc<A>& a, int lane_mask) {
  Acc<A> r;
  r.m = __shfl_xor_sync(0xffffffffu, a.m, lane_mask);
  r.s = __shfl_xor_sync(0xffffffffu, a.s, lane_mask);
  return r;
}

// The walk of a general reduction: kept groups give each output's base offset, reduced groups
// the offsets of its elements (both row-major, in elements of the input).
struct RedPlan {
  int nk = 0, nr = 0;
  int64_t kdims[kMaxRank] = {}, kstrides[kMaxRank] = {};
  int64_t rdims[kMaxRank] = {}, rstrides[kMaxRank] = {};
  int64_t count = 0;  // reduced elements per output
};

__host__ __device__ __forceinline__ int64_t base_offset(const RedPlan& p, int64_t o) {
  int64_t base = 0;
  for (int d = p.nk - 1; d >= 0; --d) {
    base += (o % p.kdims[d]) * p.kstrides[d];
    o /= p.kdims[d];
  }
  return base;
}

// Calls f(offset) for every reduced element of an output, in row-major order.
template <typename F>
__host__ __device__ __forceinline__ void walk(const RedPlan& p, int64_t base, F&& f) {
  if (p.count == 0) return;
  if (p.nr == 0) {
    f(base);
    return;
  }
  int64_t idx[kMaxRank] = {};
  int64_t off = base;
  for (int64_t r = 0; r < p.count; ++r) {
    f(off);
    for (int d = p.nr - 1; d >= 0; --d) {
      off += p.rstrides[d];
      if (++idx[d] < p.rdims[d]) break;
      off -= idx[d] * p.rstrides[d];
      idx[d] = 0;
    }
  }
}

template <typename T>
__global__ void reduce_generic_float(const T* x, T* y, int64_t n_out, int k, RedPlan p) {
  using A = Compute<T>;
  KILN_GRID_STRIDE_LOOP(o, n_out) {
    Acc<A> a = r_init<A>(k);
    walk(p, base_offset(p, o), [&](int64_t off) { r_step<A>(k, a, load_c(x, off)); });
    y[o] = to_t<T>(r_finish<A>(k, a, p.count));
  }
}

// Rows of length len at x + row * len; tpr threads per row (32 or the block size, 256).
template <typename T>
__global__ void reduce_rows_float(const T* x, T* y, int64_t rows, int64_t len, int k, int tpr) {
  using A = Compute<T>;
  __shared__ Acc<A> partial[8];
  const int rpb = static_cast<int>(blockDim.x) / tpr;
  const int lane = static_cast<int>(threadIdx.x) % tpr;
  for (int64_t rb = blockIdx.x; rb * rpb < rows; rb += gridDim.x) {
    const int64_t row = rb * rpb + threadIdx.x / tpr;
    Acc<A> a = r_init<A>(k);
    if (row < rows) {
      const T* xr = x + row * len;
      for (int64_t j = lane; j < len; j += tpr) r_step<A>(k, a, load_c(xr, j));
    }
    for (int m = 16; m >= 1; m >>= 1) {
      const Acc<A> b = shfl_xor(a, m);
      r_combine<A>(k, a, b);
    }
    if (tpr > 32) {
      const int warp = static_cast<int>(threadIdx.x) / 32;
      if ((threadIdx.x & 31) == 0) partial[warp] = a;
      __syncthreads();
      if (threadIdx.x == 0) {
        for (int w = 1; w < static_cast<int>(blockDim.x) / 32; ++w) r_combine<A>(k, a, partial[w]);
      }
      __syncthreads();
    }
    if (lane == 0 && row < rows) y[row] = to_t<T>(r_finish<A>(k, a, len));
  }
}

// Few long rows: each row is cut into `segs` segments of seg_len elements, one block each,
// whose partial accumulators go to `part` (row-major [rows, segs]); reduce_segments_finish
// combines them in segment order.
template <typename T>
__global__ void reduce_segments(const T* x, Acc<Compute<T>>* part, int64_t rows, int64_t len,
                                int64_t segs, int64_t seg_len, int k) {
  using A = Compute<T>;
  __shared__ Acc<A> partial[8];
  for (int64_t bs = blockIdx.x; bs < rows * segs; bs += gridDim.x) {
    const int64_t row = bs / segs, seg = bs % segs;
    const int64_t begin = seg * seg_len;
    const int64_t end = begin + seg_len < len ? begin + seg_len : len;
    const T* xr = x + row * len;
    Acc<A> a = r_init<A>(k);
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) r_step<A>(k, a, load_c(xr, j));
    for (int m = 16; m >= 1; m >>= 1) {
      const Acc<A> b = shfl_xor(a, m);
      r_combine<A>(k, a, b);
    }
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < static_cast<int>(blockDim.x) / 32; ++w) r_combine<A>(k, a, partial[w]);
      part[bs] = a;
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void reduce_segments_finish(const Acc<Compute<T>>* part, T* y, int64_t rows,
                                       int64_t segs, int64_t len, int k) {
  using A = Compute<T>;
  KILN_GRID_STRIDE_LOOP(row, rows) {
    Acc<A> a = part[row * segs];
    for (int64_t s = 1; s < segs; ++s) r_combine<A>(k, a, part[row * segs + s]);
    y[row] = to_t<T>(r_finish<A>(k, a, len));
  }
}

template <typename T>
__device__ __forceinline__ T saturate_from_double(double v) {
  if (isnan(v)) return T(0);
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) {
    return std::numeric_limits<T>::lowest();
  }
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

template <typename T>
__global__ void reduce_generic_int(const T* x, T* y, int64_t n_out, int k, RedPlan p) {
  KILN_GRID_STRIDE_LOOP(o, n_out) {
    const int64_t base = base_offset(p, o);
    T result;
    if (k == kSum || k == kSumSquare || k == kL1 || k == kProd) {
      uint64_t w = k == kProd ? 1 : 0;
      walk(p, base, [&](int64_t off) {
        const T xv = x[off];
        uint64_t v = static_cast<uint64_t>(xv);  // two's complement for signed types
        if constexpr (std::is_signed_v<T>) {
          if (k == kL1 && xv < 0) v = uint64_t{0} - v;
        }
        if (k == kProd) {
          w *= v;
        } else if (k == kSumSquare) {
          w += v * v;
        } else {
          w += v;
        }
      });
      result = static_cast<T>(w);
    } else if (k == kMax || k == kMin) {
      T m = k == kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      walk(p, base, [&](int64_t off) {
        const T v = x[off];
        if (k == kMax ? v > m : v < m) m = v;
      });
      result = m;
    } else {
      Acc<double> a = r_init<double>(k);
      walk(p, base, [&](int64_t off) { r_step<double>(k, a, static_cast<double>(x[off])); });
      result = saturate_from_double<T>(r_finish<double>(k, a, p.count));
    }
    y[o] = result;
  }
}

int rk_of(const std::string& op) {
  static constexpr std::pair<const char*, int> kNames[] = {
      {"ReduceSum", kSum},       {"ReduceSumSquare", kSumSquare},
      {"ReduceL1", kL1},         {"ReduceL2", kL2},
      {"ReduceMean", kMean},     {"ReduceProd", kProd},
      {"ReduceMax", kMax},       {"ReduceMin", kMin},
      {"ReduceLogSum", kLogSum}, {"ReduceLogSumExp", kLogSumExp}};
  for (const auto& [name, k] : kNames) {
    if (op == name) return k;
  }
  return -1;
}

std::string reduce_supports(const ir::Node& node) {
  if (rk_of(node.op_type) < 0) return "unknown op";
  if (!node.has_input(0)) return "missing input";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  const DType t = input_dtype(node, 0);
  const int k = rk_of(node.op_type);
  const bool bool_ok = t == DType::kBool && (k == kMax || k == kMin);
  if (!is_float_dtype(t) && !is_int_dtype(t) && !bool_ok) {
    return std::string("dtype ") + dtype_name(t);
  }
  if (node.has_input(1)) {
    const DType a = input_dtype(node, 1);
    if (a != DType::kInt64 && a != DType::kInt32) return "axes dtype";
  }
  const int64_t keepdims = node.attr_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) return "bad keepdims";
  return {};
}

// Plans the walk of a reduction of `shape` over the axes marked in `red` (count: the number of
// reduced elements per output). *rows: the only reduced group is the innermost one, so each
// output reduces one contiguous row of p.count elements.
RedPlan plan_reduction(const std::vector<int64_t>& shape, const std::vector<bool>& red,
                       int64_t count, bool* rows) {
  const int rank = static_cast<int>(shape.size());
  const int64_t numel = numel_of(shape);
  // Merged groups of dims of size > 1: (size, reduced).
  std::vector<std::pair<int64_t, bool>> groups;
  if (numel > 0) {
    for (int d = 0; d < rank; ++d) {
      if (shape[static_cast<size_t>(d)] == 1) continue;
      const bool r = red[static_cast<size_t>(d)];
      if (!groups.empty() && groups.back().second == r) {
        groups.back().first *= shape[static_cast<size_t>(d)];
      } else {
        groups.emplace_back(shape[static_cast<size_t>(d)], r);
      }
    }
  }
  RedPlan p;
  p.count = numel == 0 ? 0 : count;
  int64_t stride = 1;
  std::vector<int64_t> strides(groups.size(), 1);
  for (size_t g = groups.size(); g-- > 0;) {
    strides[g] = stride;
    stride *= groups[g].first;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].second) {
      p.rdims[p.nr] = groups[g].first;
      p.rstrides[p.nr++] = strides[g];
    } else {
      p.kdims[p.nk] = groups[g].first;
      p.kstrides[p.nk++] = strides[g];
    }
  }
  *rows = p.nr == 1 && groups.back().second && p.count > 1;
  return p;
}

Status reduce_run(KernelContext& ctx) {
  const int k = rk_of(ctx.node().op_type);
  if (k < 0) return ctx.unsupported("unknown op");
  const DeviceTensor& x = ctx.input(0);
  const int rank = x.rank();
  if (rank > kMaxRank) return ctx.unsupported("rank > 8");
  // Axes: host input 1 when given, else the attribute. None: all, unless noop_with_empty_axes.
  std::vector<int64_t> axes;
  if (ctx.num_inputs() > 1 && ctx.has_input(1)) {
    const Tensor& a = ctx.host_input(1);
    if (a.dtype() != DType::kInt64 && a.dtype() != DType::kInt32) {
      return ctx.invalid(std::string("axes must be int64, got ") + dtype_name(a.dtype()));
    }
    if (a.rank() > 1) return ctx.invalid("axes must be 1-D, got " + a.type_string());
    for (int64_t i = 0; i < a.numel(); ++i) axes.push_back(a.get_int64(i));
  } else {
    axes = ctx.attr_ints("axes");
  }
  const bool noop = ctx.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> red(static_cast<size_t>(rank), axes.empty() && !noop);
  for (int64_t a : axes) {
    StatusOr<int> d = normalize_axis(a, rank, "axis");
    if (!d.ok()) return ctx.out_of_range(d.status().message());
    if (red[static_cast<size_t>(*d)]) {
      return ctx.invalid("axis " + std::to_string(a) + " is repeated in axes");
    }
    red[static_cast<size_t>(*d)] = true;
  }
  const int64_t keepdims = ctx.attr_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) return ctx.invalid("keepdims must be 0 or 1");
  std::vector<int64_t> out_shape;
  int64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    if (red[static_cast<size_t>(d)]) {
      count *= x.dim(d);
      if (keepdims != 0) out_shape.push_back(1);
    } else {
      out_shape.push_back(x.dim(d));
    }
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, x.dtype, out_shape));
  const int64_t n_out = numel_of(out_shape);
  if (n_out == 0) return Status::Ok();
  bool rows = false;
  const RedPlan p = plan_reduction(x.shape, red, count, &rows);
  Status st = Status::Ok();
  // Bool Max/Min (any/all) reduce the 0/1 bytes as uint8.
  const DType run_dt =
      (x.dtype == DType::kBool && (k == kMax || k == kMin)) ? DType::kUInt8 : x.dtype;
  const bool ok = dispatch_all<false>(run_dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kFloatLike<T>) {
      // Rows so long and few that a block per row would leave most of the GPU idle.
      const int64_t kSegLen = 16384;
      const int64_t segs = rows && n_out <= 256 && p.count >= 4 * kSegLen
                               ? std::min<int64_t>((p.count + kSegLen - 1) / kSegLen,
                                                   std::max<int64_t>(1, 1024 / n_out))
                               : 1;
      if (segs > 1) {
        using A = Compute<T>;
        const int64_t seg_len = (p.count + segs - 1) / segs;
        StatusOr<void*> ws = ctx.workspace(static_cast<uint64_t>(n_out * segs) * sizeof(Acc<A>));
        if (!ws.ok()) {
          set_status(st, ws.status());
          return;
        }
        Acc<A>* part = static_cast<Acc<A>*>(*ws);
        reduce_segments<T><<<static_cast<unsigned>(n_out * segs), 256, 0, ctx.stream()>>>(
            x.as<T>(), part, n_out, p.count, segs, seg_len, k);
        const Launch l = launch_for(n_out);
        reduce_segments_finish<T>
            <<<l.grid, l.block, 0, ctx.stream()>>>(part, y->as<T>(), n_out, segs, p.count, k);
      } else if (rows) {
        const int tpr = p.count >= 1024 ? 256 : 32;
        const int rpb = 256 / tpr;
        int64_t blocks = (n_out + rpb - 1) / rpb;
        if (blocks > 65535LL * 16) blocks = 65535LL * 16;
        reduce_rows_float<T><<<static_cast<unsigned>(blocks), 256, 0, ctx.stream()>>>(
            x.as<T>(), y->as<T>(), n_out, p.count, k, tpr);
      } else {
        const Launch l = launch_for(n_out);
        reduce_generic_float<T>
            <<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(), n_out, k, p);
      }
    } else {
      const Launch l = launch_for(n_out);
      reduce_generic_int<T>
          <<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<T>(), n_out, k, p);
    }
    set_status(st, ctx.check_launch(ctx.node().op_type.c_str()));
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return st;
}

// ---- ArgMax / ArgMin ----

template <typename T>
__global__ void arg_kernel(const T* x, int64_t* y, int64_t outer_inner, int64_t n, int64_t inner,
                           bool is_max, bool last) {
  using K = Compute<T>;
  KILN_GRID_STRIDE_LOOP(oi, outer_inner) {
    const int64_t o = oi / inner, i = oi % inner;
    const T* s = x + o * n * inner + i;
    int64_t best = 0;
    K bv = load_c(s, 0);
    for (int64_t j = 1; j < n; ++j) {
      const K v = load_c(s, j * inner);
      const bool better = is_max ? greater_key(v, bv) : less_key(v, bv);
      const bool equal = !greater_key(v, bv) && !greater_key(bv, v);
      if (better || (last && equal)) {
        best = j;
        bv = v;
      }
    }
    y[oi] = best;
  }
}

std::string arg_supports(const ir::Node& node) {
  if (!node.has_input(0)) return "missing input";
  std::string r = check_ranks(node);
  if (!r.empty()) return r;
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t) && !is_int_dtype(t)) return std::string("dtype ") + dtype_name(t);
  return {};
}

Status arg_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const bool is_max = ctx.node().op_type == "ArgMax";
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  if (x.rank() > kMaxRank) return ctx.unsupported("rank > 8");
  StatusOr<int> ax = normalize_axis(ctx.attr_int("axis", 0), x.rank(), "axis");
  if (!ax.ok()) return ctx.out_of_range(ax.status().message());
  const int axis = *ax;
  const int64_t keepdims = ctx.attr_int("keepdims", 1);
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  std::vector<int64_t> out_shape;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (d != axis) {
      out_shape.push_back(x.dim(d));
    } else if (keepdims != 0) {
      out_shape.push_back(1);
    }
    if (d < axis) outer *= x.dim(d);
    if (d > axis) inner *= x.dim(d);
  }
  const int64_t n = x.dim(axis);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, DType::kInt64, out_shape));
  const int64_t n_out = numel_of(out_shape);
  if (n == 0 && n_out > 0) return ctx.invalid("cannot reduce an axis of size 0");
  if (x.numel() == 0) return Status::Ok();
  const Launch l = launch_for(n_out);
  const bool ok = dispatch_all<false>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    arg_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(x.as<T>(), y->as<int64_t>(), outer * inner,
                                                        n, inner, is_max, last);
  });
  if (!ok) return ctx.unsupported_type(x.dtype);
  return ctx.check_launch(is_max ? "ArgMax" : "ArgMin");
}

}  // namespace

void register_red_reduce_kernels(KernelRegistry& r) {
  for (const char* name :
       {"ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceMean", "ReduceProd",
        "ReduceMax", "ReduceMin", "ReduceLogSum", "ReduceLogSumExp"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &reduce_supports;
    d.run = &reduce_run;
    d.host_inputs = 0b10;
    r.add(d);
  }
  for (const char* name : {"ArgMax", "ArgMin"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &arg_supports;
    d.run = &arg_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
