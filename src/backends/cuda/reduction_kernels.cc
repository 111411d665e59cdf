// CUDA kernels of the reduction family (registration).
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_reduction_kernels(KernelRegistry& r) {
  (void)r;
}

}  // namespace kiln::cuda
