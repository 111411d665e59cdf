// Kiln's fused ops (domain "kiln"): one file per fused family, registered here.
#include "ops/op_registry.h"

namespace kiln::ops {

void register_fused_attention_ops(OpRegistry& r);
void register_fused_conv_ops(OpRegistry& r);
void register_fused_matmul_ops(OpRegistry& r);
void register_fused_norm_ops(OpRegistry& r);
void register_layout_copy_ops(OpRegistry& r);
void register_fused_pointwise_ops(OpRegistry& r);

void register_fused_ops(OpRegistry& r) {
  register_fused_conv_ops(r);
  register_fused_matmul_ops(r);
  register_fused_norm_ops(r);
  register_layout_copy_ops(r);
  register_fused_pointwise_ops(r);
  register_fused_attention_ops(r);
}

}  // namespace kiln::ops
