// Internal interface of the CUDA tensor family: host-callable launchers implemented in
// tensor_copy.cu / tensor_index.cu / tensor_resize.cu, used by the registration files
// tensor_kernels.cc and tensor_kernels_index.cc. No device code here: plain C++ structs passed to
// kernels by value.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"

namespace kiln::cuda::tensor {

inline constexpr int kRank = 8;  // same as kMaxRank in common.cuh

// How a source coordinate outside [0, src_dim) is handled by the generic copy.
enum class Border : int32_t {
  kDirect = 0,    // never outside (no check)
  kConstant = 1,  // the whole output element is the fill value
  kEdge = 2,      // clamp to the nearest edge
  kReflect = 3,   // mirror without repeating the edge
  kWrap = 4,      // modulo the dim (Tile, Pad 'wrap')
};

// Generic gather-copy: for every output multi-index o (row-major over out_dims), the source
// element is base + sum_d map_d(start[d] + o_d * step[d]) * strides[d], where map_d applies
// border[d] for coordinates outside [0, src_dims[d]). Elements are `esize` bytes (1, 2, 4, 8;
// simplify_plan may widen to 16).
struct CopyPlan {
  int32_t rank = 0;
  int32_t esize = 0;
  int64_t base = 0;
  int64_t out_dims[kRank] = {};
  int64_t src_dims[kRank] = {};
  int64_t strides[kRank] = {};
  int64_t start[kRank] = {};
  int64_t step[kRank] = {};
  Border border[kRank] = {};
  uint64_t fill = 0;  // bit pattern of the fill element (low esize bytes)
};

// Folds starts/steps of direct dims into base/strides, drops unit dims, merges contiguous
// dims, and widens the element when the innermost run allows (given the pointers' alignment).
void simplify_plan(CopyPlan* p, const void* src, const void* dst);
// Launches the plan (after simplify_plan); n = number of output elements (> 0).
void launch_plan(const CopyPlan& p, const void* src, void* dst, cudaStream_t s);

// Row copies: for each piece, dst[o * dst_row + r] = src[o * src_row + r] for o < outer,
// r < row (in bytes). Used by Concat (one piece per input) and Split (one per output).
struct RowPiece {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t src_row = 0;
  int64_t dst_row = 0;
  int64_t row = 0;
};
void launch_rows(const std::vector<RowPiece>& pieces, int64_t outer, cudaStream_t s);

// Fills n elements of esize bytes with `bits`.
void launch_fill(void* dst, int64_t n, int esize, uint64_t bits, cudaStream_t s);

// Copies `bytes` of host memory to device memory in stream order without a staging buffer or a
// synchronization: the bytes travel as kernel parameters (one launch per ~3.8 KB), so `src` may
// be freed as soon as this returns and the copy can be captured into a CUDA graph. For small data
// (shapes, index lists, constants).
void launch_upload(void* dst, const void* src, uint64_t bytes, cudaStream_t s);

// ---- index family (tensor_index.cu) ----

// Gather along one axis: y[o, j, r] = x[o, clamp(idx[j]), r] with rows of `inner_bytes`.
void launch_gather(const void* x, const void* idx, bool idx64, void* y, int64_t outer, int64_t dim,
                   int64_t nidx, int64_t inner_bytes, cudaStream_t s);

// Element-wise gather/scatter by an index tensor of the same rank as data (GatherElements,
// ScatterElements). idx_dims: the index tensor's shape; data_strides: data's strides.
struct ElementsPlan {
  int32_t rank = 0;
  int32_t axis = 0;
  int64_t idx_dims[kRank] = {};
  int64_t data_strides[kRank] = {};
  int64_t axis_dim = 0;
};
void launch_gather_elements(const ElementsPlan& p, const void* x, const void* idx, bool idx64,
                            void* y, int64_t n, int esize, cudaStream_t s);

// Scatter reductions: 0 none, 1 add, 2 mul, 3 max, 4 min.
enum class Reduce : int32_t { kNone = 0, kAdd, kMul, kMax, kMin };
// Numeric kind of the element for reductions.
enum class NumKind : int32_t { kF32, kF64, kI32, kU32, kI64, kU64 };
void launch_scatter_elements(const ElementsPlan& p, const void* idx, bool idx64, const void* upd,
                             void* y, int64_t n, int esize, Reduce red, NumKind kind,
                             cudaStream_t s);

// GatherND / ScatterND addressing: tuple t (of `last` indices) selects the slice at
// (t / per_batch) * batch_stride + sum_k wrap(idx[t * last + k]) * strides[k].
struct NdPlan {
  int32_t last = 0;
  int64_t dims[kRank] = {};
  int64_t strides[kRank] = {};  // in slices (units of slice elements)
  int64_t per_batch = 1;
  int64_t batch_stride = 0;  // in slices
};
void launch_gather_nd(const NdPlan& p, const void* x, const void* idx, bool idx64, void* y,
                      int64_t tuples, int64_t slice_bytes, cudaStream_t s);
void launch_scatter_nd(const NdPlan& p, const void* idx, bool idx64, const void* upd, void* y,
                       int64_t tuples, int64_t slice, int esize, Reduce red, NumKind kind,
                       cudaStream_t s);

// ReverseSequence on [steps, batch, inner] (time-major) or [batch, steps, inner]: the first
// lens[b] steps of sequence b reversed (lens on the device, validated by the caller).
void launch_reverse_sequence(const void* x, void* y, const int64_t* lens, int64_t batch,
                             int64_t steps, int64_t inner, bool batch_major, int esize,
                             cudaStream_t s);
// TensorScatter: y (a copy of the cache [outer, max_seq, inner]) gets update [outer, seq, inner]
// at sequence positions from write_indices (per batch = outer / per_batch; on the device).
void launch_tensor_scatter(const void* upd, void* y, const int64_t* write_idx, int64_t outer,
                           int64_t per_batch, int64_t max_seq, int64_t seq, int64_t inner,
                           bool circular, int esize, cudaStream_t s);
// Trilu: keeps elements with (j - i) >= k (upper) or <= k (lower), zero elsewhere.
void launch_trilu(const void* x, void* y, int64_t mats, int64_t rows, int64_t cols, int64_t k,
                  bool upper, int esize, cudaStream_t s);
// EyeLike: y (zeroed by the caller) gets `one` at (i, i + k).
void launch_eye(void* y, int64_t rows, int64_t cols, int64_t k, int esize, uint64_t one,
                cudaStream_t s);
// OneHot: y[o, d, r] = (wrap(idx[o * inner + r]) == d) ? on : off.
enum class IndexKind : int32_t { kI32, kI64, kF32, kF64 };
void launch_one_hot(const void* idx, IndexKind kind, void* y, int64_t outer, int64_t depth,
                    int64_t inner, int esize, uint64_t off, uint64_t on, cudaStream_t s);
// Range: y[i] = start + i * delta in the output's type (float32 in float, the rest as typed).
void launch_range(void* y, DType dt, int64_t n, double fstart, double fdelta, int64_t istart,
                  int64_t idelta, cudaStream_t s);

// NonZero, two phases. Phase 1 counts (needs workspace of nonzero_workspace(n) bytes) and
// leaves the total at *device_total; phase 2 writes the [rank, total] coordinates.
uint64_t nonzero_workspace(int64_t n);
void launch_nonzero_count(const void* x, int64_t n, int esize, uint64_t value_mask, void* workspace,
                          int64_t* device_total, cudaStream_t s);
void launch_nonzero_write(const void* x, int64_t n, int esize, uint64_t value_mask,
                          const void* workspace, int rank, const int64_t* dims, int64_t total,
                          int64_t* y, cudaStream_t s);

// ---- Resize (tensor_resize.cu) ----
enum class ResizeMode : int32_t { kNearest = 0, kLinear = 1, kCubic = 2 };
enum class NearestMode : int32_t { kRoundPreferFloor = 0, kRoundPreferCeil, kFloor, kCeil };
enum class CoordMode : int32_t {
  kHalfPixel = 0,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize,
};
// Per output element, every resized dim contributes taps computed as the CPU reference does
// (src/backends/cpu/tensor_resize.cc, in double); the output is the weighted sum over the
// product of the dims' taps (the CPU applies the same weights one axis at a time).
struct ResizePlan {
  int32_t rank = 0;
  ResizeMode mode = ResizeMode::kNearest;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  CoordMode coord = CoordMode::kHalfPixel;
  int32_t exclude_outside = 0;
  int32_t antialias = 0;
  double cubic_a = -0.75;
  double extrapolation = 0.0;
  int64_t in_dims[kRank] = {};
  int64_t out_dims[kRank] = {};
  double scales[kRank] = {};     // effective scale per dim
  double roi_start[kRank] = {};  // tf_crop_and_resize
  double roi_end[kRank] = {};
  uint8_t resized[kRank] = {};  // dims the CPU reference resamples (others copy through)
};
// dt: float32/float16/bfloat16/float64 (any mode); nearest also moves 1/2/4/8-byte elements of
// any other dtype (esize from dt).
void launch_resize(const ResizePlan& p, DType dt, const void* x, void* y, int64_t n,
                   cudaStream_t s);
// Registration (tensor_kernels_resize.cc).
void register_tensor_resize_kernels(KernelRegistry& r);

// ---- GridSample / AffineGrid (tensor_sample.cu) ----
inline constexpr int kMaxGridDims = 6;  // spatial dims
enum class GridMode : int32_t { kNearest = 0, kLinear, kCubic };
enum class GridPad : int32_t { kZeros = 0, kBorder, kReflection };
struct GridPlan {
  int32_t sd = 0;  // spatial dims
  GridMode mode = GridMode::kLinear;
  GridPad pad = GridPad::kZeros;
  int32_t align = 0;
  int64_t c = 0;
  int64_t in_sp[kMaxGridDims] = {};
  int64_t in_count = 0;   // product of in_sp
  int64_t out_count = 0;  // product of the grid's spatial dims
};
// x [N, C, in_sp...], grid [N, out_sp..., sd] (same float dtype) -> y [N, C, out_sp...].
void launch_grid_sample(const GridPlan& p, DType dt, const void* x, const void* grid, void* y,
                        int64_t n, cudaStream_t s);
struct AffinePlan {
  int32_t sd = 0;
  int32_t align = 0;
  int64_t sp[kMaxGridDims] = {};
  int64_t count = 0;  // product of sp
};
// theta [N, sd, sd + 1] -> y [N, sp..., sd].
void launch_affine_grid(const AffinePlan& p, DType dt, const void* theta, void* y, int64_t n,
                        cudaStream_t s);

// ---- host helpers shared by the registration files (tensor_kernels.cc) ----

// Element types the copy kernels move: fixed-size 1, 2, 4 or 8 bytes (no strings, no sub-byte).
bool movable_dtype(DType t);
// supports() check: the listed inputs and every present output are tensors of a movable dtype
// (copy) or any fixed-size non-string dtype (view), with rank <= kRank where known (copy).
std::string check_data(const ir::Node& n, std::initializer_list<int> inputs, bool copy);
// supports() check: input i, when present, is a tensor of one of `allowed`.
std::string check_input(const ir::Node& n, int i, std::initializer_list<DType> allowed);
// Bits of element i of a host tensor (its element size, zero-extended).
uint64_t element_bits(const Tensor& t, int64_t i);
// Bits of `v` converted to dtype dt (as the CPU kernels' set_double).
uint64_t value_bits(DType dt, double v);
// Integer values of host input i (a 0-D or 1-D int32/int64 tensor).
StatusOr<std::vector<int64_t>> host_ints(KernelContext& ctx, int i, const char* what);
// Row-major strides.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);
int element_size(DType t);
// Fails (unsupported) for ranks above kRank.
Status rank_ok(KernelContext& ctx, const std::vector<int64_t>& shape);
// A direct (no border) plan: output dims `out`, source strides per output dim.
CopyPlan direct_plan(const std::vector<int64_t>& out, const std::vector<int64_t>& strides);
// Launch plan copy of x into y (allocated), after simplification.
void run_plan(CopyPlan p, const DeviceTensor& x, DeviceTensor* y, cudaStream_t s);

// Registration of the index and misc sub-families (tensor_kernels_index.cc).
void register_tensor_index_kernels(KernelRegistry& r);
void register_tensor_misc_kernels(KernelRegistry& r);  // tensor_kernels_misc.cc
void register_tensor_pad_kernels(KernelRegistry& r);   // tensor_kernels_pad.cc

}  // namespace kiln::cuda::tensor
