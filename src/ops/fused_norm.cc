// Type inference of kiln.SkipLayerNorm (ops/fused_norm.h).
#include "ops/fused_norm.h"

#include "ir/graph.h"
#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

using ir::Shape;
using ir::TypeInfo;

bool is_norm_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

Status infer_skip_layer_norm(InferContext& ctx) {
  ctx.attr_float("epsilon", 1e-5f);
  KILN_RETURN_IF_ERROR(ctx.status());
  DType dt = DType::kUndefined;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const TypeInfo& t = ctx.input_type(i);
    if (t.kind == TypeInfo::Kind::kUnknown || t.dtype == DType::kUndefined) continue;
    if (!t.is_tensor()) return ctx.fail("inputs must be tensors");
    if (!is_norm_dtype(t.dtype))
      return ctx.fail(std::string("unsupported dtype ") + dtype_name(t.dtype));
    if (dt != DType::kUndefined && t.dtype != dt) return ctx.fail("inputs differ in dtype");
    dt = t.dtype;
  }
  const TypeInfo& tx = ctx.input_type(0);
  const TypeInfo& ts = ctx.input_type(1);
  Shape out = Shape::unknown_rank();
  if (tx.is_tensor() && tx.shape.rank_known) out = tx.shape;
  if (ts.is_tensor() && ts.shape.rank_known) {
    if (!out.rank_known) {
      out = ts.shape;
    } else {
      if (ts.shape.rank() != out.rank()) return ctx.fail("X and Skip differ in rank");
      for (int d = 0; d < out.rank(); ++d) {
        ir::Dim& a = out.dims[static_cast<size_t>(d)];
        const ir::Dim& b = ts.shape.dims[static_cast<size_t>(d)];
        if (a.known() && b.known() && a.value != b.value) {
          return ctx.fail("X " + tx.shape.to_string() + " and Skip " + ts.shape.to_string() +
                          " differ in shape");
        }
        if (!a.known() && b.known()) a = b;
      }
    }
  }
  if (out.rank_known && out.rank() < 1) return ctx.fail("X must have rank >= 1");
  for (int i = 2; i < 4; ++i) {
    if (!ctx.has_input(i)) continue;
    const TypeInfo& t = ctx.input_type(i);
    if (!t.is_tensor() || !t.shape.rank_known) continue;
    if (t.shape.rank() != 1)
      return ctx.fail(i == 2 ? "Scale must have rank 1" : "B must have rank 1");
    const ir::Dim& l = t.shape.dims[0];
    if (out.rank_known && l.known() && out.dims.back().known() &&
        l.value != out.dims.back().value) {
      return ctx.fail("Scale and B must have the length of X's last dim");
    }
  }
  ctx.set_output(0, TypeInfo::tensor(dt, out));
  if (ctx.num_outputs() > 1) ctx.set_output(1, TypeInfo::tensor(dt, out));
  return Status::Ok();
}

}  // namespace

void register_fused_norm_ops(OpRegistry& r) {
  r.add(
      make_op_def(ir::kKilnDomain, std::string(kSkipLayerNorm), 3, 4, 1, 2, infer_skip_layer_norm));
}

}  // namespace kiln::ops
