// CUDA C++ source for a kiln.Pointwise program, and its compilation with NVRTC to a CUBIN.
// The generated source includes no headers (NVRTC's built-in math functions and inline PTX for
// the float16/bfloat16 conversions), so it compiles without a CUDA toolkit installed.
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"
#include "kiln/status.h"
#include "ops/fused_pointwise.h"

namespace kiln::cuda {

// The kernels' names in the generated source: 32-bit index math (numel < 2^31) and 64-bit.
inline constexpr const char* kPointwiseKernel32 = "kiln_pointwise32";
inline constexpr const char* kPointwiseKernel64 = "kiln_pointwise64";

// Both kernels take one struct by value; every field is 8 bytes, in this order:
//   int64 numel; int64 dims[rank]; int64 strides[num_inputs][rank] (elements, 0 along broadcast
//   dims); pointer in[num_inputs]; pointer out[num_outputs].
// One thread per output element (grid-stride loop). Each input is loaded at its broadcast
// offset; float16/bfloat16 are computed in float and rounded after every instruction as the CPU
// kernel does (backends/cpu/fused_pointwise.cc), so results match it to float rounding (the
// transcendental functions are CUDA's, not the CPU's).
std::string pointwise_cuda_source(const ops::PwProgram& p, const std::vector<DType>& input_dtypes,
                                  int rank);

// Number of 8-byte parameter words for a program with this shape.
inline size_t pointwise_param_words(int rank, int num_inputs, int num_outputs) {
  return 1 + static_cast<size_t>(rank) + static_cast<size_t>(num_inputs) * rank + num_inputs +
         num_outputs;
}

// Compiles `source` with NVRTC for sm_<arch> (e.g. 90) into a CUBIN. Needs no GPU.
StatusOr<std::vector<char>> nvrtc_compile_cubin(const std::string& source, int arch);

}  // namespace kiln::cuda
