// CPU reference kernels for Attention (opset 23+: 3-D and 4-D inputs, masks, past/present
// key/value, GQA/MQA, causal and windowed masking, nonpad_kv_seqlen, scale, softcap,
// qk_matmul_output modes) and RotaryEmbedding. Computed in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/misc_util.h"

namespace kiln::cpu {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Reads a [B, S, H*D] tensor as [B, H, S, D], or a 4-D one as is.
std::vector<double> to_bhsd(const Tensor& t, int64_t heads, int64_t* s, int64_t* d) {
  std::vector<double> v = misc::to_doubles(t);
  if (t.rank() == 4) {
    *s = t.dim(2);
    *d = t.dim(3);
    return v;
  }
  const int64_t b = t.dim(0), seq = t.dim(1), hd = t.dim(2), dd = hd / heads;
  *s = seq;
  *d = dd;
  std::vector<double> out(v.size());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t si = 0; si < seq; ++si)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t k = 0; k < dd; ++k)
          out[((bi * heads + h) * seq + si) * dd + k] = v[(bi * seq + si) * hd + h * dd + k];
  return out;
}

}  // namespace

Status misc::attention_forward(KernelContext& ctx, const AttentionTensors& in) {
  const Tensor& q_t = *in.q;
  const Tensor& k_t = *in.k;
  const Tensor& v_t = *in.v;
  const DType dt = q_t.dtype();
  if (!misc::is_plain_float(dt)) return ctx.unsupported_type(dt);
  const int rank = q_t.rank();
  if (rank != 3 && rank != 4) return ctx.invalid("Q must have rank 3 or 4");
  if (k_t.rank() != rank || v_t.rank() != rank) return ctx.invalid("Q, K and V must share a rank");
  const int64_t batch = q_t.dim(0);
  if (k_t.dim(0) != batch || v_t.dim(0) != batch) return ctx.invalid("batch sizes differ");
  int64_t hq, hkv;
  if (rank == 4) {
    hq = q_t.dim(1);
    hkv = k_t.dim(1);
    if (v_t.dim(1) != hkv) return ctx.invalid("K and V head counts differ");
    if (k_t.dim(2) != v_t.dim(2)) return ctx.invalid("K and V sequence lengths differ");
  } else {
    hq = ctx.attr_int("q_num_heads", 0);
    hkv = ctx.attr_int("kv_num_heads", 0);
    if (hq <= 0 || hkv <= 0) return ctx.invalid("3-D inputs need q_num_heads and kv_num_heads");
    if (q_t.dim(2) % hq != 0 || k_t.dim(2) % hkv != 0 || v_t.dim(2) % hkv != 0) {
      return ctx.invalid("hidden sizes must divide by the head counts");
    }
    if (k_t.dim(1) != v_t.dim(1)) return ctx.invalid("K and V sequence lengths differ");
  }
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.invalid("q_num_heads must be a positive multiple of kv_num_heads");
  }
  int64_t sq, d, skv, dk, skv2, dv;
  const std::vector<double> Q = to_bhsd(q_t, hq, &sq, &d);
  const std::vector<double> Kc = to_bhsd(k_t, hkv, &skv, &dk);
  const std::vector<double> Vc = to_bhsd(v_t, hkv, &skv2, &dv);
  if (dk != d) return ctx.invalid("Q and K head sizes differ");
  // Past key/value.
  int64_t past = 0;
  std::vector<double> PK, PV;
  if ((in.past_key != nullptr) != (in.past_value != nullptr))
    return ctx.invalid("past_key and past_value go together");
  if (in.past_key != nullptr) {
    const Tensor& pk = *in.past_key;
    const Tensor& pv = *in.past_value;
    if (pk.rank() != 4 || pk.dim(0) != batch || pk.dim(1) != hkv || pk.dim(3) != d) {
      return ctx.invalid("past_key must be [batch, kv_num_heads, past, head_size]");
    }
    if (pv.rank() != 4 || pv.dim(0) != batch || pv.dim(1) != hkv || pv.dim(2) != pk.dim(2) ||
        pv.dim(3) != dv) {
      return ctx.invalid("past_value must be [batch, kv_num_heads, past, v_head_size]");
    }
    past = pk.dim(2);
    PK = misc::to_doubles(pk);
    PV = misc::to_doubles(pv);
  }
  const int64_t total = past + skv;
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, hq, sq, total}));
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, hq, sq, dv}));
  std::vector<double> K(static_cast<size_t>(batch * hkv * total * d));
  std::vector<double> V(static_cast<size_t>(batch * hkv * total * dv));
  for (int64_t bh = 0; bh < batch * hkv; ++bh) {
    for (int64_t t = 0; t < total; ++t) {
      for (int64_t k = 0; k < d; ++k)
        K[(bh * total + t) * d + k] =
            t < past ? PK[(bh * past + t) * d + k] : Kc[(bh * skv + t - past) * d + k];
      for (int64_t k = 0; k < dv; ++k)
        V[(bh * total + t) * dv + k] =
            t < past ? PV[(bh * past + t) * dv + k] : Vc[(bh * skv + t - past) * dv + k];
    }
  }
  // nonpad_kv_seqlen.
  std::vector<int64_t> nonpad;
  if (in.nonpad_kv_seqlen != nullptr) {
    const Tensor& np = *in.nonpad_kv_seqlen;
    if (np.numel() != batch || !is_integer(np.dtype())) {
      return ctx.invalid("nonpad_kv_seqlen must hold batch_size integers");
    }
    nonpad = misc::to_int64s(np);
    for (int64_t n : nonpad) {
      if (n < 0 || n > total) return ctx.out_of_range("nonpad_kv_seqlen value out of range");
    }
  }
  // Attention mask, broadcast to [B, Hq, Sq, <=total].
  const bool has_mask = in.mask != nullptr;
  std::vector<double> mask;
  std::vector<int64_t> mshape, mstride(4, 0);
  int64_t mlast = total;
  if (has_mask) {
    const Tensor& m = *in.mask;
    if (m.rank() < 1 || m.rank() > 4) return ctx.invalid("attn_mask must have rank 1 to 4");
    mshape.assign(static_cast<size_t>(4 - m.rank()), 1);
    for (int64_t x : m.shape()) mshape.push_back(x);
    const int64_t want[4] = {batch, hq, sq, total};
    for (int i = 0; i < 3; ++i) {
      if (mshape[i] != 1 && mshape[i] != want[i]) {
        return ctx.invalid("attn_mask shape " + shape_to_string(m.shape()) +
                           " does not broadcast to the attention shape");
      }
    }
    mlast = mshape[3];
    if (mlast > total) return ctx.invalid("attn_mask is longer than the key sequence");
    int64_t st = 1;
    for (int i = 3; i >= 0; --i) {
      mstride[i] = mshape[i] == 1 && i < 3 ? 0 : st;
      st *= mshape[i];
    }
    if (m.dtype() == DType::kBool) {
      mask.resize(static_cast<size_t>(m.numel()));
      const uint8_t* mp = m.data<uint8_t>();
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = mp[i] ? 0.0 : kNegInf;
    } else if (misc::is_plain_float(m.dtype())) {
      mask = misc::to_doubles(m);
    } else {
      return ctx.unsupported_type(m.dtype());
    }
  }
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  const int64_t left = ctx.attr_int("left_window_size", -1);
  const int64_t right = ctx.attr_int("right_window_size", -1);
  const double softcap = ctx.attr_float("softcap", 0.f);
  if (softcap < 0) return ctx.invalid("softcap must not be negative");
  const int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return ctx.invalid("qk_matmul_output_mode must be 0..3");
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  if (ctx.node().has_attr("scale")) scale = ctx.attr_float("scale", 1.f);
  const int64_t group = hq / hkv;

  std::vector<double> Y(static_cast<size_t>(batch * hq * sq * dv), 0.0);
  const bool want_qk = ctx.wants_output(3);
  std::vector<double> QK;
  if (want_qk) QK.assign(static_cast<size_t>(batch * hq * sq * total), 0.0);
  std::vector<double> score(static_cast<size_t>(total)), bias(static_cast<size_t>(total));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t offset = nonpad.empty() ? past : nonpad[b] - sq;
    const int64_t valid = nonpad.empty() ? total : nonpad[b];
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < sq; ++i) {
        const double* q = Q.data() + ((b * hq + h) * sq + i) * d;
        const int64_t pos = i + offset;
        bool all_masked = true;
        for (int64_t j = 0; j < total; ++j) {
          const double* k = K.data() + ((b * hkv + kh) * total + j) * d;
          double s = 0;
          for (int64_t x = 0; x < d; ++x) s += q[x] * k[x];
          s *= scale;
          double bj = 0;
          if (has_mask) {
            bj += j < mlast
                      ? mask[b * mstride[0] + h * mstride[1] + i * mstride[2] + j * mstride[3]]
                      : kNegInf;
          }
          if (causal && j > pos) bj += kNegInf;
          if (left >= 0 && pos - j > left) bj += kNegInf;
          if (right >= 0 && j - pos > right) bj += kNegInf;
          if (j >= valid) bj += kNegInf;
          if (!(bj == kNegInf)) all_masked = false;
          double* qk = want_qk ? QK.data() + ((b * hq + h) * sq + i) * total + j : nullptr;
          if (qk && mode == 0) *qk = s;
          if (softcap > 0) s = softcap * std::tanh(s / softcap);
          if (qk && mode == 1) *qk = s;
          s += bj;
          if (qk && mode == 2) *qk = s;
          score[j] = s;
        }
        double mx = kNegInf;
        for (int64_t j = 0; j < total; ++j) mx = std::max(mx, score[j]);
        double sum = 0;
        for (int64_t j = 0; j < total; ++j) {
          score[j] = std::isinf(mx) && mx < 0 ? 0.0 : std::exp(score[j] - mx);
          sum += score[j];
        }
        for (int64_t j = 0; j < total; ++j) {
          score[j] = all_masked || sum == 0 ? 0.0 : score[j] / sum;
          if (want_qk && mode == 3) QK[((b * hq + h) * sq + i) * total + j] = score[j];
        }
        double* y = Y.data() + ((b * hq + h) * sq + i) * dv;
        for (int64_t j = 0; j < total; ++j) {
          if (score[j] == 0) continue;
          const double* v = V.data() + ((b * hkv + kh) * total + j) * dv;
          for (int64_t x = 0; x < dv; ++x) y[x] += score[j] * v[x];
        }
      }
    }
  }
  if (rank == 4) {
    KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 0, dt, {batch, hq, sq, dv}, Y));
  } else {
    std::vector<double> y3(Y.size());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < hq; ++h)
        for (int64_t i = 0; i < sq; ++i)
          for (int64_t x = 0; x < dv; ++x)
            y3[((b * sq + i) * hq + h) * dv + x] = Y[((b * hq + h) * sq + i) * dv + x];
    KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 0, dt, {batch, sq, hq * dv}, y3));
  }
  if (ctx.wants_output(1)) {
    KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 1, k_t.dtype(), {batch, hkv, total, d}, K));
  }
  if (ctx.wants_output(2)) {
    KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 2, v_t.dtype(), {batch, hkv, total, dv}, V));
  }
  if (want_qk) KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 3, dt, {batch, hq, sq, total}, QK));
  return Status::Ok();
}

namespace {

Status attention(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(misc::require_inputs(ctx, 3));
  misc::AttentionTensors in;
  in.q = &ctx.tensor(0);
  in.k = &ctx.tensor(1);
  in.v = &ctx.tensor(2);
  if (ctx.has_input(3)) in.mask = &ctx.tensor(3);
  if (ctx.has_input(4)) in.past_key = &ctx.tensor(4);
  if (ctx.has_input(5)) in.past_value = &ctx.tensor(5);
  if (ctx.has_input(6)) in.nonpad_kv_seqlen = &ctx.tensor(6);
  return misc::attention_forward(ctx, in);
}

Status rotary_embedding(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(misc::require_inputs(ctx, 3));
  const Tensor& x_t = ctx.tensor(0);
  const Tensor& cos_t = ctx.tensor(1);
  const Tensor& sin_t = ctx.tensor(2);
  const DType dt = x_t.dtype();
  if (!misc::is_plain_float(dt)) return ctx.unsupported_type(dt);
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  int64_t batch, seq, heads, hd;
  if (x_t.rank() == 4) {
    batch = x_t.dim(0);
    heads = x_t.dim(1);
    seq = x_t.dim(2);
    hd = x_t.dim(3);
  } else if (x_t.rank() == 3) {
    heads = ctx.attr_int("num_heads", 0);
    if (heads <= 0) return ctx.invalid("3-D input needs num_heads");
    batch = x_t.dim(0);
    seq = x_t.dim(1);
    if (x_t.dim(2) % heads != 0) return ctx.invalid("hidden size must divide by num_heads");
    hd = x_t.dim(2) / heads;
  } else {
    return ctx.invalid("input must have rank 3 or 4");
  }
  int64_t rd = ctx.attr_int("rotary_embedding_dim", 0);
  if (rd == 0) rd = hd;
  if (rd < 0 || rd > hd || rd % 2 != 0)
    return ctx.invalid("rotary_embedding_dim must be even and <= head size");
  const int64_t half = rd / 2;
  if (cos_t.shape() != sin_t.shape()) return ctx.invalid("cos_cache and sin_cache shapes differ");
  const std::vector<double> cosv = misc::to_doubles(cos_t), sinv = misc::to_doubles(sin_t);
  std::vector<int64_t> pos;
  int64_t cache_w;
  if (ctx.has_input(3)) {
    const Tensor& p = ctx.tensor(3);
    if (p.shape() != std::vector<int64_t>{batch, seq} || !is_integer(p.dtype())) {
      return ctx.invalid("position_ids must be integer [batch, seq]");
    }
    if (cos_t.rank() != 2) return ctx.invalid("with position_ids the caches must be 2-D");
    pos = misc::to_int64s(p);
    for (int64_t v : pos) {
      if (v < 0 || v >= cos_t.dim(0)) return ctx.out_of_range("position id out of the cache range");
    }
    cache_w = cos_t.dim(1);
  } else {
    if (cos_t.rank() != 3 || cos_t.dim(0) != batch || cos_t.dim(1) != seq) {
      return ctx.invalid("without position_ids the caches must be [batch, seq, rotary_dim/2]");
    }
    cache_w = cos_t.dim(2);
  }
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, seq, heads}));
  if (cache_w < half) return ctx.invalid("caches are narrower than rotary_embedding_dim / 2");
  std::vector<double> y = misc::to_doubles(x_t);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      const int64_t row = pos.empty() ? b * seq + s : pos[b * seq + s];
      const double* c = &cosv[row * cache_w];
      const double* sn = &sinv[row * cache_w];
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = x_t.rank() == 4 ? ((b * heads + h) * seq + s) * hd
                                             : (b * seq + s) * heads * hd + h * hd;
        double* v = &y[base];
        for (int64_t k = 0; k < half; ++k) {
          const int64_t i1 = interleaved ? 2 * k : k, i2 = interleaved ? 2 * k + 1 : k + half;
          const double x1 = v[i1], x2 = v[i2];
          v[i1] = x1 * c[k] - x2 * sn[k];
          v[i2] = x2 * c[k] + x1 * sn[k];
        }
      }
    }
  return misc::emit_doubles(ctx, 0, dt, x_t.shape(), y);
}

}  // namespace

void register_misc_attention_kernels(KernelRegistry& r) {
  r.add("", "Attention", attention);
  r.add("", "RotaryEmbedding", rotary_embedding);
}

}  // namespace kiln::cpu
