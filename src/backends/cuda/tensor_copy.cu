// CUDA kernels of the tensor family: dtype-agnostic data movement. One generic gather-copy
// (Transpose, Slice, Expand, Tile, Pad, DepthToSpace, SpaceToDepth), a shared-memory tiled
// batched 2-D transpose, batched row copies (Concat, Split) and a fill.
#include <cstdint>
#include <cstring>

#include "backends/cuda/common.cuh"
#include "backends/cuda/tensor_internal.h"

namespace kiln::cuda::tensor {
namespace {

__device__ __forceinline__ int64_t map_border(int64_t s, int64_t dim, Border b, bool* outside) {
  if (s >= 0 && s < dim) return s;
  switch (b) {
    case Border::kDirect:
      return s;
    case Border::kConstant:
      *outside = true;
      return 0;
    case Border::kEdge:
      return s < 0 ? 0 : dim - 1;
    case Border::kWrap:
      return ((s % dim) + dim) % dim;
    case Border::kReflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      int64_t r = ((s % period) + period) % period;
      return r >= dim ? period - r : r;
    }
  }
  return 0;
}

template <typename U>
__device__ __forceinline__ U fill_value(uint64_t bits) {
  if constexpr (sizeof(U) == 16) {
    return U{};  // 16-byte plans have no constant border (simplify_plan)
  } else {
    return static_cast<U>(bits);
  }
}

// I: the index type. int32_t when every index, offset and partial sum fits (plan_fits_32): 32-bit
// division is several times cheaper than 64-bit.
template <typename U, typename I>
__global__ void plan_kernel(CopyPlan p, const U* __restrict__ src, U* __restrict__ dst, I n) {
  const U fill = fill_value<U>(p.fill);
  const I stride = static_cast<I>(blockDim.x) * static_cast<I>(gridDim.x);
  for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
       i < n; i += stride) {
    I rem = i, off = static_cast<I>(p.base);
    bool outside = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const I dim = static_cast<I>(p.out_dims[d]);
      const I od = rem % dim;
      rem /= dim;
      if (p.border[d] == Border::kDirect) {
        off += od * static_cast<I>(p.strides[d]);
      } else {
        int64_t s = p.start[d] + static_cast<int64_t>(od) * p.step[d];
        s = map_border(s, p.src_dims[d], p.border[d], &outside);
        off += static_cast<I>(s) * static_cast<I>(p.strides[d]);
      }
    }
    dst[i] = outside ? fill : src[off];
  }
}

// True when plan_kernel may index in int32 (conservative bounds on every partial sum).
bool plan_fits_32(const CopyPlan& p, int64_t n) {
  constexpr int64_t kLimit = int64_t{1} << 30;
  if (n > kLimit || p.base > kLimit) return false;
  int64_t bound = p.base;
  for (int d = 0; d < p.rank; ++d) {
    const int64_t extent = p.out_dims[d] > p.src_dims[d] ? p.out_dims[d] : p.src_dims[d];
    const int64_t st = p.strides[d] < 0 ? -p.strides[d] : p.strides[d];
    if (extent > kLimit || st > kLimit) return false;
    bound += extent * st;
    if (bound > kLimit) return false;
    if (p.border[d] != Border::kDirect) {
      const int64_t a = p.start[d] < 0 ? -p.start[d] : p.start[d];
      const int64_t b = p.step[d] < 0 ? -p.step[d] : p.step[d];
      if (a > kLimit || b > kLimit || a + b * p.out_dims[d] > kLimit) return false;
    }
  }
  return true;
}

// src [batch, rows, cols] -> dst [batch, cols, rows], 32x32 tiles through shared memory.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

template <typename U>
__global__ void transpose_tile_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t batch,
                                      int64_t rows, int64_t cols) {
  __shared__ U tile[kTile][kTile + 1];
  const int64_t col_tiles = (cols + kTile - 1) / kTile;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t tiles = batch * row_tiles * col_tiles;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t ct = t % col_tiles;
    const int64_t rt = (t / col_tiles) % row_tiles;
    const int64_t b = t / (col_tiles * row_tiles);
    const U* s = src + b * rows * cols;
    U* d = dst + b * rows * cols;
    const int64_t c0 = ct * kTile, r0 = rt * kTile;
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t r = r0 + k, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[k][threadIdx.x] = s[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t c = c0 + k, r = r0 + threadIdx.x;  // output row c, output col r
      if (r < rows && c < cols) d[c * rows + r] = tile[threadIdx.x][k];
    }
    __syncthreads();
  }
}

constexpr int kMaxPieces = 8;
struct RowBatch {
  RowPiece pieces[kMaxPieces];  // in units of U
  int count = 0;
};

template <typename U>
__global__ void rows_kernel(RowBatch b, int64_t outer) {
  const RowPiece& p = b.pieces[blockIdx.y];
  const U* __restrict__ src = static_cast<const U*>(p.src);
  U* __restrict__ dst = static_cast<U*>(p.dst);
  const int64_t n = outer * p.row;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t o = i / p.row, r = i - o * p.row;
    dst[o * p.dst_row + r] = src[o * p.src_row + r];
  }
}

constexpr int kUploadBytes = 3840;  // kernel parameters stay under 4 KB
struct UploadChunk {
  unsigned char bytes[kUploadBytes];
};

__global__ void upload_kernel(UploadChunk c, unsigned char* dst, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = c.bytes[i];
}

template <typename U>
__global__ void fill_kernel(U* dst, int64_t n, U v) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    dst[i] = v;
  }
}

uint64_t replicate(uint64_t bits, int esize, int k) {
  const uint64_t mask = esize >= 8 ? ~uint64_t{0} : ((uint64_t{1} << (8 * esize)) - 1);
  uint64_t out = 0;
  for (int i = 0; i < k; ++i) out |= (bits & mask) << (8 * esize * i);
  return out;
}

int64_t plan_numel(const CopyPlan& p) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.out_dims[d];
  return n;
}

// Batched 2-D transpose of contiguous [B, R, C] into [B, C, R]: dims (B, C, R) with strides
// (R*C, 1, C) after simplification. Returns false when the plan has another form.
bool as_batched_transpose(const CopyPlan& p, int64_t* batch, int64_t* rows, int64_t* cols) {
  if (p.base != 0) return false;
  for (int d = 0; d < p.rank; ++d) {
    if (p.border[d] != Border::kDirect) return false;
  }
  int o = 0;
  if (p.rank == 3) {
    o = 1;
  } else if (p.rank != 2) {
    return false;
  }
  const int64_t c = p.out_dims[o], r = p.out_dims[o + 1];
  if (p.strides[o] != 1 || p.strides[o + 1] != c) return false;
  if (o == 1 && p.strides[0] != r * c) return false;
  *batch = o == 1 ? p.out_dims[0] : 1;
  *rows = r;
  *cols = c;
  return true;
}

template <typename U>
void launch_plan_t(const CopyPlan& p, const void* src, void* dst, int64_t n, cudaStream_t s) {
  int64_t batch = 0, rows = 0, cols = 0;
  if (as_batched_transpose(p, &batch, &rows, &cols) && rows >= 2 && cols >= 2) {
    const int64_t tiles = batch * ((rows + kTile - 1) / kTile) * ((cols + kTile - 1) / kTile);
    const unsigned grid = static_cast<unsigned>(tiles < 65535LL * 32 ? tiles : 65535LL * 32);
    transpose_tile_kernel<U><<<grid, dim3(kTile, kTileRows), 0, s>>>(
        static_cast<const U*>(src), static_cast<U*>(dst), batch, rows, cols);
    return;
  }
  const Launch l = launch_for(n);
  if (plan_fits_32(p, n)) {
    plan_kernel<U, int32_t><<<l.grid, l.block, 0, s>>>(
        p, static_cast<const U*>(src), static_cast<U*>(dst), static_cast<int32_t>(n));
  } else {
    plan_kernel<U, int64_t>
        <<<l.grid, l.block, 0, s>>>(p, static_cast<const U*>(src), static_cast<U*>(dst), n);
  }
}

}  // namespace

void simplify_plan(CopyPlan* p, const void* src, const void* dst) {
  CopyPlan q = *p;
  q.rank = 0;
  // Fold starts and steps of direct dims; drop direct dims of size 1.
  for (int d = 0; d < p->rank; ++d) {
    if (p->border[d] == Border::kDirect) {
      q.base += p->start[d] * p->strides[d];
      if (p->out_dims[d] == 1) continue;
      const int k = q.rank++;
      q.out_dims[k] = p->out_dims[d];
      q.src_dims[k] = p->src_dims[d];
      q.strides[k] = p->strides[d] * p->step[d];
      q.start[k] = 0;
      q.step[k] = 1;
      q.border[k] = Border::kDirect;
    } else {
      const int k = q.rank++;
      q.out_dims[k] = p->out_dims[d];
      q.src_dims[k] = p->src_dims[d];
      q.strides[k] = p->strides[d];
      q.start[k] = p->start[d];
      q.step[k] = p->step[d];
      q.border[k] = p->border[d];
    }
  }
  // Merge adjacent direct dims that address memory contiguously.
  CopyPlan m = q;
  m.rank = 0;
  for (int d = 0; d < q.rank; ++d) {
    if (m.rank > 0) {
      const int k = m.rank - 1;
      if (m.border[k] == Border::kDirect && q.border[d] == Border::kDirect &&
          m.strides[k] == q.strides[d] * q.out_dims[d]) {
        m.out_dims[k] *= q.out_dims[d];
        m.strides[k] = q.strides[d];
        m.src_dims[k] = m.out_dims[k];
        continue;
      }
    }
    const int k = m.rank++;
    m.out_dims[k] = q.out_dims[d];
    m.src_dims[k] = q.src_dims[d];
    m.strides[k] = q.strides[d];
    m.start[k] = q.start[d];
    m.step[k] = q.step[d];
    m.border[k] = q.border[d];
  }
  // Widen the element over a contiguous innermost run.
  if (m.rank > 0 && m.border[m.rank - 1] == Border::kDirect && m.strides[m.rank - 1] == 1) {
    const int last = m.rank - 1;
    // 16-byte elements only without constant borders (the fill pattern holds 8 bytes).
    bool constant = false;
    for (int d = 0; d < m.rank; ++d) constant = constant || m.border[d] == Border::kConstant;
    const int widest = constant ? 8 : 16;
    for (int k = widest / m.esize; k >= 2; k /= 2) {
      const int64_t w = static_cast<int64_t>(m.esize) * k;
      bool ok = m.out_dims[last] % k == 0 && m.base % k == 0 &&
                reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(w) == 0 &&
                reinterpret_cast<uintptr_t>(dst) % static_cast<uintptr_t>(w) == 0;
      for (int d = 0; ok && d < last; ++d) ok = m.strides[d] % k == 0;
      if (!ok) continue;
      m.out_dims[last] /= k;
      m.src_dims[last] = m.out_dims[last];
      for (int d = 0; d < last; ++d) m.strides[d] /= k;
      m.base /= k;
      m.fill = replicate(m.fill, m.esize, k);
      m.esize = static_cast<int32_t>(w);
      break;
    }
  }
  *p = m;
}

void launch_plan(const CopyPlan& p, const void* src, void* dst, cudaStream_t s) {
  const int64_t n = plan_numel(p);
  if (n <= 0) return;
  switch (p.esize) {
    case 1:
      launch_plan_t<uint8_t>(p, src, dst, n, s);
      return;
    case 2:
      launch_plan_t<uint16_t>(p, src, dst, n, s);
      return;
    case 4:
      launch_plan_t<uint32_t>(p, src, dst, n, s);
      return;
    case 8:
      launch_plan_t<unsigned long long>(p, src, dst, n, s);
      return;
    default:
      launch_plan_t<uint4>(p, src, dst, n, s);
      return;
  }
}

void launch_rows(const std::vector<RowPiece>& pieces, int64_t outer, cudaStream_t s) {
  if (outer <= 0) return;
  // The widest unit dividing every row, stride and address.
  uint64_t g = 16;
  for (const RowPiece& p : pieces) {
    g |= static_cast<uint64_t>(p.src_row) | static_cast<uint64_t>(p.dst_row) |
         static_cast<uint64_t>(p.row) | reinterpret_cast<uintptr_t>(p.src) |
         reinterpret_cast<uintptr_t>(p.dst);
  }
  const int unit = static_cast<int>(g & (~g + 1));  // lowest set bit, at most 16
  for (size_t first = 0; first < pieces.size(); first += kMaxPieces) {
    RowBatch b;
    int64_t most = 0;
    for (size_t i = first; i < pieces.size() && b.count < kMaxPieces; ++i) {
      if (pieces[i].row == 0) continue;
      RowPiece q = pieces[i];
      q.src_row /= unit;
      q.dst_row /= unit;
      q.row /= unit;
      if (q.row * outer > most) most = q.row * outer;
      b.pieces[b.count++] = q;
    }
    if (b.count == 0) continue;
    const Launch l = launch_for(most);
    const dim3 grid(l.grid, static_cast<unsigned>(b.count));
    switch (unit) {
      case 16:
        rows_kernel<uint4><<<grid, l.block, 0, s>>>(b, outer);
        break;
      case 8:
        rows_kernel<unsigned long long><<<grid, l.block, 0, s>>>(b, outer);
        break;
      case 4:
        rows_kernel<uint32_t><<<grid, l.block, 0, s>>>(b, outer);
        break;
      case 2:
        rows_kernel<uint16_t><<<grid, l.block, 0, s>>>(b, outer);
        break;
      default:
        rows_kernel<uint8_t><<<grid, l.block, 0, s>>>(b, outer);
        break;
    }
  }
}

void launch_upload(void* dst, const void* src, uint64_t bytes, cudaStream_t s) {
  const unsigned char* from = static_cast<const unsigned char*>(src);
  unsigned char* to = static_cast<unsigned char*>(dst);
  for (uint64_t first = 0; first < bytes; first += kUploadBytes) {
    const uint64_t left = bytes - first;
    const int n = static_cast<int>(left < kUploadBytes ? left : kUploadBytes);
    UploadChunk c;
    memcpy(c.bytes, from + first, static_cast<size_t>(n));
    upload_kernel<<<1, 256, 0, s>>>(c, to + first, n);
  }
}

void launch_fill(void* dst, int64_t n, int esize, uint64_t bits, cudaStream_t s) {
  if (n <= 0) return;
  const Launch l = launch_for(n);
  switch (esize) {
    case 1:
      fill_kernel<uint8_t>
          <<<l.grid, l.block, 0, s>>>(static_cast<uint8_t*>(dst), n, static_cast<uint8_t>(bits));
      return;
    case 2:
      fill_kernel<uint16_t>
          <<<l.grid, l.block, 0, s>>>(static_cast<uint16_t*>(dst), n, static_cast<uint16_t>(bits));
      return;
    case 4:
      fill_kernel<uint32_t>
          <<<l.grid, l.block, 0, s>>>(static_cast<uint32_t*>(dst), n, static_cast<uint32_t>(bits));
      return;
    default:
      fill_kernel<unsigned long long><<<l.grid, l.block, 0, s>>>(
          static_cast<unsigned long long*>(dst), n, static_cast<unsigned long long>(bits));
      return;
  }
}

}  // namespace kiln::cuda::tensor
