// NonMaxSuppression on the GPU: one block per (batch, class) ranks the boxes passing the score
// threshold by descending score (ties by index, as a stable sort), then selects greedily, the
// block's threads testing each candidate against the kept boxes in parallel. The output size
// depends on the data: the kernel waits for the per-class counts and kept indices, builds the
// [n, 3] selection on the host and copies it back (KernelDef::synchronizes).
// Host inputs: max_output_boxes_per_class, iou_threshold, score_threshold.
#include <type_traits>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

struct NmsBox {
  float y1, x1, y2, x2;
};

template <typename T>
__device__ NmsBox decode_box(const T* b, bool center) {
  const float v0 = load_f(b, 0), v1 = load_f(b, 1), v2 = load_f(b, 2), v3 = load_f(b, 3);
  if (center) {
    return {v1 - v3 / 2, v0 - v2 / 2, v1 + v3 / 2, v0 + v2 / 2};
  }
  return {fminf(v0, v2), fminf(v1, v3), fmaxf(v0, v2), fmaxf(v1, v3)};
}
template <>
__device__ NmsBox decode_box<double>(const double* b, bool center) {
  const float v0 = static_cast<float>(b[0]), v1 = static_cast<float>(b[1]),
              v2 = static_cast<float>(b[2]), v3 = static_cast<float>(b[3]);
  if (center) {
    return {v1 - v3 / 2, v0 - v2 / 2, v1 + v3 / 2, v0 + v2 / 2};
  }
  return {fminf(v0, v2), fminf(v1, v3), fmaxf(v0, v2), fmaxf(v1, v3)};
}

__device__ float box_iou(const NmsBox& a, const NmsBox& b) {
  const float ih = fminf(a.y2, b.y2) - fmaxf(a.y1, b.y1);
  const float iw = fminf(a.x2, b.x2) - fmaxf(a.x1, b.x1);
  if (ih <= 0.f || iw <= 0.f) return 0.f;
  const float inter = ih * iw;
  const float uni = (a.y2 - a.y1) * (a.x2 - a.x1) + (b.y2 - b.y1) * (b.x2 - b.x1) - inter;
  return uni > 0.f ? inter / uni : 0.f;
}

template <typename T>
__device__ __forceinline__ double score_at(const T* s, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return s[i];
  } else {
    return static_cast<double>(load_f(s, i));
  }
}

template <typename T>
__global__ void nms_kernel(const T* boxes, const T* scores, int64_t nbox, int64_t ncls, bool center,
                           bool has_thr, double thr, float iou_thr, int64_t max_keep,
                           int64_t* order, int64_t* kept, int32_t* counts) {
  const int64_t bc = blockIdx.x;  // b * ncls + c
  const int64_t b = bc / ncls;
  const T* s = scores + bc * nbox;
  const T* bx = boxes + b * nbox * 4;
  int64_t* ord = order + bc * nbox;
  int64_t* kp = kept + bc * max_keep;
  __shared__ int64_t n_cand;
  if (threadIdx.x == 0) n_cand = 0;
  __syncthreads();
  // Rank of each passing box among the passing boxes (descending score, ties by index).
  for (int64_t i = threadIdx.x; i < nbox; i += blockDim.x) {
    const double si = score_at(s, i);
    if (has_thr && !(si > thr)) continue;
    // NaN scores order last, so the ranks form a strict total order and fill ord[0, n).
    const double ki = isnan(si) ? -INFINITY : si;
    int64_t rank = 0;
    for (int64_t j = 0; j < nbox; ++j) {
      const double sj = score_at(s, j);
      if (has_thr && !(sj > thr)) continue;
      const double kj = isnan(sj) ? -INFINITY : sj;
      if (kj > ki || (kj == ki && j < i)) ++rank;
    }
    ord[rank] = i;
    atomicAdd(reinterpret_cast<unsigned long long*>(&n_cand), 1ull);
  }
  __syncthreads();
  const int64_t nc = n_cand;
  int64_t nk = 0;  // uniform across the block
  for (int64_t r = 0; r < nc && nk < max_keep; ++r) {
    const int64_t i = ord[r];
    const NmsBox bi = decode_box(bx + i * 4, center);
    int suppress = 0;
    for (int64_t k = threadIdx.x; k < nk; k += blockDim.x) {
      const NmsBox bk = decode_box(bx + kp[k] * 4, center);
      if (box_iou(bi, bk) > iou_thr) suppress = 1;
    }
    suppress = __syncthreads_or(suppress);
    if (!suppress) {
      if (threadIdx.x == 0) kp[nk] = i;
      ++nk;
      __syncthreads();  // kp[nk - 1] visible to the block
    }
  }
  if (threadIdx.x == 0) counts[bc] = static_cast<int32_t>(nk);
}

std::string nms_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBFloat16 &&
      t != DType::kFloat64) {
    return std::string("dtype ") + dtype_name(t);
  }
  if (input_dtype(node, 1) != t) return "scores dtype differs from boxes'";
  if (output_dtype(node, 0) != DType::kInt64) return "output not int64";
  return {};
}

Status nms_run(KernelContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("boxes and scores are required");
  const DeviceTensor& boxes = ctx.input(0);
  const DeviceTensor& scores = ctx.input(1);
  if (boxes.rank() != 3 || boxes.dim(2) != 4) return ctx.invalid("boxes must be [N, boxes, 4]");
  if (scores.rank() != 3 || scores.dim(0) != boxes.dim(0) || scores.dim(2) != boxes.dim(1)) {
    return ctx.invalid("scores must be [N, classes, boxes] matching boxes");
  }
  if (scores.dtype != boxes.dtype) return ctx.invalid("scores and boxes dtypes differ");
  int64_t max_out = 0;
  if (ctx.has_input(2) && ctx.host_input(2).numel() > 0) {
    const double v = ctx.host_input(2).get_double(0);
    max_out = v > 9.0e18 ? INT64_MAX : static_cast<int64_t>(v);
  }
  double iou_thr = 0;
  if (ctx.has_input(3) && ctx.host_input(3).numel() > 0) iou_thr = ctx.host_input(3).get_double(0);
  bool has_thr = false;
  double thr = 0;
  if (ctx.has_input(4) && ctx.host_input(4).numel() > 0) {
    thr = ctx.host_input(4).get_double(0);
    has_thr = true;
  }
  const int64_t cpb = ctx.attr_int("center_point_box", 0);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (cpb != 0 && cpb != 1) return ctx.invalid("center_point_box must be 0 or 1");
  const int64_t nb = boxes.dim(0), nbox = boxes.dim(1), ncls = scores.dim(1);
  const int64_t pairs = nb * ncls;
  std::vector<int64_t> sel;
  if (max_out > 0 && pairs > 0 && nbox > 0) {
    if (pairs > INT32_MAX) return ctx.unsupported("too many batch x class pairs");
    const int64_t max_keep = max_out < nbox ? max_out : nbox;
    const uint64_t ord_b = static_cast<uint64_t>(pairs * nbox) * 8;
    const uint64_t kept_b = static_cast<uint64_t>(pairs * max_keep) * 8;
    const uint64_t cnt_b = static_cast<uint64_t>(pairs) * 4;
    KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(ord_b + kept_b + cnt_b));
    auto* ord = static_cast<int64_t*>(ws);
    auto* kept = reinterpret_cast<int64_t*>(static_cast<char*>(ws) + ord_b);
    auto* counts = reinterpret_cast<int32_t*>(static_cast<char*>(ws) + ord_b + kept_b);
    const bool ok = dispatch_float(boxes.dtype, [&](auto tag) {
      using T = decltype(tag);
      nms_kernel<T><<<static_cast<unsigned>(pairs), 256, 0, ctx.stream()>>>(
          static_cast<const T*>(boxes.data), static_cast<const T*>(scores.data), nbox, ncls,
          cpb == 1, has_thr, thr, static_cast<float>(iou_thr), max_keep, ord, kept, counts);
    });
    if (!ok) return ctx.unsupported_type(boxes.dtype);
    KILN_RETURN_IF_ERROR(ctx.check_launch("NonMaxSuppression"));
    std::vector<int32_t> hcounts(static_cast<size_t>(pairs));
    std::vector<int64_t> hkept(static_cast<size_t>(pairs * max_keep));
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(hcounts.data(), counts, cnt_b, cudaMemcpyDeviceToHost, ctx.stream()));
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(hkept.data(), kept, kept_b, cudaMemcpyDeviceToHost, ctx.stream()));
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ctx.stream()));
    for (int64_t p = 0; p < pairs; ++p) {
      const int64_t n = hcounts[static_cast<size_t>(p)];
      for (int64_t k = 0; k < n && k < max_keep; ++k) {
        sel.insert(sel.end(), {p / ncls, p % ncls, hkept[static_cast<size_t>(p * max_keep + k)]});
      }
    }
  }
  const int64_t n = static_cast<int64_t>(sel.size() / 3);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y, ctx.allocate(0, DType::kInt64, {n, 3}));
  if (n > 0) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(y->data, sel.data(), sel.size() * 8, cudaMemcpyHostToDevice, ctx.stream()));
    // `sel` dies with this function: wait for the copy.
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ctx.stream()));
  }
  return Status::Ok();
}

}  // namespace

void register_nms_kernels(KernelRegistry& r) {
  KernelDef d{"", "NonMaxSuppression", nms_supports, nms_run};
  d.host_inputs = (1u << 2) | (1u << 3) | (1u << 4);
  d.synchronizes = true;
  r.add(d);
}

}  // namespace kiln::cuda
