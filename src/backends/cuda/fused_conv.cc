// CUDA kernel of FusedConv.
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_fused_conv_kernels(KernelRegistry&) {}

}  // namespace kiln::cuda
