// Helpers shared by the misc family's reference kernels: they compute in double and convert at
// the edges, which keeps the kernels short and dtype-agnostic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"

namespace kiln::cpu::misc {

// Every element of a numeric tensor as double (float8/sub-byte decoded).
std::vector<double> to_doubles(const Tensor& t);
// Every element of an integer tensor as int64.
std::vector<int64_t> to_int64s(const Tensor& t);
// Builds output `i` of `dtype` and `shape` from doubles (rounded as a Cast would).
Status emit_doubles(KernelContext& ctx, int i, DType dtype, std::vector<int64_t> shape,
                    const std::vector<double>& values);
// Scalar (or 1-element) input as int64 / double; errors name `what`.
StatusOr<int64_t> scalar_int(const KernelContext& ctx, int i, const char* what);
StatusOr<double> scalar_double(const KernelContext& ctx, int i, const char* what);
// Fails (out of range) when a work buffer of `shape` doubles would pass the size limit; kernels
// call it before allocating scratch space sized from model-supplied dims.
Status check_scratch(const KernelContext& ctx, const std::vector<int64_t>& shape);
// Fails unless inputs 0..n-1 are all present (a model may omit a required input by name).
Status require_inputs(const KernelContext& ctx, int n);
// Attention's computation (misc_attention.cc) on the given tensors, reading the running node's
// attributes (q_num_heads, kv_num_heads, is_causal, scale, softcap, windows,
// qk_matmul_output_mode) and writing its outputs: Attention passes its inputs,
// kiln.PackedAttention the Q, K and V it slices from the packed tensor. Null = absent.
struct AttentionTensors {
  const Tensor* q = nullptr;
  const Tensor* k = nullptr;
  const Tensor* v = nullptr;
  const Tensor* mask = nullptr;
  const Tensor* past_key = nullptr;
  const Tensor* past_value = nullptr;
  const Tensor* nonpad_kv_seqlen = nullptr;
};
Status attention_forward(KernelContext& ctx, const AttentionTensors& in);
// True for float32/float64/float16/bfloat16.
bool is_plain_float(DType t);

}  // namespace kiln::cpu::misc
