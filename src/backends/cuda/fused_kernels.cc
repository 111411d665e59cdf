// CUDA kernels of Kiln's fused ops (domain "kiln"), one file per fused family.
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_fused_attention_kernels(KernelRegistry& r);
void register_fused_conv_kernels(KernelRegistry& r);
void register_fused_matmul_kernels(KernelRegistry& r);
void register_fused_norm_kernels(KernelRegistry& r);
void register_layout_copy_kernels(KernelRegistry& r);
void register_fused_pointwise_kernels(KernelRegistry& r);

void register_fused_kernels(KernelRegistry& r) {
  register_fused_conv_kernels(r);
  register_fused_matmul_kernels(r);
  register_fused_norm_kernels(r);
  register_layout_copy_kernels(r);
  register_fused_pointwise_kernels(r);
  register_fused_attention_kernels(r);
}

}  // namespace kiln::cuda
