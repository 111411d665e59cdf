// CUDA kernels of the elementwise family (registration; kernels in elementwise_*.cu).
#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_elementwise_kernels(KernelRegistry& r) {
  register_ew_binary_kernels(r);
  register_ew_unary_kernels(r);
  register_ew_misc_kernels(r);
  register_ew_cast_kernels(r);
}

}  // namespace kiln::cuda
