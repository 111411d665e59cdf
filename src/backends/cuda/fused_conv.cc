// CUDA kernel of FusedConv: y = act(conv(X, W) + B + Z) through Conv's cuDNN path (nn_conv.cc):
// a cached cuDNN graph-API plan with the epilogue in it (conv_graph.cc), or on the legacy API
// cudnnConvolutionBiasActivationForward, where cuDNN takes the case; otherwise the convolution
// is followed by one epilogue kernel (fused_conv.cu). The channels-last form
// (`channels_last` = 1, src/ops/layout.h) runs on NHWC descriptors; the channels-last pools run
// our own NHWC kernel (fused_conv.cu).
#include "ops/fused_conv.h"

#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"
#include "ops/layout.h"
#include "ops/nn_window.h"

namespace kiln::cuda {
namespace {

int rank_of(const ir::Node& node, int i) {
  if (!node.has_input(i)) return -1;
  const ir::TypeInfo& t = node.inputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() && t.shape.rank_known ? t.shape.rank() : -1;
}

// The channels-last forms take 2-D windows with explicit (or VALID) pads; a convolution's pads
// must also be symmetric (cuDNN pads symmetrically, and NHWC has no padding copy).
std::string channels_last_window_supports(const ir::Node& node, bool symmetric) {
  Status err;
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET", &err);
  if (!err.ok()) return "auto_pad";
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return "channels-last with auto_pad " + auto_pad;
  const std::vector<int64_t> pads = node.attr_ints("pads", {}, &err);
  if (!err.ok()) return "pads";
  if (symmetric && pads.size() == 4 && (pads[0] != pads[2] || pads[1] != pads[3])) {
    return "channels-last with asymmetric pads";
  }
  for (int i : {0, 1}) {
    const int r = rank_of(node, i);
    if (i < node.num_inputs() && r >= 0 && r != 4) {
      return "channels-last rank " + std::to_string(r) + " (2-D only)";
    }
  }
  return {};
}

bool channels_last_attr(const ir::Node& node, std::string* why) {
  Status err;
  const int64_t v = node.attr_int(ops::kChannelsLastAttr, 0, &err);
  if (!err.ok() || (v != 0 && v != 1)) *why = "channels_last must be 0 or 1";
  return v == 1;
}

std::string fused_conv_supports(const ir::Node& node) {
  ops::ConvActivation act;
  Status attr_error;
  const std::string name = node.attr_string("activation", "", &attr_error);
  if (!attr_error.ok() || !ops::parse_conv_activation(name, &act)) {
    return "activation '" + name + "'";
  }
  std::string why;
  if (channels_last_attr(node, &why)) {
    if (std::string r = channels_last_window_supports(node, true); !r.empty()) return r;
  }
  if (!why.empty()) return why;
  return conv_supports(node);  // every present input and the output share X's dtype
}

Status fused_conv_run(KernelContext& ctx) {
  ConvEpilogue ep;
  const std::string name = ctx.attr_string("activation");
  const int64_t channels_last = ctx.attr_int(ops::kChannelsLastAttr, 0);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (!ops::parse_conv_activation(name, &ep.act)) {
    return ctx.unsupported("unknown activation '" + name + "'");
  }
  if (channels_last != 0 && channels_last != 1) return ctx.invalid("channels_last must be 0 or 1");
  const DeviceTensor* B = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (ctx.has_input(3)) {
    const DeviceTensor& Z = ctx.input(3);
    if (Z.dtype != ctx.input(0).dtype) return ctx.invalid("residual Z must have the dtype of X");
    ep.z = Z.data;
    ep.z_shape = &Z.shape;  // checked against the output's shape before anything runs
  }
  return conv_forward(ctx, B, ep, "FusedConv", channels_last == 1);
}

// ---- channels-last MaxPool / AveragePool ----

std::string channels_last_pool_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBFloat16 &&
      t != DType::kFloat64) {
    return std::string("dtype ") + dtype_name(t);
  }
  if (std::string r = require_dtypes(node, {t}); !r.empty()) return r;
  return channels_last_window_supports(node, false);
}

Status channels_last_pool_run(KernelContext& ctx, bool max) {
  const DeviceTensor& X = ctx.input(0);
  if (X.rank() != 4) return ctx.unsupported("channels-last pooling needs X of rank 4");
  ops::WindowOptions opts;
  opts.allow_ceil_mode = true;
  opts.allow_dilations = true;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), 2, opts));
  const bool cip = ctx.attr_int("count_include_pad", 0) != 0;
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  ChannelsLastPoolGeom g;
  g.n = X.dim(0);
  g.h = X.dim(1);
  g.w = X.dim(2);
  g.c = X.dim(3);
  KILN_ASSIGN_OR_RETURN(g.oh, ops::window_output(ctx.node(), w, 0, g.h));
  KILN_ASSIGN_OR_RETURN(g.ow, ops::window_output(ctx.node(), w, 1, g.w));
  g.kh = w.kernel[0];
  g.kw = w.kernel[1];
  g.sh = w.strides[0];
  g.sw = w.strides[1];
  g.dh = w.dilations[0];
  g.dw = w.dilations[1];
  g.pt = w.pads[0];
  g.pl = w.pads[1];
  g.pb = w.pads[2];
  g.pr = w.pads[3];
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, {g.n, g.oh, g.ow, g.c}));
  if (Y->numel() == 0) return Status::Ok();
  return launch_channels_last_pool(ctx, X.dtype, g, max, cip, X.data, Y->data);
}

Status channels_last_max_pool_run(KernelContext& ctx) {
  return channels_last_pool_run(ctx, true);
}
Status channels_last_average_pool_run(KernelContext& ctx) {
  return channels_last_pool_run(ctx, false);
}

}  // namespace

void register_fused_conv_kernels(KernelRegistry& r) {
  KernelDef def{ir::kKilnDomain, ops::kFusedConvOp, fused_conv_supports, fused_conv_run};
  def.tunable = true;
  r.add(def);
  r.add({ir::kKilnDomain, ops::kChannelsLastMaxPoolOp, channels_last_pool_supports,
         channels_last_max_pool_run});
  r.add({ir::kKilnDomain, ops::kChannelsLastAveragePoolOp, channels_last_pool_supports,
         channels_last_average_pool_run});
}

}  // namespace kiln::cuda
