// CUDA kernels of the nn family (registration).
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_nn_kernels(KernelRegistry& r) {
  (void)r;
}

}  // namespace kiln::cuda
