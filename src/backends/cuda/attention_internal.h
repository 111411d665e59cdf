// Pieces of Attention's CUDA kernel (misc_attention.cc) that kiln.PackedAttention
// (fused_attention.cc) runs too: the attn_mask arguments, the flash kernel's mask fields, and
// the GEMM → mask/softmax → GEMM path.
#pragma once

#include <cstdint>

#include "backends/cuda/attention_flash.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {

// Fills sa's mask fields from attn_mask `m` (bool or sa->dtype, rank 1..4, broadcast to
// [sa->batch, sa->heads, sa->sq, <= sa->total]); errors name the running node.
Status attention_mask_args(KernelContext& ctx, const DeviceTensor& m, AttentionScoreArgs* sa);

// The flash kernel's causal flag and mask fields from the score arguments.
void flash_mask_from(const AttentionScoreArgs& sa, FlashAttentionParams* p);

// One attention on the GEMM path. Q [B, Hq, Sq, D], K [B, Hkv, Skv, D], V [B, Hkv, Skv, Dv]
// dense when in_bhsd, else [B, S, H*D] dense; Y (allocated) [B, Hq, Sq, Dv] when out_bhsd, else
// [B, Sq, Hq*Dv]. past_k/past_v ([B, Hkv, past, D/Dv]) when past > 0; present_k/present_v/qk:
// optional outputs (allocated). sa: the score arguments (mask, causal, windows, softcap, qk
// mode, nonpad) with dtype, batch, heads (Hq), sq, total and past set.
struct AttentionProblem {
  DType dtype = DType::kUndefined;
  bool in_bhsd = false, out_bhsd = false;
  int64_t batch = 0, hq = 0, hkv = 0, sq = 0, skv = 0, d = 0, dv = 0, past = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* past_k = nullptr;
  const void* past_v = nullptr;
  DeviceTensor* y = nullptr;
  DeviceTensor* present_k = nullptr;
  DeviceTensor* present_v = nullptr;
  DeviceTensor* qk = nullptr;
  AttentionScoreArgs sa;
  double scale = 1.0;
};

// Bytes of scratch attention_gemm needs (256-byte aligned pieces), GEMM workspace excluded.
uint64_t attention_gemm_scratch_bytes(const AttentionProblem& p);

// Runs `p` with `scratch` (attention_gemm_scratch_bytes(p) bytes, 256-byte aligned) and the
// GEMMs' workspace slice `gws` (kernels call ctx.workspace() once: the caller takes both).
Status attention_gemm(KernelContext& ctx, const AttentionProblem& p, char* scratch,
                      GemmWorkspace gws);

}  // namespace kiln::cuda
