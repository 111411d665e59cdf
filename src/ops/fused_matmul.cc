// FusedMatMul: MatMul/Gemm + bias + activation (cuBLASLt epilogues on the GPU). See
// ops/fused_matmul.h for the op's contract.
#include "ops/fused_matmul.h"

#include "ir/graph.h"
#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

using ir::Dim;
using ir::Shape;
using ir::TypeInfo;

bool is_fused_matmul_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

Status infer_fused_matmul(InferContext& ctx) {
  const std::string act = ctx.attr_string("activation", "");
  const int64_t trans_b = ctx.attr_int("trans_b", 0);
  KILN_RETURN_IF_ERROR(ctx.status());
  if (!parse_matmul_activation(act)) return ctx.fail("unknown activation \"" + act + "\"");
  if (trans_b != 0 && trans_b != 1) return ctx.fail("trans_b must be 0 or 1");

  // One float dtype for every input that is known.
  DType dt = DType::kUndefined;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const TypeInfo& t = ctx.input_type(i);
    if (t.kind == TypeInfo::Kind::kUnknown) continue;
    if (!t.is_tensor()) return ctx.fail("inputs must be tensors");
    if (t.dtype == DType::kUndefined) continue;
    if (!is_fused_matmul_dtype(t.dtype)) {
      return ctx.fail(std::string("unsupported dtype ") + dtype_name(t.dtype));
    }
    if (dt != DType::kUndefined && t.dtype != dt) return ctx.fail("inputs differ in dtype");
    dt = t.dtype;
  }

  const TypeInfo& ta = ctx.input_type(0);
  const TypeInfo& tb = ctx.input_type(1);
  const bool a_rank = ta.is_tensor() && ta.shape.rank_known;
  const bool b_rank = tb.is_tensor() && tb.shape.rank_known;
  if (a_rank && ta.shape.rank() < 1) return ctx.fail("A must have rank >= 1");
  if (b_rank && tb.shape.rank() != 2) return ctx.fail("B must have rank 2");
  Dim k_a = a_rank ? ta.shape.dims.back() : Dim::unknown();
  Dim k_b = Dim::unknown(), n = Dim::unknown();
  if (b_rank) {
    k_b = tb.shape.dims[trans_b ? 1 : 0];
    n = tb.shape.dims[trans_b ? 0 : 1];
  }
  if (k_a.known() && k_b.known() && k_a.value != k_b.value) {
    return ctx.fail("inner dims differ: " + ta.shape.to_string() + " x " + tb.shape.to_string() +
                    (trans_b ? " (B transposed)" : ""));
  }
  if (ctx.has_input(2)) {
    const TypeInfo& tc = ctx.input_type(2);
    if (tc.is_tensor() && tc.shape.rank_known) {
      if (tc.shape.rank() != 1) return ctx.fail("bias must have rank 1");
      const Dim& bn = tc.shape.dims[0];
      if (bn.known() && n.known() && bn.value != n.value) {
        return ctx.fail("bias has " + bn.to_string() + " values, expected N = " + n.to_string());
      }
      if (!n.known() && bn.known()) n = bn;
    }
  }
  if (!a_rank) {
    ctx.set_output(0, TypeInfo::tensor(dt));
    return Status::Ok();
  }
  Shape out = ta.shape;
  out.dims.back() = n;
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

}  // namespace

void register_fused_matmul_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, kFusedMatMul, 2, 3, 1, 1, infer_fused_matmul));
}

}  // namespace kiln::ops
