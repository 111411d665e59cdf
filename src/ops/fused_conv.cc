// FusedConv: Conv + bias + residual Add + activation.
#include "ops/op_registry.h"

namespace kiln::ops {

void register_fused_conv_ops(OpRegistry&) {}

}  // namespace kiln::ops
