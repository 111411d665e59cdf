// CPU reference kernel of FusedConv: Conv's kernel (conv.cc), then y = act(y + Z). float16 and
// bfloat16 results are rounded after the convolution and again after the epilogue, as the
// unfused Conv, Add and Relu would round them.
#include <algorithm>

#include "backends/cpu/kernel.h"
#include "backends/cpu/nn_internal.h"
#include "backends/cpu/nn_util.h"
#include "ops/fused_conv.h"

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

Status fused_conv_kernel(KernelContext& ctx) {
  ops::ConvActivation act;
  const std::string name = ctx.attr_string("activation");
  if (!ops::parse_conv_activation(name, &act)) {
    return ctx.unsupported("unknown activation '" + name + "'");
  }
  const Tensor& X = ctx.tensor(0);
  const Tensor* Z = ctx.has_input(3) ? &ctx.tensor(3) : nullptr;
  KILN_RETURN_IF_ERROR(
      conv_forward(ctx, X, ctx.tensor(1), ctx.has_input(2) ? &ctx.tensor(2) : nullptr));
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

}  // namespace

void register_fused_conv_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kFusedConvOp, fused_conv_kernel);
}

}  // namespace kiln::cpu
