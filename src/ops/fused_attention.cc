// Type inference of kiln.PackedAttention (ops/fused_attention.h).
#include "ops/fused_attention.h"

#include "ir/graph.h"
#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

using ir::Dim;
using ir::TypeInfo;

bool is_attention_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

Status infer_packed_attention(InferContext& ctx) {
  const int64_t hq = ctx.attr_int("q_num_heads", 0);
  const int64_t hkv = ctx.attr_int("kv_num_heads", 0);
  const int64_t causal = ctx.attr_int("is_causal", 0);
  ctx.attr_float("scale", 1.f);
  KILN_RETURN_IF_ERROR(ctx.status());
  if (hq <= 0 || hkv <= 0) return ctx.fail("q_num_heads and kv_num_heads must be positive");
  if (hq % hkv != 0) return ctx.fail("q_num_heads must be a multiple of kv_num_heads");
  if (causal != 0 && causal != 1) return ctx.fail("is_causal must be 0 or 1");
  const TypeInfo& t = ctx.input_type(0);
  if (t.kind == TypeInfo::Kind::kUnknown) return Status::Ok();
  if (!t.is_tensor()) return ctx.fail("qkv must be a tensor");
  if (t.dtype != DType::kUndefined && !is_attention_dtype(t.dtype)) {
    return ctx.fail(std::string("unsupported dtype ") + dtype_name(t.dtype));
  }
  if (ctx.has_input(1)) {
    const TypeInfo& m = ctx.input_type(1);
    if (m.is_tensor() && m.dtype != DType::kUndefined && t.dtype != DType::kUndefined &&
        m.dtype != DType::kBool && m.dtype != t.dtype) {
      return ctx.fail(std::string("attn_mask must be bool or qkv's dtype, not ") +
                      dtype_name(m.dtype));
    }
    if (m.is_tensor() && m.shape.rank_known && (m.shape.rank() < 1 || m.shape.rank() > 4)) {
      return ctx.fail("attn_mask must have rank 1 to 4");
    }
  }
  if (!t.shape.rank_known) {
    ctx.set_output(0, TypeInfo::tensor(t.dtype, ir::Shape::of_rank(3)));
    return Status::Ok();
  }
  if (t.shape.rank() != 3) return ctx.fail("qkv must have rank 3, not " + t.shape.to_string());
  const Dim& last = t.shape.dims[2];
  Dim out = Dim::unknown();
  if (last.known()) {
    const int64_t parts = hq + 2 * hkv;
    if (last.value % parts != 0) {
      return ctx.fail("qkv's last dim " + std::to_string(last.value) +
                      " does not divide into q_num_heads + 2 * kv_num_heads = " +
                      std::to_string(parts) + " heads");
    }
    out = Dim::of(last.value / parts * hq);
  }
  ir::Shape s = t.shape;
  s.dims[2] = out;
  ctx.set_output(0, TypeInfo::tensor(t.dtype, s));
  return Status::Ok();
}

}  // namespace

void register_fused_attention_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, kPackedAttention, 1, 2, 1, 1, infer_packed_attention));
}

}  // namespace kiln::ops
