// CPU reference kernel of kiln.PackedAttention (ops/fused_attention.h): Q, K and V are sliced
// out of the packed tensor and handed to Attention's own computation (misc::attention_forward),
// which reads the node's q_num_heads, kv_num_heads, scale and is_causal as Attention's 3-D form
// does.
#include <cstring>

#include "backends/cpu/misc_util.h"
#include "ops/fused_attention.h"

namespace kiln::cpu {
namespace {

// Columns [begin, begin + width) of x viewed as [rows, cols], as a new [b, s, width] tensor.
StatusOr<Tensor> slice_last(const KernelContext& ctx, const Tensor& x, int64_t begin,
                            int64_t width) {
  const int64_t b = x.dim(0), s = x.dim(1), cols = x.dim(2);
  KILN_ASSIGN_OR_RETURN(Tensor t, ctx.scratch(x.dtype(), {b, s, width}, "packed Q/K/V slice"));
  const uint64_t es = dtype_storage_bytes(x.dtype(), 1);
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(t.mutable_raw());
  for (int64_t r = 0; r < b * s; ++r) {
    std::memcpy(dst + static_cast<uint64_t>(r * width) * es,
                src + static_cast<uint64_t>(r * cols + begin) * es,
                static_cast<size_t>(static_cast<uint64_t>(width) * es));
  }
  return t;
}

Status packed_attention_kernel(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(misc::require_inputs(ctx, 1));
  const Tensor& qkv = ctx.tensor(0);
  const int64_t hq = ctx.attr_int("q_num_heads", 0);
  const int64_t hkv = ctx.attr_int("kv_num_heads", 0);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (!misc::is_plain_float(qkv.dtype())) return ctx.unsupported_type(qkv.dtype());
  if (qkv.rank() != 3) return ctx.invalid("qkv must have rank 3");
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.invalid("q_num_heads must be a positive multiple of kv_num_heads");
  }
  const int64_t parts = hq + 2 * hkv;
  if (qkv.dim(2) % parts != 0) {
    return ctx.invalid("qkv's last dim " + std::to_string(qkv.dim(2)) +
                       " does not divide into q_num_heads + 2 * kv_num_heads heads");
  }
  const int64_t d = qkv.dim(2) / parts;
  KILN_ASSIGN_OR_RETURN(Tensor q, slice_last(ctx, qkv, 0, hq * d));
  KILN_ASSIGN_OR_RETURN(Tensor k, slice_last(ctx, qkv, hq * d, hkv * d));
  KILN_ASSIGN_OR_RETURN(Tensor v, slice_last(ctx, qkv, (hq + hkv) * d, hkv * d));
  misc::AttentionTensors in;
  in.q = &q;
  in.k = &k;
  in.v = &v;
  if (ctx.has_input(1)) in.mask = &ctx.tensor(1);
  return misc::attention_forward(ctx, in);
}

}  // namespace

void register_fused_attention_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kPackedAttention, packed_attention_kernel);
}

}  // namespace kiln::cpu
