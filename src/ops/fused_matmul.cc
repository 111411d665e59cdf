// FusedMatMul: MatMul/Gemm + bias + activation (cuBLASLt epilogues on the GPU).
#include "ops/op_registry.h"

namespace kiln::ops {

void register_fused_matmul_ops(OpRegistry&) {}

}  // namespace kiln::ops
