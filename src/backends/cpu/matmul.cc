// MatMul (numpy batching and broadcasting, 1-D operands), MatMulInteger, QLinearMatMul, Gemm.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/gemm.h"
#include "backends/cpu/nn_internal.h"

namespace kiln::cpu {
namespace {

struct MatMulPlan {
  int64_t M = 0, N = 0, K = 0;
  std::vector<int64_t> out_shape;
  std::vector<int64_t> off_a, off_b;  // per output batch element, in elements
  bool fold_a = false;                // B shared by every batch and A's batches contiguous
};

Status plan_matmul(const KernelContext& ctx, std::vector<int64_t> sa, std::vector<int64_t> sb,
                   MatMulPlan* p) {
  if (sa.empty() || sb.empty()) return ctx.invalid("MatMul operands must have rank >= 1");
  const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), 1);
  if (b_vec) sb.push_back(1);
  p->M = sa[sa.size() - 2];
  p->K = sa[sa.size() - 1];
  p->N = sb[sb.size() - 1];
  if (sb[sb.size() - 2] != p->K) {
    return ctx.invalid("inner dims differ: " + shape_to_string(sa) + " x " + shape_to_string(sb));
  }
  const size_t ra = sa.size() - 2, rb = sb.size() - 2, r = std::max(ra, rb);
  std::vector<int64_t> batch(r), da(r, 1), db(r, 1);
  for (size_t i = 0; i < r; ++i) {
    if (i + ra >= r) da[i] = sa[i + ra - r];
    if (i + rb >= r) db[i] = sb[i + rb - r];
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1) {
      return ctx.invalid("batch dims do not broadcast: " + shape_to_string(sa) + " x " +
                         shape_to_string(sb));
    }
    batch[i] = da[i] == 1 ? db[i] : da[i];
  }
  KILN_ASSIGN_OR_RETURN(int64_t nb, checked_numel(batch, "MatMul batch"));
  p->out_shape = batch;
  if (!a_vec) p->out_shape.push_back(p->M);
  if (!b_vec) p->out_shape.push_back(p->N);
  KILN_ASSIGN_OR_RETURN(int64_t out_elems, checked_numel(p->out_shape, "MatMul output"));
  (void)out_elems;
  if (nb == 0) return Status::Ok();
  // Element strides of each batch dim in A and B (0 where broadcast).
  std::vector<int64_t> st_a(r, 0), st_b(r, 0);
  int64_t acc_a = p->M * p->K, acc_b = p->K * p->N;
  for (size_t i = r; i-- > 0;) {
    st_a[i] = da[i] == 1 ? 0 : acc_a;
    st_b[i] = db[i] == 1 ? 0 : acc_b;
    acc_a *= da[i];
    acc_b *= db[i];
  }
  bool b_shared = true, a_full = true;
  for (size_t i = 0; i < r; ++i) {
    if (st_b[i] != 0) b_shared = false;
    if (da[i] != batch[i]) a_full = false;
  }
  p->fold_a = b_shared && a_full;
  if (p->fold_a) return Status::Ok();
  p->off_a.resize(static_cast<size_t>(nb));
  p->off_b.resize(static_cast<size_t>(nb));
  std::vector<int64_t> idx(r, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t bi = 0; bi < nb; ++bi) {
    p->off_a[static_cast<size_t>(bi)] = oa;
    p->off_b[static_cast<size_t>(bi)] = ob;
    for (size_t i = r; i-- > 0;) {
      if (++idx[i] < batch[i]) {
        oa += st_a[i];
        ob += st_b[i];
        break;
      }
      oa -= st_a[i] * (batch[i] - 1);
      ob -= st_b[i] * (batch[i] - 1);
      idx[i] = 0;
    }
  }
  return Status::Ok();
}

// Runs `fn(a_offset, b_offset, c_offset, rows)` for every GEMM of the plan.
template <typename Fn>
void for_each_gemm(const MatMulPlan& p, int64_t batches, Fn fn) {
  if (p.fold_a) {
    fn(int64_t{0}, int64_t{0}, int64_t{0}, p.M * batches);
    return;
  }
  const int64_t n = static_cast<int64_t>(p.off_a.size());
#pragma omp parallel for if (n > 1 && p.M * p.N * p.K * n > 65536) schedule(dynamic, 1)
  for (int64_t bi = 0; bi < n; ++bi) {
    fn(p.off_a[static_cast<size_t>(bi)], p.off_b[static_cast<size_t>(bi)], bi * p.M * p.N, p.M);
  }
}

template <typename T>
void matmul_typed(const MatMulPlan& p, int64_t batches, const T* a, const T* b, T* c) {
  for_each_gemm(p, batches, [&](int64_t oa, int64_t ob, int64_t oc, int64_t rows) {
    GemmShape s;
    s.m = rows;
    s.n = p.N;
    s.k = p.K;
    s.lda = p.K;
    s.ldb = p.N;
    s.ldc = p.N;
    if constexpr (std::is_same_v<T, float>) {
      sgemm(s, 1.f, a + oa, b + ob, 0.f, c + oc);
    } else if constexpr (std::is_same_v<T, double>) {
      dgemm(s, 1.0, a + oa, b + ob, 0.0, c + oc);
    } else {
      gemm_generic<T>(s, a + oa, b + ob, c + oc, false);
    }
  });
}

Status matmul_kernel(KernelContext& ctx) {
  const Tensor& A = ctx.tensor(0);
  const Tensor& B = ctx.tensor(1);
  const DType dt = A.dtype();
  if (B.dtype() != dt) return ctx.invalid("A and B dtypes differ");
  MatMulPlan p;
  KILN_RETURN_IF_ERROR(plan_matmul(ctx, A.shape(), B.shape(), &p));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, p.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  const int64_t nb = Y->numel() / (p.M * p.N);
  switch (dt) {
    case DType::kFloat32:
      matmul_typed<float>(p, nb, A.data<float>(), B.data<float>(), Y->mutable_data<float>());
      return Status::Ok();
    case DType::kFloat64:
      matmul_typed<double>(p, nb, A.data<double>(), B.data<double>(), Y->mutable_data<double>());
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor af, as_float(A));
      KILN_ASSIGN_OR_RETURN(Tensor bf, as_float(B));
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, p.out_shape, "working tensor"));
      matmul_typed<float>(p, nb, af.data<float>(), bf.data<float>(), yf.mutable_data<float>());
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
#define KILN_MATMUL_INT_(D, T)                                              \
  case DType::D:                                                            \
    matmul_typed<T>(p, nb, A.data<T>(), B.data<T>(), Y->mutable_data<T>()); \
    return Status::Ok();
      KILN_MATMUL_INT_(kInt8, int8_t)
      KILN_MATMUL_INT_(kUInt8, uint8_t)
      KILN_MATMUL_INT_(kInt16, int16_t)
      KILN_MATMUL_INT_(kUInt16, uint16_t)
      KILN_MATMUL_INT_(kInt32, int32_t)
      KILN_MATMUL_INT_(kUInt32, uint32_t)
      KILN_MATMUL_INT_(kInt64, int64_t)
      KILN_MATMUL_INT_(kUInt64, uint64_t)
#undef KILN_MATMUL_INT_
    default:
      return ctx.unsupported_type(dt);
  }
}

// ---- MatMulInteger / QLinearMatMul ----

// Zero point of A: scalar or one per row (M); of B: scalar or one per column (N). Returns the
// stride (0 or 1) through *stride.
Status check_zero_point(const KernelContext& ctx, const Tensor* z, DType want, int64_t per,
                        const char* what, int64_t* stride) {
  *stride = 0;
  if (!z) return Status::Ok();
  if (z->dtype() != want) return ctx.invalid(std::string(what) + " dtype differs from its input");
  if (z->numel() == 1) return Status::Ok();
  if (z->numel() == per && z->rank() <= 2) {
    *stride = 1;
    return Status::Ok();
  }
  return ctx.unsupported(std::string(what) + " must be a scalar or 1-D per row/column");
}

template <typename TA, typename TB>
void matmul_int_typed(const MatMulPlan& p, int64_t nb, const TA* a, const TA* az, int64_t azs,
                      const TB* b, const TB* bz, int64_t bzs, int32_t* c) {
  if (p.fold_a && azs != 0) {
    // Per-row zero points repeat every M rows: run batch by batch.
    for (int64_t bi = 0; bi < nb; ++bi) {
      igemm<TA, TB>(p.M, p.N, p.K, a + bi * p.M * p.K, p.K, az, azs, b, p.N, bz, bzs,
                    c + bi * p.M * p.N, p.N);
    }
    return;
  }
  for_each_gemm(p, nb, [&](int64_t oa, int64_t ob, int64_t oc, int64_t rows) {
    igemm<TA, TB>(rows, p.N, p.K, a + oa, p.K, az, azs, b + ob, p.N, bz, bzs, c + oc, p.N);
  });
}

Status matmul_int_any(const KernelContext& ctx, const MatMulPlan& p, int64_t nb, const Tensor& A,
                      const Tensor* az, const Tensor& B, const Tensor* bz, int32_t* c) {
  int64_t azs = 0, bzs = 0;
  KILN_RETURN_IF_ERROR(check_zero_point(ctx, az, A.dtype(), p.M, "a_zero_point", &azs));
  KILN_RETURN_IF_ERROR(check_zero_point(ctx, bz, B.dtype(), p.N, "b_zero_point", &bzs));
  const bool au = A.dtype() == DType::kUInt8, bu = B.dtype() == DType::kUInt8;
  if (!au && A.dtype() != DType::kInt8) return ctx.unsupported_type(A.dtype());
  if (!bu && B.dtype() != DType::kInt8) return ctx.unsupported_type(B.dtype());
#define KILN_MMI_(TA, TB)                                                                         \
  matmul_int_typed<TA, TB>(p, nb, A.data<TA>(), az ? az->data<TA>() : nullptr, azs, B.data<TB>(), \
                           bz ? bz->data<TB>() : nullptr, bzs, c)
  if (au && bu)
    KILN_MMI_(uint8_t, uint8_t);
  else if (au)
    KILN_MMI_(uint8_t, int8_t);
  else if (bu)
    KILN_MMI_(int8_t, uint8_t);
  else
    KILN_MMI_(int8_t, int8_t);
#undef KILN_MMI_
  return Status::Ok();
}

Status matmul_integer_kernel(KernelContext& ctx) {
  const Tensor& A = ctx.tensor(0);
  const Tensor& B = ctx.tensor(1);
  MatMulPlan p;
  KILN_RETURN_IF_ERROR(plan_matmul(ctx, A.shape(), B.shape(), &p));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, DType::kInt32, p.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  return matmul_int_any(ctx, p, Y->numel() / (p.M * p.N), A,
                        ctx.has_input(2) ? &ctx.tensor(2) : nullptr, B,
                        ctx.has_input(3) ? &ctx.tensor(3) : nullptr, Y->mutable_data<int32_t>());
}

Status qlinear_matmul_kernel(KernelContext& ctx) {
  const Tensor& A = ctx.tensor(0);
  const Tensor& B = ctx.tensor(3);
  const Tensor& yz = ctx.tensor(7);
  const DType yt = yz.dtype();
  if ((yt != DType::kUInt8 && yt != DType::kInt8) || yz.numel() != 1) {
    return ctx.invalid("y_zero_point must be a uint8/int8 scalar");
  }
  MatMulPlan p;
  KILN_RETURN_IF_ERROR(plan_matmul(ctx, A.shape(), B.shape(), &p));
  KILN_ASSIGN_OR_RETURN(Tensor as, as_float(ctx.tensor(1)));
  KILN_ASSIGN_OR_RETURN(Tensor bs, as_float(ctx.tensor(4)));
  KILN_ASSIGN_OR_RETURN(Tensor ys, as_float(ctx.tensor(6)));
  if (ys.numel() != 1) return ctx.invalid("y_scale must be a scalar");
  if (as.numel() != 1 && as.numel() != p.M) return ctx.invalid("a_scale must be scalar or per row");
  if (bs.numel() != 1 && bs.numel() != p.N)
    return ctx.invalid("b_scale must be scalar or per column");
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, yt, p.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  const int64_t nb = Y->numel() / (p.M * p.N);
  KILN_ASSIGN_OR_RETURN(Tensor acc, ctx.scratch(DType::kInt32, p.out_shape, "working tensor"));
  KILN_RETURN_IF_ERROR(matmul_int_any(ctx, p, nb, A, &ctx.tensor(2), B, &ctx.tensor(5),
                                      acc.mutable_data<int32_t>()));
  const float* a_s = as.data<float>();
  const float* b_s = bs.data<float>();
  const float y_s = ys.data<float>()[0];
  const int32_t* a = acc.data<int32_t>();
  const bool as_row = as.numel() != 1, bs_col = bs.numel() != 1;
  const float zero = static_cast<float>(yz.get_int64(0));
  const float lo = yt == DType::kUInt8 ? 0.f : -128.f, hi = yt == DType::kUInt8 ? 255.f : 127.f;
  const int64_t total = Y->numel();
  for (int64_t e = 0; e < total; ++e) {
    const int64_t j = e % p.N, i = (e / p.N) % p.M;
    const float scale = a_s[as_row ? i : 0] * b_s[bs_col ? j : 0] / y_s;
    float v = std::nearbyint(static_cast<float>(a[e]) * scale) + zero;
    v = std::min(hi, std::max(lo, v));
    if (yt == DType::kUInt8)
      Y->mutable_data<uint8_t>()[e] = static_cast<uint8_t>(v);
    else
      Y->mutable_data<int8_t>()[e] = static_cast<int8_t>(v);
  }
  return Status::Ok();
}

// ---- Gemm ----

// C (optional) broadcast to [M, N], as element strides (0 where broadcast).
Status c_strides(const KernelContext& ctx, const Tensor& C, int64_t M, int64_t N, int64_t* sm,
                 int64_t* sn) {
  std::vector<int64_t> s = C.shape();
  if (s.size() > 2) return ctx.invalid("C must have rank <= 2");
  while (s.size() < 2) s.insert(s.begin(), 1);
  if ((s[0] != 1 && s[0] != M) || (s[1] != 1 && s[1] != N)) {
    return ctx.invalid("C " + C.type_string() + " does not broadcast to [" + std::to_string(M) +
                       "," + std::to_string(N) + "]");
  }
  *sm = s[0] == 1 ? 0 : s[1];
  *sn = s[1] == 1 ? 0 : 1;
  return Status::Ok();
}

template <typename T>
void gemm_op_typed(const GemmShape& s, float alpha, float beta, const T* a, const T* b, const T* c,
                   int64_t csm, int64_t csn, T* y) {
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      y[i * s.n + j] = c ? static_cast<T>(c[i * csm + j * csn]) : T(0);
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    sgemm(s, alpha, a, b, c ? beta : 0.f, y);
  } else if constexpr (std::is_same_v<T, double>) {
    dgemm(s, alpha, a, b, c ? static_cast<double>(beta) : 0.0, y);
  } else {
    std::vector<T> ab(static_cast<size_t>(s.m * s.n));
    GemmShape s2 = s;
    s2.ldc = s.n;
    gemm_generic<T>(s2, a, b, ab.data(), false);
    for (int64_t e = 0; e < s.m * s.n; ++e) {
      const double v = static_cast<double>(alpha) * static_cast<double>(ab[e]) +
                       (c ? static_cast<double>(beta) * static_cast<double>(y[e]) : 0.0);
      y[e] = static_cast<T>(v);
    }
  }
}

Status gemm_kernel(KernelContext& ctx) {
  const Tensor& A = ctx.tensor(0);
  const Tensor& B = ctx.tensor(1);
  const Tensor* C = ctx.has_input(2) ? &ctx.tensor(2) : nullptr;
  const DType dt = A.dtype();
  if (B.dtype() != dt || (C && C->dtype() != dt)) return ctx.invalid("A, B and C dtypes differ");
  if (A.rank() != 2 || B.rank() != 2) return ctx.invalid("A and B must have rank 2");
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const float alpha = ctx.attr_float("alpha", 1.f), beta = ctx.attr_float("beta", 1.f);
  GemmShape s;
  s.trans_a = ta;
  s.trans_b = tb;
  s.m = ta ? A.dim(1) : A.dim(0);
  s.k = ta ? A.dim(0) : A.dim(1);
  s.n = tb ? B.dim(0) : B.dim(1);
  if ((tb ? B.dim(1) : B.dim(0)) != s.k) {
    return ctx.invalid("inner dims differ: " + A.type_string() + " x " + B.type_string());
  }
  s.lda = A.dim(1);
  s.ldb = B.dim(1);
  s.ldc = s.n;
  int64_t csm = 0, csn = 0;
  if (C) KILN_RETURN_IF_ERROR(c_strides(ctx, *C, s.m, s.n, &csm, &csn));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, {s.m, s.n}));
  if (Y->numel() == 0) return Status::Ok();
  switch (dt) {
    case DType::kFloat32:
      gemm_op_typed<float>(s, alpha, beta, A.data<float>(), B.data<float>(),
                           C ? C->data<float>() : nullptr, csm, csn, Y->mutable_data<float>());
      return Status::Ok();
    case DType::kFloat64:
      gemm_op_typed<double>(s, alpha, beta, A.data<double>(), B.data<double>(),
                            C ? C->data<double>() : nullptr, csm, csn, Y->mutable_data<double>());
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      KILN_ASSIGN_OR_RETURN(Tensor af, as_float(A));
      KILN_ASSIGN_OR_RETURN(Tensor bf, as_float(B));
      Tensor cf;
      if (C) {
        KILN_ASSIGN_OR_RETURN(cf, as_float(*C));
      }
      KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, {s.m, s.n}, "working tensor"));
      gemm_op_typed<float>(s, alpha, beta, af.data<float>(), bf.data<float>(),
                           C ? cf.data<float>() : nullptr, csm, csn, yf.mutable_data<float>());
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
#define KILN_GEMM_INT_(D, T)                                                                    \
  case DType::D:                                                                                \
    gemm_op_typed<T>(s, alpha, beta, A.data<T>(), B.data<T>(), C ? C->data<T>() : nullptr, csm, \
                     csn, Y->mutable_data<T>());                                                \
    return Status::Ok();
      KILN_GEMM_INT_(kInt32, int32_t)
      KILN_GEMM_INT_(kUInt32, uint32_t)
      KILN_GEMM_INT_(kInt64, int64_t)
      KILN_GEMM_INT_(kUInt64, uint64_t)
#undef KILN_GEMM_INT_
    default:
      return ctx.unsupported_type(dt);
  }
}

}  // namespace

void register_matmul_kernels(KernelRegistry& r) {
  r.add("", "MatMul", matmul_kernel);
  r.add("", "MatMulInteger", matmul_integer_kernel);
  r.add("", "QLinearMatMul", qlinear_matmul_kernel);
  r.add("", "Gemm", gemm_kernel);
}

}  // namespace kiln::cpu
