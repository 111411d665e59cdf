// CUDA kernel of kiln.PackedAttention (ops/fused_attention.h). The flash kernel reads Q, K and V
// in place: their heads start at element offsets 0, Hq*D and (Hq+Hkv)*D of each packed row, and
// consecutive positions are a row ((Hq + 2*Hkv) * D elements) apart. Cases the flash kernel
// refuses (float32, float64, other head sizes, alignment, KILN_ATTENTION_FLASH=0) run Attention's
// GEMM path (attention_internal.h) on Q, K, V copied out of the packed tensor: one permute of
// [B, S, 3, H, D] into [3, B, H, S, D] when Hq = Hkv, else three column crops.
#include <cmath>

#include "backends/cuda/attention_internal.h"
#include "ops/fused_attention.h"

namespace kiln::cuda {
namespace {

uint64_t align_up(uint64_t v) {
  return (v + 255) & ~uint64_t{255};
}

std::string packed_attention_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  if (node.has_input(1)) {
    const DType m = input_dtype(node, 1);
    if (m != DType::kBool && m != t) return std::string("attn_mask dtype ") + dtype_name(m);
    const ir::TypeInfo& mt = node.inputs[1]->type;
    if (!mt.is_tensor() || !mt.shape.rank_known) return "attn_mask rank unknown";
    if (mt.shape.rank() < 1 || mt.shape.rank() > 4) return "attn_mask rank";
  }
  if (node.num_inputs() > 2) return "too many inputs";
  if (output_dtype(node, 0) != t) return "output dtype differs";
  const ir::TypeInfo& q = node.inputs[0]->type;
  if (!q.is_tensor() || !q.shape.rank_known || q.shape.rank() != 3) return "qkv rank not 3";
  return {};
}

Status packed_attention_run(KernelContext& ctx) {
  if (!ctx.has_input(0)) return ctx.invalid("qkv is required");
  const DeviceTensor& X = ctx.input(0);
  const DType dt = X.dtype;
  const int64_t hq = ctx.attr_int("q_num_heads", 0);
  const int64_t hkv = ctx.attr_int("kv_num_heads", 0);
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  const bool has_scale = ctx.node().has_attr("scale");
  const float scale_attr = ctx.attr_float("scale", 1.f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (!gemm_dtype_ok(dt)) return ctx.unsupported_type(dt);
  if (X.rank() != 3) return ctx.invalid("qkv must have rank 3");
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.invalid("q_num_heads must be a positive multiple of kv_num_heads");
  }
  const int64_t heads = hq + 2 * hkv;
  if (X.dim(2) % heads != 0) {
    return ctx.invalid("qkv's last dim does not divide into q_num_heads + 2 * kv_num_heads heads");
  }
  const int64_t batch = X.dim(0), seq = X.dim(1), d = X.dim(2) / heads, row = X.dim(2);
  const int es = static_cast<int>(dtype_storage_bytes(dt, 1));
  AttentionScoreArgs sa;
  sa.dtype = dt;
  sa.batch = batch;
  sa.heads = hq;
  sa.sq = seq;
  sa.total = seq;
  sa.causal = causal;
  if (ctx.has_input(1)) KILN_RETURN_IF_ERROR(attention_mask_args(ctx, ctx.input(1), &sa));
  const double scale = has_scale ? static_cast<double>(scale_attr)
                                 : 1.0 / std::sqrt(static_cast<double>(d > 0 ? d : 1));
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, dt, {batch, seq, hq * d}));
  if (Y->numel() == 0) return Status::Ok();
  const char* base = static_cast<const char*>(X.data);
  if (flash_attention_enabled() && (!ctx.has_input(1) || ctx.input(1).numel() > 0)) {
    FlashAttentionParams fp;
    fp.dtype = dt;
    fp.q = base;
    fp.k = base + hq * d * es;
    fp.v = base + (hq + hkv) * d * es;
    fp.y = Y->data;
    fp.batch = batch;
    fp.q_heads = hq;
    fp.kv_heads = hkv;
    fp.sq = seq;
    fp.skv = seq;
    fp.head_size = d;
    for (int64_t* st : {fp.q_stride, fp.k_stride, fp.v_stride}) {
      st[0] = seq * row;
      st[1] = d;
      st[2] = row;
    }
    fp.y_stride[0] = seq * hq * d;
    fp.y_stride[1] = d;
    fp.y_stride[2] = hq * d;
    fp.scale = static_cast<float>(scale);
    flash_mask_from(sa, &fp);
    if (flash_attention_unsupported(fp).empty()) return launch_flash_attention(ctx, fp);
  }

  // GEMM path on Q, K, V copied out of the packed tensor.
  AttentionProblem ap;
  ap.dtype = dt;
  ap.in_bhsd = hq == hkv;  // one permute gives [3, B, H, S, D]
  ap.out_bhsd = false;
  ap.batch = batch;
  ap.hq = hq;
  ap.hkv = hkv;
  ap.sq = seq;
  ap.skv = seq;
  ap.d = d;
  ap.dv = d;
  ap.y = Y;
  ap.sa = sa;
  ap.scale = scale;
  const uint64_t q_b = dtype_storage_bytes(dt, static_cast<uint64_t>(batch * seq * hq * d));
  const uint64_t kv_b = dtype_storage_bytes(dt, static_cast<uint64_t>(batch * seq * hkv * d));
  // MHA: [3, B, H, S, D] back to back; else three aligned [B, S, H*D] pieces.
  const uint64_t prefix = ap.in_bhsd ? align_up(3 * q_b) : align_up(q_b) + 2 * align_up(kv_b);
  const uint64_t own = prefix + attention_gemm_scratch_bytes(ap);
  GemmWorkspace gws;
  gws.external = true;
  gws.bytes = gemm_workspace_budget(ctx, own);
  KILN_ASSIGN_OR_RETURN(void* w, ctx.workspace(own + gws.bytes));
  char* ws = static_cast<char*>(w);
  gws.ptr = ws + own;
  char* q = ws;
  char* k = ap.in_bhsd ? q + q_b : q + align_up(q_b);
  char* v = ap.in_bhsd ? k + kv_b : k + align_up(kv_b);
  if (ap.in_bhsd) {
    KILN_RETURN_IF_ERROR(permute(ctx, es, X.data, {batch, seq, 3, hq, d}, {2, 0, 3, 1, 4}, q));
  } else {
    // Columns [off, off + width) of every packed row.
    auto crop = [&](int64_t off, int64_t width, void* dst) {
      ShiftGeom g;
      g.planes = batch * seq;
      g.in[2] = row;
      g.out[2] = width;
      g.shift[2] = off;
      return shift_copy(ctx, es, X.data, dst, g);
    };
    KILN_RETURN_IF_ERROR(crop(0, hq * d, q));
    KILN_RETURN_IF_ERROR(crop(hq * d, hkv * d, k));
    KILN_RETURN_IF_ERROR(crop((hq + hkv) * d, hkv * d, v));
  }
  ap.q = q;
  ap.k = k;
  ap.v = v;
  KILN_RETURN_IF_ERROR(attention_gemm(ctx, ap, ws + prefix, gws));
  return ctx.check_launch("PackedAttention");
}

}  // namespace

void register_fused_attention_kernels(KernelRegistry& r) {
  r.add({ir::kKilnDomain, ops::kPackedAttention, packed_attention_supports, packed_attention_run});
}

}  // namespace kiln::cuda
