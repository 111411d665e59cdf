// A patch-embedding convolution (kernel == stride, no padding, no dilation, one group: ViT's
// conv_proj) written as the matrix product it is. Each output pixel reads its own p x q patch,
// so with X [N, C, H, W] and W [M, C, p, q]:
//   P = Transpose(Reshape(X, [N, C, H/p, p, W/q, q]), 0,2,4,1,3,5)   [N, H/p, W/q, C, p, q]
//   Y = Transpose(Reshape(P, [N, H/p, W/q, C*p*q]) @ Wm + B, 0,3,1,2) [N, M, H/p, W/q]
// with Wm = W reshaped to [M, C*p*q] and transposed (a constant made here). The GEMM runs on
// tensor cores with K = C*p*q (768 for ViT-B/16), where a convolution with C = 3 wastes most of
// its reduction on padding channels; the MatMul + Add become a FusedMatMul later in the pipeline.
// Applies to a default-domain Conv with constant W (and B), X of rank 4 with at most 4 known
// channels (an image) and known H, W divisible by a kernel of at least 2 x 2, and float dtypes;
// anything else is left alone.
#include <algorithm>

#include "passes/pass_manager.h"
#include "passes/pattern_match.h"

namespace kiln::passes {
namespace {

using match::constant_of;
using match::ints_attr;
using match::typed_value;

struct PatchConv {
  ir::Node* conv = nullptr;
  int64_t c = 0, h = 0, w = 0, m = 0, p = 0, q = 0;
};

bool all_equal(const std::vector<int64_t>& v, int64_t want) {
  for (int64_t x : v)
    if (x != want) return false;
  return true;
}

bool match_patch_conv(ir::Node* n, PatchConv* pc) {
  if (n->op_type != "Conv" || !(n->domain.empty() || n->domain == "ai.onnx")) return false;
  if (!n->has_input(0) || !n->has_input(1) || !n->has_output(0) || n->outputs.size() != 1) {
    return false;
  }
  const ir::Value* x = n->inputs[0];
  if (!match::is_float_ranked(x) || x->type.shape.rank() != 4) return false;
  const DType dt = x->type.dtype;
  if (dt == DType::kFloat64) return false;
  const Tensor* w = constant_of(n->inputs[1]);
  if (!w || w->dtype() != dt || w->rank() != 4) return false;
  const Tensor* b = nullptr;
  if (n->has_input(2)) {
    b = constant_of(n->inputs[2]);
    if (!b || b->dtype() != dt || b->rank() != 1 || b->numel() != w->dim(0)) return false;
  }
  const auto& d = x->type.shape.dims;
  if (!d[1].known() || !d[2].known() || !d[3].known()) return false;
  Status err;
  const std::string auto_pad = n->attr_string("auto_pad", "NOTSET", &err);
  const int64_t group = n->attr_int("group", 1, &err);
  const std::vector<int64_t> kernel = n->attr_ints("kernel_shape", {}, &err);
  const std::vector<int64_t> strides = n->attr_ints("strides", {1, 1}, &err);
  const std::vector<int64_t> pads = n->attr_ints("pads", {0, 0, 0, 0}, &err);
  const std::vector<int64_t> dil = n->attr_ints("dilations", {1, 1}, &err);
  if (!err.ok() || group != 1 || (auto_pad != "NOTSET" && auto_pad != "VALID")) return false;
  pc->conv = n;
  pc->m = w->dim(0);
  pc->c = d[1].value;
  pc->h = d[2].value;
  pc->w = d[3].value;
  pc->p = w->dim(2);
  pc->q = w->dim(3);
  // Image channels only (ViT's, Swin's patch embeddings): with many channels a strided
  // convolution is efficient as it is, and in a CNN it keeps its channels-last layout.
  if (w->dim(1) != pc->c || pc->c > 4 || pc->p < 2 || pc->q < 2) return false;
  if (!kernel.empty() && (kernel.size() != 2 || kernel[0] != pc->p || kernel[1] != pc->q)) {
    return false;
  }
  if (strides.size() != 2 || strides[0] != pc->p || strides[1] != pc->q) return false;
  if (pads.size() != 4 || !all_equal(pads, 0) || dil.size() != 2 || !all_equal(dil, 1)) {
    return false;
  }
  return pc->h % pc->p == 0 && pc->w % pc->q == 0 && pc->h > 0 && pc->w > 0 && pc->m > 0;
}

ir::Value* int64_constant(ir::Graph& graph, std::string_view hint,
                          const std::vector<int64_t>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  return match::constant_value(graph, hint, Tensor::from_vector<int64_t>({n}, values));
}

// Wm [C*p*q, M] = transpose of W viewed as [M, C*p*q], in W's dtype.
StatusOr<ir::Value*> gemm_weight(ir::Graph& graph, const ir::Value* wv, int64_t m, int64_t k) {
  const Tensor& w = *wv->constant;
  std::vector<double> t(static_cast<size_t>(m * k));
  for (int64_t o = 0; o < m; ++o) {
    for (int64_t i = 0; i < k; ++i) t[static_cast<size_t>(i * m + o)] = w.get_double(o * k + i);
  }
  Tensor d = Tensor::from_vector<double>({k, m}, t);
  KILN_ASSIGN_OR_RETURN(Tensor c, convert_tensor(d, w.dtype()));
  ir::Value* v = graph.new_value(wv->name + "/patch_gemm");
  v->type = ir::TypeInfo::tensor(w.dtype(), ir::Shape::of({k, m}));
  v->constant = std::make_shared<const Tensor>(std::move(c));
  return v;
}

}  // namespace

StatusOr<bool> fold_patch_conv(ir::Graph& graph) {
  std::vector<PatchConv> found;
  for (const auto& np : graph.nodes()) {
    PatchConv pc;
    if (match_patch_conv(np.get(), &pc)) found.push_back(pc);
  }
  if (found.empty()) return false;
  std::vector<match::Replacement> reps;
  for (const PatchConv& pc : found) {  // nodes are added after the walk over the graph's nodes
    ir::Node* conv = pc.conv;
    const std::string& base = conv->name;
    ir::Value* x = conv->inputs[0];
    const DType dt = x->type.dtype;
    const ir::Dim n = x->type.shape.dims[0];
    const int64_t hp = pc.h / pc.p, wq = pc.w / pc.q, k = pc.c * pc.p * pc.q;
    const auto D = [](int64_t v) { return ir::Dim::of(v); };
    const int64_t opset = std::max<int64_t>(conv->opset, 13);
    std::vector<ir::Node*> added;
    auto add = [&](const char* op, const std::string& suffix, std::vector<ir::Value*> ins,
                   ir::Value* out) {
      ir::Node* nd = graph.add_node(op, "", base + suffix);
      nd->opset = opset;
      nd->inputs = std::move(ins);
      nd->outputs = {out};
      added.push_back(nd);
      return nd;
    };
    ir::Value* r6 =
        typed_value(graph, base + "/patches6", dt, {n, D(pc.c), D(hp), D(pc.p), D(wq), D(pc.q)});
    add("Reshape", "/patch_reshape",
        {x, int64_constant(graph, base + "/patch_shape6", {0, pc.c, hp, pc.p, wq, pc.q})}, r6);
    ir::Value* t6 =
        typed_value(graph, base + "/patches", dt, {n, D(hp), D(wq), D(pc.c), D(pc.p), D(pc.q)});
    add("Transpose", "/patch_transpose", {r6}, t6)
        ->attrs.push_back(ints_attr("perm", {0, 2, 4, 1, 3, 5}));
    ir::Value* rows = typed_value(graph, base + "/patch_rows", dt, {n, D(hp), D(wq), D(k)});
    add("Reshape", "/patch_rows",
        {t6, int64_constant(graph, base + "/patch_shape4", {0, hp, wq, k})}, rows);
    KILN_ASSIGN_OR_RETURN(ir::Value * wm, gemm_weight(graph, conv->inputs[1], pc.m, k));
    ir::Value* prod = typed_value(graph, base + "/patch_gemm", dt, {n, D(hp), D(wq), D(pc.m)});
    add("MatMul", "/patch_gemm", {rows, wm}, prod);
    if (conv->has_input(2)) {
      ir::Value* biased = typed_value(graph, base + "/patch_bias", dt, {n, D(hp), D(wq), D(pc.m)});
      add("Add", "/patch_bias", {prod, conv->inputs[2]}, biased);
      prod = biased;
    }
    add("Transpose", "/patch_nchw", {prod}, conv->outputs[0])
        ->attrs.push_back(ints_attr("perm", {0, 3, 1, 2}));
    reps.push_back(match::Replacement{conv, {conv}, added});
  }
  match::splice(graph, reps);
  return true;
}

}  // namespace kiln::passes
