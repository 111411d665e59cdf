// Shared helpers of the CUDA backend: error checks that turn CUDA, cuBLASLt and cuDNN failures
// into Status values. Only code under src/backends/cuda includes CUDA headers.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

// A Status for a failed CUDA runtime call: out-of-memory gets kOutOfMemory, the rest kInternal.
Status cuda_error(cudaError_t e, const char* what);

}  // namespace kiln::cuda

// Returns from the enclosing function (Status or StatusOr) when a CUDA runtime call fails.
#define KILN_CUDA_RETURN_IF_ERROR(expr)                       \
  do {                                                        \
    cudaError_t kiln_cuda_err_ = (expr);                      \
    if (kiln_cuda_err_ != cudaSuccess) {                      \
      return ::kiln::cuda::cuda_error(kiln_cuda_err_, #expr); \
    }                                                         \
  } while (0)
