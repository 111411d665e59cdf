// Channels-last (NHWC) layout for the convolutions of GPU engines: cuDNN's tensor-core kernels
// for float16/bfloat16 want NHWC activations and KRSC filters, and on NCHW tensors they transpose
// internally or pick slower kernels. The builder runs this pass for CUDA engines after
// lower_precision (the convolutions' dtypes are final) and after the fusions (FusedConv's
// residual and activation are already attached, so this pass only relabels layouts).
//
//  1. Each eligible 2-D convolution (Conv or kiln.FusedConv; float16/bfloat16, float32 only when
//     asked; a constant W; known input channels; explicit symmetric pads or VALID) becomes a
//     channels-last kiln.FusedConv between Transpose(NCHW→NHWC) on X (and on the residual Z) and
//     Transpose(NHWC→NCHW) on Y; W is permuted to [M, R, S, C/group] at build time. cuDNN's
//     float16/bfloat16 tensor-core kernels want C a multiple of 8: an ungrouped convolution with
//     another C (an image's 3 channels) reads X zero-padded by a Pad after the transpose, and W
//     gets zero channels to match (the padded products add zeros).
//  2. A Transpose(NHWC→NCHW) sinks through the layout-agnostic node reading it: elementwise
//     unary ops, broadcasting binary ops, Where, Clip, kiln.Pointwise (the other operands are
//     NHWC values too, one-element values, or constants permuted at build time), MaxPool and
//     AveragePool (→ kiln.ChannelsLast*Pool), GlobalAveragePool (→ ReduceMean over axes 1, 2),
//     Concat (axis remapped). The node then reads NHWC and a Transpose follows it.
//  3. Transpose pairs that compose to the identity cancel.
//  4. A remaining Transpose that only moves size-1 dims ([N,1,1,C] → [N,C,1,1] after the global
//     pool) becomes a Reshape, which is a view.
// A ResNet ends with one Transpose after the input's Cast and no other.
#include <algorithm>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/dtype.h"
#include "ops/fused_conv.h"
#include "ops/fused_pointwise.h"
#include "ops/layout.h"
#include "passes/pass_manager.h"

namespace kiln::passes {
namespace {

const std::vector<int64_t> kToLast = {0, 2, 3, 1};
const std::vector<int64_t> kToFirst = {0, 3, 1, 2};

bool default_domain(const ir::Node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

int64_t default_opset(const ir::Graph& g) {
  for (const char* d : {"", "ai.onnx"}) {
    auto it = g.opsets.find(d);
    if (it != g.opsets.end()) return it->second;
  }
  return 13;
}

bool rank4(const ir::Value* v) {
  return v && v->type.is_tensor() && v->type.shape.rank_known && v->type.shape.rank() == 4;
}

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

ir::TypeInfo permuted(const ir::TypeInfo& t, const std::vector<int64_t>& perm) {
  ir::TypeInfo out = t;
  if (!t.shape.rank_known || t.shape.rank() != static_cast<int>(perm.size())) return out;
  for (size_t i = 0; i < perm.size(); ++i) {
    out.shape.dims[i] = t.shape.dims[static_cast<size_t>(perm[i])];
  }
  return out;
}

// A tensor with one element for sure (every dim known to be 1; rank 0 included).
bool one_element(const ir::Value* v) {
  if (!v || !v->type.is_tensor() || !v->type.shape.rank_known) return false;
  for (const ir::Dim& d : v->type.shape.dims)
    if (!(d.known() && d.value == 1)) return false;
  return true;
}

// `t` right-aligned to rank 4 (leading 1s) and permuted by `perm` (byte-sized dtypes only).
StatusOr<Tensor> permute_constant(const Tensor& t, const std::vector<int64_t>& perm) {
  if (t.rank() > 4 || dtype_bits(t.dtype()) % 8 != 0 || t.dtype() == DType::kString) {
    return Status(StatusCode::kInternal, "constant cannot be permuted");
  }
  std::vector<int64_t> in(static_cast<size_t>(4 - t.rank()), 1);
  in.insert(in.end(), t.shape().begin(), t.shape().end());
  std::vector<int64_t> in_strides(4, 1), out_shape(4);
  for (int i = 2; i >= 0; --i) in_strides[static_cast<size_t>(i)] = in_strides[i + 1] * in[i + 1];
  for (size_t i = 0; i < 4; ++i) out_shape[i] = in[static_cast<size_t>(perm[i])];
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::create(t.dtype(), out_shape));
  const size_t es = dtype_storage_bytes(t.dtype(), 1);
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.mutable_raw());
  int64_t o = 0;
  for (int64_t a = 0; a < out_shape[0]; ++a)
    for (int64_t b = 0; b < out_shape[1]; ++b)
      for (int64_t c = 0; c < out_shape[2]; ++c)
        for (int64_t d = 0; d < out_shape[3]; ++d, ++o) {
          const int64_t idx[4] = {a, b, c, d};
          int64_t off = 0;
          for (size_t i = 0; i < 4; ++i) off += idx[i] * in_strides[static_cast<size_t>(perm[i])];
          std::copy_n(src + static_cast<size_t>(off) * es, es, dst + static_cast<size_t>(o) * es);
        }
  return out;
}

// t [.., C] zero-padded along its last dim to cp (byte-sized dtypes).
StatusOr<Tensor> pad_last_dim(const Tensor& t, int64_t cp) {
  std::vector<int64_t> shape = t.shape();
  const int64_t c = shape.back();
  shape.back() = cp;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::create(t.dtype(), shape));
  const size_t es = dtype_storage_bytes(t.dtype(), 1);
  const int64_t rows = c > 0 ? t.numel() / c : 0;
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.mutable_raw());
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(src + static_cast<size_t>(r * c) * es, static_cast<size_t>(c) * es,
                dst + static_cast<size_t>(r * cp) * es);
  }
  return out;
}

bool is_transpose(const ir::Node* n, const std::vector<int64_t>& perm) {
  if (!n || n->op_type != "Transpose" || !default_domain(*n) || n->num_inputs() != 1 ||
      n->outputs.size() != 1 || !n->has_output(0) || !n->has_attr("perm")) {
    return false;
  }
  Status err;
  return n->attr_ints("perm", {}, &err) == perm && err.ok();
}

// The NHWC value v is the NCHW→ ... transpose of, when v = Transpose(x, kToFirst).
ir::Value* nhwc_source(const ir::Value* v) {
  if (!v || !is_transpose(v->producer, kToFirst) || !rank4(v)) return nullptr;
  return v->producer->inputs[0];
}

void set_attr_int(ir::Node* n, const std::string& name, int64_t v) {
  for (ir::Attribute& a : n->attrs) {
    if (a.name == name) {
      a.type = ir::AttrType::kInt;
      a.i = v;
      return;
    }
  }
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInt;
  a.i = v;
  n->attrs.push_back(a);
}

void set_attr_ints(ir::Node* n, const std::string& name, std::vector<int64_t> v) {
  n->attrs.erase(std::remove_if(n->attrs.begin(), n->attrs.end(),
                                [&](const ir::Attribute& a) { return a.name == name; }),
                 n->attrs.end());
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInts;
  a.ints = std::move(v);
  n->attrs.push_back(a);
}

// Explicit pads (or VALID) over 2 spatial dims; `symmetric` also wants begin == end.
bool window_ok(const ir::Node& n, bool symmetric) {
  Status err;
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET", &err);
  if (!err.ok() || (auto_pad != "NOTSET" && auto_pad != "VALID")) return false;
  const std::vector<int64_t> pads = n.attr_ints("pads", {}, &err);
  if (!err.ok() || (!pads.empty() && pads.size() != 4)) return false;
  if (symmetric && pads.size() == 4 && (pads[0] != pads[2] || pads[1] != pads[3])) return false;
  return true;
}

class Rewriter {
 public:
  Rewriter(ir::Graph& g, const LayoutOptions& o) : g_(g), opts_(o) {
    std::vector<std::string> outer;
    g_.collect_outer_scope_names(&outer);
    pinned_.insert(outer.begin(), outer.end());
    for (const ir::Value* v : g_.outputs) pinned_.insert(v->name);
  }

  // Step 1.
  StatusOr<bool> convert_convs() {
    std::vector<ir::Node*> convs;
    for (const auto& n : g_.nodes())
      if (eligible_conv(*n)) convs.push_back(n.get());
    for (ir::Node* n : convs) KILN_RETURN_IF_ERROR(convert_conv(n));
    return !convs.empty();
  }

  // Step 2: one sweep.
  StatusOr<bool> sink() {
    bool changed = false;
    std::vector<ir::Node*> order;
    for (const auto& n : g_.nodes()) order.push_back(n.get());
    for (ir::Node* n : order) {
      if (n->op_type == "Transpose") continue;
      bool reads_nhwc = false, absorbed = true;
      for (const ir::Value* v : n->inputs) {
        if (!nhwc_source(v)) continue;
        reads_nhwc = true;
        absorbed &= transpose_goes_away(v);
      }
      if (!reads_nhwc || !absorbed) continue;
      KILN_ASSIGN_OR_RETURN(bool c, sink_through(n));
      changed |= c;
    }
    return changed;
  }

  // Step 3.
  bool cancel_pairs() {
    bool changed = false;
    for (const auto& np : g_.nodes()) {
      ir::Node* t2 = np.get();
      if (t2->op_type != "Transpose" || !default_domain(*t2) || t2->num_inputs() != 1 ||
          !t2->has_output(0) || !t2->has_attr("perm")) {
        continue;
      }
      ir::Value* mid = t2->inputs[0];
      ir::Node* t1 = mid->producer;
      if (!t1 || t1->op_type != "Transpose" || !default_domain(*t1) || !t1->has_attr("perm") ||
          t1->num_inputs() != 1) {
        continue;
      }
      Status err;
      const std::vector<int64_t> p1 = t1->attr_ints("perm", {}, &err);
      const std::vector<int64_t> p2 = t2->attr_ints("perm", {}, &err);
      if (!err.ok() || p1.size() != p2.size()) continue;
      bool identity = true;
      for (size_t i = 0; i < p2.size() && identity; ++i) {
        if (p2[i] < 0 || p2[i] >= static_cast<int64_t>(p1.size()) ||
            p1[static_cast<size_t>(p2[i])] != static_cast<int64_t>(i)) {
          identity = false;
        }
      }
      ir::Value* out = t2->outputs[0];
      if (!identity || pinned_.count(out->name)) continue;
      g_.replace_uses(out, t1->inputs[0]);
      changed = true;
    }
    return changed;
  }

  // Step 4.
  StatusOr<bool> transposes_to_reshapes() {
    if (default_opset(g_) < 5) return false;
    bool changed = false;
    for (const auto& np : g_.nodes()) {
      ir::Node* t = np.get();
      if (!is_transpose(t, kToFirst) && !is_transpose(t, kToLast)) continue;
      const ir::Value* x = t->inputs[0];
      if (!rank4(x)) continue;
      Status err;
      const std::vector<int64_t> perm = t->attr_ints("perm", {}, &err);
      // Only size-1 dims move: the non-1 dims keep their order.
      std::vector<int64_t> kept;
      bool ok = true;
      for (int64_t p : perm) {
        const ir::Dim& d = x->type.shape.dims[static_cast<size_t>(p)];
        if (d.known() && d.value == 1) continue;
        if (!kept.empty() && p < kept.back()) ok = false;
        kept.push_back(p);
      }
      if (!ok) continue;
      // Reshape target: known dims as values, 0 where a dim stays in place, one -1 at most.
      std::vector<int64_t> target;
      int unknown = 0;
      for (size_t i = 0; i < perm.size() && ok; ++i) {
        const ir::Dim& d = x->type.shape.dims[static_cast<size_t>(perm[i])];
        if (d.known()) {
          if (d.value == 0) ok = false;  // 0 would mean "copy" to Reshape
          target.push_back(d.value);
        } else if (perm[i] == static_cast<int64_t>(i)) {
          target.push_back(0);
        } else {
          target.push_back(-1);
          ok = ++unknown <= 1;
        }
      }
      if (!ok) continue;
      ir::Value* shape = g_.new_value(t->outputs[0]->name + "_shape");
      shape->constant = std::make_shared<const Tensor>(
          Tensor::from_vector<int64_t>({static_cast<int64_t>(target.size())}, target));
      shape->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({4}));
      t->op_type = "Reshape";
      t->opset = std::max<int64_t>(default_opset(g_), 5);
      t->attrs.clear();
      t->inputs.push_back(shape);
      changed = true;
    }
    return changed;
  }

 private:
  bool dtype_ok(DType t) const {
    return t == DType::kFloat16 || t == DType::kBFloat16 || (opts_.float32 && t == DType::kFloat32);
  }

  // Sinking the Transpose that makes v only pays when the Transpose then goes away: v is no
  // graph output and every reader either sinks it too or transposes it back (a pair that
  // cancels). Otherwise the Transpose would stay for the other readers and sinking would add
  // one after the node.
  bool transpose_goes_away(const ir::Value* v) const {
    if (pinned_.count(v->name)) return false;
    for (const ir::Node* c : g_.consumers(v)) {
      if (!is_transpose(c, kToLast) && kind_of(*c) == Kind::kNone) return false;
    }
    return true;
  }

  bool eligible_conv(const ir::Node& n) const {
    const bool conv = n.op_type == "Conv" && default_domain(n) && n.num_inputs() <= 3;
    Status err;
    const bool fused = n.op_type == ops::kFusedConvOp && n.domain == ir::kKilnDomain &&
                       n.attr_int(ops::kChannelsLastAttr, 0, &err) == 0 && err.ok();
    if (!(conv || fused) || n.outputs.size() != 1 || !n.has_output(0) || !n.has_input(0) ||
        !n.has_input(1)) {
      return false;
    }
    const ir::Value* x = n.inputs[0];
    const ir::Value* w = n.inputs[1];
    if (!rank4(x) || !rank4(n.outputs[0]) || !dtype_ok(x->type.dtype)) return false;
    if (!x->type.shape.dims[1].known()) return false;  // dynamic channel count
    if (!w->constant || w->is_graph_input || w->constant->rank() != 4 ||
        w->constant->dtype() != x->type.dtype) {
      return false;
    }
    if (n.has_input(3) && !rank4(n.inputs[3])) return false;
    // W [M, C/group, R, S] must match X's channels (the kernel reports a model that does not;
    // padding the channels must not hide it).
    const int64_t group = n.attr_int("group", 1, &err);
    const int64_t c = x->type.shape.dims[1].value, m = w->constant->dim(0);
    if (!err.ok() || group < 1 || w->constant->dim(1) * group != c || m % group != 0) return false;
    return window_ok(n, true);
  }

  size_t index_of(const ir::Node* n) const {
    const auto& nodes = g_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i].get() == n) return i;
    return nodes.size();
  }

  // Inserts out = Transpose(in, perm) at position `pos`.
  void insert_transpose(size_t pos, ir::Value* in, ir::Value* out,
                        const std::vector<int64_t>& perm) {
    ir::Node* t = g_.insert_node(pos, "Transpose", "", "layout_" + out->name);
    t->opset = default_opset(g_);
    t->inputs = {in};
    t->outputs = {out};
    set_attr_ints(t, "perm", perm);
  }

  // The NHWC copy of NCHW value v, made by a Transpose before node position `pos` (one per v).
  ir::Value* to_nhwc(ir::Value* v, size_t pos) {
    auto it = nhwc_of_.find(v);
    if (it != nhwc_of_.end()) return it->second;
    ir::Value* out = g_.new_value(v->name + "_nhwc");
    out->type = permuted(v->type, kToLast);
    insert_transpose(pos, v, out, kToLast);
    nhwc_of_[v] = out;
    return out;
  }

  // x [N, H, W, C] zero-padded to cp channels by a Pad before position `pos` (one per x).
  ir::Value* padded_channels(ir::Value* x, int64_t cp, size_t pos) {
    auto it = padded_of_.find(x);
    if (it != padded_of_.end()) return it->second;
    const int64_t c = x->type.shape.dims[3].value;
    ir::Value* pads = g_.new_value(x->name + "_pads");
    pads->constant = std::make_shared<const Tensor>(
        Tensor::from_vector<int64_t>({8}, {0, 0, 0, 0, 0, 0, 0, cp - c}));
    pads->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({8}));
    ir::Value* out = g_.new_value(x->name + "_c" + std::to_string(cp));
    out->type = x->type;
    out->type.shape.dims[3] = ir::Dim::of(cp);
    ir::Node* p = g_.insert_node(pos, "Pad", "", "layout_" + out->name);
    p->opset = default_opset(g_);
    p->inputs = {x, pads};
    p->outputs = {out};
    padded_of_[x] = out;
    return out;
  }

  // Node n's outputs become NHWC values; each original (NCHW) value is made by a Transpose
  // right after n.
  void outputs_to_nhwc(ir::Node* n) {
    size_t pos = index_of(n) + 1;
    for (ir::Value*& o : n->outputs) {
      if (!o) continue;
      ir::Value* nchw = o;
      ir::Value* nhwc = g_.new_value(nchw->name + "_nhwc");
      nhwc->type = permuted(nchw->type, kToLast);
      o = nhwc;
      insert_transpose(pos++, nhwc, nchw, kToFirst);
    }
  }

  Status convert_conv(ir::Node* n) {
    ir::Value* w = n->inputs[1];
    KILN_ASSIGN_OR_RETURN(Tensor wl, permute_constant(*w->constant, kToLast));
    ir::Value* wv = g_.new_value(w->name + "_krsc");
    wv->type = ir::TypeInfo::tensor(w->constant->dtype(), ir::Shape::of(wl.shape()));
    wv->constant = std::make_shared<const Tensor>(std::move(wl));
    const size_t pos = index_of(n);
    ir::Value* x = to_nhwc(n->inputs[0], pos);
    Status err;
    const int64_t group = n->attr_int("group", 1, &err);
    const int64_t c = x->type.shape.dims[3].value;
    const int64_t to = opts_.pad_channels;
    if (to > 1 && err.ok() && group == 1 && c % to != 0 && x->type.dtype != DType::kFloat32 &&
        default_opset(g_) >= 11) {
      const int64_t cp = (c + to - 1) / to * to;
      x = padded_channels(x, cp, index_of(n));
      KILN_ASSIGN_OR_RETURN(Tensor wp, pad_last_dim(*wv->constant, cp));
      wv->type.shape.dims[3] = ir::Dim::of(cp);
      wv->constant = std::make_shared<const Tensor>(std::move(wp));
    }
    n->inputs[0] = x;
    n->inputs[1] = wv;
    if (n->has_input(3)) n->inputs[3] = to_nhwc(n->inputs[3], index_of(n));
    n->op_type = ops::kFusedConvOp;
    n->domain = ir::kKilnDomain;
    n->opset = 1;
    set_attr_int(n, ops::kChannelsLastAttr, 1);
    outputs_to_nhwc(n);
    g_.relink();
    return Status::Ok();
  }

  enum class Kind { kNone, kElementwise, kPool, kGlobalAverage, kConcat };

  static Kind kind_of(const ir::Node& n) {
    static const std::set<std::string> unary = {
        "Relu",  "LeakyRelu", "Sigmoid",  "HardSigmoid", "HardSwish", "Tanh",     "Erf",
        "Gelu",  "Neg",       "Abs",      "Sqrt",        "Exp",       "Log",      "Elu",
        "Selu",  "Softplus",  "Softsign", "Mish",        "Cast",      "Identity", "Reciprocal",
        "Floor", "Ceil",      "Round",    "Sign",        "Not",       "IsNaN",    "IsInf"};
    static const std::set<std::string> broadcasting = {
        "Add",   "Sub",  "Mul",     "Div",         "Pow",
        "Max",   "Min",  "PRelu",   "Where",       "Clip",
        "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
        "And",   "Or",   "Xor"};
    if (n.domain == ir::kKilnDomain && n.op_type == ops::kPointwise) return Kind::kElementwise;
    if (!default_domain(n)) return Kind::kNone;
    if (n.op_type == "Cast") {
      // Transposes move through a Cast only towards the narrower type (fewer bytes to move).
      const ir::Value* in = n.num_inputs() == 1 ? n.inputs[0] : nullptr;
      const ir::Value* out = n.has_output(0) ? n.outputs[0] : nullptr;
      if (!in || !out || dtype_bits(out->type.dtype) > dtype_bits(in->type.dtype)) {
        return Kind::kNone;
      }
    }
    if (unary.count(n.op_type) || broadcasting.count(n.op_type)) {
      // Before opset 7 the binary ops broadcast by attribute (axis), not numpy-style.
      if (broadcasting.count(n.op_type) && n.opset < 7) return Kind::kNone;
      return Kind::kElementwise;
    }
    if (n.op_type == "MaxPool" || n.op_type == "AveragePool") return Kind::kPool;
    if (n.op_type == "GlobalAveragePool") return Kind::kGlobalAverage;
    if (n.op_type == "Concat") return Kind::kConcat;
    return Kind::kNone;
  }

  // New inputs of n in NHWC, or false when one of them cannot be: an NHWC source, a one-element
  // value (unchanged) or a constant of rank <= 4 (permuted now).
  StatusOr<bool> nhwc_inputs(const ir::Node& n, std::vector<ir::Value*>* out) {
    out->assign(n.inputs.begin(), n.inputs.end());
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      ir::Value* v = n.inputs[i];
      if (!v) continue;
      if (ir::Value* s = nhwc_source(v)) {
        (*out)[i] = s;
      } else if (one_element(v)) {
        continue;
      } else if (v->constant && !v->is_graph_input && v->constant->rank() <= 4 &&
                 v->type.is_tensor()) {
        StatusOr<Tensor> t = permute_constant(*v->constant, kToLast);
        if (!t.ok()) return false;
        ir::Value* c = g_.new_value(v->name + "_nhwc");
        c->type = ir::TypeInfo::tensor(t->dtype(), ir::Shape::of(t->shape()));
        c->constant = std::make_shared<const Tensor>(std::move(*t));
        (*out)[i] = c;
      } else {
        return false;
      }
    }
    return true;
  }

  StatusOr<bool> sink_through(ir::Node* n) {
    const Kind kind = kind_of(*n);
    if (kind == Kind::kNone) return false;
    for (const ir::Value* o : n->outputs)
      if (o && !rank4(o)) return false;
    if (n->outputs.empty() || !n->has_output(0)) return false;
    switch (kind) {
      case Kind::kNone:
        return false;
      case Kind::kElementwise:
      case Kind::kConcat: {
        if (kind == Kind::kConcat) {
          for (const ir::Value* v : n->inputs)
            if (v && !rank4(v)) return false;  // Concat needs every input of the output's rank
        }
        std::vector<ir::Value*> ins;
        KILN_ASSIGN_OR_RETURN(bool ok, nhwc_inputs(*n, &ins));
        if (!ok) return false;
        if (kind == Kind::kConcat) {
          Status err;
          int64_t axis = n->attr_int("axis", 1, &err);
          if (!err.ok() || axis < -4 || axis > 3) return false;
          if (axis < 0) axis += 4;
          const int64_t remap[4] = {0, 3, 1, 2};  // NCHW axis → NHWC axis
          set_attr_int(n, "axis", remap[axis]);
        }
        n->inputs = std::move(ins);
        break;
      }
      case Kind::kPool: {
        ir::Value* s = nhwc_source(n->inputs[0]);
        if (!s || n->num_inputs() != 1 || !is_float(s->type.dtype) || !window_ok(*n, false)) {
          return false;
        }
        if (n->outputs.size() > 1 && n->outputs[1] != nullptr) return false;  // Indices
        n->outputs.resize(1);
        n->inputs[0] = s;
        n->op_type =
            n->op_type == "MaxPool" ? ops::kChannelsLastMaxPoolOp : ops::kChannelsLastAveragePoolOp;
        n->domain = ir::kKilnDomain;
        n->opset = 1;
        n->attrs.erase(
            std::remove_if(n->attrs.begin(), n->attrs.end(),
                           [](const ir::Attribute& a) { return a.name == "storage_order"; }),
            n->attrs.end());
        break;
      }
      case Kind::kGlobalAverage: {
        ir::Value* s = nhwc_source(n->inputs[0]);
        if (!s || n->num_inputs() != 1 || !is_float(s->type.dtype)) return false;
        n->inputs[0] = s;
        n->op_type = "ReduceMean";
        set_attr_int(n, "keepdims", 1);
        if (n->opset >= 18) {
          ir::Value* axes = g_.new_value(n->outputs[0]->name + "_axes");
          axes->constant =
              std::make_shared<const Tensor>(Tensor::from_vector<int64_t>({2}, {1, 2}));
          axes->type = ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({2}));
          n->inputs.push_back(axes);
        } else {
          n->opset = std::max<int64_t>(n->opset, 13);
          set_attr_ints(n, "axes", {1, 2});
        }
        break;
      }
    }
    outputs_to_nhwc(n);
    g_.relink();
    return true;
  }

  ir::Graph& g_;
  LayoutOptions opts_;
  std::unordered_set<std::string> pinned_;
  std::unordered_map<const ir::Value*, ir::Value*> nhwc_of_;
  std::unordered_map<const ir::Value*, ir::Value*> padded_of_;
};

}  // namespace

StatusOr<bool> layout_nhwc_with(ir::Graph& graph, const LayoutOptions& opts) {
  Rewriter r(graph, opts);
  KILN_ASSIGN_OR_RETURN(bool converted, r.convert_convs());
  if (!converted) return false;
  for (int round = 0; round < 64; ++round) {
    KILN_ASSIGN_OR_RETURN(bool sunk, r.sink());
    const bool cancelled = r.cancel_pairs();
    if (cancelled) KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph).status());
    if (!sunk && !cancelled) break;
  }
  KILN_RETURN_IF_ERROR(eliminate_dead_nodes(graph).status());
  KILN_RETURN_IF_ERROR(r.transposes_to_reshapes().status());
  graph.relink();
  graph.remove_unused_values();
  return true;
}

StatusOr<bool> layout_nhwc(ir::Graph& graph) {
  return layout_nhwc_with(graph, LayoutOptions{});
}

}  // namespace kiln::passes
