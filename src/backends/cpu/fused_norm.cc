// CPU reference kernel of kiln.SkipLayerNorm (ops/fused_norm.h): X + Skip rounded to the dtype as
// the Add kernel rounds it, then each row normalized with statistics in double, as the
// LayerNormalization kernel does.
#include <cmath>

#include "backends/cpu/reduction_util.h"
#include "ops/fused_norm.h"

namespace kiln::cpu {
namespace {

// a + b in the dtype: fp16/bf16 add in float and round once, as elementwise Add does.
template <typename T>
T add_rounded(T a, T b) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(a) + static_cast<float>(b));
  } else {
    return a + b;
  }
}

Status skip_layer_norm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  const Tensor& skip = ctx.tensor(1);
  const Tensor& scale = ctx.tensor(2);
  const Tensor* bias = ctx.has_input(3) ? &ctx.tensor(3) : nullptr;
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (x.rank() < 1) return ctx.invalid("X must have rank >= 1");
  if (skip.shape() != x.shape()) {
    return ctx.invalid("Skip " + skip.type_string() + " must have X's shape " + x.type_string());
  }
  const int64_t n = x.shape().back();
  const int64_t rows = n > 0 ? x.numel() / n : 0;
  if (scale.rank() != 1 || scale.dim(0) != n ||
      (bias && (bias->rank() != 1 || bias->dim(0) != n))) {
    return ctx.invalid("Scale and B must be 1-D with X's last dim (" + std::to_string(n) + ")");
  }
  if (skip.dtype() != x.dtype() || scale.dtype() != x.dtype() ||
      (bias && bias->dtype() != x.dtype())) {
    return ctx.invalid("inputs differ in dtype");
  }
  return red::dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    Tensor* sum = nullptr;
    if (ctx.num_outputs() > 1 && ctx.wants_output(1)) {
      KILN_ASSIGN_OR_RETURN(sum, ctx.allocate(1, x.dtype(), x.shape()));
    }
    const T* xp = x.data<T>();
    const T* sp = skip.data<T>();
    const T* g = scale.data<T>();
    const T* b = bias ? bias->data<T>() : nullptr;
    T* yp = y->mutable_data<T>();
    T* op = sum ? sum->mutable_data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (rows > 1 && x.numel() >= red::kParallelMinWork)
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> v(static_cast<size_t>(n));
      double m = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const T s = add_rounded<T>(xp[r * n + j], sp[r * n + j]);
        if (op) op[r * n + j] = s;
        v[static_cast<size_t>(j)] = red::to_double(s);
        m += v[static_cast<size_t>(j)];
      }
      m /= static_cast<double>(n);
      double var = 0.0;
      for (double e : v) var += (e - m) * (e - m);
      const double is = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
      for (int64_t j = 0; j < n; ++j) {
        double o = (v[static_cast<size_t>(j)] - m) * is * red::to_double(g[j]);
        if (b) o += red::to_double(b[j]);
        yp[r * n + j] = red::from_double<T>(o);
      }
    }
    return Status::Ok();
  });
}

}  // namespace

void register_fused_norm_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kSkipLayerNorm, red::checked<skip_layer_norm_kernel>);
}

}  // namespace kiln::cpu
