// CUDA kernels of the reduction family (registration; kernels in reduction_*.cu).
#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_reduction_kernels(KernelRegistry& r) {
  register_red_reduce_kernels(r);
  register_red_softmax_kernels(r);
  register_red_misc_kernels(r);
  register_red_loss_kernels(r);
}

}  // namespace kiln::cuda
