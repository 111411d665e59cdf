// CUDA kernel of FusedMatMul: one cuBLASLt GEMM (A's leading dims folded into its rows) whose
// epilogue adds the bias and applies Relu, or GELU (tanh form) for float16/bfloat16. Exact (erf)
// GELU, and tanh GELU in float32, run as a pointwise pass over the output after a BIAS epilogue:
// cuBLASLt's GELU is the tanh approximation, and in float32 its fast tanh would be visible next
// to the CPU reference.
#include "backends/cuda/fused_matmul_internal.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

using ops::MatMulActivation;

bool fused_matmul_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

std::string fused_matmul_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!fused_matmul_dtype(t)) return std::string("dtype ") + dtype_name(t);
  if (std::string r = require_dtypes(node, {t}); !r.empty()) return r;
  Status err;
  const std::string act = node.attr_string("activation", "", &err);
  const int64_t trans_b = node.attr_int("trans_b", 0, &err);
  if (!err.ok()) return std::string(err.message());
  if (!ops::parse_matmul_activation(act)) return "unknown activation \"" + act + "\"";
  if (trans_b != 0 && trans_b != 1) return "trans_b must be 0 or 1";
  const ir::Value* b = node.has_input(1) ? node.inputs[1] : nullptr;
  if (b && b->type.is_tensor() && b->type.shape.rank_known && b->type.shape.rank() != 2) {
    return "B must have rank 2";
  }
  return check_ranks(node);
}

// Where the activation runs: in cuBLASLt's epilogue, or in launch_bias_activation after it.
GemmEpilogue epilogue_for(MatMulActivation act, DType dt, bool* pointwise) {
  *pointwise = false;
  switch (act) {
    case MatMulActivation::kNone:
      return GemmEpilogue::kNone;
    case MatMulActivation::kRelu:
      return GemmEpilogue::kRelu;
    case MatMulActivation::kGeluTanh:
      if (dt != DType::kFloat32) return GemmEpilogue::kGeluTanh;
      *pointwise = true;
      return GemmEpilogue::kNone;
    case MatMulActivation::kGelu:
      *pointwise = true;
      return GemmEpilogue::kNone;
  }
  *pointwise = true;
  return GemmEpilogue::kNone;
}

Status fused_matmul_run(KernelContext& ctx) {
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  const DeviceTensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const std::string act_name = ctx.attr_string("activation", "");
  const int64_t trans_b = ctx.attr_int("trans_b", 0);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  const std::optional<MatMulActivation> act = ops::parse_matmul_activation(act_name);
  if (!act) return ctx.invalid("unknown activation \"" + act_name + "\"");
  if (trans_b != 0 && trans_b != 1) return ctx.invalid("trans_b must be 0 or 1");
  const DType dt = A.dtype;
  if (!fused_matmul_dtype(dt)) return ctx.unsupported_type(dt);
  if (B.dtype != dt || (bias && bias->dtype != dt)) return ctx.invalid("input dtypes differ");
  if (A.rank() < 1) return ctx.invalid("A must have rank >= 1");
  if (B.rank() != 2) return ctx.invalid("B must have rank 2");
  const int64_t k = A.shape.back();
  const int64_t n = trans_b ? B.dim(0) : B.dim(1);
  if ((trans_b ? B.dim(1) : B.dim(0)) != k) return ctx.invalid("inner dims differ");
  if (bias && (bias->rank() != 1 || bias->dim(0) != n)) return ctx.invalid("bias must be [N]");
  int64_t rows = 1;
  for (int i = 0; i + 1 < A.rank(); ++i) rows *= A.dim(i);
  std::vector<int64_t> out = A.shape;
  out.back() = n;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, dt, out));
  if (Y->numel() == 0) return Status::Ok();
  const void* bias_data = bias ? bias->data : nullptr;
  if (k == 0) {
    // The product is all zeros: Y = act(bias).
    KILN_RETURN_IF_ERROR(fill_float(ctx, dt, Y->data, Y->numel(), 0.0));
    KILN_RETURN_IF_ERROR(launch_bias_activation(ctx, dt, Y->data, bias_data, rows, n, *act));
    return ctx.check_launch("FusedMatMul");
  }
  bool pointwise = false;
  GemmArgs g;
  g.dtype = dt;
  g.trans_b = trans_b != 0;
  g.m = rows;
  g.n = n;
  g.k = k;
  g.lda = k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  g.a = A.data;
  g.b = B.data;
  g.c = Y->data;
  g.bias = bias_data;
  g.epilogue = epilogue_for(*act, dt, &pointwise);
  KILN_RETURN_IF_ERROR(gemm(ctx, g));
  if (pointwise) {
    KILN_RETURN_IF_ERROR(launch_bias_activation(ctx, dt, Y->data, nullptr, rows, n, *act));
  }
  return ctx.check_launch("FusedMatMul");
}

}  // namespace

void register_fused_matmul_kernels(KernelRegistry& r) {
  KernelDef def{ir::kKilnDomain, ops::kFusedMatMul, fused_matmul_supports, fused_matmul_run};
  def.tunable = true;
  r.add(def);
}

}  // namespace kiln::cuda
