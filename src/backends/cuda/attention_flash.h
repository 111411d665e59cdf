// Fused attention forward pass on tensor cores (attention_flash.cu): Y = softmax(scale * Q K^T +
// bias) V in one kernel, without the [B, H, Sq, Skv] score tensor in memory. Each block takes 64
// query rows of one (batch, head) and walks the keys in tiles of 64 with an online softmax in
// float32 (running row maximum and sum), accumulating Y in float32.
//
// Handles float16 and bfloat16 Q/K/V with head size 32, 64, 80, 96 or 128 (V's head size equal to
// Q's), any sequence lengths, Q/K/V/Y addressed through (batch, head, sequence) element strides
// with contiguous head elements (4-D [B, H, S, D] and 3-D [B, S, H*D] alike), grouped heads (query
// head h reads KV head h / group), causal masking (key j > query i masked), and an additive mask
// of Q's dtype or a bool mask broadcast through (batch, head, query) strides, keys beyond its last
// dim masked. A query row whose every key is masked gives zeros (the CPU reference's rule).
// Attention (misc_attention.cc) takes this path for the cases it covers; the rest run the GEMM,
// softmax, GEMM path.
#pragma once

#include <cstdint>
#include <string>

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

struct FlashAttentionParams {
  DType dtype = DType::kUndefined;  // Q, K, V and Y
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* y = nullptr;
  int64_t batch = 0, q_heads = 0, kv_heads = 0, sq = 0, skv = 0, head_size = 0;
  // Element strides of batch, head and sequence; the head_size elements of a row are contiguous.
  int64_t q_stride[3] = {0, 0, 0};
  int64_t k_stride[3] = {0, 0, 0};
  int64_t v_stride[3] = {0, 0, 0};
  int64_t y_stride[3] = {0, 0, 0};
  float scale = 1.f;
  bool causal = false;
  // Optional mask: element (b, h, i, j) at b*mask_stride[0] + h*mask_stride[1] +
  // i*mask_stride[2] + j for j < mask_last; keys j >= mask_last are masked.
  const void* mask = nullptr;
  bool mask_bool = false;  // bool (one byte per element, true = attend), else Q's dtype
  int64_t mask_stride[3] = {0, 0, 0};
  int64_t mask_last = 0;
};

// "" when launch_flash_attention handles `p`, else the reason (shapes, head size, dtype,
// alignment of pointers and strides, grid limits).
std::string flash_attention_unsupported(const FlashAttentionParams& p);

// Launches the kernel on ctx's stream; fails (without launching) on parameters that
// flash_attention_unsupported refuses.
Status launch_flash_attention(KernelContext& ctx, const FlashAttentionParams& p);

// False when the environment sets KILN_ATTENTION_FLASH=0 (forces the GEMM path, for
// comparisons); read at each call.
bool flash_attention_enabled();

// Number of flash attention launches in this process (for tests and diagnostics).
uint64_t flash_attention_launch_count();

}  // namespace kiln::cuda
