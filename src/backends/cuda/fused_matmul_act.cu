// Pointwise epilogue of FusedMatMul for what cuBLASLt's epilogues do not compute as the CPU
// reference does: exact (erf) GELU, tanh GELU in float32, and the K = 0 case.
#include "backends/cuda/common.cuh"
#include "backends/cuda/fused_matmul_internal.h"

namespace kiln::cuda {
namespace {

using ops::MatMulActivation;

__device__ __forceinline__ float apply_activation(int act, float x) {
  switch (act) {
    case static_cast<int>(MatMulActivation::kRelu):
      return x < 0.f ? 0.f : x;  // NaN passes through, as in Relu
    case static_cast<int>(MatMulActivation::kGelu):
      return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case static_cast<int>(MatMulActivation::kGeluTanh): {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    default:
      return x;
  }
}

template <int ACT>
__device__ __forceinline__ float activate(float x) {
  return apply_activation(ACT, x);  // ACT is a constant: the switch folds away
}

// The vectorized form: VEC elements (16 bytes) per thread and 32-bit indexing, for tensors whose
// total and row length are multiples of VEC and whose pointers are 16-byte aligned. One thread
// reads one 16-byte vector of y (and of the bias) and writes it back.
template <typename T, int ACT>
__global__ void bias_activation_vec_kernel(T* y, const T* bias, uint32_t vectors,
                                           uint32_t row_vectors) {
  constexpr int VEC = 16 / sizeof(T);
  const uint32_t v = blockIdx.x * blockDim.x + threadIdx.x;
  if (v >= vectors) return;
  uint4 raw = reinterpret_cast<const uint4*>(y)[v];
  const T* x = reinterpret_cast<const T*>(&raw);
  T out[VEC];
  if (bias != nullptr) {
    const uint4 braw = reinterpret_cast<const uint4*>(bias)[v % row_vectors];
    const T* b = reinterpret_cast<const T*>(&braw);
#pragma unroll
    for (int j = 0; j < VEC; ++j) out[j] = from_f<T>(activate<ACT>(load_f(x, j) + load_f(b, j)));
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) out[j] = from_f<T>(activate<ACT>(load_f(x, j)));
  }
  reinterpret_cast<uint4*>(y)[v] = *reinterpret_cast<const uint4*>(out);
}

template <typename T>
bool launch_vec(cudaStream_t s, T* y, const T* bias, int64_t total, int64_t n,
                MatMulActivation act) {
  constexpr int VEC = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (total % VEC != 0 || n % VEC != 0 || total / VEC >= (int64_t{1} << 31) || !aligned(y) ||
      (bias != nullptr && !aligned(bias))) {
    return false;
  }
  const auto vectors = static_cast<uint32_t>(total / VEC);
  const auto row_vectors = static_cast<uint32_t>(n / VEC);
  const unsigned block = 256, grid = (vectors + block - 1) / block;
  switch (act) {
    case MatMulActivation::kNone:
      bias_activation_vec_kernel<T, static_cast<int>(MatMulActivation::kNone)>
          <<<grid, block, 0, s>>>(y, bias, vectors, row_vectors);
      return true;
    case MatMulActivation::kRelu:
      bias_activation_vec_kernel<T, static_cast<int>(MatMulActivation::kRelu)>
          <<<grid, block, 0, s>>>(y, bias, vectors, row_vectors);
      return true;
    case MatMulActivation::kGelu:
      bias_activation_vec_kernel<T, static_cast<int>(MatMulActivation::kGelu)>
          <<<grid, block, 0, s>>>(y, bias, vectors, row_vectors);
      return true;
    case MatMulActivation::kGeluTanh:
      bias_activation_vec_kernel<T, static_cast<int>(MatMulActivation::kGeluTanh)>
          <<<grid, block, 0, s>>>(y, bias, vectors, row_vectors);
      return true;
  }
  return false;
}

template <typename T>
__global__ void bias_activation_kernel(T* y, const T* bias, int64_t total, int64_t n, int act) {
  KILN_GRID_STRIDE_LOOP(i, total) {
    float x = load_f(y, i);
    if (bias != nullptr) x += load_f(bias, i % n);
    y[i] = from_f<T>(apply_activation(act, x));
  }
}

}  // namespace

Status launch_bias_activation(KernelContext& ctx, DType dtype, void* y, const void* bias,
                              int64_t rows, int64_t n, MatMulActivation act) {
  if (rows <= 0 || n <= 0) return Status::Ok();
  if (bias == nullptr && act == MatMulActivation::kNone) return Status::Ok();
  if (dtype == DType::kFloat64) return ctx.unsupported_type(dtype);
  const int64_t total = rows * n;
  const Launch l = launch_for(total);
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (launch_vec<T>(ctx.stream(), static_cast<T*>(y), static_cast<const T*>(bias), total, n,
                      act)) {
      return;
    }
    bias_activation_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), total, n, static_cast<int>(act));
  });
  if (!ok) return ctx.unsupported_type(dtype);
  return ctx.check_launch("FusedMatMul epilogue");
}

}  // namespace kiln::cuda
