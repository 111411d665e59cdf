// CPU reference kernel of FusedConv.
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

void register_fused_conv_kernels(KernelRegistry&) {}

}  // namespace kiln::cpu
