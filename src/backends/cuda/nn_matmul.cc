// cuBLASLt GEMM for the CUDA nn family: the row-major strided-batch GEMM (gemm), numpy-style
// batched matmul (batched_matmul), and the MatMul and Gemm kernels built on them.
//
// cuBLASLt is column-major: a row-major C (m x n) is the column-major C^T (n x m), so we ask
// for C^T = op(B)^T op(A)^T, i.e. cuBLASLt's "A" is our B and its "B" is our A.
#include <cublasLt.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/tactic.h"
#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

Status lt_error(cublasStatus_t s, const char* what) {
  return Status(StatusCode::kInternal, std::string(what) + " failed: cuBLASLt status " +
                                           std::to_string(static_cast<int>(s)));
}

#define KILN_LT_RETURN_IF_ERROR(expr)           \
  do {                                          \
    cublasStatus_t kiln_lt_st_ = (expr);        \
    if (kiln_lt_st_ != CUBLAS_STATUS_SUCCESS) { \
      return lt_error(kiln_lt_st_, #expr);      \
    }                                           \
  } while (0)

struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PrefDeleter {
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using DescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter>;
using PrefPtr = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PrefDeleter>;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kFloat16:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    case DType::kFloat64:
      return CUDA_R_64F;
    default:
      return CUDA_R_32F;
  }
}

// Largest power of two (<= 256) dividing the address.
uint32_t alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && (v % a) != 0) a >>= 1;
  return a;
}

// A column-major layout of `rows` x `cols` with leading dim `ld`, optionally strided-batched.
StatusOr<LayoutPtr> make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld,
                                int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows),
                                                     static_cast<uint64_t>(cols), ld));
  LayoutPtr p(l);
  if (batch > 1) {
    const int32_t bc = static_cast<int32_t>(batch);
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)));
    const int64_t st = stride;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st, sizeof(st)));
  }
  return p;
}

// Heuristic results per GEMM geometry (the heuristic query costs far more than the descriptors).
std::mutex g_plan_mu;
std::map<std::vector<int64_t>, cublasLtMatmulHeuristicResult_t>& plan_cache() {
  static auto* m = new std::map<std::vector<int64_t>, cublasLtMatmulHeuristicResult_t>();
  return *m;
}
bool plan_cache_get(const std::vector<int64_t>& key, cublasLtMatmulHeuristicResult_t* out) {
  std::lock_guard<std::mutex> lock(g_plan_mu);
  auto it = plan_cache().find(key);
  if (it == plan_cache().end()) return false;
  *out = it->second;
  return true;
}
void plan_cache_put(const std::vector<int64_t>& key, const cublasLtMatmulHeuristicResult_t& r) {
  std::lock_guard<std::mutex> lock(g_plan_mu);
  if (plan_cache().size() >= 4096) plan_cache().clear();
  plan_cache()[key] = r;
}

bool fits_int32(int64_t v) {
  return v >= 0 && v <= INT32_MAX;
}

cublasLtEpilogue_t lt_epilogue(GemmEpilogue e, bool bias) {
  switch (e) {
    case GemmEpilogue::kNone:
      return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    case GemmEpilogue::kRelu:
      return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case GemmEpilogue::kGeluTanh:
      return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// The tactic of a cuBLASLt algorithm: its configuration fields packed (backend/tactic.h);
// -1 when a field does not fit.
StatusOr<int64_t> encode_lt_algo(const cublasLtMatmulAlgo_t& algo) {
  int32_t id = 0, splitk = 1;
  uint32_t tile = 0, stages = 0, reduction = 0, swizzle = 0, custom = 0;
  uint16_t inner = 0, cluster = 0;
  size_t written = 0;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id,
                                                               sizeof(id), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                                               &tile, sizeof(tile), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction, sizeof(reduction), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof(swizzle), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof(custom), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &inner, sizeof(inner), &written));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof(cluster), &written));
  const uint32_t limit = 1u << 20;  // far beyond every field: keeps the int conversions exact
  if (id < 0 || splitk < 0 || tile > limit || stages > limit || reduction > limit ||
      swizzle > limit || custom > limit) {
    return int64_t{-1};
  }
  backend::CublasLtTactic t;
  t.algo_id = id;
  t.tile = static_cast<int>(tile);
  t.stages = static_cast<int>(stages);
  t.splitk = splitk;
  t.reduction = static_cast<int>(reduction);
  t.swizzle = static_cast<int>(swizzle);
  t.custom = static_cast<int>(custom);
  t.inner_shape = inner;
  t.cluster = cluster;
  return backend::encode_cublaslt_tactic(t);
}

// Rebuilds the algorithm a tactic encodes and asks cuBLASLt whether it runs this GEMM
// (cublasLtMatmulAlgoCheck) within `max_ws` bytes of workspace. False (not an error) when it
// does not: the caller falls back to the heuristic.
StatusOr<bool> rebuild_lt_algo(cublasLtHandle_t h, const backend::CublasLtTactic& t,
                               cublasComputeType_t compute, cudaDataType_t scale_type,
                               cudaDataType_t dt, cublasLtMatmulDesc_t desc,
                               cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                               cublasLtMatrixLayout_t lc, uint64_t max_ws,
                               cublasLtMatmulHeuristicResult_t* out) {
  cublasLtMatmulAlgo_t algo = {};
  if (cublasLtMatmulAlgoInit(h, compute, scale_type, dt, dt, dt, dt, t.algo_id, &algo) !=
      CUBLAS_STATUS_SUCCESS) {
    return false;
  }
  const uint32_t tile = static_cast<uint32_t>(t.tile), stages = static_cast<uint32_t>(t.stages),
                 reduction = static_cast<uint32_t>(t.reduction),
                 swizzle = static_cast<uint32_t>(t.swizzle),
                 custom = static_cast<uint32_t>(t.custom);
  const int32_t splitk = t.splitk;
  const uint16_t inner = static_cast<uint16_t>(t.inner_shape),
                 cluster = static_cast<uint16_t>(t.cluster);
  const struct {
    cublasLtMatmulAlgoConfigAttributes_t attr;
    const void* value;
    size_t size;
  } fields[] = {
      {CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile)},
      {CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages)},
      {CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk)},
      {CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction, sizeof(reduction)},
      {CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof(swizzle)},
      {CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof(custom)},
      {CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &inner, sizeof(inner)},
      {CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof(cluster)},
  };
  for (const auto& f : fields) {
    if (cublasLtMatmulAlgoConfigSetAttribute(&algo, f.attr, f.value, f.size) !=
        CUBLAS_STATUS_SUCCESS) {
      return false;
    }
  }
  cublasLtMatmulHeuristicResult_t r = {};
  if (cublasLtMatmulAlgoCheck(h, desc, la, lb, lc, lc, &algo, &r) != CUBLAS_STATUS_SUCCESS ||
      r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > max_ws) {
    return false;
  }
  r.algo = algo;  // the check reports workspace and waves; the algorithm is ours
  *out = r;
  return true;
}

}  // namespace

namespace {
std::atomic<uint64_t> g_tactics_applied{0}, g_tactics_fell_back{0};
}  // namespace

TacticCounts tactic_counts() {
  return {g_tactics_applied.load(), g_tactics_fell_back.load()};
}

void count_tactic(bool applied) {
  ++(applied ? g_tactics_applied : g_tactics_fell_back);
}

uint64_t gemm_workspace_budget(const KernelContext& ctx, uint64_t used) {
  const uint64_t limit = ctx.workspace_limit();
  const uint64_t room = limit > used ? limit - used : 0;
  return std::min<uint64_t>(room, 32ull << 20) & ~uint64_t{255};
}

bool gemm_dtype_ok(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

Status gemm(KernelContext& ctx, const GemmArgs& g) {
  if (!gemm_dtype_ok(g.dtype)) return ctx.unsupported_type(g.dtype);
  if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0) return ctx.invalid("negative GEMM size");
  if (g.m == 0 || g.n == 0 || g.batch == 0) return Status::Ok();
  if (g.bias != nullptr && g.beta != 0.0 && g.beta != 1.0) {
    return ctx.invalid("GEMM bias needs beta 0 or 1");
  }
  const bool activation = g.epilogue != GemmEpilogue::kNone;
  if (activation && g.dtype == DType::kFloat64) {
    return ctx.unsupported("GEMM activation epilogue in float64");
  }
  if (activation && g.k == 0) return ctx.unsupported("K = 0 GEMM with an activation epilogue");
  if (g.k == 0) {
    // op(A) op(B) is all zeros: C = beta * C (+ bias).
    if (g.beta == 0.0) {
      if (g.ldc != g.n || (g.batch > 1 && g.stride_c != g.m * g.n)) {
        return ctx.unsupported("K = 0 GEMM into a strided C");
      }
      KILN_RETURN_IF_ERROR(fill_float(ctx, g.dtype, g.c, g.batch * g.m * g.n, 0.0));
    } else if (g.beta != 1.0) {
      return ctx.unsupported("K = 0 GEMM with beta other than 0 or 1");
    }
    if (g.bias != nullptr) {
      if (g.ldc != g.n || (g.batch > 1 && g.stride_c != g.m * g.n)) {
        return ctx.unsupported("K = 0 GEMM into a strided C");
      }
      return add_channel_bias(ctx, g.dtype, g.c, g.bias, g.batch * g.m, g.n, 1);
    }
    return Status::Ok();
  }
  if (!fits_int32(g.m) || !fits_int32(g.n) || !fits_int32(g.k) || !fits_int32(g.batch) ||
      !fits_int32(g.lda) || !fits_int32(g.ldb) || !fits_int32(g.ldc)) {
    return ctx.unsupported("GEMM dimensions beyond 2^31");
  }
  const cudaDataType_t dt = cuda_type(g.dtype);
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale_type = CUDA_R_32F;
  if (g.dtype == DType::kFloat64) {
    compute = CUBLAS_COMPUTE_64F;
    scale_type = CUDA_R_64F;
  } else if (g.dtype == DType::kFloat32 && ctx.allow_tf32()) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  cublasLtMatmulDesc_t raw_desc = nullptr;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw_desc, compute, scale_type));
  DescPtr desc(raw_desc);
  // Our B is cuBLASLt's A: stored row-major k x n (n x k when transposed), i.e. column-major
  // n x k (k x n) with ld = ldb.
  const cublasOperation_t op_lt_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_lt_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                         &op_lt_a, sizeof(op_lt_a)));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                         &op_lt_b, sizeof(op_lt_b)));
  // The bias runs along our n, which is the row dimension of cuBLASLt's column-major D (n x m):
  // cuBLASLt's bias vector has one value per row of D, so it broadcasts as ours does. Its dtype
  // defaults to D's.
  const cublasLtEpilogue_t epi = lt_epilogue(g.epilogue, g.bias != nullptr);
  if (epi != CUBLASLT_EPILOGUE_DEFAULT) {
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  }
  if (g.bias != nullptr) {
    const void* bp = g.bias;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        raw_desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
  }
  // cuBLASLt A (our B): column-major rows x cols as stored.
  const int64_t la_rows = g.trans_b ? g.k : g.n, la_cols = g.trans_b ? g.n : g.k;
  const int64_t lb_rows = g.trans_a ? g.m : g.k, lb_cols = g.trans_a ? g.k : g.m;
  KILN_ASSIGN_OR_RETURN(LayoutPtr la,
                        make_layout(dt, la_rows, la_cols, g.ldb, g.batch, g.stride_b));
  KILN_ASSIGN_OR_RETURN(LayoutPtr lb,
                        make_layout(dt, lb_rows, lb_cols, g.lda, g.batch, g.stride_a));
  KILN_ASSIGN_OR_RETURN(LayoutPtr lc, make_layout(dt, g.n, g.m, g.ldc, g.batch, g.stride_c));

  cublasLtMatmulPreference_t raw_pref = nullptr;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref));
  PrefPtr pref(raw_pref);
  const uint64_t max_ws =
      g.ws.external ? g.ws.bytes : std::min<uint64_t>(ctx.workspace_limit(), 64ull << 20);
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws)));
  // Pointers (batch strides included) may be less aligned than the default assumption.
  const uint64_t esize = dtype_storage_bytes(g.dtype, 1);
  auto align_with_stride = [&](const void* p, int64_t stride) {
    uint32_t a = alignment_of(p);
    if (g.batch > 1 && stride != 0) {
      const uint32_t s = alignment_of(reinterpret_cast<const void*>(static_cast<uintptr_t>(stride) *
                                                                    static_cast<uintptr_t>(esize)));
      a = std::min(a, s);
    }
    return a;
  };
  const uint32_t al_a = align_with_stride(g.b, g.stride_b);
  const uint32_t al_b = align_with_stride(g.a, g.stride_a);
  const uint32_t al_c = align_with_stride(g.c, g.stride_c);
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)));
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof(al_c)));
  if (g.bias != nullptr) {
    // (the bias pointer's alignment is checked by cuBLASLt at run time)
  }

  int device = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  const std::vector<int64_t> key = {device,
                                    static_cast<int64_t>(g.dtype),
                                    static_cast<int64_t>(compute),
                                    g.trans_a,
                                    g.trans_b,
                                    g.m,
                                    g.n,
                                    g.k,
                                    g.lda,
                                    g.ldb,
                                    g.ldc,
                                    g.batch,
                                    g.stride_a,
                                    g.stride_b,
                                    g.stride_c,
                                    static_cast<int64_t>(epi),
                                    g.beta != 0.0,
                                    al_a,
                                    al_b,
                                    al_c,
                                    static_cast<int64_t>(max_ws),
                                    ctx.tactic()};
  cublasLtMatmulHeuristicResult_t chosen = {};
  std::vector<int64_t>* candidates = ctx.tactic_candidates();
  if (candidates != nullptr || !plan_cache_get(key, &chosen)) {
    constexpr int kMaxResults = 32;
    cublasLtMatmulHeuristicResult_t results[kMaxResults] = {};
    int returned = 0;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), raw_desc, la.get(),
                                                           lb.get(), lc.get(), lc.get(), raw_pref,
                                                           kMaxResults, results, &returned));
    if (returned <= 0 || results[0].state != CUBLAS_STATUS_SUCCESS) {
      return ctx.node().error(StatusCode::kInternal, "cuBLASLt found no algorithm for the GEMM");
    }
    if (candidates != nullptr && candidates->empty()) {
      for (int i = 0; i < returned; ++i) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        KILN_ASSIGN_OR_RETURN(int64_t t, encode_lt_algo(results[i].algo));
        if (t >= 0 && std::find(candidates->begin(), candidates->end(), t) == candidates->end()) {
          candidates->push_back(t);
        }
      }
    }
    chosen = results[0];
    backend::CublasLtTactic want;
    if (backend::decode_cublaslt_tactic(ctx.tactic(), &want)) {
      // The encoded algorithm where cuBLASLt accepts it for this GEMM, else the heuristic's first.
      cublasLtMatmulHeuristicResult_t rebuilt = {};
      KILN_ASSIGN_OR_RETURN(bool ok,
                            rebuild_lt_algo(ctx.cublaslt(), want, compute, scale_type, dt, raw_desc,
                                            la.get(), lb.get(), lc.get(), max_ws, &rebuilt));
      if (ok) chosen = rebuilt;
      count_tactic(ok);
    }
    plan_cache_put(key, chosen);
  }
  void* ws = nullptr;
  const size_t ws_size = chosen.workspaceSize;
  if (ws_size > 0 && g.ws.external) {
    if (ws_size > g.ws.bytes) return ctx.node().error(StatusCode::kInternal, "GEMM scratch");
    ws = g.ws.ptr;
  } else if (ws_size > 0) {
    KILN_ASSIGN_OR_RETURN(ws, ctx.workspace(ws_size));
  }
  const float alpha_f = static_cast<float>(g.alpha), beta_f = static_cast<float>(g.beta);
  const double alpha_d = g.alpha, beta_d = g.beta;
  const void* alpha = g.dtype == DType::kFloat64 ? static_cast<const void*>(&alpha_d)
                                                 : static_cast<const void*>(&alpha_f);
  const void* beta = g.dtype == DType::kFloat64 ? static_cast<const void*>(&beta_d)
                                                : static_cast<const void*>(&beta_f);
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmul(ctx.cublaslt(), raw_desc, alpha, g.b, la.get(), g.a,
                                         lb.get(), beta, g.c, lc.get(), g.c, lc.get(), &chosen.algo,
                                         ws, ws_size, ctx.stream()));
  return Status::Ok();
}

Status batched_matmul(KernelContext& ctx, DType dtype, const void* a,
                      const std::vector<int64_t>& a_batch, const void* b,
                      const std::vector<int64_t>& b_batch, void* c,
                      const std::vector<int64_t>& out_batch, int64_t m, int64_t n, int64_t k,
                      bool trans_a, bool trans_b, double alpha, GemmWorkspace ws) {
  int64_t total = 1, a_total = 1, b_total = 1;
  for (int64_t d : out_batch) total *= d;
  for (int64_t d : a_batch) a_total *= d;
  for (int64_t d : b_batch) b_total *= d;
  if (total == 0 || m == 0 || n == 0) return Status::Ok();
  const uint64_t es = dtype_storage_bytes(dtype, 1);
  GemmArgs g;
  g.dtype = dtype;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = trans_a ? m : k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  g.alpha = alpha;
  g.a = a;
  g.b = b;
  g.c = c;
  g.ws = ws;
  // A's batch dims, right-aligned against out_batch, either all equal out's or all 1.
  auto full = [&](const std::vector<int64_t>& x, int64_t xt) {
    if (xt != total) return false;
    const size_t off = out_batch.size() - std::min(out_batch.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      if (i + off < out_batch.size() ? x[i] != out_batch[i + off] : x[i] != 1) return false;
    }
    return true;
  };
  const bool a_full = full(a_batch, a_total), b_full = full(b_batch, b_total);
  if (b_total == 1 && !trans_a && (a_full || total == 1)) {
    // B is one matrix: fold A's batch into its rows.
    g.m = m * total;
    return gemm(ctx, g);
  }
  if (a_full && b_full) {
    g.batch = total;
    g.stride_a = m * k;
    g.stride_b = k * n;
    g.stride_c = m * n;
    return gemm(ctx, g);
  }
  // General broadcast: one GEMM per output batch index.
  const size_t r = out_batch.size();
  std::vector<int64_t> as(r, 0), bs(r, 0);
  {
    int64_t sa = m * k, sb = k * n;
    for (size_t i = r; i-- > 0;) {
      const size_t ra = r - i, rb = r - i;  // position from the right (1-based)
      if (ra <= a_batch.size()) {
        const int64_t d = a_batch[a_batch.size() - ra];
        as[i] = d == 1 ? 0 : sa;
        sa *= d;
      }
      if (rb <= b_batch.size()) {
        const int64_t d = b_batch[b_batch.size() - rb];
        bs[i] = d == 1 ? 0 : sb;
        sb *= d;
      }
    }
  }
  for (int64_t bi = 0; bi < total; ++bi) {
    int64_t rem = bi, oa = 0, ob = 0;
    for (size_t i = r; i-- > 0;) {
      const int64_t idx = rem % out_batch[i];
      rem /= out_batch[i];
      oa += idx * as[i];
      ob += idx * bs[i];
    }
    GemmArgs gi = g;
    gi.a = static_cast<const char*>(a) + static_cast<uint64_t>(oa) * es;
    gi.b = static_cast<const char*>(b) + static_cast<uint64_t>(ob) * es;
    gi.c = static_cast<char*>(c) + static_cast<uint64_t>(bi * m * n) * es;
    KILN_RETURN_IF_ERROR(gemm(ctx, gi));
  }
  return Status::Ok();
}

// ---- MatMul ----

namespace {

std::string matmul_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  if (std::string r = require_dtypes(node, {t}); !r.empty()) return r;
  return check_ranks(node);
}

Status matmul_run(KernelContext& ctx) {
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  if (A.dtype != B.dtype) return ctx.invalid("A and B must have the same dtype");
  if (A.rank() < 1 || B.rank() < 1) return ctx.invalid("MatMul operands must have rank >= 1");
  std::vector<int64_t> as = A.shape, bs = B.shape;
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), kb = bs[bs.size() - 2], n = bs.back();
  if (k != kb) return ctx.invalid("MatMul inner dimensions differ");
  std::vector<int64_t> ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const size_t r = std::max(ab.size(), bb.size());
  std::vector<int64_t> ob(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + ab.size() >= r ? ab[i + ab.size() - r] : 1;
    const int64_t db = i + bb.size() >= r ? bb[i + bb.size() - r] : 1;
    if (da != db && da != 1 && db != 1) return ctx.invalid("MatMul batch dims do not broadcast");
    ob[i] = da == 1 ? db : da;
  }
  std::vector<int64_t> out = ob;
  if (!a_vec) out.push_back(m);
  if (!b_vec) out.push_back(n);
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, A.dtype, out));
  if (Y->numel() == 0) return Status::Ok();
  KILN_RETURN_IF_ERROR(batched_matmul(ctx, A.dtype, A.data, ab, B.data, bb, Y->data, ob, m, n, k));
  return ctx.check_launch("MatMul");
}

// ---- Gemm ----

std::string gemm_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  return require_dtypes(node, {t});
}

Status gemm_run(KernelContext& ctx) {
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const float alpha = ctx.attr_float("alpha", 1.f), beta = ctx.attr_float("beta", 1.f);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (A.rank() != 2 || B.rank() != 2) return ctx.invalid("Gemm operands must be 2-D");
  if (A.dtype != B.dtype) return ctx.invalid("A and B must have the same dtype");
  const int64_t m = ta ? A.dim(1) : A.dim(0), k = ta ? A.dim(0) : A.dim(1);
  const int64_t kb = tb ? B.dim(1) : B.dim(0), n = tb ? B.dim(0) : B.dim(1);
  if (k != kb) return ctx.invalid("Gemm inner dimensions differ");
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, A.dtype, {m, n}));
  if (Y->numel() == 0) return Status::Ok();
  GemmArgs g;
  g.dtype = A.dtype;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = A.dim(1);
  g.ldb = B.dim(1);
  g.ldc = n;
  g.alpha = alpha;
  g.a = A.data;
  g.b = B.data;
  g.c = Y->data;
  g.beta = 0.0;
  if (ctx.has_input(2) && beta != 0.f) {
    const DeviceTensor& C = ctx.input(2);
    if (C.dtype != A.dtype) return ctx.invalid("C must have the dtype of A");
    if (C.rank() > 2) return ctx.invalid("C must have rank <= 2");
    // C broadcasts unidirectionally to (m, n).
    for (int i = 0; i < C.rank(); ++i) {
      const int64_t want = i + 2 - C.rank() == 0 ? m : n;
      if (C.dim(i) != 1 && C.dim(i) != want) return ctx.invalid("C does not broadcast to (M, N)");
    }
    const bool row_vector = C.numel() == n && (C.rank() == 1 || C.dim(0) == 1) && n > 1;
    if (row_vector && beta == 1.f && A.dtype != DType::kFloat64 && k > 0) {
      g.bias = C.data;
    } else {
      KILN_RETURN_IF_ERROR(broadcast_copy(ctx, A.dtype, C.data, Y->data, C.shape, {m, n}));
      g.beta = beta;
    }
  }
  KILN_RETURN_IF_ERROR(gemm(ctx, g));
  return ctx.check_launch("Gemm");
}

}  // namespace

void register_matmul_kernels(KernelRegistry& r) {
  KernelDef matmul{"", "MatMul", matmul_supports, matmul_run};
  matmul.tunable = true;
  r.add(matmul);
  KernelDef gemm_def{"", "Gemm", gemm_supports, gemm_run};
  gemm_def.tunable = true;
  r.add(gemm_def);
}

}  // namespace kiln::cuda
