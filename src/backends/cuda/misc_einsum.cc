// Einsum on the GPU for the common forms: one operand (transpose and/or sum over labels not in
// the output) and two operands (batched matmul: labels in both operands and the output are
// batch dims, labels in one operand and the output are kept rows/columns, labels in both
// operands only are contracted), each operand permuted into [batch, M, K] / [batch, K, N] and the
// result permuted into the output order. Refused in supports: repeated labels in one operand
// (diagonals), more than two operands, labels of only one operand that are summed away when
// there are two operands, unknown ranks, non-float dtypes.
#include <algorithm>
#include <numeric>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"
#include "ops/einsum_spec.h"

namespace kiln::cuda {
namespace {

std::string why_not(const ops::EinsumSpec& s) {
  const size_t nops = s.inputs.size();
  if (nops < 1 || nops > 2) return "more than two operands";
  std::vector<int> count(static_cast<size_t>(s.num_labels), 0);
  std::vector<int> in_op(static_cast<size_t>(s.num_labels), 0);  // bit mask of operands
  for (size_t o = 0; o < nops; ++o) {
    std::vector<int> seen(static_cast<size_t>(s.num_labels), 0);
    for (int l : s.inputs[o]) {
      if (l < 0 || l >= s.num_labels) return "bad label";
      if (seen[static_cast<size_t>(l)]++) return "repeated label in one operand (diagonal)";
      in_op[static_cast<size_t>(l)] |= 1 << o;
    }
  }
  std::vector<int> in_out(static_cast<size_t>(s.num_labels), 0);
  for (int l : s.output) {
    if (l < 0 || l >= s.num_labels) return "bad label";
    if (in_out[static_cast<size_t>(l)]++) return "repeated output label";
    if (in_op[static_cast<size_t>(l)] == 0) return "output label in no operand";
  }
  if (nops == 2) {
    for (int l = 0; l < s.num_labels; ++l) {
      const int m = in_op[static_cast<size_t>(l)];
      if ((m == 1 || m == 2) && !in_out[static_cast<size_t>(l)]) {
        return "label summed within one operand";
      }
    }
  }
  (void)count;
  return {};
}

std::string einsum_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  if (std::string r = require_dtypes(node, {t}); !r.empty()) return r;
  if (std::string r = check_ranks(node); !r.empty()) return r;
  std::vector<int> ranks;
  for (const ir::Value* v : node.inputs) {
    if (v == nullptr || !v->type.is_tensor() || !v->type.shape.rank_known) return "unknown rank";
    ranks.push_back(v->type.shape.rank());
  }
  const std::string eq = node.attr_string("equation", "");
  auto spec = ops::parse_einsum(eq, ranks);
  if (!spec.ok()) return "equation not parsed";
  if (std::string r = why_not(*spec); !r.empty()) return r;
  // Outputs of rank > 8 are refused by check_ranks when known; the batch split never exceeds the
  // output rank.
  return {};
}

bool is_identity(const std::vector<int>& perm) {
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int>(i)) return false;
  }
  return true;
}

uint64_t align_up(uint64_t v) {
  return (v + 255) & ~uint64_t{255};
}

Status einsum_run(KernelContext& ctx) {
  const std::string eq = ctx.attr_string("equation", "");
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  const int nops = ctx.num_inputs();
  if (nops < 1 || nops > 2) return ctx.unsupported("Einsum with other than 1 or 2 operands");
  std::vector<int> ranks;
  for (int i = 0; i < nops; ++i) ranks.push_back(ctx.input(i).rank());
  KILN_ASSIGN_OR_RETURN(ops::EinsumSpec s, ops::parse_einsum(eq, ranks));
  if (std::string r = why_not(s); !r.empty()) return ctx.unsupported(r);
  const DType dt = ctx.input(0).dtype;
  for (int i = 1; i < nops; ++i) {
    if (ctx.input(i).dtype != dt) return ctx.invalid("operands differ in dtype");
  }
  const int es = static_cast<int>(dtype_storage_bytes(dt, 1));
  // Label sizes (batch labels may broadcast from 1).
  std::vector<int64_t> size(static_cast<size_t>(s.num_labels), -1);
  for (int o = 0; o < nops; ++o) {
    const DeviceTensor& t = ctx.input(o);
    for (size_t d = 0; d < s.inputs[static_cast<size_t>(o)].size(); ++d) {
      const size_t l = static_cast<size_t>(s.inputs[static_cast<size_t>(o)][d]);
      const int64_t v = t.shape[d];
      if (size[l] < 0 || size[l] == 1) {
        size[l] = v;
      } else if (v != 1 && v != size[l]) {
        return ctx.invalid("Einsum operand dims do not match");
      }
    }
  }
  std::vector<int64_t> out_shape;
  for (int l : s.output) out_shape.push_back(size[static_cast<size_t>(l)]);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, dt, out_shape));
  if (Y->numel() == 0) return Status::Ok();

  auto position = [](const std::vector<int>& labels, int l) {
    return static_cast<int>(std::find(labels.begin(), labels.end(), l) - labels.begin());
  };

  if (nops == 1) {
    const DeviceTensor& X = ctx.input(0);
    const std::vector<int>& in = s.inputs[0];
    std::vector<int> perm;
    for (int l : s.output) perm.push_back(position(in, l));
    int64_t summed = 1;
    for (size_t d = 0; d < in.size(); ++d) {
      if (std::find(s.output.begin(), s.output.end(), in[d]) == s.output.end()) {
        perm.push_back(static_cast<int>(d));
        summed *= X.shape[d];
      }
    }
    if (perm.size() == s.output.size()) {  // pure transpose
      return permute(ctx, es, X.data, X.shape, perm, Y->data);
    }
    const void* src = X.data;
    if (!is_identity(perm)) {
      KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(X.nbytes()));
      KILN_RETURN_IF_ERROR(permute(ctx, es, X.data, X.shape, perm, ws));
      src = ws;
    }
    if (summed == 0) return fill_float(ctx, dt, Y->data, Y->numel(), 0.0);
    return launch_row_sum(ctx, dt, src, Y->data, Y->numel(), summed);
  }

  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  const std::vector<int>& la = s.inputs[0];
  const std::vector<int>& lb = s.inputs[1];
  std::vector<int> batch, rows, cols, red;
  for (int l : s.output) {
    const bool ia = position(la, l) < static_cast<int>(la.size());
    const bool ib = position(lb, l) < static_cast<int>(lb.size());
    (ia && ib ? batch : (ia ? rows : cols)).push_back(l);
  }
  for (int l : la) {
    if (std::find(s.output.begin(), s.output.end(), l) == s.output.end()) red.push_back(l);
  }
  std::vector<int> pa, pb;
  std::vector<int64_t> a_batch, b_batch, out_batch;
  for (int l : batch) {
    const int ia = position(la, l), ib = position(lb, l);
    pa.push_back(ia);
    pb.push_back(ib);
    a_batch.push_back(A.shape[static_cast<size_t>(ia)]);
    b_batch.push_back(B.shape[static_cast<size_t>(ib)]);
    out_batch.push_back(size[static_cast<size_t>(l)]);
  }
  int64_t m = 1, n = 1, k = 1;
  for (int l : rows) {
    pa.push_back(position(la, l));
    m *= size[static_cast<size_t>(l)];
  }
  for (int l : red) {
    const int ia = position(la, l), ib = position(lb, l);
    if (A.shape[static_cast<size_t>(ia)] != B.shape[static_cast<size_t>(ib)]) {
      return ctx.invalid("contracted Einsum dims differ");
    }
    pa.push_back(ia);
    pb.push_back(ib);
    k *= size[static_cast<size_t>(l)];
  }
  for (int l : cols) {
    pb.push_back(position(lb, l));
    n *= size[static_cast<size_t>(l)];
  }
  // Result layout [batch, rows, cols] → output order.
  std::vector<int> mid_labels = batch;
  mid_labels.insert(mid_labels.end(), rows.begin(), rows.end());
  mid_labels.insert(mid_labels.end(), cols.begin(), cols.end());
  std::vector<int64_t> mid_shape;
  for (int l : mid_labels) mid_shape.push_back(size[static_cast<size_t>(l)]);
  std::vector<int> pout;
  for (int l : s.output) pout.push_back(position(mid_labels, l));
  const bool perm_a = !is_identity(pa), perm_b = !is_identity(pb), perm_out = !is_identity(pout);
  const uint64_t sa = perm_a ? align_up(A.nbytes()) : 0, sb = perm_b ? align_up(B.nbytes()) : 0;
  const uint64_t so = perm_out ? align_up(Y->nbytes()) : 0;
  GemmWorkspace gws;
  gws.external = true;
  gws.bytes = gemm_workspace_budget(ctx, sa + sb + so);
  char* ws = nullptr;
  if (sa + sb + so + gws.bytes > 0) {
    KILN_ASSIGN_OR_RETURN(void* w, ctx.workspace(sa + sb + so + gws.bytes));
    ws = static_cast<char*>(w);
    gws.ptr = ws + sa + sb + so;
  }
  const void* a = A.data;
  const void* b = B.data;
  if (perm_a) {
    KILN_RETURN_IF_ERROR(permute(ctx, es, A.data, A.shape, pa, ws));
    a = ws;
  }
  if (perm_b) {
    KILN_RETURN_IF_ERROR(permute(ctx, es, B.data, B.shape, pb, ws + sa));
    b = ws + sa;
  }
  void* c = perm_out ? static_cast<void*>(ws + sa + sb) : Y->data;
  if (k == 0) {
    int64_t total = Y->numel();
    KILN_RETURN_IF_ERROR(fill_float(ctx, dt, c, total, 0.0));
  } else {
    KILN_RETURN_IF_ERROR(batched_matmul(ctx, dt, a, a_batch, b, b_batch, c, out_batch, m, n, k,
                                        false, false, 1.0, gws));
  }
  if (perm_out) KILN_RETURN_IF_ERROR(permute(ctx, es, c, mid_shape, pout, Y->data));
  return ctx.check_launch("Einsum");
}

}  // namespace

void register_einsum_kernels(KernelRegistry& r) {
  r.add({"", "Einsum", einsum_supports, einsum_run});
}

}  // namespace kiln::cuda
