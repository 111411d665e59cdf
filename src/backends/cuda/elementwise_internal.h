// Registration entry points of the CUDA elementwise and reduction sub-families (one per .cu).
#pragma once

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

void register_ew_binary_kernels(KernelRegistry& r);    // elementwise_binary.cu
void register_ew_unary_kernels(KernelRegistry& r);     // elementwise_unary.cu
void register_ew_misc_kernels(KernelRegistry& r);      // elementwise_misc.cu (Where, Clip, Sum...)
void register_ew_cast_kernels(KernelRegistry& r);      // elementwise_cast.cu
void register_red_reduce_kernels(KernelRegistry& r);   // reduction_reduce.cu (Reduce*, Arg*)
void register_red_softmax_kernels(KernelRegistry& r);  // reduction_softmax.cu
void register_red_misc_kernels(KernelRegistry& r);     // reduction_misc.cu (CumSum, TopK)
void register_red_loss_kernels(KernelRegistry& r);     // reduction_loss.cu (NLL, SCE)

}  // namespace kiln::cuda
