// CUDA kernel of FusedConv: y = act(conv(X, W) + B + Z) through Conv's cuDNN path (nn_conv.cc),
// which runs cudnnConvolutionBiasActivationForward where cuDNN takes the case and otherwise
// follows the convolution with one epilogue kernel (fused_conv.cu).
#include "ops/fused_conv.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

std::string fused_conv_supports(const ir::Node& node) {
  ops::ConvActivation act;
  Status attr_error;
  const std::string name = node.attr_string("activation", "", &attr_error);
  if (!attr_error.ok() || !ops::parse_conv_activation(name, &act)) {
    return "activation '" + name + "'";
  }
  return conv_supports(node);  // every present input and the output share X's dtype
}

Status fused_conv_run(KernelContext& ctx) {
  ConvEpilogue ep;
  const std::string name = ctx.attr_string("activation");
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (!ops::parse_conv_activation(name, &ep.act)) {
    return ctx.unsupported("unknown activation '" + name + "'");
  }
  const DeviceTensor* B = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (ctx.has_input(3)) {
    const DeviceTensor& Z = ctx.input(3);
    if (Z.dtype != ctx.input(0).dtype) return ctx.invalid("residual Z must have the dtype of X");
    ep.z = Z.data;
    ep.z_shape = &Z.shape;  // checked against the output's shape before anything runs
  }
  return conv_forward(ctx, B, ep, "FusedConv");
}

}  // namespace

void register_fused_conv_kernels(KernelRegistry& r) {
  KernelDef def{ir::kKilnDomain, ops::kFusedConvOp, fused_conv_supports, fused_conv_run};
  def.tunable = true;
  r.add(def);
}

}  // namespace kiln::cuda
