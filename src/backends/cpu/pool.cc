// MaxPool (with Indices), AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool, GlobalLpPool,
// MaxUnpool. Windows over up to 3 spatial dims; each output position's valid kernel range is
// computed once per dim, so the inner loops carry no bounds checks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/nn_internal.h"

namespace kiln::cpu {
namespace {

enum class PoolKind { kMax, kAvg, kLp };

struct PoolSetup {
  int64_t N = 0, C = 0;
  int n = 0;
  ops::Window w;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
          d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
  std::vector<int64_t> out_shape;
  // Per slot and output index: valid kernel range [lo, hi) inside the input, and inside the
  // padded input (for count_include_pad).
  std::vector<int64_t> lo[3], hi[3], plo[3], phi[3];
};

void kernel_range(int64_t start, int64_t d, int64_t K, int64_t begin, int64_t end, int64_t* lo,
                  int64_t* hi) {
  // k valid iff begin <= start + k * d < end.
  int64_t l = start >= begin ? 0 : (begin - start + d - 1) / d;
  int64_t h = end - 1 - start < 0 ? 0 : (end - 1 - start) / d + 1;
  h = std::min(h, K);
  *lo = std::min(l, h);
  *hi = h;
}

Status setup_pool(KernelContext& ctx, const Tensor& X, bool allow_ceil, PoolSetup* ps) {
  if (X.rank() < 3) return ctx.invalid("X must have rank >= 3, got " + X.type_string());
  ps->n = X.rank() - 2;
  if (ps->n > 3) return ctx.unsupported("pooling over more than 3 spatial dims");
  ps->N = X.dim(0);
  ps->C = X.dim(1);
  ops::WindowOptions opts;
  opts.allow_ceil_mode = allow_ceil;
  KILN_ASSIGN_OR_RETURN(ps->w, ops::read_window(ctx.node(), ps->n, opts));
  ps->out_shape = {ps->N, ps->C};
  const int off = 3 - ps->n;
  for (int i = 0; i < ps->n; ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t o, ops::window_output(ctx.node(), ps->w, i, X.dim(i + 2)));
    ps->out_shape.push_back(o);
    const size_t si = static_cast<size_t>(i);
    const int j = off + i;
    ps->in[j] = X.dim(i + 2);
    ps->out[j] = o;
    ps->k[j] = ps->w.kernel[si];
    ps->s[j] = ps->w.strides[si];
    ps->d[j] = ps->w.dilations[si];
    ps->pb[j] = ps->w.pads[si];
    ps->pe[j] = ps->w.pads[si + static_cast<size_t>(ps->n)];
  }
  KILN_ASSIGN_OR_RETURN(int64_t total, checked_numel(ps->out_shape, "pool output"));
  if (static_cast<uint64_t>(total) > ctx.max_tensor_bytes()) {
    return ctx.out_of_range("pool output " + shape_to_string(ps->out_shape) + " is too large");
  }
  for (int j = 0; j < 3; ++j) {
    const size_t no = static_cast<size_t>(ps->out[j]);
    ps->lo[j].resize(no);
    ps->hi[j].resize(no);
    ps->plo[j].resize(no);
    ps->phi[j].resize(no);
    for (int64_t o = 0; o < ps->out[j]; ++o) {
      const int64_t start = o * ps->s[j] - ps->pb[j];
      const size_t so = static_cast<size_t>(o);
      kernel_range(start, ps->d[j], ps->k[j], 0, ps->in[j], &ps->lo[j][so], &ps->hi[j][so]);
      kernel_range(start, ps->d[j], ps->k[j], -ps->pb[j], ps->in[j] + ps->pe[j], &ps->plo[j][so],
                   &ps->phi[j][so]);
    }
  }
  return Status::Ok();
}

template <typename T, typename Acc>
void pool_planes(const PoolSetup& ps, PoolKind kind, bool count_include_pad, float p, const T* x,
                 T* y, int64_t* indices, bool col_major) {
  const int64_t planes = ps.N * ps.C;
  const int64_t in_plane = ps.in[0] * ps.in[1] * ps.in[2];
  const int64_t out_plane = ps.out[0] * ps.out[1] * ps.out[2];
#pragma omp parallel for if (planes * out_plane > 4096) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * in_plane;
    T* yp = y + pl * out_plane;
    int64_t oi = 0;
    for (int64_t o0 = 0; o0 < ps.out[0]; ++o0) {
      const int64_t s0 = o0 * ps.s[0] - ps.pb[0];
      const int64_t l0 = ps.lo[0][o0], h0 = ps.hi[0][o0];
      for (int64_t o1 = 0; o1 < ps.out[1]; ++o1) {
        const int64_t s1 = o1 * ps.s[1] - ps.pb[1];
        const int64_t l1 = ps.lo[1][o1], h1 = ps.hi[1][o1];
        for (int64_t o2 = 0; o2 < ps.out[2]; ++o2, ++oi) {
          const int64_t s2 = o2 * ps.s[2] - ps.pb[2];
          const int64_t l2 = ps.lo[2][o2], h2 = ps.hi[2][o2];
          if (kind == PoolKind::kMax) {
            Acc best = std::numeric_limits<Acc>::lowest();
            if constexpr (std::numeric_limits<Acc>::has_infinity)
              best = -std::numeric_limits<Acc>::infinity();
            int64_t arg = -1;
            for (int64_t k0 = l0; k0 < h0; ++k0) {
              const int64_t i0 = s0 + k0 * ps.d[0];
              for (int64_t k1 = l1; k1 < h1; ++k1) {
                const int64_t i1 = s1 + k1 * ps.d[1];
                const T* row = xp + (i0 * ps.in[1] + i1) * ps.in[2];
                for (int64_t k2 = l2; k2 < h2; ++k2) {
                  const int64_t i2 = s2 + k2 * ps.d[2];
                  const Acc v = static_cast<Acc>(row[i2]);
                  if (v > best || arg < 0) {
                    best = v;
                    arg = col_major ? i0 + i1 * ps.in[0] + i2 * ps.in[0] * ps.in[1]
                                    : (i0 * ps.in[1] + i1) * ps.in[2] + i2;
                  }
                }
              }
            }
            yp[oi] = static_cast<T>(best);
            if (indices) indices[pl * out_plane + oi] = arg < 0 ? 0 : pl * in_plane + arg;
          } else {
            Acc sum = 0;
            for (int64_t k0 = l0; k0 < h0; ++k0) {
              const int64_t i0 = s0 + k0 * ps.d[0];
              for (int64_t k1 = l1; k1 < h1; ++k1) {
                const int64_t i1 = s1 + k1 * ps.d[1];
                const T* row = xp + (i0 * ps.in[1] + i1) * ps.in[2] + s2;
                const int64_t dd = ps.d[2];
                if (kind == PoolKind::kAvg) {
                  for (int64_t k2 = l2; k2 < h2; ++k2) sum += static_cast<Acc>(row[k2 * dd]);
                } else {
                  for (int64_t k2 = l2; k2 < h2; ++k2) {
                    sum += static_cast<Acc>(std::pow(std::fabs(static_cast<Acc>(row[k2 * dd])), p));
                  }
                }
              }
            }
            if (kind == PoolKind::kAvg) {
              int64_t count;
              if (count_include_pad) {
                count = (ps.phi[0][o0] - ps.plo[0][o0]) * (ps.phi[1][o1] - ps.plo[1][o1]) *
                        (ps.phi[2][o2] - ps.plo[2][o2]);
              } else {
                count = (h0 - l0) * (h1 - l1) * (h2 - l2);
              }
              yp[oi] = static_cast<T>(count > 0 ? sum / static_cast<Acc>(count)
                                                : std::numeric_limits<Acc>::quiet_NaN());
            } else {
              yp[oi] = static_cast<T>(std::pow(sum, static_cast<Acc>(1.0 / p)));
            }
          }
        }
      }
    }
  }
}

// LpPool-1 / GlobalLpPool-1 take p as a float; later versions as an int.
float read_p(KernelContext& ctx) {
  if (ctx.opset() < 2) return ctx.attr_float("p", 2.f);
  return static_cast<float>(ctx.attr_int("p", 2));
}

Status pool_of(KernelContext& ctx, const Tensor& X, PoolKind kind) {
  const DType dt = X.dtype();
  PoolSetup ps;
  KILN_RETURN_IF_ERROR(setup_pool(ctx, X, kind != PoolKind::kLp || ctx.opset() >= 18, &ps));
  const bool cip = ctx.attr_int("count_include_pad", 0) != 0;
  const int64_t storage_order = ctx.attr_int("storage_order", 0);
  if (storage_order != 0 && storage_order != 1) return ctx.invalid("storage_order must be 0 or 1");
  float p = 2.f;
  if (kind == PoolKind::kLp) {
    p = read_p(ctx);
    if (!(p > 0.f) || !std::isfinite(p)) return ctx.invalid("p must be positive");
  }
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, ps.out_shape));
  int64_t* idx = nullptr;
  if (kind == PoolKind::kMax && ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(Tensor * I, ctx.allocate(1, DType::kInt64, ps.out_shape));
    idx = I->mutable_data<int64_t>();
  }
  if (Y->numel() == 0) return Status::Ok();
  const bool cm = storage_order == 1;
  switch (dt) {
    case DType::kFloat32:
      pool_planes<float, float>(ps, kind, cip, p, X.data<float>(), Y->mutable_data<float>(), idx,
                                cm);
      return Status::Ok();
    case DType::kFloat64:
      pool_planes<double, double>(ps, kind, cip, p, X.data<double>(), Y->mutable_data<double>(),
                                  idx, cm);
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor yf,
                            ctx.scratch(DType::kFloat32, ps.out_shape, "working tensor"));
      pool_planes<float, float>(ps, kind, cip, p, xf.data<float>(), yf.mutable_data<float>(), idx,
                                cm);
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    case DType::kInt8:
      if (kind != PoolKind::kMax) return ctx.unsupported_type(dt);
      pool_planes<int8_t, int32_t>(ps, kind, cip, p, X.data<int8_t>(), Y->mutable_data<int8_t>(),
                                   idx, cm);
      return Status::Ok();
    case DType::kUInt8:
      if (kind != PoolKind::kMax) return ctx.unsupported_type(dt);
      pool_planes<uint8_t, int32_t>(ps, kind, cip, p, X.data<uint8_t>(), Y->mutable_data<uint8_t>(),
                                    idx, cm);
      return Status::Ok();
    default:
      return ctx.unsupported_type(dt);
  }
}

Status pool_kernel(KernelContext& ctx, PoolKind kind) {
  return pool_of(ctx, ctx.tensor(0), kind);
}

Status max_pool_kernel(KernelContext& ctx) {
  return pool_kernel(ctx, PoolKind::kMax);
}
Status average_pool_kernel(KernelContext& ctx) {
  return pool_kernel(ctx, PoolKind::kAvg);
}
Status lp_pool_kernel(KernelContext& ctx) {
  return pool_kernel(ctx, PoolKind::kLp);
}

// ---- global pools ----

template <typename T>
void global_pool(PoolKind kind, float p, int64_t planes, int64_t size, const T* x, T* y) {
#pragma omp parallel for if (planes * size > 65536) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * size;
    double acc = 0;
    if (kind == PoolKind::kMax) {
      T best = size > 0 ? xp[0] : T(0);
      for (int64_t i = 1; i < size; ++i)
        best = xp[i] > best || std::isnan(static_cast<double>(xp[i])) ? xp[i] : best;
      y[pl] = best;
      continue;
    }
    if (kind == PoolKind::kAvg) {
      for (int64_t i = 0; i < size; ++i) acc += static_cast<double>(xp[i]);
      y[pl] = static_cast<T>(size > 0 ? acc / static_cast<double>(size) : std::nan(""));
    } else {
      for (int64_t i = 0; i < size; ++i) acc += std::pow(std::fabs(static_cast<double>(xp[i])), p);
      y[pl] = static_cast<T>(std::pow(acc, 1.0 / p));
    }
  }
}

Status global_pool_kernel(KernelContext& ctx, PoolKind kind) {
  const Tensor& X = ctx.tensor(0);
  const DType dt = X.dtype();
  if (X.rank() < 2) return ctx.invalid("X must have rank >= 2");
  std::vector<int64_t> out = X.shape();
  int64_t size = 1;
  for (size_t i = 2; i < out.size(); ++i) {
    size *= out[i];
    out[i] = 1;
  }
  float p = 2.f;
  if (kind == PoolKind::kLp) {
    p = read_p(ctx);
    if (!(p > 0.f) || !std::isfinite(p)) return ctx.invalid("p must be positive");
  }
  const int64_t planes = X.dim(0) * X.dim(1);
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, out));
  if (Y->numel() == 0) return Status::Ok();
  switch (dt) {
    case DType::kFloat32:
      global_pool<float>(kind, p, planes, size, X.data<float>(), Y->mutable_data<float>());
      return Status::Ok();
    case DType::kFloat64:
      global_pool<double>(kind, p, planes, size, X.data<double>(), Y->mutable_data<double>());
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor xf, as_float(X));
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, out, "working tensor"));
      global_pool<float>(kind, p, planes, size, xf.data<float>(), yf.mutable_data<float>());
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(dt);
  }
}

Status global_average_pool_kernel(KernelContext& ctx) {
  return global_pool_kernel(ctx, PoolKind::kAvg);
}
Status global_max_pool_kernel(KernelContext& ctx) {
  return global_pool_kernel(ctx, PoolKind::kMax);
}
Status global_lp_pool_kernel(KernelContext& ctx) {
  return global_pool_kernel(ctx, PoolKind::kLp);
}

// ---- MaxUnpool ----

Status max_unpool_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.tensor(0);
  const Tensor& I = ctx.tensor(1);
  if (I.dtype() != DType::kInt64) return ctx.invalid("I must be int64");
  if (I.shape() != X.shape()) return ctx.invalid("I must have the shape of X");
  if (X.rank() < 3) return ctx.invalid("X must have rank >= 3");
  const int n = X.rank() - 2;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), n, {}));
  // The indices address the default output (what MaxPool's input had to be); an explicit
  // output_shape places those positions by coordinate into a tensor of that shape.
  std::vector<int64_t> inferred = {X.dim(0), X.dim(1)};
  for (int i = 0; i < n; ++i) {
    const size_t si = static_cast<size_t>(i);
    int64_t o = 0;
    if (X.dim(i + 2) < 1 || __builtin_mul_overflow(X.dim(i + 2) - 1, w.strides[si], &o)) {
      return ctx.invalid("unpooled size overflows");
    }
    o += w.kernel[si] - w.pads[si] - w.pads[si + static_cast<size_t>(n)];
    if (o < 0) return ctx.invalid("output size would be negative");
    inferred.push_back(o);
  }
  std::vector<int64_t> out = inferred;
  if (ctx.has_input(2)) {
    out = read_int64s(ctx.tensor(2));
    if (out.size() != static_cast<size_t>(X.rank()))
      return ctx.invalid("output_shape has the wrong rank");
    if (out[0] != X.dim(0) || out[1] != X.dim(1)) {
      return ctx.invalid("output_shape must keep the batch and channel dims of X");
    }
  }
  KILN_ASSIGN_OR_RETURN(int64_t inferred_total, checked_numel(inferred, "MaxUnpool output"));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, X.dtype(), out));
  const bool same = out == inferred;
  const int64_t* idx = I.data<int64_t>();
  const size_t es = static_cast<size_t>(dtype_bits(X.dtype()) / 8);
  if (es == 0 || X.dtype() == DType::kString) return ctx.unsupported_type(X.dtype());
  const auto* src = static_cast<const uint8_t*>(X.raw());
  auto* dst = static_cast<uint8_t*>(Y->mutable_raw());
  const size_t r = inferred.size();
  std::vector<int64_t> coord(r);
  for (int64_t e = 0; e < X.numel(); ++e) {
    int64_t j = idx[e];
    if (j < 0 || j >= inferred_total) {
      return ctx.out_of_range("index " + std::to_string(j) + " is outside the unpooled output of " +
                              std::to_string(inferred_total) + " elements");
    }
    if (!same) {
      bool inside = true;
      for (size_t d = r; d-- > 0;) {
        coord[d] = j % inferred[d];
        j /= inferred[d];
        if (coord[d] >= out[d]) inside = false;
      }
      if (!inside) continue;
      j = 0;
      for (size_t d = 0; d < r; ++d) j = j * out[d] + coord[d];
    }
    std::memcpy(dst + static_cast<size_t>(j) * es, src + static_cast<size_t>(e) * es, es);
  }
  return Status::Ok();
}

}  // namespace

Status pool_forward(KernelContext& ctx, const Tensor& X, bool max) {
  return pool_of(ctx, X, max ? PoolKind::kMax : PoolKind::kAvg);
}

void register_pool_kernels(KernelRegistry& r) {
  r.add("", "MaxPool", max_pool_kernel);
  r.add("", "AveragePool", average_pool_kernel);
  r.add("", "LpPool", lp_pool_kernel);
  r.add("", "GlobalAveragePool", global_average_pool_kernel);
  r.add("", "GlobalMaxPool", global_max_pool_kernel);
  r.add("", "GlobalLpPool", global_lp_pool_kernel);
  r.add("", "MaxUnpool", max_unpool_kernel);
}

}  // namespace kiln::cpu
