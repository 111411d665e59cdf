// CPU reference kernel of kiln.CastTransposePad (ops/layout_copy.h): each output element read
// from its source position (zero in the padding), converted as Cast converts.
#include "ops/layout_copy.h"
#include "backends/cpu/reduction_util.h"

namespace kiln::cpu {
namespace {

Status cast_transpose_pad_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(ops::CastTransposePad a,
                        ops::parse_cast_transpose_pad(ctx.node(), x.rank()));
  const DType out_dt = a.to == DType::kUndefined ? x.dtype() : a.to;
  const int r = x.rank();
  std::vector<int64_t> out_shape(static_cast<size_t>(r));
  for (int d = 0; d < r; ++d)
    out_shape[static_cast<size_t>(d)] = x.dim(static_cast<int>(a.perm[static_cast<size_t>(d)]));
  const int64_t src_last = out_shape.back();
  out_shape.back() += a.pad_last;
  // Source strides in output axis order.
  std::vector<int64_t> xs(static_cast<size_t>(r), 1), ss(static_cast<size_t>(r));
  for (int d = r - 2; d >= 0; --d)
    xs[static_cast<size_t>(d)] = xs[static_cast<size_t>(d) + 1] * x.dim(d + 1);
  for (int d = 0; d < r; ++d)
    ss[static_cast<size_t>(d)] = xs[static_cast<size_t>(a.perm[static_cast<size_t>(d)])];
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate(0, out_dt, out_shape));
  const int64_t n = y->numel();
  return red::dispatch_float(ctx, x.dtype(), [&](auto in_tag) -> Status {
    using TI = typename decltype(in_tag)::type;
    return red::dispatch_float(ctx, out_dt, [&](auto out_tag) -> Status {
      using TO = typename decltype(out_tag)::type;
      const TI* src = x.data<TI>();
      TO* dst = y->mutable_data<TO>();
      std::vector<int64_t> idx(static_cast<size_t>(r), 0);
      for (int64_t i = 0; i < n; ++i) {
        if (idx.back() >= src_last) {
          dst[i] = red::from_double<TO>(0.0);
        } else {
          int64_t off = 0;
          for (int d = 0; d < r; ++d)
            off += idx[static_cast<size_t>(d)] * ss[static_cast<size_t>(d)];
          // float32 → 16 bits rounds once, as Cast does.
          dst[i] = red::from_double<TO>(
              static_cast<double>(static_cast<float>(red::to_double(src[off]))));
        }
        for (int d = r - 1; d >= 0; --d) {
          if (++idx[static_cast<size_t>(d)] < out_shape[static_cast<size_t>(d)]) break;
          idx[static_cast<size_t>(d)] = 0;
        }
      }
      return Status::Ok();
    });
  });
}

}  // namespace

void register_layout_copy_kernels(KernelRegistry& r) {
  r.add(ir::kKilnDomain, ops::kCastTransposePad, red::checked<cast_transpose_pad_kernel>);
}

}  // namespace kiln::cpu
