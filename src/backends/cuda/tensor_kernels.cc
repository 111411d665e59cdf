// CUDA kernels of the tensor family (registration).
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_tensor_kernels(KernelRegistry& r) {
  (void)r;
}

}  // namespace kiln::cuda
