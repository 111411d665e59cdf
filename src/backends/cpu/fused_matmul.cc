// CPU reference kernel of FusedMatMul: the blocked GEMM of MatMul/Gemm, then bias and activation
// in float, row by row (the same formulas as the Relu and Gelu kernels). fp16/bf16 compute in
// float and round once.
#include <cmath>

#include "backends/cpu/elementwise_math.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/nn_util.h"
#include "ops/fused_matmul.h"

namespace kiln::cpu {
namespace {

using ops::MatMulActivation;

// y[r, j] = act(y[r, j] + bias[j]) for one row of n values.
template <MatMulActivation kAct>
void epilogue_row(float* y, const float* bias, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    float x = y[j] + (bias ? bias[j] : 0.f);
    if constexpr (kAct == MatMulActivation::kRelu) {
      x = x < 0.f ? 0.f : x;  // NaN passes through, as in Relu
    } else if constexpr (kAct == MatMulActivation::kGelu) {
      x = 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f));
    } else if constexpr (kAct == MatMulActivation::kGeluTanh) {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      x = 0.5f * x * (1.f + ew::tanh_vec(k * (x + 0.044715f * x * x * x)));
    }
    y[j] = x;
  }
}

template <MatMulActivation kAct>
void epilogue_rows(float* y, const float* bias, int64_t rows, int64_t n) {
  if (kAct == MatMulActivation::kNone && bias == nullptr) return;
#pragma omp parallel for if (rows > 1 && rows * n > 32768) schedule(static)
  for (int64_t r = 0; r < rows; ++r) epilogue_row<kAct>(y + r * n, bias, n);
}

void epilogue(MatMulActivation act, float* y, const float* bias, int64_t rows, int64_t n) {
  switch (act) {
    case MatMulActivation::kNone:
      return epilogue_rows<MatMulActivation::kNone>(y, bias, rows, n);
    case MatMulActivation::kRelu:
      return epilogue_rows<MatMulActivation::kRelu>(y, bias, rows, n);
    case MatMulActivation::kGelu:
      return epilogue_rows<MatMulActivation::kGelu>(y, bias, rows, n);
    case MatMulActivation::kGeluTanh:
      return epilogue_rows<MatMulActivation::kGeluTanh>(y, bias, rows, n);
  }
}

Status fused_matmul_kernel(KernelContext& ctx) {
  const Tensor& A = ctx.tensor(0);
  const Tensor& B = ctx.tensor(1);
  const Tensor* bias = ctx.has_input(2) ? &ctx.tensor(2) : nullptr;
  const std::string act_name = ctx.attr_string("activation", "");
  const int64_t trans_b = ctx.attr_int("trans_b", 0);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  const std::optional<MatMulActivation> act = ops::parse_matmul_activation(act_name);
  if (!act) return ctx.invalid("unknown activation \"" + act_name + "\"");
  if (trans_b != 0 && trans_b != 1) return ctx.invalid("trans_b must be 0 or 1");
  const DType dt = A.dtype();
  if (dt != DType::kFloat32 && !is_half_like(dt)) return ctx.unsupported_type(dt);
  if (B.dtype() != dt || (bias && bias->dtype() != dt)) return ctx.invalid("input dtypes differ");
  if (A.rank() < 1) return ctx.invalid("A must have rank >= 1");
  if (B.rank() != 2) return ctx.invalid("B must have rank 2, got " + B.type_string());
  const int64_t k = A.shape().back();
  const int64_t n = trans_b ? B.dim(0) : B.dim(1);
  if ((trans_b ? B.dim(1) : B.dim(0)) != k) {
    return ctx.invalid("inner dims differ: " + A.type_string() + " x " + B.type_string());
  }
  if (bias && (bias->rank() != 1 || bias->dim(0) != n)) {
    return ctx.invalid("bias " + bias->type_string() + " must be [" + std::to_string(n) + "]");
  }
  std::vector<int64_t> out_shape = A.shape();
  out_shape.back() = n;
  const std::vector<int64_t> row_dims(A.shape().begin(), A.shape().end() - 1);
  KILN_ASSIGN_OR_RETURN(int64_t rows, checked_numel(row_dims, "FusedMatMul rows"));
  KILN_ASSIGN_OR_RETURN(Tensor * Y, ctx.allocate(0, dt, out_shape));
  if (Y->numel() == 0) return Status::Ok();

  GemmShape s;
  s.m = rows;
  s.n = n;
  s.k = k;
  s.trans_b = trans_b != 0;
  s.lda = k;
  s.ldb = trans_b ? k : n;
  s.ldc = n;
  if (dt == DType::kFloat32) {
    float* y = Y->mutable_data<float>();
    sgemm(s, 1.f, A.data<float>(), B.data<float>(), 0.f, y);
    epilogue(*act, y, bias ? bias->data<float>() : nullptr, rows, n);
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(Tensor af, as_float(A));
  KILN_ASSIGN_OR_RETURN(Tensor bf, as_float(B));
  Tensor cf;
  if (bias) {
    KILN_ASSIGN_OR_RETURN(cf, as_float(*bias));
  }
  KILN_ASSIGN_OR_RETURN(Tensor yf, ctx.scratch(DType::kFloat32, out_shape, "working tensor"));
  float* y = yf.mutable_data<float>();
  sgemm(s, 1.f, af.data<float>(), bf.data<float>(), 0.f, y);
  epilogue(*act, y, bias ? cf.data<float>() : nullptr, rows, n);
  KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
  ctx.set_output(0, std::move(yo));
  return Status::Ok();
}

}  // namespace

void register_fused_matmul_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kFusedMatMul, fused_matmul_kernel);
}

}  // namespace kiln::cpu
