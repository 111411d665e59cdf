// CPU reference kernels of the channel-wise normalizations: BatchNormalization (inference and
// training), InstanceNormalization, GroupNormalization (opset 18 per-group and opset 21
// per-channel affine parameters), LpNormalization, MeanVarianceNormalization and LRN.
// Statistics are computed in double with two passes (mean, then squared deviations).
#include <algorithm>

#include "backends/cpu/reduction_util.h"

namespace kiln::cpu::red {
namespace {

// Reads a 1-D-like parameter tensor that must hold exactly `n` values.
StatusOr<std::vector<double>> param_of(KernelContext& ctx, int input, int64_t n, const char* what) {
  const Tensor& t = ctx.tensor(input);
  if (!is_floating(t.dtype()) || is_sub_byte(t.dtype())) {
    return ctx.unsupported_type(t.dtype());
  }
  if (t.numel() != n) {
    return ctx.invalid(std::string(what) + " has " + std::to_string(t.numel()) +
                       " elements, expected " + std::to_string(n) + " (" + t.type_string() + ")");
  }
  return to_doubles(t);
}

// ---- BatchNormalization ----

Status batchnorm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() < 2) return ctx.invalid("X must have rank >= 2, got " + x.type_string());
  for (int i = 1; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.invalid("input " + std::to_string(i) + " is required");
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  // spatial=0 (opset < 9): one parameter per element of X.shape[1:].
  const bool per_element = ctx.opset() < 9 && ctx.attr_int("spatial", 1) == 0;
  const int64_t n = x.dim(0);
  const int64_t c = per_element ? prod_range(x.shape(), 1, x.shape().size()) : x.dim(1);
  const int64_t spatial = per_element ? 1 : prod_range(x.shape(), 2, x.shape().size());
  int named_outputs = 0;
  for (int i = 0; i < ctx.num_outputs(); ++i) named_outputs += ctx.wants_output(i) ? 1 : 0;
  bool training;
  if (ctx.opset() >= 14) {
    training = ctx.attr_int("training_mode", 0) != 0;
    if (!training && ctx.num_outputs() > 1 && named_outputs > 1) {
      return ctx.invalid("running_mean and running_var outputs need training_mode=1");
    }
  } else {
    training = named_outputs > 1 && ctx.attr_int("is_test", 0) == 0;
  }
  KILN_ASSIGN_OR_RETURN(std::vector<double> scale, param_of(ctx, 1, c, "scale"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bias, param_of(ctx, 2, c, "B"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> mean, param_of(ctx, 3, c, "input_mean"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> var, param_of(ctx, 4, c, "input_var"));
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    std::vector<double> bm = mean, bv = var;
    if (training && x.numel() == 0) {  // statistics of an empty batch: 0/0
      std::fill(bm.begin(), bm.end(), std::numeric_limits<double>::quiet_NaN());
      std::fill(bv.begin(), bv.end(), std::numeric_limits<double>::quiet_NaN());
    } else if (training) {
      const double count = static_cast<double>(n * spatial);
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMinWork)
      for (int64_t ch = 0; ch < c; ++ch) {
        double s = 0.0;
        for (int64_t b = 0; b < n; ++b) {
          const T* p = xp + (b * c + ch) * spatial;
          for (int64_t k = 0; k < spatial; ++k) s += to_double(p[k]);
        }
        const double m = s / count;
        double q = 0.0;
        for (int64_t b = 0; b < n; ++b) {
          const T* p = xp + (b * c + ch) * spatial;
          for (int64_t k = 0; k < spatial; ++k) q += (to_double(p[k]) - m) * (to_double(p[k]) - m);
        }
        bm[static_cast<size_t>(ch)] = m;
        bv[static_cast<size_t>(ch)] = q / count;
      }
    }
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    T* yp = y->mutable_data<T>();
    std::vector<double> a(static_cast<size_t>(c)), b0(static_cast<size_t>(c));
    for (size_t ch = 0; ch < a.size(); ++ch) {
      a[ch] = scale[ch] / std::sqrt(bv[ch] + eps);
      b0[ch] = bias[ch] - bm[ch] * a[ch];
    }
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMinWork)
    for (int64_t nc = 0; nc < (x.numel() > 0 ? n * c : 0); ++nc) {
      const size_t ch = static_cast<size_t>(nc % c);
      const T* p = xp + nc * spatial;
      T* q = yp + nc * spatial;
      for (int64_t k = 0; k < spatial; ++k) q[k] = from_double<T>(to_double(p[k]) * a[ch] + b0[ch]);
    }
    if (!training) {
      for (int i = 1; i < ctx.num_outputs(); ++i) {  // opset < 14 with unnamed extras
        if (ctx.wants_output(i)) return ctx.invalid("extra outputs need training mode");
      }
      return Status::Ok();
    }
    // Outputs 1, 2: running mean/var (dtype of input_mean/input_var); 3, 4 (opset < 14): the
    // batch mean and variance.
    for (int i = 1; i < ctx.num_outputs() && i < 5; ++i) {
      if (!ctx.wants_output(i)) continue;
      const DType dt = ctx.tensor(i <= 2 ? i + 2 : 3).dtype();
      KILN_ASSIGN_OR_RETURN(Tensor * o, ctx.allocate(i, dt, {c}));
      const std::vector<double>& run = i == 1 || i == 3 ? mean : var;
      const std::vector<double>& cur = i == 1 || i == 3 ? bm : bv;
      const bool saved = i >= 3;
      KILN_RETURN_IF_ERROR(dispatch_float(ctx, dt, [&](auto otag) -> Status {
        using O = typename decltype(otag)::type;
        O* op = o->mutable_data<O>();
        for (size_t ch = 0; ch < cur.size(); ++ch) {
          const double v = saved ? cur[ch] : run[ch] * momentum + cur[ch] * (1.0 - momentum);
          op[ch] = from_double<O>(v);
        }
        return Status::Ok();
      }));
    }
    return Status::Ok();
  });
}

// ---- Instance and group normalization: mean/variance over contiguous slices ----

// Normalizes each of `groups` contiguous slices of `len` elements; channel `ch(slice, k)`
// supplies scale/bias through `affine(slice, k)` → (scale, bias).
template <typename T, typename Affine>
void normalize_slices(const T* x, T* y, int64_t groups, int64_t len, double eps, Affine affine) {
#pragma omp parallel for schedule(static) if (groups > 1 && groups * len >= kParallelMinWork)
  for (int64_t g = 0; g < groups; ++g) {
    const T* p = x + g * len;
    T* q = y + g * len;
    double s = 0.0;
    for (int64_t k = 0; k < len; ++k) s += to_double(p[k]);
    const double m = len > 0 ? s / static_cast<double>(len) : 0.0;
    double v = 0.0;
    for (int64_t k = 0; k < len; ++k) v += (to_double(p[k]) - m) * (to_double(p[k]) - m);
    const double inv = 1.0 / std::sqrt((len > 0 ? v / static_cast<double>(len) : 0.0) + eps);
    for (int64_t k = 0; k < len; ++k) {
      const auto [sc, bi] = affine(g, k);
      q[k] = from_double<T>((to_double(p[k]) - m) * inv * sc + bi);
    }
  }
}

Status instancenorm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2, got " + x.type_string());
  const int64_t c = x.dim(1);
  const int64_t spatial = prod_range(x.shape(), 2, x.shape().size());
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_ASSIGN_OR_RETURN(std::vector<double> scale, param_of(ctx, 1, c, "scale"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bias, param_of(ctx, 2, c, "B"));
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    if (x.numel() == 0) return Status::Ok();  // nothing to compute (and no work per empty slice)
    normalize_slices(x.data<T>(), y->mutable_data<T>(), x.dim(0) * c, spatial, eps,
                     [&](int64_t g, int64_t) {
                       const size_t ch = static_cast<size_t>(g % c);
                       return std::pair<double, double>(scale[ch], bias[ch]);
                     });
    return Status::Ok();
  });
}

Status groupnorm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2, got " + x.type_string());
  if (!ctx.node().has_attr("num_groups")) return ctx.invalid("attribute num_groups is required");
  const int64_t groups = ctx.attr_int("num_groups", 1);
  const int64_t c = x.dim(1);
  if (groups <= 0 || c % groups != 0) {
    return ctx.invalid("num_groups " + std::to_string(groups) + " must divide the " +
                       std::to_string(c) + " channels");
  }
  const int64_t per_group = c / groups;
  const int64_t spatial = prod_range(x.shape(), 2, x.shape().size());
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const bool per_channel = ctx.opset() >= 21;  // opset 18: one scale/bias per group
  const int64_t np = per_channel ? c : groups;
  KILN_ASSIGN_OR_RETURN(std::vector<double> scale, param_of(ctx, 1, np, "scale"));
  KILN_ASSIGN_OR_RETURN(std::vector<double> bias, param_of(ctx, 2, np, "bias"));
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    if (x.numel() == 0) return Status::Ok();  // nothing to compute (and no work per empty slice)
    normalize_slices(x.data<T>(), y->mutable_data<T>(), x.dim(0) * groups, per_group * spatial, eps,
                     [&](int64_t g, int64_t k) {
                       const int64_t gi = g % groups;
                       const size_t i = static_cast<size_t>(
                           per_channel ? gi * per_group + (spatial > 0 ? k / spatial : 0) : gi);
                       return std::pair<double, double>(scale[i], bias[i]);
                     });
    return Status::Ok();
  });
}

// ---- LpNormalization ----

Status lpnorm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() == 0) return ctx.invalid("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int axis, axis_in_rank(ctx, ctx.attr_int("axis", -1), x.rank(), "axis"));
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.unsupported("p must be 1 or 2, got " + std::to_string(p));
  const int64_t outer = prod_range(x.shape(), 0, static_cast<size_t>(axis));
  const int64_t n = x.dim(axis);
  const int64_t inner = prod_range(x.shape(), static_cast<size_t>(axis) + 1, x.shape().size());
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    if (x.numel() == 0) return Status::Ok();  // nothing to compute (and no work per empty slice)
    const T* xp = x.data<T>();
    T* yp = y->mutable_data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMinWork)
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t base = (oi / inner) * n * inner + oi % inner;
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k) {
        const double v = to_double(xp[base + k * inner]);
        s += p == 1 ? std::fabs(v) : v * v;
      }
      const double norm = p == 1 ? s : std::sqrt(s);
      for (int64_t k = 0; k < n; ++k) {
        const double v = to_double(xp[base + k * inner]);
        yp[base + k * inner] = from_double<T>(norm == 0.0 ? 0.0 : v / norm);  // 0/0 → 0
      }
    }
    return Status::Ok();
  });
}

// ---- MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over `axes` ----

Status mvn_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  const int rank = x.rank();
  const std::vector<int64_t> axes = ctx.attr_ints("axes", {0, 2, 3});
  std::vector<bool> red(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int d, axis_in_rank(ctx, a, rank, "axis"));
    red[static_cast<size_t>(d)] = true;
  }
  // Group of each element: its index with the reduced dims dropped. An empty tensor has no
  // groups (its other dims may be huge: their product is not formed).
  std::vector<int64_t> gstride(static_cast<size_t>(rank), 0);
  int64_t ngroups = 1;
  for (int d = rank; d-- > 0 && x.numel() > 0;) {
    if (!red[static_cast<size_t>(d)]) {
      gstride[static_cast<size_t>(d)] = ngroups;
      ngroups *= x.dim(d);
    }
  }
  const int64_t numel = x.numel();
  std::vector<int64_t> group(static_cast<size_t>(numel));
  {
    std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
    int64_t g = 0;
    for (int64_t i = 0; i < numel; ++i) {
      group[static_cast<size_t>(i)] = g;
      for (int d = rank; d-- > 0;) {
        const size_t ds = static_cast<size_t>(d);
        g += gstride[ds];
        if (++idx[ds] < x.dim(d)) break;
        g -= gstride[ds] * idx[ds];
        idx[ds] = 0;
      }
    }
  }
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    if (x.numel() == 0) return Status::Ok();  // nothing to compute (and no work per empty slice)
    const T* xp = x.data<T>();
    T* yp = y->mutable_data<T>();
    std::vector<double> sum(static_cast<size_t>(ngroups), 0.0), sq(sum), cnt(sum);
    for (int64_t i = 0; i < numel; ++i) {
      const size_t g = static_cast<size_t>(group[static_cast<size_t>(i)]);
      sum[g] += to_double(xp[i]);
      cnt[g] += 1.0;
    }
    for (size_t g = 0; g < sum.size(); ++g) sum[g] = cnt[g] > 0 ? sum[g] / cnt[g] : 0.0;
    for (int64_t i = 0; i < numel; ++i) {
      const size_t g = static_cast<size_t>(group[static_cast<size_t>(i)]);
      const double d = to_double(xp[i]) - sum[g];
      sq[g] += d * d;
    }
    for (size_t g = 0; g < sq.size(); ++g) sq[g] = std::sqrt(cnt[g] > 0 ? sq[g] / cnt[g] : 0.0);
    for (int64_t i = 0; i < numel; ++i) {
      const size_t g = static_cast<size_t>(group[static_cast<size_t>(i)]);
      yp[i] = from_double<T>((to_double(xp[i]) - sum[g]) / (sq[g] + 1e-9));
    }
    return Status::Ok();
  });
}

// ---- LRN: x / (bias + alpha / size * sum of x^2 over a window of channels)^beta ----

Status lrn_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2, got " + x.type_string());
  if (!ctx.node().has_attr("size")) return ctx.invalid("attribute size is required");
  const int64_t size = ctx.attr_int("size", 1);
  if (size <= 0) return ctx.invalid("size must be positive, got " + std::to_string(size));
  const double alpha = ctx.attr_float("alpha", 1e-4f);
  const double beta = ctx.attr_float("beta", 0.75f);
  const double bias = ctx.attr_float("bias", 1.0f);
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t spatial = prod_range(x.shape(), 2, x.shape().size());
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;  // floor and ceil of (size-1)/2
  return dispatch_float(ctx, x.dtype(), [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, x.dtype(), x.shape()));
    if (x.numel() == 0) return Status::Ok();  // nothing to compute (and no work per empty slice)
    const T* xp = x.data<T>();
    T* yp = y->mutable_data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMinWork)
    for (int64_t nc = 0; nc < n * c; ++nc) {
      const int64_t b = nc / c, ch = nc % c;
      const int64_t c0 = std::max<int64_t>(0, ch - lo), c1 = std::min<int64_t>(c - 1, ch + hi);
      for (int64_t k = 0; k < spatial; ++k) {
        double s = 0.0;
        for (int64_t j = c0; j <= c1; ++j) {
          const double v = to_double(xp[(b * c + j) * spatial + k]);
          s += v * v;
        }
        const double v = to_double(xp[nc * spatial + k]);
        yp[nc * spatial + k] =
            from_double<T>(v / std::pow(bias + alpha / static_cast<double>(size) * s, beta));
      }
    }
    return Status::Ok();
  });
}

}  // namespace

void register_normalization_kernels(KernelRegistry& r) {
  r.add("", "BatchNormalization", checked<batchnorm_kernel>);
  r.add("", "InstanceNormalization", checked<instancenorm_kernel>);
  r.add("", "GroupNormalization", checked<groupnorm_kernel>);
  r.add("", "LpNormalization", checked<lpnorm_kernel>);
  r.add("", "MeanVarianceNormalization", checked<mvn_kernel>);
  r.add("", "LRN", checked<lrn_kernel>);
}

}  // namespace kiln::cpu::red
