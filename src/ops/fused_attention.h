// kiln.PackedAttention: ONNX Attention's 3-D form reading Q, K and V from one packed tensor, made
// by the fuse_packed_qkv pass.
//   inputs:  qkv [B, S, (Hq + 2 * Hkv) * D]: Q's Hq heads, then K's Hkv heads, then V's Hkv heads
//            along the last axis (what Split(axis -1) of a [B, S, 3E] projection cuts);
//            attn_mask (optional): as Attention's (bool = attend, or Q's dtype added to the
//            scores), broadcast to [B, Hq, S, S] from its trailing dims, keys beyond its last dim
//            masked
//   output:  Y [B, S, Hq * D]
//   attributes: q_num_heads, kv_num_heads (required, Hq a multiple of Hkv), scale (float;
//            absent = 1/sqrt(D)), is_causal (0/1, default 0)
// Y is what Attention(Q, K, V, attn_mask) computes on the three slices.
#pragma once

#include <cstdint>

namespace kiln::ops {

inline constexpr const char* kPackedAttention = "PackedAttention";

}  // namespace kiln::ops
