// CUDA kernels of the misc family (registration): Einsum (misc_einsum.cc) and Attention
// (misc_attention.cc / .cu) and RNN/GRU/LSTM (misc_rnn.cc / .cu), built on the nn family's
// batched GEMM; NonMaxSuppression (misc_nms.cu); QuantizeLinear, DequantizeLinear and
// DynamicQuantizeLinear (misc_quantize.cu).
#include "backends/cuda/kernel.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {

void register_misc_kernels(KernelRegistry& r) {
  register_einsum_kernels(r);
  register_attention_kernels(r);
  register_rnn_kernels(r);
  register_nms_kernels(r);
  register_quantize_kernels(r);
}

}  // namespace kiln::cuda
