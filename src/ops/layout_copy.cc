// Type inference of kiln.CastTransposePad (ops/layout_copy.h).
#include "ops/layout_copy.h"

#include "ops/op_registry.h"

namespace kiln::ops {
namespace {

bool float_type(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

Status infer_cast_transpose_pad(InferContext& ctx) {
  const ir::TypeInfo& tx = ctx.input_type(0);
  const int rank = tx.is_tensor() && tx.shape.rank_known ? tx.shape.rank() : -1;
  StatusOr<CastTransposePad> a = parse_cast_transpose_pad(ctx.node(), rank);
  if (!a.ok()) return ctx.fail(a.status().message());
  DType in = tx.is_tensor() ? tx.dtype : DType::kUndefined;
  if (in != DType::kUndefined && !float_type(in)) {
    return ctx.fail(std::string("unsupported dtype ") + dtype_name(in));
  }
  const DType out = a->to == DType::kUndefined ? in : a->to;
  if (rank < 0) {
    ctx.set_output(0, ir::TypeInfo::tensor(out));
    return Status::Ok();
  }
  ir::Shape s = ir::Shape::of_rank(rank);
  for (int d = 0; d < rank; ++d) {
    s.dims[static_cast<size_t>(d)] =
        tx.shape.dims[static_cast<size_t>(a->perm[static_cast<size_t>(d)])];
  }
  ir::Dim& last = s.dims.back();
  if (a->pad_last > 0)
    last = last.known() ? ir::Dim::of(last.value + a->pad_last) : ir::Dim::unknown();
  ctx.set_output(0, ir::TypeInfo::tensor(out, s));
  return Status::Ok();
}

}  // namespace

StatusOr<CastTransposePad> parse_cast_transpose_pad(const ir::Node& node, int rank) {
  Status st;
  CastTransposePad a;
  a.perm = node.attr_ints("perm", {}, &st);
  const int64_t to = node.attr_int("to", 0, &st);
  a.pad_last = node.attr_int("pad_last", 0, &st);
  KILN_RETURN_IF_ERROR(st);
  if (rank >= 0 && static_cast<int>(a.perm.size()) != rank) {
    return node.error(StatusCode::kInvalidModel, "perm must name each of X's axes once");
  }
  if (rank == 0) return node.error(StatusCode::kInvalidModel, "X must have rank >= 1");
  std::vector<bool> seen(a.perm.size(), false);
  for (int64_t p : a.perm) {
    if (p < 0 || p >= static_cast<int64_t>(a.perm.size()) || seen[static_cast<size_t>(p)]) {
      return node.error(StatusCode::kInvalidModel, "perm must be a permutation of X's axes");
    }
    seen[static_cast<size_t>(p)] = true;
  }
  if (to != 0) {
    if (!is_valid_dtype(static_cast<int>(to)) || !float_type(static_cast<DType>(to))) {
      return node.error(StatusCode::kInvalidModel, "to must be float32, float16 or bfloat16");
    }
    a.to = static_cast<DType>(to);
  }
  if (a.pad_last < 0 || a.pad_last > (int64_t{1} << 20)) {
    return node.error(StatusCode::kInvalidModel, "pad_last must be in [0, 2^20]");
  }
  return a;
}

void register_layout_copy_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, kCastTransposePad, 1, 1, 1, 1, infer_cast_transpose_pad));
}

}  // namespace kiln::ops
