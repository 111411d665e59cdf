// CUDA kernel of kiln.CastTransposePad (ops/layout_copy.h): one thread per output element
// (grid-stride), reading its source element (zero in the padding) and converting it in float.
// Writes are coalesced; reads follow the permutation (the layout conversion at the edge of a
// channels-last region reads a few channel planes per warp).
#include "backends/cuda/common.cuh"
#include "backends/cuda/kernel.h"
#include "ops/layout_copy.h"

namespace kiln::cuda {
namespace {

struct CopyGeometry {
  int rank = 0;
  bool small = false;  // output and input below 2^31 elements: 32-bit index math
  int64_t out_dims[kMaxRank] = {};
  int64_t src_strides[kMaxRank] = {};  // in output axis order
  FastDiv32 fast_dims[kMaxRank];       // out_dims as multiply-shift divisors (small only)
  int64_t src_last = 0;                // the last output axis's length before the padding
};

template <typename TI, typename TO>
__global__ void cast_transpose_pad_kernel(const TI* x, TO* y, int64_t n, CopyGeometry g) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    bool pad = false;
    int64_t off = 0;
    if (g.small) {
      uint32_t rem = static_cast<uint32_t>(i), off32 = 0;
      for (int d = g.rank - 1; d >= 0; --d) {
        const uint32_t q = g.fast_dims[d].div(rem);
        const uint32_t c = rem - q * static_cast<uint32_t>(g.out_dims[d]);
        rem = q;
        if (d == g.rank - 1 && c >= static_cast<uint32_t>(g.src_last)) pad = true;
        off32 += c * static_cast<uint32_t>(g.src_strides[d]);
      }
      off = off32;
    } else {
      int64_t rem = i;
      for (int d = g.rank - 1; d >= 0; --d) {
        const int64_t c = rem % g.out_dims[d];
        rem /= g.out_dims[d];
        if (d == g.rank - 1 && c >= g.src_last) pad = true;
        off += c * g.src_strides[d];
      }
    }
    y[i] = from_f<TO>(pad ? 0.f : load_f(x, off));
  }
}

// NCHW → NHWC with the channels padded to 8, into a 16-bit type (a channels-last region's input
// edge, e.g. an image's 3 channels for tensor-core convolutions): one thread per pixel reads its
// channels from the planes (coalesced across the warp's neighbouring pixels) and writes the 8
// padded channels as one 16-byte store.
template <typename TI, typename TO>
__global__ void nchw_to_nhwc8_kernel(const TI* x, TO* y, uint32_t pixels, uint32_t plane,
                                     FastDiv32 plane_div, int channels) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= pixels) return;
  const uint32_t b = plane_div.div(i), p = i - b * plane;
  const TI* xb = x + static_cast<size_t>(b) * channels * plane + p;
  TO out[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    out[c] = from_f<TO>(c < channels ? load_f(xb, static_cast<int64_t>(c) * plane) : 0.f);
  }
  reinterpret_cast<uint4*>(y)[i] = *reinterpret_cast<const uint4*>(out);
}

template <typename TI>
Status launch_from(KernelContext& ctx, DType out, const void* x, void* y, int64_t n,
                   const CopyGeometry& g) {
  const Launch l = launch_for(n);
  switch (out) {
    case DType::kFloat32:
      cast_transpose_pad_kernel<TI, float><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const TI*>(x), static_cast<float*>(y), n, g);
      break;
    case DType::kFloat16:
      cast_transpose_pad_kernel<TI, __half><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const TI*>(x), static_cast<__half*>(y), n, g);
      break;
    case DType::kBFloat16:
      cast_transpose_pad_kernel<TI, __nv_bfloat16><<<l.grid, l.block, 0, ctx.stream()>>>(
          static_cast<const TI*>(x), static_cast<__nv_bfloat16*>(y), n, g);
      break;
    default:
      return ctx.unsupported_type(out);
  }
  return ctx.check_launch("CastTransposePad");
}

std::string cast_transpose_pad_supports(const ir::Node& node) {
  std::string why = require_dtypes(node, {DType::kFloat32, DType::kFloat16, DType::kBFloat16});
  if (!why.empty()) return why;
  const ir::Value* x = node.has_input(0) ? node.inputs[0] : nullptr;
  if (x == nullptr || !x->type.shape.rank_known || x->type.shape.rank() > kMaxRank) {
    return "X's rank unknown or above 8";
  }
  return {};
}

Status cast_transpose_pad_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(ops::CastTransposePad a,
                        ops::parse_cast_transpose_pad(ctx.node(), X.rank()));
  if (X.rank() > kMaxRank) return ctx.unsupported("rank above 8");
  const DType out = a.to == DType::kUndefined ? X.dtype : a.to;
  CopyGeometry g;
  g.rank = X.rank();
  std::vector<int64_t> xs(static_cast<size_t>(g.rank), 1);
  for (int d = g.rank - 2; d >= 0; --d)
    xs[static_cast<size_t>(d)] = xs[static_cast<size_t>(d) + 1] * X.dim(d + 1);
  std::vector<int64_t> shape(static_cast<size_t>(g.rank));
  for (int d = 0; d < g.rank; ++d) {
    const int p = static_cast<int>(a.perm[static_cast<size_t>(d)]);
    shape[static_cast<size_t>(d)] = X.dim(p);
    g.src_strides[d] = xs[static_cast<size_t>(p)];
  }
  g.src_last = shape.back();
  shape.back() += a.pad_last;
  for (int d = 0; d < g.rank; ++d) g.out_dims[d] = shape[static_cast<size_t>(d)];
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, out, shape));
  const int64_t n = Y->numel();
  if (n == 0) return Status::Ok();
  g.small = n < (int64_t{1} << 31) && X.numel() < (int64_t{1} << 31);
  if (g.small) {
    for (int d = 0; d < g.rank; ++d)
      g.fast_dims[d] = FastDiv32(static_cast<uint32_t>(g.out_dims[d]));
  }
  const bool to_nhwc8 = g.rank == 4 && a.perm[0] == 0 && a.perm[1] == 2 && a.perm[2] == 3 &&
                        a.perm[3] == 1 && shape.back() == 8 &&
                        (out == DType::kFloat16 || out == DType::kBFloat16) && g.small &&
                        reinterpret_cast<uintptr_t>(Y->data) % 16 == 0;
  if (to_nhwc8) {
    const auto pixels = static_cast<uint32_t>(n / 8);
    const auto plane = static_cast<uint32_t>(X.dim(2) * X.dim(3));
    const int channels = static_cast<int>(X.dim(1));
    const unsigned block = 256, grid = (pixels + block - 1) / block;
    const FastDiv32 pd(plane);
    auto go = [&](auto in_tag, auto out_tag) {
      using TI = decltype(in_tag);
      using TO = decltype(out_tag);
      nchw_to_nhwc8_kernel<TI, TO><<<grid, block, 0, ctx.stream()>>>(
          static_cast<const TI*>(X.data), static_cast<TO*>(Y->data), pixels, plane, pd, channels);
    };
    auto go_in = [&](auto out_tag) {
      switch (X.dtype) {
        case DType::kFloat32:
          go(float{}, out_tag);
          return true;
        case DType::kFloat16:
          go(__half{}, out_tag);
          return true;
        case DType::kBFloat16:
          go(__nv_bfloat16{}, out_tag);
          return true;
        default:
          return false;
      }
    };
    const bool ok = out == DType::kFloat16 ? go_in(__half{}) : go_in(__nv_bfloat16{});
    if (!ok) return ctx.unsupported_type(X.dtype);
    return ctx.check_launch("CastTransposePad");
  }
  switch (X.dtype) {
    case DType::kFloat32:
      return launch_from<float>(ctx, out, X.data, Y->data, n, g);
    case DType::kFloat16:
      return launch_from<__half>(ctx, out, X.data, Y->data, n, g);
    case DType::kBFloat16:
      return launch_from<__nv_bfloat16>(ctx, out, X.data, Y->data, n, g);
    default:
      return ctx.unsupported_type(X.dtype);
  }
}

}  // namespace

void register_layout_copy_kernels(KernelRegistry& r) {
  r.add({ir::kKilnDomain, ops::kCastTransposePad, cast_transpose_pad_supports,
         cast_transpose_pad_run});
}

}  // namespace kiln::cuda
