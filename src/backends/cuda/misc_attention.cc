// Attention (ai.onnx opset 23/24) on the GPU: Q, K, V brought to [batch, heads, seq, head_size]
// (3-D inputs are permuted), past key/value concatenated, scores = scale * Q K^T as one batched
// GEMM per KV head group (GQA: the query heads sharing a KV head form the GEMM's rows), then one
// kernel applies masks / softcap / softmax per row, and Y = P V as a second batched GEMM.
// float16/bfloat16 attention that asks for Y alone (no past key/value, softcap, window or
// nonpad_kv_seqlen) with a head size the fused kernel handles runs that kernel instead
// (attention_flash.h) unless KILN_ATTENTION_FLASH=0.
// Refused in supports: dtypes other than float32/16/bf16/64, masks of another float dtype,
// nonpad_kv_seqlen of a dtype other than int64, unknown or unsupported input ranks.
// The mask arguments and the GEMM path are shared with kiln.PackedAttention
// (attention_internal.h, fused_attention.cc).
#include <cmath>

#include "backends/cuda/attention_flash.h"
#include "backends/cuda/attention_internal.h"
#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

int rank_of(const ir::Node& node, int i) {
  if (!node.has_input(i)) return -1;
  const ir::TypeInfo& t = node.inputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() && t.shape.rank_known ? t.shape.rank() : -2;
}

std::string attention_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  for (int i : {1, 2, 4, 5}) {
    if (node.has_input(i) && input_dtype(node, i) != t) {
      return "input " + std::to_string(i) + " dtype differs from Q's";
    }
  }
  if (node.has_input(3)) {
    const DType m = input_dtype(node, 3);
    if (m != DType::kBool && m != t) return std::string("attn_mask dtype ") + dtype_name(m);
  }
  if (node.has_input(6) && input_dtype(node, 6) != DType::kInt64) {
    return "nonpad_kv_seqlen not int64";
  }
  if (node.num_inputs() > 7) return "too many inputs";
  for (int i = 0; i < 4; ++i) {
    if (node.has_output(i) && output_dtype(node, i) != t) return "output dtype differs";
  }
  const int r = rank_of(node, 0);
  if (r != 3 && r != 4) return "Q rank unknown or not 3/4";
  if (rank_of(node, 1) != r || rank_of(node, 2) != r) return "Q, K, V ranks differ";
  const int mr = rank_of(node, 3);
  if (mr == -2 || mr > 4 || mr == 0) return "attn_mask rank";
  return {};
}

// Shapes, strides and mask of the fused kernel's parameters (pointers and scale left to the
// caller). 4-D tensors are [B, H, S, D]; 3-D ones [B, S, H*D].
FlashAttentionParams flash_params(int rank, int64_t batch, int64_t hq, int64_t hkv, int64_t sq,
                                  int64_t skv, int64_t d, const AttentionScoreArgs& sa) {
  FlashAttentionParams p;
  p.batch = batch;
  p.q_heads = hq;
  p.kv_heads = hkv;
  p.sq = sq;
  p.skv = skv;
  p.head_size = d;
  auto strides = [&](int64_t* st, int64_t heads, int64_t seq) {
    st[0] = heads * seq * d;
    st[1] = rank == 4 ? seq * d : d;
    st[2] = rank == 4 ? d : heads * d;
  };
  strides(p.q_stride, hq, sq);
  strides(p.k_stride, hkv, skv);
  strides(p.v_stride, hkv, skv);
  strides(p.y_stride, hq, sq);
  flash_mask_from(sa, &p);
  return p;
}

}  // namespace

Status attention_mask_args(KernelContext& ctx, const DeviceTensor& m, AttentionScoreArgs* sa) {
  if (m.rank() < 1 || m.rank() > 4) return ctx.invalid("attn_mask must have rank 1 to 4");
  if (m.dtype != DType::kBool && m.dtype != sa->dtype) return ctx.unsupported_type(m.dtype);
  std::vector<int64_t> ms(static_cast<size_t>(4 - m.rank()), 1);
  for (int64_t x : m.shape) ms.push_back(x);
  const int64_t want[3] = {sa->batch, sa->heads, sa->sq};
  for (int i = 0; i < 3; ++i) {
    if (ms[static_cast<size_t>(i)] != 1 && ms[static_cast<size_t>(i)] != want[i]) {
      return ctx.invalid("attn_mask does not broadcast to the attention shape");
    }
  }
  if (ms[3] > sa->total) return ctx.invalid("attn_mask is longer than the key sequence");
  sa->mask = m.data;
  sa->mask_bool = m.dtype == DType::kBool;
  sa->mask_last = ms[3];
  int64_t stv = ms[3];
  for (int i = 2; i >= 0; --i) {
    sa->mask_stride[i] = ms[static_cast<size_t>(i)] == 1 ? 0 : stv;
    stv *= ms[static_cast<size_t>(i)];
  }
  return Status::Ok();
}

void flash_mask_from(const AttentionScoreArgs& sa, FlashAttentionParams* p) {
  p->causal = sa.causal;
  p->mask = sa.mask;
  p->mask_bool = sa.mask_bool;
  for (int i = 0; i < 3; ++i) p->mask_stride[i] = sa.mask_stride[i];
  p->mask_last = sa.mask_last;
}

uint64_t align_up(uint64_t v) {
  return (v + 255) & ~uint64_t{255};
}

uint64_t attention_gemm_scratch_bytes(const AttentionProblem& p) {
  const DType dt = p.dtype;
  auto bytes = [&](int64_t n) {
    return align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(n > 0 ? n : 0)));
  };
  const int64_t total = p.past + p.skv;
  const uint64_t q4_b = p.in_bhsd ? 0 : bytes(p.batch * p.hq * p.sq * p.d);
  const uint64_t k4_b = p.in_bhsd ? 0 : bytes(p.batch * p.hkv * p.skv * p.d);
  const uint64_t v4_b = p.in_bhsd ? 0 : bytes(p.batch * p.hkv * p.skv * p.dv);
  const uint64_t kf_b =
      p.past > 0 && p.present_k == nullptr ? bytes(p.batch * p.hkv * total * p.d) : 0;
  const uint64_t vf_b =
      p.past > 0 && p.present_v == nullptr ? bytes(p.batch * p.hkv * total * p.dv) : 0;
  const uint64_t sc_b = bytes(p.batch * p.hq * p.sq * total);
  const uint64_t y4_b = p.out_bhsd ? 0 : bytes(p.batch * p.hq * p.sq * p.dv);
  return q4_b + k4_b + v4_b + kf_b + vf_b + sc_b + y4_b;
}

Status attention_gemm(KernelContext& ctx, const AttentionProblem& p, char* scratch,
                      GemmWorkspace gws) {
  const DType dt = p.dtype;
  const int es = static_cast<int>(dtype_storage_bytes(dt, 1));
  const int64_t batch = p.batch, hq = p.hq, hkv = p.hkv, sq = p.sq, skv = p.skv, d = p.d, dv = p.dv,
                past = p.past, total = p.past + p.skv, group = p.hq / p.hkv;
  DeviceTensor* PK = p.present_k;
  DeviceTensor* PV = p.present_v;
  DeviceTensor* QK = p.qk;
  DeviceTensor* Y = p.y;
  auto bytes = [&](int64_t n) {
    return align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(n > 0 ? n : 0)));
  };
  char* cur = scratch;
  auto take = [&](uint64_t b) {
    char* q = cur;
    cur += b;
    return q;
  };
  void* q4 = take(p.in_bhsd ? 0 : bytes(batch * hq * sq * d));
  void* k4 = take(p.in_bhsd ? 0 : bytes(batch * hkv * skv * d));
  void* v4 = take(p.in_bhsd ? 0 : bytes(batch * hkv * skv * dv));
  void* kf = take(past > 0 && PK == nullptr ? bytes(batch * hkv * total * d) : 0);
  void* vf = take(past > 0 && PV == nullptr ? bytes(batch * hkv * total * dv) : 0);
  void* scores = take(bytes(batch * hq * sq * total));
  void* y4 = take(p.out_bhsd ? 0 : bytes(batch * hq * sq * dv));

  // Q, K, V as [B, H, S, D].
  const void* qp = p.q;
  const void* kp = p.k;
  const void* vp = p.v;
  if (!p.in_bhsd) {
    KILN_RETURN_IF_ERROR(permute(ctx, es, p.q, {batch, sq, hq, d}, {0, 2, 1, 3}, q4));
    KILN_RETURN_IF_ERROR(permute(ctx, es, p.k, {batch, skv, hkv, d}, {0, 2, 1, 3}, k4));
    KILN_RETURN_IF_ERROR(permute(ctx, es, p.v, {batch, skv, hkv, dv}, {0, 2, 1, 3}, v4));
    qp = q4;
    kp = k4;
    vp = v4;
  }
  // Full K, V (past + current); present outputs hold them when requested.
  const void* kfull = kp;
  const void* vfull = vp;
  if (past > 0 || PK != nullptr) {
    void* dst = PK != nullptr ? PK->data : kf;
    if (past > 0) {
      KILN_RETURN_IF_ERROR(concat_seq(ctx, es, p.past_k, kp, dst, batch * hkv, past, skv, d));
    } else if (PK->numel() > 0) {
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst, kp, PK->nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    }
    kfull = dst;
  }
  if (past > 0 || PV != nullptr) {
    void* dst = PV != nullptr ? PV->data : vf;
    if (past > 0) {
      KILN_RETURN_IF_ERROR(concat_seq(ctx, es, p.past_v, vp, dst, batch * hkv, past, skv, dv));
    } else if (PV->numel() > 0) {
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst, vp, PV->nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    }
    vfull = dst;
  }
  if (Y->numel() == 0 && QK == nullptr) return Status::Ok();
  void* yout = p.out_bhsd ? Y->data : y4;
  if (total == 0) {
    // No keys: every row is fully masked, probabilities and Y are zero.
    KILN_RETURN_IF_ERROR(fill_float(ctx, dt, yout, batch * hq * sq * dv, 0.0));
  } else {
    const std::vector<int64_t> bdims = {batch, hkv};
    // scores [B, hkv, group*sq, total] = scale * Q' K^T
    if (d == 0) {
      KILN_RETURN_IF_ERROR(fill_float(ctx, dt, scores, batch * hq * sq * total, 0.0));
    } else {
      KILN_RETURN_IF_ERROR(batched_matmul(ctx, dt, qp, bdims, kfull, bdims, scores, bdims,
                                          group * sq, total, d, false, true, p.scale, gws));
    }
    AttentionScoreArgs sa = p.sa;
    sa.scores = scores;
    sa.qk = QK != nullptr ? QK->data : nullptr;
    KILN_RETURN_IF_ERROR(launch_attention_scores(ctx, sa));
    // Y' [B, hkv, group*sq, dv] = P V
    KILN_RETURN_IF_ERROR(batched_matmul(ctx, dt, scores, bdims, vfull, bdims, yout, bdims,
                                        group * sq, dv, total, false, false, 1.0, gws));
  }
  if (!p.out_bhsd) {
    KILN_RETURN_IF_ERROR(permute(ctx, es, y4, {batch, hq, sq, dv}, {0, 2, 1, 3}, Y->data));
  }
  return Status::Ok();
}

namespace {

Status attention_run(KernelContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2)) {
    return ctx.invalid("Q, K and V are required");
  }
  const DeviceTensor& Qt = ctx.input(0);
  const DeviceTensor& Kt = ctx.input(1);
  const DeviceTensor& Vt = ctx.input(2);
  const DType dt = Qt.dtype;
  if (Kt.dtype != dt || Vt.dtype != dt) return ctx.invalid("Q, K, V dtypes differ");
  const int rank = Qt.rank();
  if (rank != 3 && rank != 4) return ctx.invalid("Q must have rank 3 or 4");
  if (Kt.rank() != rank || Vt.rank() != rank) return ctx.invalid("Q, K and V must share a rank");
  const int64_t batch = Qt.dim(0);
  if (Kt.dim(0) != batch || Vt.dim(0) != batch) return ctx.invalid("batch sizes differ");
  const int64_t q_heads_attr = ctx.attr_int("q_num_heads", 0);
  const int64_t kv_heads_attr = ctx.attr_int("kv_num_heads", 0);
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  const int64_t left = ctx.attr_int("left_window_size", -1);
  const int64_t right = ctx.attr_int("right_window_size", -1);
  const float softcap = ctx.attr_float("softcap", 0.f);
  const int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  const bool has_scale = ctx.node().has_attr("scale");
  const float scale_attr = ctx.attr_float("scale", 1.f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (softcap < 0.f) return ctx.invalid("softcap must not be negative");
  if (mode < 0 || mode > 3) return ctx.invalid("qk_matmul_output_mode must be 0..3");
  int64_t hq, hkv, sq, skv, d, dk, dv;
  if (rank == 4) {
    hq = Qt.dim(1);
    hkv = Kt.dim(1);
    if (Vt.dim(1) != hkv) return ctx.invalid("K and V head counts differ");
    if (Kt.dim(2) != Vt.dim(2)) return ctx.invalid("K and V sequence lengths differ");
    sq = Qt.dim(2);
    d = Qt.dim(3);
    skv = Kt.dim(2);
    dk = Kt.dim(3);
    dv = Vt.dim(3);
  } else {
    hq = q_heads_attr;
    hkv = kv_heads_attr;
    if (hq <= 0 || hkv <= 0) return ctx.invalid("3-D inputs need q_num_heads and kv_num_heads");
    if (Qt.dim(2) % hq != 0 || Kt.dim(2) % hkv != 0 || Vt.dim(2) % hkv != 0) {
      return ctx.invalid("hidden sizes must divide by the head counts");
    }
    if (Kt.dim(1) != Vt.dim(1)) return ctx.invalid("K and V sequence lengths differ");
    sq = Qt.dim(1);
    d = Qt.dim(2) / hq;
    skv = Kt.dim(1);
    dk = Kt.dim(2) / hkv;
    dv = Vt.dim(2) / hkv;
  }
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.invalid("q_num_heads must be a positive multiple of kv_num_heads");
  }
  if (dk != d) return ctx.invalid("Q and K head sizes differ");
  if (ctx.has_input(4) != ctx.has_input(5)) {
    return ctx.invalid("past_key and past_value go together");
  }
  int64_t past = 0;
  if (ctx.has_input(4)) {
    const DeviceTensor& pk = ctx.input(4);
    const DeviceTensor& pv = ctx.input(5);
    if (pk.dtype != dt || pv.dtype != dt) return ctx.invalid("past dtypes differ from Q's");
    if (pk.rank() != 4 || pk.dim(0) != batch || pk.dim(1) != hkv || pk.dim(3) != d) {
      return ctx.invalid("past_key must be [batch, kv_num_heads, past, head_size]");
    }
    if (pv.rank() != 4 || pv.dim(0) != batch || pv.dim(1) != hkv || pv.dim(2) != pk.dim(2) ||
        pv.dim(3) != dv) {
      return ctx.invalid("past_value must be [batch, kv_num_heads, past, v_head_size]");
    }
    past = pk.dim(2);
  }
  const int64_t total = past + skv;
  const int64_t* nonpad = nullptr;
  if (ctx.has_input(6)) {
    const DeviceTensor& np = ctx.input(6);
    if (np.dtype != DType::kInt64 || np.numel() != batch) {
      return ctx.invalid("nonpad_kv_seqlen must hold batch_size int64 values");
    }
    nonpad = np.as<int64_t>();
  }
  AttentionScoreArgs sa;
  sa.dtype = dt;
  sa.batch = batch;
  sa.heads = hq;
  sa.sq = sq;
  sa.total = total;
  sa.past = past;
  sa.nonpad = nonpad;
  sa.causal = causal;
  sa.left = left;
  sa.right = right;
  sa.softcap = softcap;
  sa.qk_mode = static_cast<int>(mode);
  if (ctx.has_input(3)) KILN_RETURN_IF_ERROR(attention_mask_args(ctx, ctx.input(3), &sa));
  const double scale = has_scale ? static_cast<double>(scale_attr)
                                 : 1.0 / std::sqrt(static_cast<double>(d > 0 ? d : 1));

  // Outputs.
  const std::vector<int64_t> y_shape = rank == 4 ? std::vector<int64_t>{batch, hq, sq, dv}
                                                 : std::vector<int64_t>{batch, sq, hq * dv};
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, dt, y_shape));
  // The fused kernel covers Y alone, without past key/value, softcap, windows or nonpad lengths.
  if (!ctx.wants_output(1) && !ctx.wants_output(2) && !ctx.wants_output(3) && !ctx.has_input(4) &&
      !ctx.has_input(5) && !ctx.has_input(6) && softcap == 0.f && mode == 0 && left < 0 &&
      right < 0 && dv == d && Y->numel() > 0 && (!ctx.has_input(3) || ctx.input(3).numel() > 0) &&
      flash_attention_enabled()) {
    FlashAttentionParams fp = flash_params(rank, batch, hq, hkv, sq, skv, d, sa);
    fp.dtype = dt;
    fp.q = Qt.data;
    fp.k = Kt.data;
    fp.v = Vt.data;
    fp.y = Y->data;
    fp.scale = static_cast<float>(scale);
    if (flash_attention_unsupported(fp).empty()) return launch_flash_attention(ctx, fp);
  }
  DeviceTensor* PK = nullptr;
  DeviceTensor* PV = nullptr;
  DeviceTensor* QK = nullptr;
  if (ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(PK, ctx.allocate(1, dt, {batch, hkv, total, d}));
  }
  if (ctx.wants_output(2)) {
    KILN_ASSIGN_OR_RETURN(PV, ctx.allocate(2, dt, {batch, hkv, total, dv}));
  }
  if (ctx.wants_output(3)) {
    KILN_ASSIGN_OR_RETURN(QK, ctx.allocate(3, dt, {batch, hq, sq, total}));
  }

  AttentionProblem ap;
  ap.dtype = dt;
  ap.in_bhsd = rank == 4;
  ap.out_bhsd = rank == 4;
  ap.batch = batch;
  ap.hq = hq;
  ap.hkv = hkv;
  ap.sq = sq;
  ap.skv = skv;
  ap.d = d;
  ap.dv = dv;
  ap.past = past;
  ap.q = Qt.data;
  ap.k = Kt.data;
  ap.v = Vt.data;
  ap.past_k = ctx.has_input(4) ? ctx.input(4).data : nullptr;
  ap.past_v = ctx.has_input(5) ? ctx.input(5).data : nullptr;
  ap.y = Y;
  ap.present_k = PK;
  ap.present_v = PV;
  ap.qk = QK;
  ap.sa = sa;
  ap.scale = scale;
  const uint64_t own = attention_gemm_scratch_bytes(ap);
  GemmWorkspace gws;
  gws.external = true;
  gws.bytes = gemm_workspace_budget(ctx, own);
  char* ws = nullptr;
  if (own + gws.bytes > 0) {
    KILN_ASSIGN_OR_RETURN(void* w, ctx.workspace(own + gws.bytes));
    ws = static_cast<char*>(w);
  }
  gws.ptr = ws + own;
  KILN_RETURN_IF_ERROR(attention_gemm(ctx, ap, ws, gws));
  return ctx.check_launch("Attention");
}

}  // namespace

void register_attention_kernels(KernelRegistry& r) {
  r.add({"", "Attention", attention_supports, attention_run});
}

}  // namespace kiln::cuda
