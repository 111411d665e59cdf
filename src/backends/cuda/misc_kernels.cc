// CUDA kernels of the misc family (registration).
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_misc_kernels(KernelRegistry& r) {
  (void)r;
}

}  // namespace kiln::cuda
