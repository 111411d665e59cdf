// BatchNormalization (inference) folded into the Conv or Gemm before it. With
// s = scale / sqrt(var + epsilon) per channel, a Conv's weight becomes W * s (per output channel)
// and its bias (b - mean) * s + B; a Gemm's weight columns are scaled the same way and its C
// becomes (beta * C - mean) * s + B; a MatMul with a constant 2-D weight becomes such a Gemm.
// Folding computes in double and stores in the weight's dtype. It applies only when every BN
// parameter and the weight (and bias) are constants, the BN has one output, and the producer's
// output has no other use (another node, a graph output, a subgraph's outer-scope reference).
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::constant_of;

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

// Per-channel factors of an inference BatchNormalization: y = x * s + t.
struct BnFold {
  std::vector<double> s, mean, bias;  // s = scale / sqrt(var + eps); bias = B
};

// The BN's folding factors, or false when the node is not a foldable inference BN over
// `channels` channels.
bool read_bn(const ir::Node& bn, int64_t channels, BnFold* f) {
  if (bn.num_inputs() != 5 || !bn.has_output(0)) return false;
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (bn.outputs[i]) return false;  // training outputs (running mean/var, saved stats)
  Status attr_error;
  if (bn.attr_int("training_mode", 0, &attr_error) != 0) return false;
  if (bn.opset < 9 && bn.attr_int("spatial", 1, &attr_error) != 1) return false;
  const double eps = bn.attr_float("epsilon", 1e-5f, &attr_error);
  if (!attr_error.ok()) return false;
  const Tensor* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = constant_of(bn.inputs[static_cast<size_t>(i + 1)]);
    if (!p[i] || !is_float(p[i]->dtype()) || p[i]->rank() != 1 || p[i]->numel() != channels) {
      return false;
    }
  }
  const size_t n = static_cast<size_t>(channels);
  f->s.resize(n);
  f->mean.resize(n);
  f->bias.resize(n);
  for (int64_t c = 0; c < channels; ++c) {
    const double var = p[3]->get_double(c) + eps;
    if (!(var > 0)) return false;  // the unfolded BN would give inf/NaN: leave it to show that
    const size_t i = static_cast<size_t>(c);
    f->s[i] = p[0]->get_double(c) / std::sqrt(var);
    f->mean[i] = p[2]->get_double(c);
    f->bias[i] = p[1]->get_double(c);
  }
  return true;
}

// A new constant value holding `data` (double) converted to `dtype`.
StatusOr<ir::Value*> add_constant(ir::Graph& g, const std::string& hint, DType dtype,
                                  std::vector<int64_t> shape, const std::vector<double>& data) {
  Tensor d = Tensor::from_vector<double>(shape, data);
  KILN_ASSIGN_OR_RETURN(Tensor t, convert_tensor(d, dtype));
  ir::Value* v = g.new_value(hint);
  v->type = ir::TypeInfo::tensor(dtype, ir::Shape::of(shape));
  v->constant = std::make_shared<const Tensor>(std::move(t));
  return v;
}

// Conv: W [M, C/group, k...] scaled per output channel m; bias (b - mean) * s + B.
StatusOr<bool> fold_into_conv(ir::Graph& g, ir::Node& conv, const BnFold& f) {
  const Tensor* w = constant_of(conv.has_input(1) ? conv.inputs[1] : nullptr);
  const int64_t m = static_cast<int64_t>(f.s.size());
  if (!w || !is_float(w->dtype()) || w->rank() < 3 || w->dim(0) != m) return false;
  const Tensor* b = nullptr;
  if (conv.has_input(2)) {
    b = constant_of(conv.inputs[2]);
    if (!b || b->dtype() != w->dtype() || b->rank() != 1 || b->numel() != m) return false;
  }
  const int64_t per = m > 0 ? w->numel() / m : 0;
  std::vector<double> wd(static_cast<size_t>(w->numel())), bd(static_cast<size_t>(m));
  for (int64_t o = 0; o < m; ++o) {
    const double s = f.s[static_cast<size_t>(o)];
    for (int64_t i = 0; i < per; ++i) {
      wd[static_cast<size_t>(o * per + i)] = w->get_double(o * per + i) * s;
    }
    const double b0 = b ? b->get_double(o) : 0.0;
    bd[static_cast<size_t>(o)] =
        (b0 - f.mean[static_cast<size_t>(o)]) * s + f.bias[static_cast<size_t>(o)];
  }
  KILN_ASSIGN_OR_RETURN(ir::Value * nw,
                        add_constant(g, conv.inputs[1]->name + "_bn", w->dtype(), w->shape(), wd));
  KILN_ASSIGN_OR_RETURN(ir::Value * nb,
                        add_constant(g, conv.inputs[1]->name + "_bn_bias", w->dtype(), {m}, bd));
  conv.inputs.resize(3);
  conv.inputs[1] = nw;
  conv.inputs[2] = nb;
  return true;
}

void set_float_attr(ir::Node& n, const std::string& name, float v) {
  for (ir::Attribute& a : n.attrs) {
    if (a.name == name) {
      a.type = ir::AttrType::kFloat;
      a.f = v;
      return;
    }
  }
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kFloat;
  a.f = v;
  n.attrs.push_back(a);
}

// Gemm (or a MatMul of a 2-D A and a constant 2-D weight, which becomes a Gemm): weight columns
// scaled, C replaced by a per-column bias, beta set to 1.
StatusOr<bool> fold_into_gemm(ir::Graph& g, ir::Node& n, const BnFold& f) {
  const bool matmul = n.op_type == "MatMul";
  if (n.opset < 7 || !n.has_input(0) || !n.has_input(1)) return false;
  if (matmul) {
    const ir::TypeInfo& a = n.inputs[0]->type;
    if (n.num_inputs() != 2 || !a.is_tensor() || !a.shape.rank_known || a.shape.rank() != 2) {
      return false;
    }
  }
  const Tensor* w = constant_of(n.inputs[1]);
  if (!w || !is_float(w->dtype()) || w->rank() != 2) return false;
  if (w->dtype() == DType::kBFloat16 && n.opset < 13) return false;  // Gemm-13 has bfloat16
  Status attr_error;
  const bool trans_b = !matmul && n.attr_int("transB", 0, &attr_error) != 0;
  const double beta = matmul ? 1.0 : n.attr_float("beta", 1.f, &attr_error);
  if (!attr_error.ok()) return false;
  const int64_t m = static_cast<int64_t>(f.s.size());
  if ((trans_b ? w->dim(0) : w->dim(1)) != m) return false;
  // C: absent, a single value, or one value per column ([M] or [1, M]).
  std::vector<double> c(static_cast<size_t>(m), 0.0);
  if (n.has_input(2)) {
    const Tensor* ct = constant_of(n.inputs[2]);
    if (!ct || ct->dtype() != w->dtype() || ct->rank() > 2) return false;
    const bool per_column = ct->numel() == m && ct->rank() >= 1 && ct->dim(ct->rank() - 1) == m;
    if (ct->numel() != 1 && !per_column) return false;
    for (int64_t j = 0; j < m; ++j) c[static_cast<size_t>(j)] = ct->get_double(per_column ? j : 0);
  }
  std::vector<double> wd(static_cast<size_t>(w->numel())), bd(static_cast<size_t>(m));
  for (int64_t r = 0; r < w->dim(0); ++r) {
    for (int64_t col = 0; col < w->dim(1); ++col) {
      const int64_t i = r * w->dim(1) + col;
      wd[static_cast<size_t>(i)] = w->get_double(i) * f.s[static_cast<size_t>(trans_b ? r : col)];
    }
  }
  for (int64_t j = 0; j < m; ++j) {
    const size_t i = static_cast<size_t>(j);
    bd[i] = (beta * c[i] - f.mean[i]) * f.s[i] + f.bias[i];
  }
  KILN_ASSIGN_OR_RETURN(ir::Value * nw,
                        add_constant(g, n.inputs[1]->name + "_bn", w->dtype(), w->shape(), wd));
  KILN_ASSIGN_OR_RETURN(ir::Value * nb,
                        add_constant(g, n.inputs[1]->name + "_bn_bias", w->dtype(), {m}, bd));
  if (matmul) {
    n.op_type = "Gemm";
    n.attrs.clear();
  } else {
    set_float_attr(n, "beta", 1.f);
  }
  n.inputs.resize(3);
  n.inputs[1] = nw;
  n.inputs[2] = nb;
  return true;
}

}  // namespace

StatusOr<bool> fold_batch_norm(ir::Graph& graph) {
  bool changed = false;
  for (auto& n : graph.mutable_nodes()) {
    for (ir::Attribute& a : n->attrs) {
      if (a.g) {
        KILN_ASSIGN_OR_RETURN(bool c, fold_batch_norm(*a.g));
        changed |= c;
      }
      for (auto& sg : a.graphs) {
        if (!sg) continue;
        KILN_ASSIGN_OR_RETURN(bool c, fold_batch_norm(*sg));
        changed |= c;
      }
    }
  }
  // Values whose uses we cannot see as node inputs: graph outputs, outer-scope names.
  std::vector<std::string> outer;
  graph.collect_outer_scope_names(&outer);
  std::unordered_set<std::string> pinned(outer.begin(), outer.end());
  for (const ir::Value* v : graph.outputs) pinned.insert(v->name);
  std::unordered_map<const ir::Value*, int> uses;
  for (const auto& n : graph.nodes())
    for (const ir::Value* v : n->inputs)
      if (v) ++uses[v];

  std::unordered_set<const ir::Node*> removed;
  for (auto& np : graph.mutable_nodes()) {
    ir::Node& bn = *np;
    if (bn.op_type != "BatchNormalization" || !(bn.domain.empty() || bn.domain == "ai.onnx")) {
      continue;
    }
    if (!bn.has_input(0) || !bn.has_output(0)) continue;
    ir::Value* x = bn.inputs[0];
    ir::Node* p = x->producer;
    if (p == nullptr || removed.count(p) || uses[x] != 1 || pinned.count(x->name)) continue;
    if (!(p->domain.empty() || p->domain == "ai.onnx") || p->outputs.size() != 1) continue;
    const ir::TypeInfo& xt = x->type;
    if (!xt.is_tensor() || !is_float(xt.dtype) || !xt.shape.rank_known || xt.shape.rank() < 2 ||
        !xt.shape.dims[1].known()) {
      continue;
    }
    BnFold f;
    if (!read_bn(bn, xt.shape.dims[1].value, &f)) continue;
    bool folded = false;
    if (p->op_type == "Conv") {
      KILN_ASSIGN_OR_RETURN(folded, fold_into_conv(graph, *p, f));
    } else if ((p->op_type == "Gemm" || p->op_type == "MatMul") && xt.shape.rank() == 2) {
      KILN_ASSIGN_OR_RETURN(folded, fold_into_gemm(graph, *p, f));
    }
    if (!folded) continue;
    p->outputs[0] = bn.outputs[0];  // the producer now writes the BN's output (name kept)
    removed.insert(&bn);
    changed = true;
  }
  if (removed.empty()) return changed;
  graph.remove_nodes_if([&](const ir::Node& n) { return removed.count(&n) > 0; });
  graph.remove_unused_values();
  return true;
}

}  // namespace kiln::passes
