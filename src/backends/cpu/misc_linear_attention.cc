// CPU reference kernels for LinearAttention (update rules linear, gated, delta, gated_delta;
// GQA/MQA; past/present state) and FlexAttention (ai.onnx.preview; score_mod and prob_mod
// subgraphs run on the whole score / probability tensor).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/misc_util.h"

namespace kiln::cpu {
namespace {

Status linear_attention(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(misc::require_inputs(ctx, 3));
  const Tensor& q_t = ctx.tensor(0);
  const Tensor& k_t = ctx.tensor(1);
  const Tensor& v_t = ctx.tensor(2);
  const DType dt = q_t.dtype();
  if (!misc::is_plain_float(dt)) return ctx.unsupported_type(dt);
  if (q_t.rank() != 3 || k_t.rank() != 3 || v_t.rank() != 3) {
    return ctx.invalid("query, key and value must be [batch, seq, hidden]");
  }
  const int64_t hq = ctx.attr_int("q_num_heads", 0), hkv = ctx.attr_int("kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    return ctx.invalid("q_num_heads must be a positive multiple of kv_num_heads");
  }
  const int64_t batch = q_t.dim(0), seq = q_t.dim(1);
  if (k_t.dim(0) != batch || v_t.dim(0) != batch || k_t.dim(1) != seq || v_t.dim(1) != seq) {
    return ctx.invalid("query, key and value must share batch and sequence sizes");
  }
  if (q_t.dim(2) % hq != 0 || v_t.dim(2) % hkv != 0) {
    return ctx.invalid("hidden sizes must divide by the head counts");
  }
  const int64_t dk = q_t.dim(2) / hq, dv = v_t.dim(2) / hkv;
  if (k_t.dim(2) != hkv * dk) return ctx.invalid("key hidden size must be kv_num_heads * d_k");
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, seq, hq, dv}));
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, hkv, dk, dv}));
  const std::string rule = ctx.attr_string("update_rule", "gated_delta");
  const bool gated = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  if (!gated && !delta && rule != "linear")
    return ctx.invalid("unknown update_rule '" + rule + "'");
  double scale = 1.0 / std::sqrt(static_cast<double>(dk));
  if (ctx.node().has_attr("scale")) scale = ctx.attr_float("scale", 1.f);
  const std::vector<double> Q = misc::to_doubles(q_t), K = misc::to_doubles(k_t),
                            V = misc::to_doubles(v_t);
  std::vector<double> S(static_cast<size_t>(batch * hkv * dk * dv), 0.0);
  if (ctx.has_input(3)) {
    const Tensor& p = ctx.tensor(3);
    if (p.shape() != std::vector<int64_t>{batch, hkv, dk, dv}) {
      return ctx.invalid("past_state must be [batch, kv_num_heads, d_k, d_v]");
    }
    S = misc::to_doubles(p);
  }
  std::vector<double> decay;
  int64_t decay_w = 0;  // values per kv head: d_k or 1
  if (gated) {
    if (!ctx.has_input(4)) return ctx.invalid("update rule '" + rule + "' needs decay");
    const Tensor& dcy = ctx.tensor(4);
    if (dcy.rank() != 3 || dcy.dim(0) != batch || dcy.dim(1) != seq ||
        (dcy.dim(2) != hkv * dk && dcy.dim(2) != hkv)) {
      return ctx.invalid(
          "decay must be [batch, seq, kv_num_heads * d_k] or [batch, seq, kv_num_heads]");
    }
    decay = misc::to_doubles(dcy);
    decay_w = dcy.dim(2) / hkv;
  }
  std::vector<double> beta;
  int64_t beta_h = 0;  // kv_num_heads or 1
  if (delta) {
    if (!ctx.has_input(5)) return ctx.invalid("update rule '" + rule + "' needs beta");
    const Tensor& bt = ctx.tensor(5);
    if (bt.rank() != 3 || bt.dim(0) != batch || bt.dim(1) != seq ||
        (bt.dim(2) != hkv && bt.dim(2) != 1)) {
      return ctx.invalid("beta must be [batch, seq, kv_num_heads] or [batch, seq, 1]");
    }
    beta = misc::to_doubles(bt);
    beta_h = bt.dim(2);
  }
  const int64_t group = hq / hkv;
  std::vector<double> Y(static_cast<size_t>(batch * seq * hq * dv), 0.0);
  std::vector<double> diff(static_cast<size_t>(dv));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t h = 0; h < hkv; ++h) {
        double* s = S.data() + ((b * hkv + h) * dk * dv);
        const double* k = K.data() + ((b * seq + t) * hkv * dk + h * dk);
        const double* v = V.data() + ((b * seq + t) * hkv * dv + h * dv);
        if (gated) {
          const double* dc = &decay[(b * seq + t) * hkv * decay_w + h * decay_w];
          for (int64_t i = 0; i < dk; ++i) {
            const double f = std::exp(dc[decay_w == 1 ? 0 : i]);
            for (int64_t j = 0; j < dv; ++j) s[i * dv + j] *= f;
          }
        }
        if (delta) {
          const double bb = beta[(b * seq + t) * beta_h + (beta_h == 1 ? 0 : h)];
          for (int64_t j = 0; j < dv; ++j) {
            double r = 0;
            for (int64_t i = 0; i < dk; ++i) r += s[i * dv + j] * k[i];
            diff[j] = bb * (v[j] - r);
          }
        } else {
          for (int64_t j = 0; j < dv; ++j) diff[j] = v[j];
        }
        for (int64_t i = 0; i < dk; ++i)
          for (int64_t j = 0; j < dv; ++j) s[i * dv + j] += k[i] * diff[j];
      }
      for (int64_t h = 0; h < hq; ++h) {
        const double* s = S.data() + ((b * hkv + h / group) * dk * dv);
        const double* q = Q.data() + ((b * seq + t) * hq * dk + h * dk);
        double* y = Y.data() + ((b * seq + t) * hq * dv + h * dv);
        for (int64_t j = 0; j < dv; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < dk; ++i) acc += q[i] * s[i * dv + j];
          y[j] = scale * acc;
        }
      }
    }
  }
  KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 0, dt, {batch, seq, hq * dv}, Y));
  if (ctx.wants_output(1)) {
    KILN_RETURN_IF_ERROR(misc::emit_doubles(ctx, 1, dt, {batch, hkv, dk, dv}, S));
  }
  return Status::Ok();
}

// Runs a score/prob modifier subgraph on `t` (shape kept); returns the modified values.
StatusOr<std::vector<double>> run_modifier(KernelContext& ctx, const char* name,
                                           const std::vector<double>& values,
                                           const std::vector<int64_t>& shape, DType dt) {
  const ir::Graph* g = ctx.attr_graph(name);
  if (g == nullptr) return values;
  KILN_ASSIGN_OR_RETURN(Tensor d, Tensor::create(DType::kFloat64, shape, ctx.max_tensor_bytes()));
  std::copy(values.begin(), values.end(), d.mutable_data<double>());
  KILN_ASSIGN_OR_RETURN(Tensor in, convert_tensor(d, dt));
  KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, ctx.run_subgraph(*g, {Datum::of(std::move(in))}));
  if (outs.size() != 1 || !outs[0].is_tensor() || outs[0].tensor.shape() != shape) {
    return ctx.invalid(std::string(name) + " must return one tensor of the score shape");
  }
  const Tensor& o = outs[0].tensor;
  if (!misc::is_plain_float(o.dtype()))
    return ctx.invalid(std::string(name) + " must return floats");
  return misc::to_doubles(o);
}

Status flex_attention(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(misc::require_inputs(ctx, 3));
  const Tensor& q_t = ctx.tensor(0);
  const Tensor& k_t = ctx.tensor(1);
  const Tensor& v_t = ctx.tensor(2);
  const DType dt = q_t.dtype();
  if (!misc::is_plain_float(dt)) return ctx.unsupported_type(dt);
  if (q_t.rank() != 4 || k_t.rank() != 4 || v_t.rank() != 4) {
    return ctx.invalid("Q, K and V must be [batch, heads, seq, head_size]");
  }
  const int64_t batch = q_t.dim(0), hq = q_t.dim(1), sq = q_t.dim(2), d = q_t.dim(3);
  const int64_t hkv = k_t.dim(1), skv = k_t.dim(2), dv = v_t.dim(3);
  if (k_t.dim(0) != batch || v_t.dim(0) != batch || v_t.dim(1) != hkv || v_t.dim(2) != skv ||
      k_t.dim(3) != d) {
    return ctx.invalid("K and V shapes do not match Q");
  }
  if (hkv <= 0 || hq % hkv != 0) return ctx.invalid("Q heads must be a multiple of KV heads");
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, hq, sq, skv}));
  KILN_RETURN_IF_ERROR(misc::check_scratch(ctx, {batch, hq, sq, dv}));
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  if (ctx.node().has_attr("scale")) scale = ctx.attr_float("scale", 1.f);
  const std::vector<double> Q = misc::to_doubles(q_t), K = misc::to_doubles(k_t),
                            V = misc::to_doubles(v_t);
  const int64_t group = hq / hkv;
  const std::vector<int64_t> sshape{batch, hq, sq, skv};
  std::vector<double> S(static_cast<size_t>(batch * hq * sq * skv));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t i = 0; i < sq; ++i)
        for (int64_t j = 0; j < skv; ++j) {
          const double* q = Q.data() + ((b * hq + h) * sq + i) * d;
          const double* k = K.data() + ((b * hkv + h / group) * skv + j) * d;
          double s = 0;
          for (int64_t x = 0; x < d; ++x) s += q[x] * k[x];
          S[((b * hq + h) * sq + i) * skv + j] = s * scale;
        }
  KILN_ASSIGN_OR_RETURN(S, run_modifier(ctx, "score_mod", S, sshape, dt));
  for (int64_t r = 0; r < batch * hq * sq; ++r) {
    double* row = S.data() + (r * skv);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < skv; ++j) mx = std::max(mx, row[j]);
    double sum = 0;
    for (int64_t j = 0; j < skv; ++j) {
      row[j] = std::isinf(mx) && mx < 0 ? 0.0 : std::exp(row[j] - mx);
      sum += row[j];
    }
    for (int64_t j = 0; j < skv; ++j) row[j] = sum > 0 ? row[j] / sum : 0.0;
  }
  KILN_ASSIGN_OR_RETURN(S, run_modifier(ctx, "prob_mod", S, sshape, dt));
  std::vector<double> Y(static_cast<size_t>(batch * hq * sq * dv), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t i = 0; i < sq; ++i) {
        double* y = Y.data() + (((b * hq + h) * sq + i) * dv);
        for (int64_t j = 0; j < skv; ++j) {
          const double p = S[((b * hq + h) * sq + i) * skv + j];
          const double* v = V.data() + (((b * hkv + h / group) * skv + j) * dv);
          for (int64_t x = 0; x < dv; ++x) y[x] += p * v[x];
        }
      }
  return misc::emit_doubles(ctx, 0, dt, {batch, hq, sq, dv}, Y);
}

}  // namespace

void register_misc_linear_attention_kernels(KernelRegistry& r) {
  r.add("", "LinearAttention", linear_attention);
  r.add("ai.onnx.preview", "FlexAttention", flex_attention);
}

}  // namespace kiln::cpu
