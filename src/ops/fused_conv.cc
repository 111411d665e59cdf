// FusedConv: Conv + bias + residual Add + activation (domain "kiln"). Shape inference is Conv's;
// the residual Z must have the output's dtype and, where both are known, its dims.
#include "ops/fused_conv.h"

#include "ops/nn_window.h"
#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

Status infer_fused_conv(InferContext& ctx) {
  ConvActivation act;
  const std::string name = ctx.attr_string("activation");
  KILN_RETURN_IF_ERROR(ctx.status());
  if (!parse_conv_activation(name, &act)) return ctx.fail("unknown activation '" + name + "'");
  KILN_RETURN_IF_ERROR(infer_conv(ctx));
  if (!ctx.has_input(3) || !ctx.input_type(3).is_tensor()) return Status::Ok();
  const ir::TypeInfo& z = ctx.input_type(3);
  const ir::TypeInfo& y = ctx.outputs()[0];
  if (z.dtype != DType::kUndefined && y.dtype != DType::kUndefined && z.dtype != y.dtype) {
    return ctx.fail(std::string("residual Z has dtype ") + dtype_name(z.dtype) + ", output has " +
                    dtype_name(y.dtype));
  }
  if (!z.shape.rank_known || !y.shape.rank_known) return Status::Ok();
  if (z.shape.rank() != y.shape.rank()) {
    return ctx.fail("residual Z " + z.shape.to_string() + " does not have the output's shape " +
                    y.shape.to_string());
  }
  for (int i = 0; i < z.shape.rank(); ++i) {
    const ir::Dim& a = z.shape.dims[static_cast<size_t>(i)];
    const ir::Dim& b = y.shape.dims[static_cast<size_t>(i)];
    if (a.known() && b.known() && a.value != b.value) {
      return ctx.fail("residual Z " + z.shape.to_string() + " does not have the output's shape " +
                      y.shape.to_string());
    }
  }
  return Status::Ok();
}

}  // namespace

void register_fused_conv_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, kFusedConvOp, 2, 4, 1, 1, infer_fused_conv));
}

}  // namespace kiln::ops
