// CPU reference kernel of FusedMatMul.
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

void register_fused_matmul_kernels(KernelRegistry&) {}

}  // namespace kiln::cpu
