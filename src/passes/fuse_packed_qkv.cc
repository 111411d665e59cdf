// Q, K and V of a 3-D Attention read from one packed tensor: kiln.PackedAttention.
//   a. Split(x, last axis, sizes [Hq*D, Hkv*D, Hkv*D]) → Attention(Q, K, V [, mask]), as
//      fold_mha_layout leaves torchvision's ViT: PackedAttention(x [, mask]); the Split's copies
//      go away.
//   b. Three projections of one X (kiln.FusedMatMul without activation, or MatMul, each with a
//      constant 2-D weight of one dtype and the same trans_b; biases constant) → Attention, as
//      BERT's exports end after fold_attention_heads and fuse_matmul_epilogue: one FusedMatMul
//      whose weight (and bias) is the three concatenated along N (a missing bias is zeros where
//      another has one), then PackedAttention: one GEMM instead of three.
// Only 3-D Attentions (q_num_heads/kv_num_heads) whose inputs are exactly Q, K, V (each read
// once, only by the Attention, not a graph output) and an optional mask of bool or Q's dtype,
// with Y as the only output and no attribute beyond q_num_heads, kv_num_heads, scale, is_causal
// (softcap 0, qk_matmul_output_mode 0, windows -1 and softmax_precision are allowed: they are
// the defaults, or a precision the kernels exceed). V's head size must be Q's.
#include <cstring>

#include "ops/fused_attention.h"
#include "ops/fused_matmul.h"
#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::constant_of;
using match::constant_value;
using match::int_attr;
using match::typed_value;

using match::Uses;

bool is_default(const ir::Node* n) {
  return n != nullptr && (n->domain.empty() || n->domain == "ai.onnx");
}

const std::vector<ir::Dim>* dims_of(const ir::Value* v, int rank) {
  if (v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known) return nullptr;
  if (v->type.shape.rank() != rank) return nullptr;
  return &v->type.shape.dims;
}

// A constant no run can override (graph inputs with defaults can be).
struct AttentionInfo {
  const ir::Node* node = nullptr;
  int64_t hq = 0, hkv = 0, d = 0;
  DType dtype = DType::kUndefined;
  ir::Value* mask = nullptr;
};

// A 3-D Attention PackedAttention computes, with Q [B, S, Hq*D], K and V [B, S, Hkv*D] of one
// dtype, each read once.
bool match_attention(const Uses& uses, const ir::Node* a, AttentionInfo* info) {
  if (a->op_type != "Attention" || !is_default(a) || a->opset < 23) return false;
  if (a->num_inputs() < 3 || a->outputs.empty() || a->outputs[0] == nullptr) return false;
  for (size_t i = 4; i < a->inputs.size(); ++i)
    if (a->inputs[i] != nullptr) return false;  // past key/value, nonpad_kv_seqlen
  for (size_t o = 1; o < a->outputs.size(); ++o)
    if (a->outputs[o] != nullptr) return false;
  Status st;
  for (const ir::Attribute& at : a->attrs) {
    const std::string& n = at.name;
    if (n == "q_num_heads" || n == "kv_num_heads" || n == "scale" || n == "softmax_precision") {
      continue;
    }
    if (n == "is_causal") {
      const int64_t c = a->attr_int(n, 0, &st);
      if (c != 0 && c != 1) return false;
    } else if (n == "softcap") {
      if (a->attr_float(n, 0.f, &st) != 0.f) return false;
    } else if (n == "qk_matmul_output_mode") {
      if (a->attr_int(n, 0, &st) != 0) return false;
    } else if (n == "left_window_size" || n == "right_window_size") {
      if (a->attr_int(n, -1, &st) != -1) return false;
    } else {
      return false;
    }
  }
  const int64_t hq = a->attr_int("q_num_heads", 0, &st);
  const int64_t hkv = a->attr_int("kv_num_heads", 0, &st);
  a->attr_float("scale", 1.f, &st);
  if (!st.ok() || hq <= 0 || hkv <= 0 || hq % hkv != 0) return false;
  const ir::Value* q = a->inputs[0];
  const ir::Value* k = a->inputs[1];
  const ir::Value* v = a->inputs[2];
  const auto* dq = dims_of(q, 3);
  const auto* dk = dims_of(k, 3);
  const auto* dv = dims_of(v, 3);
  if (dq == nullptr || dk == nullptr || dv == nullptr) return false;
  if (q == k || q == v || k == v) return false;
  const DType dt = q->type.dtype;
  if (k->type.dtype != dt || v->type.dtype != dt) return false;
  if (dt != DType::kFloat32 && dt != DType::kFloat16 && dt != DType::kBFloat16) return false;
  if (!(*dq)[2].known() || !(*dk)[2].known() || !(*dv)[2].known()) return false;
  if ((*dq)[2].value % hq != 0 || (*dq)[2].value <= 0) return false;
  const int64_t d = (*dq)[2].value / hq;
  if ((*dk)[2].value != hkv * d || (*dv)[2].value != hkv * d) return false;
  for (const ir::Value* x : {q, k, v}) {
    if (!uses.only_by(x, {a})) return false;
  }
  // Each of Q, K, V in one slot only (a value given twice is refused above).
  ir::Value* mask = a->num_inputs() > 3 ? a->inputs[3] : nullptr;
  if (mask != nullptr) {
    if (!mask->type.is_tensor()) return false;
    const DType mt = mask->type.dtype;
    if (mt != DType::kBool && mt != dt) return false;
    if (mask->type.shape.rank_known &&
        (mask->type.shape.rank() < 1 || mask->type.shape.rank() > 4)) {
      return false;
    }
  }
  info->node = a;
  info->hq = hq;
  info->hkv = hkv;
  info->d = d;
  info->dtype = dt;
  info->mask = mask;
  return true;
}

// The split sizes of a Split node (input, attribute or equal parts), or false.
bool split_sizes(const ir::Node* sp, int64_t total, std::vector<int64_t>* sizes) {
  Status st;
  const size_t parts = sp->outputs.size();
  sizes->clear();
  if (sp->num_inputs() >= 2 && sp->inputs[1] != nullptr) {
    const Tensor* t = constant_of(sp->inputs[1]);
    if (t == nullptr || t->rank() != 1 || t->dtype() != DType::kInt64) return false;
    for (int64_t i = 0; i < t->numel(); ++i) sizes->push_back(t->data<int64_t>()[i]);
  } else if (sp->has_attr("split")) {
    *sizes = sp->attr_ints("split", {}, &st);
    if (!st.ok()) return false;
  } else {
    if (parts == 0 || total % static_cast<int64_t>(parts) != 0) return false;
    sizes->assign(parts, total / static_cast<int64_t>(parts));
  }
  if (sizes->size() != parts) return false;
  int64_t sum = 0;
  for (int64_t s : *sizes) sum += s;
  return sum == total;
}

struct Fusion {
  AttentionInfo att;
  ir::Value* packed = nullptr;                            // form a: the Split's input
  const ir::Node* proj[3] = {nullptr, nullptr, nullptr};  // form b: Q, K, V projections
  bool trans_b = false;
  std::vector<const ir::Node*> removed;
};

// Form a: Split(x) feeding Q, K, V in order.
bool match_split(const AttentionInfo& at, Fusion* f) {
  const ir::Node* a = at.node;
  const ir::Node* sp = a->inputs[0]->producer;
  if (sp == nullptr || sp->op_type != "Split" || !is_default(sp) || sp->outputs.size() != 3) {
    return false;
  }
  for (int i = 0; i < 3; ++i) {
    if (sp->outputs[size_t(i)] != a->inputs[size_t(i)]) return false;
  }
  ir::Value* x = sp->num_inputs() >= 1 ? sp->inputs[0] : nullptr;
  const auto* dx = dims_of(x, 3);
  if (dx == nullptr || !(*dx)[2].known() || x->type.dtype != at.dtype) return false;
  Status st;
  int64_t axis = sp->attr_int("axis", 0, &st);
  if (!st.ok() || (axis != 2 && axis != -1)) return false;
  std::vector<int64_t> sizes;
  if (!split_sizes(sp, (*dx)[2].value, &sizes)) return false;
  if (sizes[0] != at.hq * at.d || sizes[1] != at.hkv * at.d || sizes[2] != at.hkv * at.d) {
    return false;
  }
  // The Split's outputs are Q, K, V, read only by the Attention (match_attention).
  f->packed = x;
  f->removed = {a, sp};
  return true;
}

// A projection of x: FusedMatMul (no activation) or MatMul, with a constant 2-D weight.
bool projection(const ir::Value* y, const ir::Node** out, const ir::Value** x, bool* trans_b) {
  const ir::Node* p = y->producer;
  if (p == nullptr || p->outputs.size() != 1 || p->outputs[0] != y) return false;
  Status st;
  if (p->domain == ir::kKilnDomain && p->op_type == ops::kFusedMatMul) {
    if (!p->attr_string("activation", "", &st).empty() || p->num_inputs() < 2) return false;
    const int64_t tb = p->attr_int("trans_b", 0, &st);
    if (!st.ok() || (tb != 0 && tb != 1)) return false;
    *trans_b = tb == 1;
    if (p->num_inputs() == 3 && p->inputs[2] != nullptr) {
      const Tensor* b = constant_of(p->inputs[2]);
      if (b == nullptr || b->rank() != 1) return false;
    }
  } else if (is_default(p) && p->op_type == "MatMul" && p->num_inputs() == 2) {
    *trans_b = false;
  } else {
    return false;
  }
  const Tensor* w = constant_of(p->inputs[1]);
  if (w == nullptr || w->rank() != 2 || p->inputs[0] == nullptr) return false;
  *out = p;
  *x = p->inputs[0];
  return true;
}

// Form b: three projections of one X.
bool match_projections(const AttentionInfo& at, Fusion* f) {
  const ir::Node* a = at.node;
  const ir::Value* x = nullptr;
  bool tb[3] = {false, false, false};
  for (int i = 0; i < 3; ++i) {
    const ir::Value* xi = nullptr;
    if (!projection(a->inputs[size_t(i)], &f->proj[i], &xi, &tb[i])) return false;
    if (i == 0) x = xi;
    if (xi != x || tb[i] != tb[0]) return false;
  }
  if (f->proj[0] == f->proj[1] || f->proj[1] == f->proj[2] || f->proj[0] == f->proj[2]) {
    return false;
  }
  if (dims_of(x, 3) == nullptr || x->type.dtype != at.dtype) return false;
  const Tensor* w0 = constant_of(f->proj[0]->inputs[1]);
  const int64_t kdim = tb[0] ? w0->dim(1) : w0->dim(0);
  const int64_t want[3] = {at.hq * at.d, at.hkv * at.d, at.hkv * at.d};
  for (int i = 0; i < 3; ++i) {
    const ir::Node* p = f->proj[i];
    const Tensor* w = constant_of(p->inputs[1]);
    if (w->dtype() != at.dtype || (tb[0] ? w->dim(1) : w->dim(0)) != kdim ||
        (tb[0] ? w->dim(0) : w->dim(1)) != want[i]) {
      return false;
    }
    if (p->num_inputs() == 3 && p->inputs[2] != nullptr) {
      const Tensor* b = constant_of(p->inputs[2]);
      if (b->dtype() != at.dtype || b->numel() != want[i]) return false;
    }
  }
  f->trans_b = tb[0];
  f->removed = {a, f->proj[0], f->proj[1], f->proj[2]};
  return true;
}

// The three weights concatenated along N: [K, Nq + 2 Nkv] (columns) or, transposed, rows.
Tensor concat_weights(const Fusion& f) {
  const Tensor* w[3];
  for (int i = 0; i < 3; ++i) w[i] = constant_of(f.proj[i]->inputs[1]);
  const uint64_t es = dtype_storage_bytes(w[0]->dtype(), 1);
  int64_t n = 0;
  for (const Tensor* t : w) n += f.trans_b ? t->dim(0) : t->dim(1);
  const int64_t k = f.trans_b ? w[0]->dim(1) : w[0]->dim(0);
  Tensor out = Tensor::zeros(w[0]->dtype(),
                             f.trans_b ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n});
  auto* dst = static_cast<unsigned char*>(out.mutable_raw());
  if (f.trans_b) {  // [N_i, K] blocks one after another
    uint64_t off = 0;
    for (const Tensor* t : w) {
      std::memcpy(dst + off, t->raw(), t->nbytes());
      off += t->nbytes();
    }
    return out;
  }
  for (int64_t r = 0; r < k; ++r) {  // row r: Wq[r, :], Wk[r, :], Wv[r, :]
    uint64_t col = 0;
    for (const Tensor* t : w) {
      const uint64_t row = static_cast<uint64_t>(t->dim(1)) * es;
      std::memcpy(dst + (static_cast<uint64_t>(r * n)) * es + col,
                  static_cast<const unsigned char*>(t->raw()) + static_cast<uint64_t>(r) * row,
                  row);
      col += row;
    }
  }
  return out;
}

// The biases concatenated (zeros for a projection without one); false when none has a bias.
bool concat_biases(const Fusion& f, DType dt, Tensor* out) {
  const Tensor* b[3] = {nullptr, nullptr, nullptr};
  int64_t n[3];
  bool any = false;
  for (int i = 0; i < 3; ++i) {
    const ir::Node* p = f.proj[i];
    if (p->num_inputs() == 3 && p->inputs[2] != nullptr) b[i] = constant_of(p->inputs[2]);
    any |= b[i] != nullptr;
    const Tensor* w = constant_of(p->inputs[1]);
    n[i] = f.trans_b ? w->dim(0) : w->dim(1);
  }
  if (!any) return false;
  *out = Tensor::zeros(dt, {n[0] + n[1] + n[2]});
  auto* dst = static_cast<unsigned char*>(out->mutable_raw());
  uint64_t off = 0;
  for (int i = 0; i < 3; ++i) {
    const uint64_t bytes = dtype_storage_bytes(dt, static_cast<uint64_t>(n[i]));
    if (b[i] != nullptr) std::memcpy(dst + off, b[i]->raw(), bytes);
    off += bytes;
  }
  return true;
}

}  // namespace

StatusOr<bool> fuse_packed_qkv(ir::Graph& graph) {
  const Uses uses(graph);
  match::Claims claims;
  std::vector<Fusion> found;
  for (const auto& np : graph.nodes()) {
    Fusion f;
    if (!match_attention(uses, np.get(), &f.att)) continue;
    if (!match_split(f.att, &f) && !match_projections(f.att, &f)) continue;
    if (claims.any(f.removed)) continue;
    claims.take(f.removed);
    found.push_back(std::move(f));
  }
  if (found.empty()) return false;
  std::vector<match::Replacement> reps;
  for (const Fusion& f : found) {  // nodes are added after the walk over the graph's nodes
    const ir::Node* a = f.att.node;
    std::vector<ir::Node*> added;
    ir::Value* packed = f.packed;
    if (packed == nullptr) {
      const ir::Node* pq = f.proj[0];
      ir::Value* x = pq->inputs[0];
      const DType dt = f.att.dtype;
      ir::Node* p = graph.add_node(ops::kFusedMatMul, ir::kKilnDomain, pq->name + "/packed");
      p->opset = 1;
      ir::Value* w = constant_value(graph, pq->inputs[1]->name + "/packed", concat_weights(f));
      p->inputs = {x, w};
      Tensor bias;
      if (concat_biases(f, dt, &bias)) {
        const std::string hint =
            pq->num_inputs() == 3 && pq->inputs[2] != nullptr ? pq->inputs[2]->name : pq->name;
        p->inputs.push_back(constant_value(graph, hint + "/packed_bias", std::move(bias)));
      }
      ir::Attribute act;
      act.name = "activation";
      act.type = ir::AttrType::kString;
      p->attrs = {act, int_attr("trans_b", f.trans_b ? 1 : 0)};
      std::vector<ir::Dim> dims = x->type.shape.dims;
      dims.back() = ir::Dim::of((f.att.hq + 2 * f.att.hkv) * f.att.d);
      packed = typed_value(graph, pq->outputs[0]->name + "/packed", dt, dims);
      p->outputs = {packed};
      added.push_back(p);
    }
    ir::Node* n = graph.add_node(ops::kPackedAttention, ir::kKilnDomain, a->name + "/packed");
    n->opset = 1;
    n->inputs = {packed};
    if (f.att.mask != nullptr) n->inputs.push_back(f.att.mask);
    n->outputs = {a->outputs[0]};
    n->attrs = {int_attr("q_num_heads", f.att.hq), int_attr("kv_num_heads", f.att.hkv)};
    for (const ir::Attribute& at : a->attrs) {
      if (at.name == "scale" || at.name == "is_causal") n->attrs.push_back(at);
    }
    added.push_back(n);
    reps.push_back(match::Replacement{a, f.removed, added});
  }
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
