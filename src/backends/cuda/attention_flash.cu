// Fused attention forward kernel (see attention_flash.h).
//
// Block: 4 warps, 64 query rows of one (batch, query head); warp w owns rows 16w..16w+15. Shared
// memory holds the Q tile and two buffers each of K and V tiles (64 keys), filled with cp.async
// (rows past the sequence are zero-filled) so that the next tile loads while this one is used.
// Per key tile, each warp computes its 16 x 64 scores with mma.sync m16n8k16 (Q fragments kept in
// registers, K fragments through ldmatrix), masks and scales them in float32, updates the running
// row maximum and sum (base-2 exponentials), rescales its 16 x D float32 output accumulator and
// adds P V, where P is the score accumulator rounded to the input dtype and V's fragments come
// through ldmatrix.trans. Rows are finally divided by their sum (0 for a row with no unmasked key)
// and stored in the input dtype.
//
// Fragment layouts of mma.m16n8k16 (g = lane / 4, c = lane % 4), each 32-bit register holding two
// consecutive elements, the lower index in the low half:
//   A (16 x 16, row-major): a0 (row g, k 2c), a1 (row g+8, k 2c), a2 (row g, k 2c+8),
//                           a3 (row g+8, k 2c+8)
//   B (16 x 8, k x n):      b0 (k 2c..2c+1, n g), b1 (k 2c+8..2c+9, n g)
//   C (16 x 8, float32):    c0, c1 (row g, n 2c, 2c+1), c2, c3 (row g+8, n 2c, 2c+1)
// The C fragments of two adjacent 8-key tiles are therefore the A fragment of P for those 16 keys.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "backends/cuda/attention_flash.h"
#include "backends/cuda/common.cuh"

namespace kiln::cuda {
namespace {

constexpr int kBlockM = 64;    // query rows per block
constexpr int kBlockN = 64;    // keys per tile
constexpr int kThreads = 128;  // 4 warps of 16 rows
constexpr float kLog2e = 1.4426950408889634f;

std::atomic<uint64_t> g_launches{0};

enum MaskKind : int { kNoMask = 0, kFloatMask = 1, kBoolMask = 2 };

// Shared-memory tile row stride in elements: 8 elements (16 bytes) of padding keep 16-byte rows
// aligned and make the 8 rows an ldmatrix phase (or a fragment load) reads fall on distinct banks
// (the row stride in 32-bit words is 4 mod 8 for every head size that is a multiple of 16).
template <int D>
struct Tile {
  static constexpr int kLd = D + 8;
  static constexpr int kChunks = D / 8;    // 16-byte chunks per row
  static constexpr int kKSteps = D / 16;   // k steps of Q K^T
  static constexpr int kDimTiles = D / 8;  // 8-wide output column tiles of P V
  static constexpr size_t kSmemElems = static_cast<size_t>(kBlockM + 4 * kBlockN) * kLd;
  static_assert(D % 16 == 0, "head size must be a multiple of 16");
};

struct FlashArgs {
  const void* q;
  const void* k;
  const void* v;
  void* y;
  const void* mask;
  int64_t qs[3], ks[3], vs[3], ys[3], ms[3];
  int sq, skv, q_heads, group, mask_last, causal;
  float scale;
};

// Fragment index maps, shared with the host check tests/cuda_host/flash_attention_check.cu.
// Element offset (in a shared tile of row stride ld) of the 16-byte row `lane` hands to
// ldmatrix.x4 for the K fragments of keys 16np..16np+15 and dims 16ks..16ks+15. Matrices: (keys
// +0..7, dims +0..7), (keys +0..7, dims +8..15), (keys +8..15, dims +0..7), (keys +8..15, dims
// +8..15): registers b0, b1 of key tile 2np, then b0, b1 of key tile 2np+1.
__host__ __device__ __forceinline__ int k_ldmatrix_offset(int lane, int np, int ks, int ld) {
  const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
  const int dim = ks * 16 + (((lane >> 3) & 1) << 3);
  return key * ld + dim;
}
// The same for ldmatrix.x4.trans of the V fragments of keys 16kk..16kk+15 and dims
// 16dp..16dp+15. Matrices: (keys +0..7, dims +0..7), (keys +8..15, dims +0..7), (keys +0..7, dims
// +8..15), (keys +8..15, dims +8..15): b0, b1 of column tile 2dp, then of column tile 2dp+1.
__host__ __device__ __forceinline__ int v_ldmatrix_offset(int lane, int kk, int dp, int ld) {
  const int key = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
  const int dim = dp * 16 + ((lane >> 4) << 3);
  return key * ld + dim;
}
// Offset of the element pair of A register r (0..3) of the Q fragment of rows 16w..16w+15 and
// dims 16ks..16ks+15.
__host__ __device__ __forceinline__ int q_fragment_offset(int lane, int w, int ks, int r, int ld) {
  const int row = w * 16 + (lane >> 2) + ((r & 1) << 3);
  const int col = ks * 16 + 2 * (lane & 3) + ((r >> 1) << 3);
  return row * ld + col;
}
// Row (within the warp's 16) and column (within the 8-wide tile) of accumulator element e (0..3).
__host__ __device__ __forceinline__ int acc_row(int lane, int e) {
  return (lane >> 2) + ((e >> 1) << 3);
}
__host__ __device__ __forceinline__ int acc_col(int lane, int e) {
  return 2 * (lane & 3) + (e & 1);
}
// A register r of P for keys 16kk..16kk+15 packs elements e, e+1 of score tile p_tile.
__host__ __device__ __forceinline__ int p_tile(int kk, int r) {
  return 2 * kk + (r >> 1);
}
__host__ __device__ __forceinline__ int p_elem(int r) {
  return (r & 1) << 1;
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-fills the destination when !valid (the source
// is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p))
               : "memory");
}

// c += a * b (16x16 by 16x8, float32 accumulators).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats rounded to T, `lo` in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t u;
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&u, &h, 4);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    memcpy(&u, &h, 4);
  }
  return u;
}

__device__ __forceinline__ uint32_t lds32(const void* p) {
  return *static_cast<const uint32_t*>(p);
}

// Copies rows [row0, row0 + kBlockN) of a [rows_total, D] slice with row stride `stride` into a
// shared tile (row stride Tile<D>::kLd); rows at or past rows_total become zeros.
template <typename T, int D>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t stride, int row0,
                                          int rows_total) {
  using Tl = Tile<D>;
  for (int c = threadIdx.x; c < kBlockN * Tl::kChunks; c += kThreads) {
    const int r = c / Tl::kChunks;
    const int col = (c % Tl::kChunks) * 8;
    const int row = row0 + r;
    const bool valid = row < rows_total;
    const T* s = valid ? src + static_cast<int64_t>(row) * stride + col : src;
    cp_async_16(dst + r * Tl::kLd + col, s, valid);
  }
}

template <typename T, int D, int kMask>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(FlashArgs a) {
  static_assert(kBlockM == kBlockN, "load_tile copies kBlockN rows, also for the Q tile");
  using Tl = Tile<D>;
  constexpr int kLd = Tl::kLd;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* q_s = reinterpret_cast<T*>(smem_raw);
  T* k_s = q_s + kBlockM * kLd;  // two buffers of kBlockN rows
  T* v_s = k_s + 2 * kBlockN * kLd;

  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int b = static_cast<int>(blockIdx.x) / a.q_heads;
  const int h = static_cast<int>(blockIdx.x) % a.q_heads;
  const int kvh = h / a.group;
  const int m0 = static_cast<int>(blockIdx.y) * kBlockM;

  const T* qg = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const T* kg = static_cast<const T*>(a.k) + b * a.ks[0] + kvh * a.ks[1];
  const T* vg = static_cast<const T*>(a.v) + b * a.vs[0] + kvh * a.vs[1];

  // Keys this block needs: with causal masking none past its last query row.
  int kv_end = a.skv;
  if (a.causal) kv_end = min(kv_end, min(m0 + kBlockM, a.sq));
  const int n_tiles = (kv_end + kBlockN - 1) / kBlockN;

  load_tile<T, D>(q_s, qg, a.qs[2], m0, a.sq);
  load_tile<T, D>(k_s, kg, a.ks[2], 0, a.skv);
  load_tile<T, D>(v_s, vg, a.vs[2], 0, a.skv);
  cp_async_commit();

  const bool warp_active = m0 + warp * 16 < a.sq;  // the same for the whole warp
  // This thread's two query rows (fragment rows g and g + 8 of its warp).
  int row[2];
  row[0] = m0 + warp * 16 + acc_row(lane, 0);
  row[1] = m0 + warp * 16 + acc_row(lane, 2);
  int64_t moff[2] = {0, 0};
  if constexpr (kMask != kNoMask) {
    for (int i = 0; i < 2; ++i) {
      const int qi = min(row[i], a.sq - 1);  // rows past Sq are computed but never stored
      moff[i] = b * a.ms[0] + h * a.ms[1] + qi * a.ms[2];
    }
  }
  const T* fmask = static_cast<const T*>(a.mask);
  const uint8_t* bmask = static_cast<const uint8_t*>(a.mask);

  uint32_t qf[Tl::kKSteps][4];
  float o[Tl::kDimTiles][4];
#pragma unroll
  for (int t = 0; t < Tl::kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY};  // running maximum, base-2 scaled
  float l_run[2] = {0.f, 0.f};              // this thread's part of the running sum

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < n_tiles) {
      const int next = (tile + 1) * kBlockN;
      load_tile<T, D>(k_s + (buf ^ 1) * kBlockN * kLd, kg, a.ks[2], next, a.skv);
      load_tile<T, D>(v_s + (buf ^ 1) * kBlockN * kLd, vg, a.vs[2], next, a.skv);
    }
    cp_async_commit();   // possibly empty: keeps one group per iteration
    cp_async_wait<1>();  // all but the newest group: this tile (and Q) have landed
    __syncthreads();

    if (tile == 0) {
#pragma unroll
      for (int ks = 0; ks < Tl::kKSteps; ++ks) {
#pragma unroll
        for (int r = 0; r < 4; ++r)
          qf[ks][r] = lds32(q_s + q_fragment_offset(lane, warp, ks, r, kLd));
      }
    }
    const T* kt = k_s + buf * kBlockN * kLd;
    const T* vt = v_s + buf * kBlockN * kLd;
    // A warp whose 16 rows all lie past Sq (the last query block of a short sequence) only
    // helps load the tiles; its rows are never stored.
    if (warp_active) {
      // Keys past Skv in the last tile are zero rows whose scores are masked to -inf (P = 0):
      // 16-key groups lying wholly past Skv are skipped in both products, which changes no bit.
      const int key0 = tile * kBlockN;
      const int live = a.skv - key0;  // keys of this tile below Skv (> 0)

      // S = Q K^T for 16 rows x 64 keys: s[n] covers keys 8n..8n+7 of the tile.
      float s[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < Tl::kKSteps; ++ks) {
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          if (16 * np >= live) break;
          uint32_t r[4];
          ldmatrix_x4(r, kt + k_ldmatrix_offset(lane, np, ks, kLd));
          mma_16816<T>(s[2 * np], qf[ks], r[0], r[1]);
          mma_16816<T>(s[2 * np + 1], qf[ks], r[2], r[3]);
        }
      }

      // Scale, mask, and the new row maxima.
      float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = e >> 1;
          const int key = key0 + n * 8 + acc_col(lane, e);
          float x = -INFINITY;
          if (key < a.skv) {
            float bias = 0.f;
            if constexpr (kMask == kFloatMask) {
              bias += key < a.mask_last ? load_f(fmask, moff[i] + key) : -INFINITY;
            } else if constexpr (kMask == kBoolMask) {
              bias += key < a.mask_last && bmask[moff[i] + key] != 0 ? 0.f : -INFINITY;
            }
            if (a.causal && key > row[i]) bias += -INFINITY;
            x = (s[n][e] * a.scale + bias) * kLog2e;
          }
          s[n][e] = x;
          mx[i] = fmaxf(mx[i], x);
        }
      }
      float base[2], alpha[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        // A row with no unmasked key so far keeps -inf: exponentials against 0 give zeros.
        base[i] = mx[i] == -INFINITY ? 0.f : mx[i];
        alpha[i] = exp2f(m_run[i] - base[i]);
        m_run[i] = mx[i];
      }
      float sum[2] = {0.f, 0.f};
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(s[n][e] - base[e >> 1]);
          s[n][e] = p;
          sum[e >> 1] += p;
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) l_run[i] = l_run[i] * alpha[i] + sum[i];
#pragma unroll
      for (int t = 0; t < Tl::kDimTiles; ++t) {
        o[t][0] *= alpha[0];
        o[t][1] *= alpha[0];
        o[t][2] *= alpha[1];
        o[t][3] *= alpha[1];
      }

      // O += P V: 16 keys per k step.
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        if (16 * kk >= live) break;
        uint32_t pa[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          pa[r] = pack2<T>(s[p_tile(kk, r)][p_elem(r)], s[p_tile(kk, r)][p_elem(r) + 1]);
        }
#pragma unroll
        for (int dp = 0; dp < Tl::kDimTiles / 2; ++dp) {
          uint32_t r[4];
          ldmatrix_x4_trans(r, vt + v_ldmatrix_offset(lane, kk, dp, kLd));
          mma_16816<T>(o[2 * dp], pa, r[0], r[1]);
          mma_16816<T>(o[2 * dp + 1], pa, r[2], r[3]);
        }
      }
    }                 // warp_active
    __syncthreads();  // the next iteration refills this buffer
  }
  cp_async_wait<0>();

  // Y = O / l; rows without an unmasked key (l == 0) are zeros.
  T* yg = static_cast<T*>(a.y) + b * a.ys[0] + h * a.ys[1];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float l = l_run[i];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    if (row[i] >= a.sq) continue;
    const bool zero = l == 0.f;
    const float inv = zero ? 0.f : 1.f / l;
    T* yr = yg + static_cast<int64_t>(row[i]) * a.ys[2];
#pragma unroll
    for (int t = 0; t < Tl::kDimTiles; ++t) {
      const float y0 = zero ? 0.f : o[t][2 * i] * inv;
      const float y1 = zero ? 0.f : o[t][2 * i + 1] * inv;
      *reinterpret_cast<uint32_t*>(yr + t * 8 + acc_col(lane, 2 * i)) = pack2<T>(y0, y1);
    }
  }
}

template <typename T, int D, int kMask>
Status launch_one(KernelContext& ctx, const FlashArgs& args, dim3 grid) {
  const size_t smem = Tile<D>::kSmemElems * sizeof(T);
  auto* kernel = flash_attention_kernel<T, D, kMask>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) {
      return ctx.unsupported(std::string("flash attention shared memory: ") +
                             cudaGetErrorString(e));
    }
  }
  kernel<<<grid, kThreads, smem, ctx.stream()>>>(args);
  g_launches.fetch_add(1, std::memory_order_relaxed);
  return ctx.check_launch("flash attention");
}

template <typename T, int D>
Status launch_masked(KernelContext& ctx, const FlashAttentionParams& p, const FlashArgs& args,
                     dim3 grid) {
  if (p.mask == nullptr) return launch_one<T, D, kNoMask>(ctx, args, grid);
  if (p.mask_bool) return launch_one<T, D, kBoolMask>(ctx, args, grid);
  return launch_one<T, D, kFloatMask>(ctx, args, grid);
}

template <typename T>
Status launch_typed(KernelContext& ctx, const FlashAttentionParams& p, const FlashArgs& args,
                    dim3 grid) {
  switch (p.head_size) {
    case 32:
      return launch_masked<T, 32>(ctx, p, args, grid);
    case 64:
      return launch_masked<T, 64>(ctx, p, args, grid);
    case 80:
      return launch_masked<T, 80>(ctx, p, args, grid);
    case 96:
      return launch_masked<T, 96>(ctx, p, args, grid);
    case 128:
      return launch_masked<T, 128>(ctx, p, args, grid);
    default:
      return ctx.unsupported("flash attention head size " + std::to_string(p.head_size));
  }
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

}  // namespace

std::string flash_attention_unsupported(const FlashAttentionParams& p) {
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return std::string("dtype ") + dtype_name(p.dtype);
  }
  const int64_t d = p.head_size;
  if (d != 32 && d != 64 && d != 80 && d != 96 && d != 128) {
    return "head size " + std::to_string(d) + " (32, 64, 80, 96, 128 handled)";
  }
  constexpr int64_t kIntMax = 2147483647;
  if (p.batch < 1 || p.q_heads < 1 || p.kv_heads < 1 || p.sq < 1 || p.skv < 1) {
    return "empty batch, heads or sequence";
  }
  if (p.q_heads % p.kv_heads != 0) return "query heads not a multiple of KV heads";
  // Row indices, key indices and (batch, head) pairs are 32-bit in the kernel; the grid's x is
  // batch * q_heads, its y the query blocks.
  if (p.sq > kIntMax - kBlockM || p.skv > kIntMax - kBlockN) return "sequence too long";
  if (p.batch > kIntMax / p.q_heads) return "batch * heads too large";
  if ((p.sq + kBlockM - 1) / kBlockM > 65535) return "too many query blocks";
  if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.y == nullptr) return "null pointer";
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.y)) {
    return "Q, K, V or Y not 16-byte aligned";
  }
  // 16-byte rows: every stride a multiple of 8 elements, none negative.
  for (const int64_t* st : {p.q_stride, p.k_stride, p.v_stride, p.y_stride}) {
    for (int i = 0; i < 3; ++i) {
      if (st[i] < 0 || st[i] % 8 != 0) return "strides not multiples of 8 elements";
    }
  }
  if (p.mask != nullptr) {
    if (p.mask_last < 0 || p.mask_last > p.skv) return "mask longer than the key sequence";
    for (int i = 0; i < 3; ++i) {
      if (p.mask_stride[i] < 0) return "negative mask stride";
    }
    if (!p.mask_bool && (reinterpret_cast<uintptr_t>(p.mask) & 1u) != 0) {
      return "mask not 2-byte aligned";
    }
  }
  return {};
}

Status launch_flash_attention(KernelContext& ctx, const FlashAttentionParams& p) {
  const std::string why = flash_attention_unsupported(p);
  if (!why.empty()) return ctx.unsupported("flash attention: " + why);
  FlashArgs args{};
  args.q = p.q;
  args.k = p.k;
  args.v = p.v;
  args.y = p.y;
  args.mask = p.mask;
  for (int i = 0; i < 3; ++i) {
    args.qs[i] = p.q_stride[i];
    args.ks[i] = p.k_stride[i];
    args.vs[i] = p.v_stride[i];
    args.ys[i] = p.y_stride[i];
    args.ms[i] = p.mask_stride[i];
  }
  args.sq = static_cast<int>(p.sq);
  args.skv = static_cast<int>(p.skv);
  args.q_heads = static_cast<int>(p.q_heads);
  args.group = static_cast<int>(p.q_heads / p.kv_heads);
  args.mask_last = static_cast<int>(p.mask != nullptr ? p.mask_last : 0);
  args.causal = p.causal ? 1 : 0;
  args.scale = p.scale;
  const dim3 grid(static_cast<unsigned>(p.batch * p.q_heads),
                  static_cast<unsigned>((p.sq + kBlockM - 1) / kBlockM));
  if (p.dtype == DType::kFloat16) return launch_typed<__half>(ctx, p, args, grid);
  return launch_typed<__nv_bfloat16>(ctx, p, args, grid);
}

bool flash_attention_enabled() {
  const char* v = std::getenv("KILN_ATTENTION_FLASH");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

uint64_t flash_attention_launch_count() {
  return g_launches.load(std::memory_order_relaxed);
}

}  // namespace kiln::cuda
