// CPU reference kernel of FusedConv: Conv's kernel (conv.cc), then y = act(y + Z). float16 and
// bfloat16 results are rounded after the convolution and again after the epilogue, as the
// unfused Conv, Add and Relu would round them. The channels-last form (`channels_last` = 1) and
// the channels-last pools permute to channels-first, run the same code and permute the result
// back: a reference, not a fast path.
#include <algorithm>

#include "backends/cpu/kernel.h"
#include "backends/cpu/nn_internal.h"
#include "backends/cpu/nn_util.h"
#include "backends/cpu/tensor_util.h"
#include "ops/fused_conv.h"
#include "ops/layout.h"
#include "ops/shape_util.h"

namespace kiln::cpu {
namespace {

template <typename T>
void epilogue(T* y, const T* z, int64_t n, ops::ConvActivation act) {
  for (int64_t i = 0; i < n; ++i) {
    T v = y[i];
    if (z) v += z[i];
    switch (act) {
      case ops::ConvActivation::kNone:
        break;
      case ops::ConvActivation::kRelu:
        v = v < T(0) ? T(0) : v;  // NaN stays NaN
        break;
    }
    y[i] = v;
  }
}

// x transposed by `perm` (y.shape[i] = x.shape[perm[i]]).
StatusOr<Tensor> permute(const Tensor& x, const std::vector<int64_t>& perm) {
  const std::vector<int64_t> in_strides = contiguous_strides(x.shape());
  std::vector<int64_t> shape, strides;
  for (int64_t p : perm) {
    shape.push_back(x.dim(static_cast<int>(p)));
    strides.push_back(in_strides[static_cast<size_t>(p)]);
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, Tensor::create(x.dtype(), shape));
  strided_copy(x, &y, 0, strides);
  return y;
}

// Output 0 (channels-first) permuted to channels-last.
Status output_to_channels_last(KernelContext& ctx) {
  const Tensor& Y = ctx.outputs()[0].tensor;
  KILN_ASSIGN_OR_RETURN(Tensor yl, permute(Y, ops::to_channels_last_perm(Y.rank())));
  ctx.set_output(0, std::move(yl));
  return Status::Ok();
}

Status fused_conv_nchw(KernelContext& ctx, const Tensor& X, const Tensor& W, const Tensor* B,
                       const Tensor* Z, ops::ConvActivation act) {
  KILN_RETURN_IF_ERROR(conv_forward(ctx, X, W, B));
  Tensor& Y = ctx.outputs()[0].tensor;
  if (Z && (Z->dtype() != Y.dtype() || Z->shape() != Y.shape())) {
    return ctx.invalid("residual Z " + Z->type_string() + " does not match the output " +
                       Y.type_string());
  }
  if (!Z && act == ops::ConvActivation::kNone) return Status::Ok();
  if (Y.numel() == 0) return Status::Ok();
  switch (Y.dtype()) {
    case DType::kFloat32:
      epilogue<float>(Y.mutable_data<float>(), Z ? Z->data<float>() : nullptr, Y.numel(), act);
      return Status::Ok();
    case DType::kFloat64:
      epilogue<double>(Y.mutable_data<double>(), Z ? Z->data<double>() : nullptr, Y.numel(), act);
      return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      const DType dt = Y.dtype();
      KILN_ASSIGN_OR_RETURN(Tensor yf, as_float(Y));  // a new float32 tensor
      Tensor zf;
      if (Z) {
        KILN_ASSIGN_OR_RETURN(zf, as_float(*Z));
      }
      epilogue<float>(yf.mutable_data<float>(), Z ? zf.data<float>() : nullptr, yf.numel(), act);
      KILN_ASSIGN_OR_RETURN(Tensor yo, from_float(std::move(yf), dt));
      ctx.set_output(0, std::move(yo));
      return Status::Ok();
    }
    default:
      return ctx.unsupported_type(Y.dtype());
  }
}

StatusOr<bool> read_channels_last(KernelContext& ctx) {
  const int64_t v = ctx.attr_int(ops::kChannelsLastAttr, 0);
  if (v != 0 && v != 1) return ctx.invalid("channels_last must be 0 or 1");
  return v == 1;
}

Status fused_conv_kernel(KernelContext& ctx) {
  ops::ConvActivation act;
  const std::string name = ctx.attr_string("activation");
  if (!ops::parse_conv_activation(name, &act)) {
    return ctx.unsupported("unknown activation '" + name + "'");
  }
  KILN_ASSIGN_OR_RETURN(bool channels_last, read_channels_last(ctx));
  const Tensor& X = ctx.tensor(0);
  const Tensor& W = ctx.tensor(1);
  const Tensor* B = ctx.has_input(2) ? &ctx.tensor(2) : nullptr;
  const Tensor* Z = ctx.has_input(3) ? &ctx.tensor(3) : nullptr;
  if (!channels_last) return fused_conv_nchw(ctx, X, W, B, Z, act);
  if (X.rank() < 3 || W.rank() != X.rank() || (Z && Z->rank() != X.rank())) {
    return ctx.invalid("channels-last X " + X.type_string() + ", W " + W.type_string() +
                       (Z ? ", Z " + Z->type_string() : std::string()) +
                       ": ranks must match and be at least 3");
  }
  const std::vector<int64_t> first = ops::to_channels_first_perm(X.rank());
  KILN_ASSIGN_OR_RETURN(Tensor xf, permute(X, first));
  KILN_ASSIGN_OR_RETURN(Tensor wf, permute(W, first));
  Tensor zf;
  if (Z) {
    KILN_ASSIGN_OR_RETURN(zf, permute(*Z, first));
  }
  KILN_RETURN_IF_ERROR(fused_conv_nchw(ctx, xf, wf, B, Z ? &zf : nullptr, act));
  return output_to_channels_last(ctx);
}

Status channels_last_pool_kernel(KernelContext& ctx, bool max) {
  const Tensor& X = ctx.tensor(0);
  if (X.rank() < 3) return ctx.invalid("X must have rank >= 3, got " + X.type_string());
  KILN_ASSIGN_OR_RETURN(Tensor xf, permute(X, ops::to_channels_first_perm(X.rank())));
  KILN_RETURN_IF_ERROR(pool_forward(ctx, xf, max));
  return output_to_channels_last(ctx);
}

Status channels_last_max_pool_kernel(KernelContext& ctx) {
  return channels_last_pool_kernel(ctx, true);
}
Status channels_last_average_pool_kernel(KernelContext& ctx) {
  return channels_last_pool_kernel(ctx, false);
}

}  // namespace

void register_fused_conv_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kFusedConvOp, fused_conv_kernel);
  r.add(ir::kKilnDomain, ops::kChannelsLastMaxPoolOp, channels_last_max_pool_kernel);
  r.add(ir::kKilnDomain, ops::kChannelsLastAveragePoolOp, channels_last_average_pool_kernel);
}

}  // namespace kiln::cpu
