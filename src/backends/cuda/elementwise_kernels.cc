// CUDA kernels of the elementwise family (registration).
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_elementwise_kernels(KernelRegistry& r) {
  (void)r;
}

}  // namespace kiln::cuda
