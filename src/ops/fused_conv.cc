// FusedConv: Conv + bias + residual Add + activation (domain "kiln"). Shape inference is Conv's;
// the residual Z must have the output's dtype and, where both are known, its dims. With
// `channels_last` = 1 (src/ops/layout.h) X, Z and Y are [N, spatial..., C] and W is
// [M, kernel..., C/group]: inference permutes them to Conv's layout and the output back. The
// channels-last pools (kiln.ChannelsLastMaxPool / AveragePool) are registered here too.
#include "ops/fused_conv.h"

#include "ops/layout.h"
#include "ops/nn_window.h"
#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

// `t` with its dims permuted: result.dims[i] = t.dims[perm[i]] (unknown ranks stay unknown).
ir::TypeInfo permuted(const ir::TypeInfo& t, const std::vector<int64_t>& perm) {
  if (!t.is_tensor() || !t.shape.rank_known || t.shape.rank() != static_cast<int>(perm.size())) {
    return t;
  }
  ir::TypeInfo out = t;
  for (size_t i = 0; i < perm.size(); ++i) {
    out.shape.dims[i] = t.shape.dims[static_cast<size_t>(perm[i])];
  }
  return out;
}

// Reads channels_last (0 or 1).
Status read_channels_last(InferContext& ctx, bool* out) {
  const int64_t v = ctx.attr_int(kChannelsLastAttr, 0);
  KILN_RETURN_IF_ERROR(ctx.status());
  if (v != 0 && v != 1) return ctx.fail("channels_last must be 0 or 1");
  *out = v == 1;
  return Status::Ok();
}

// Runs `inner` (a channels-first inference of output 0) on the inputs listed in `permute`
// brought from channels-last to channels-first, and writes output 0 back in channels-last.
Status infer_as_channels_first(InferContext& ctx, InferFn inner, const std::vector<int>& permute) {
  std::vector<ir::TypeInfo> types(static_cast<size_t>(ctx.num_inputs()));
  std::vector<const ir::TypeInfo*> ptrs;
  std::vector<const Tensor*> consts;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const ir::TypeInfo& t = ctx.input_type(i);
    types[static_cast<size_t>(i)] = t;
    for (int p : permute) {
      if (p == i && t.is_tensor() && t.shape.rank_known) {
        if (t.shape.rank() < 3) {
          return ctx.fail("channels-last input " + std::to_string(i) +
                          " must have rank >= 3, got " + t.shape.to_string());
        }
        types[static_cast<size_t>(i)] = permuted(t, to_channels_first_perm(t.shape.rank()));
      }
    }
    ptrs.push_back(&types[static_cast<size_t>(i)]);
    consts.push_back(ctx.input_constant(i));
  }
  InferContext sub(ctx.node(), std::move(ptrs), std::move(consts));
  KILN_RETURN_IF_ERROR(inner(sub));
  const ir::TypeInfo& y = sub.outputs()[0];
  ctx.set_output(0, y.shape.rank_known ? permuted(y, to_channels_last_perm(y.shape.rank())) : y);
  return Status::Ok();
}

Status infer_fused_conv(InferContext& ctx) {
  ConvActivation act;
  const std::string name = ctx.attr_string("activation");
  KILN_RETURN_IF_ERROR(ctx.status());
  if (!parse_conv_activation(name, &act)) return ctx.fail("unknown activation '" + name + "'");
  bool channels_last = false;
  KILN_RETURN_IF_ERROR(read_channels_last(ctx, &channels_last));
  if (channels_last) {
    KILN_RETURN_IF_ERROR(infer_as_channels_first(ctx, infer_conv, {0, 1}));
  } else {
    KILN_RETURN_IF_ERROR(infer_conv(ctx));
  }
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

Status infer_channels_last_pool(InferContext& ctx) {
  return infer_as_channels_first(ctx, infer_pool, {0});
}

}  // namespace

void register_fused_conv_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, kFusedConvOp, 2, 4, 1, 1, infer_fused_conv));
  r.add(make_op_def(ir::kKilnDomain, kChannelsLastMaxPoolOp, 1, 1, 1, 1, infer_channels_last_pool));
  r.add(make_op_def(ir::kKilnDomain, kChannelsLastAveragePoolOp, 1, 1, 1, 1,
                    infer_channels_last_pool));
}

}  // namespace kiln::ops
