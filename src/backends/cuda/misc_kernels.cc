// CUDA kernels of the misc family (registration): Einsum (misc_einsum.cc) and Attention
// (misc_attention.cc / .cu) and RNN/GRU/LSTM (misc_rnn.cc / .cu) and
// NonMaxSuppression (misc_nms.cu), built on the nn family's
// batched GEMM.
#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {

void register_misc_kernels(KernelRegistry& r) {
  register_einsum_kernels(r);
  register_attention_kernels(r);
  register_rnn_kernels(r);
  register_nms_kernels(r);
}

}  // namespace kiln::cuda
