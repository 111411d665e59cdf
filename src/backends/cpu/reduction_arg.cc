// CPU reference kernels of ArgMax, ArgMin and TopK.
//
// NaN ranks above every number: ArgMax and TopK(largest) pick NaN first, ArgMin and
// TopK(smallest) pick it last. Ties go to the lower index (the higher one for ArgMax/ArgMin with
// select_last_index=1); TopK breaks ties by the lower index.
#include <algorithm>
#include <numeric>

#include "backends/cpu/reduction_util.h"

namespace kiln::cpu::red {
namespace {

// Comparison key: double for floating types (exact for fp16/bf16/f32), the type itself otherwise.
template <typename T>
using KeyOf = std::conditional_t<kIsFloatLike<T>, double, T>;

template <typename T>
inline KeyOf<T> key_of(T v) {
  if constexpr (kIsFloatLike<T>)
    return to_double(v);
  else
    return v;
}

template <typename K>
inline bool is_nan_key(K v) {
  if constexpr (std::is_floating_point_v<K>)
    return std::isnan(v);
  else
    return false;
}

// a ranks strictly above b when looking for the largest value (NaN above everything).
template <typename K>
inline bool greater_key(K a, K b) {
  if (is_nan_key(a)) return !is_nan_key(b);
  if (is_nan_key(b)) return false;
  return a > b;
}
// a ranks strictly below b when looking for the smallest value (NaN after everything).
template <typename K>
inline bool less_key(K a, K b) {
  if (is_nan_key(a)) return false;
  if (is_nan_key(b)) return true;
  return a < b;
}

template <bool kMax>
Status arg_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int axis, axis_in_rank(ctx, ctx.attr_int("axis", 0), x.rank(), "axis"));
  const int64_t keepdims = ctx.attr_int("keepdims", 1);
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  std::vector<int64_t> out_shape;
  for (int d = 0; d < x.rank(); ++d) {
    if (d != axis)
      out_shape.push_back(x.dim(d));
    else if (keepdims != 0)
      out_shape.push_back(1);
  }
  const int64_t outer = prod_range(x.shape(), 0, static_cast<size_t>(axis));
  const int64_t n = x.dim(axis);
  const int64_t inner = prod_range(x.shape(), static_cast<size_t>(axis) + 1, x.shape().size());
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, DType::kInt64, out_shape));
  if (n == 0 && y->numel() > 0) return ctx.invalid("cannot reduce an axis of size 0");
  if (x.numel() == 0) return Status::Ok();
  int64_t* out = y->mutable_data<int64_t>();
  return dispatch_numeric(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    const bool parallel = x.numel() >= kParallelMinWork;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t o = oi / inner, i = oi % inner;
      const T* s = xp + o * n * inner + i;
      int64_t best = 0;
      KeyOf<T> bv = key_of(s[0]);
      for (int64_t k = 1; k < n; ++k) {
        const KeyOf<T> v = key_of(s[k * inner]);
        const bool better = kMax ? greater_key(v, bv) : less_key(v, bv);
        // Equal values (NaN equals NaN here) move the pick only with select_last_index.
        const bool equal = !greater_key(v, bv) && !greater_key(bv, v);
        if (better || (last && equal)) {
          best = k;
          bv = v;
        }
      }
      out[oi] = best;
    }
    return Status::Ok();
  });
}

Status topk_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  int64_t k = 0;
  if (ctx.opset() < 10 && !ctx.has_input(1)) {
    if (!ctx.node().has_attr("k")) return ctx.invalid("attribute k is required");
    k = ctx.attr_int("k", 0);
  } else {
    if (!ctx.has_input(1)) return ctx.invalid("input K is required");
    const Tensor& kt = ctx.tensor(1);
    if (kt.dtype() != DType::kInt64 && kt.dtype() != DType::kInt32) {
      return ctx.invalid(std::string("K must be int64, got ") + dtype_name(kt.dtype()));
    }
    if (kt.numel() != 1 || kt.rank() > 1) {
      return ctx.invalid("K must hold one value, got " + kt.type_string());
    }
    k = kt.get_int64(0);
  }
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int axis, axis_in_rank(ctx, ctx.attr_int("axis", -1), x.rank(), "axis"));
  const bool largest = ctx.attr_int("largest", 1) != 0;
  const int64_t n = x.dim(axis);
  if (k < 0 || k > n) {
    return ctx.out_of_range("K = " + std::to_string(k) + " is outside [0, " + std::to_string(n) +
                            "] for axis " + std::to_string(axis) + " of " + x.type_string());
  }
  std::vector<int64_t> out_shape = x.shape();
  out_shape[static_cast<size_t>(axis)] = k;
  const int64_t outer = prod_range(x.shape(), 0, static_cast<size_t>(axis));
  const int64_t inner = prod_range(x.shape(), static_cast<size_t>(axis) + 1, x.shape().size());
  KILN_ASSIGN_OR_RETURN(Tensor * vals, ctx.allocate(0, x.dtype(), out_shape));
  Tensor* idxs = nullptr;
  if (ctx.num_outputs() > 1) {
    KILN_ASSIGN_OR_RETURN(idxs, ctx.allocate(1, DType::kInt64, out_shape));
  }
  if (x.numel() == 0) return Status::Ok();
  int64_t* ip = idxs ? idxs->mutable_data<int64_t>() : nullptr;
  return dispatch_numeric(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* vp = vals->mutable_data<T>();
    // A copy local to this lambda: clang does not let the comparator below name a variable of
    // the enclosing function from inside the OpenMP region.
    const bool want_largest = largest;
    const bool parallel = x.numel() >= kParallelMinWork && outer * inner > 1;
#pragma omp parallel for schedule(dynamic, 16) if (parallel)
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t o = oi / inner, i = oi % inner;
      const T* s = xp + o * n * inner + i;
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), int64_t{0});
      auto cmp = [&](int64_t a, int64_t b) {
        const KeyOf<T> va = key_of(s[a * inner]), vb = key_of(s[b * inner]);
        if (want_largest ? greater_key(va, vb) : less_key(va, vb)) return true;
        if (want_largest ? greater_key(vb, va) : less_key(vb, va)) return false;
        return a < b;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      for (int64_t j = 0; j < k; ++j) {
        const int64_t src = order[static_cast<size_t>(j)];
        const int64_t dst = (o * k + j) * inner + i;
        vp[dst] = s[src * inner];
        if (ip) ip[dst] = src;
      }
    }
    return Status::Ok();
  });
}

}  // namespace

void register_arg_kernels(KernelRegistry& r) {
  r.add("", "ArgMax", checked<arg_kernel<true>>);
  r.add("", "ArgMin", checked<arg_kernel<false>>);
  r.add("", "TopK", checked<topk_kernel>);
}

}  // namespace kiln::cpu::red
