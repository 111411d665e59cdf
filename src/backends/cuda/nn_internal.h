// Internal interface of the CUDA nn family: the cuBLASLt GEMM used by MatMul, Gemm, Einsum,
// Attention and the RNNs, the cuDNN convolutions, and the launchers of the pooling and
// normalization kernels (nn_pool.cu, nn_norm.cu).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

// ---- GEMM (nn_matmul.cc) ----

// Scratch for cuBLASLt. Kernels call ctx.workspace() at most once per run (the executor may
// hand out one arena), so a kernel that holds scratch of its own reserves a slice for the GEMMs
// and passes it here; `external` false lets gemm() take ctx.workspace() itself.
struct GemmWorkspace {
  void* ptr = nullptr;
  uint64_t bytes = 0;
  bool external = false;
};
// Bytes to reserve for GEMM scratch next to `used` bytes of a kernel's own scratch.
uint64_t gemm_workspace_budget(const KernelContext& ctx, uint64_t used);

// Pointwise transform cuBLASLt applies to the result (after the bias), in float before the
// result is rounded to C's dtype. kGeluTanh is cuBLASLt's GELU, the tanh approximation; its tanh
// may be a fast one, so float32 callers that must match the CPU reference closely apply their
// own. Activations need k > 0 (a K = 0 GEMM with an activation is refused).
enum class GemmEpilogue : int { kNone = 0, kRelu = 1, kGeluTanh = 2 };

// Row-major C[b] = epilogue(alpha * op(A[b]) * op(B[b]) + beta * C[b] (+ bias[n] per column)),
// for b < batch; op(A) is m x k, op(B) is k x n. A, B, C share `dtype` (float32, float16,
// bfloat16, float64); accumulation in float (double for float64). Leading dims are row-major
// (elements between rows as stored). A batch stride of 0 repeats the operand. `bias` (dtype, n
// values) is only allowed with beta == 0 or 1 and adds to every row. `epilogue` other than kNone
// is not allowed for float64.
struct GemmArgs {
  DType dtype = DType::kFloat32;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  const void* bias = nullptr;
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  GemmWorkspace ws;
};
Status gemm(KernelContext& ctx, const GemmArgs& g);

// Batched matmul of row-major operands A [batch_a..., m, k] and B [batch_b..., k, n] whose batch
// dims broadcast (numpy rules) to `out_batch`; C is [out_batch..., m, n].
Status batched_matmul(KernelContext& ctx, DType dtype, const void* a,
                      const std::vector<int64_t>& a_batch, const void* b,
                      const std::vector<int64_t>& b_batch, void* c,
                      const std::vector<int64_t>& out_batch, int64_t m, int64_t n, int64_t k,
                      bool trans_a = false, bool trans_b = false, double alpha = 1.0,
                      GemmWorkspace ws = {});

// True for the dtypes the GEMM handles.
bool gemm_dtype_ok(DType t);

// How often a kernel resolved a tuned tactic (backend/tactic.h) since the process started: the
// encoded algorithm applied at the run shape, or the kernel fell back to its default (tests and
// diagnostics). Counted when a choice is made, not on every run (choices are cached per shape).
struct TacticCounts {
  uint64_t applied = 0, fell_back = 0;
};
TacticCounts tactic_counts();
void count_tactic(bool applied);

// ---- helpers shared by the nn registrations ----

// "" when every input/output shape of `node` has rank <= kMaxRank (unknown ranks pass).
std::string check_ranks(const ir::Node& node);
// Fills `n` elements of a float-like tensor (dtype) with `value`.
Status fill_float(KernelContext& ctx, DType dtype, void* data, int64_t n, double value);
// y[i] = x[map(i)] for a float-like dtype (broadcast copy), n = numel of the output.
Status broadcast_copy(KernelContext& ctx, DType dtype, const void* x, void* y,
                      const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape);
// Adds bias[c] to y viewed as [outer, C, inner].
Status add_channel_bias(KernelContext& ctx, DType dtype, void* y, const void* bias, int64_t outer,
                        int64_t channels, int64_t inner);

// y[pl, o0, o1, o2] = x[pl, o0 + shift0, o1 + shift1, o2 + shift2], or zero outside x: pads
// (negative shifts) or crops (positive shifts) up to 3 trailing dims, moving elem_bytes-sized
// elements (2, 4 or 8).
struct ShiftGeom {
  int64_t planes = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, shift[3] = {0, 0, 0};
};
Status shift_copy(KernelContext& ctx, int elem_bytes, const void* x, void* y, const ShiftGeom& g);

// y = x transposed by `perm` (y.shape[i] = in_shape[perm[i]]), elements of elem_bytes (1, 2, 4
// or 8); rank <= kMaxRank.
Status permute(KernelContext& ctx, int elem_bytes, const void* x,
               const std::vector<int64_t>& in_shape, const std::vector<int>& perm, void* y);
// y[r] = sum of x[r * len + j] over j < len, for a float-like dtype.
Status launch_row_sum(KernelContext& ctx, DType dtype, const void* x, void* y, int64_t rows,
                      int64_t len);

// ---- convolution (nn_conv.cc; the epilogue kernel in fused_conv.cu) ----

// What follows the convolution: y = act(conv(x, w) + bias + z).
struct ConvEpilogue {
  const void* z = nullptr;                        // residual of Y's dtype, or null
  const std::vector<int64_t>* z_shape = nullptr;  // z's shape: must be Y's (checked)
  ops::ConvActivation act = ops::ConvActivation::kNone;
};
// Forward convolution of the running node (input 0 X, input 1 W, Conv's attributes) into output
// 0, plus the optional bias B ([M], X's dtype) and the epilogue. float16/bfloat16 (and float32
// with TF32) with symmetric pads run a cached cuDNN graph-API plan (conv_graph.h), epilogue
// included where an engine takes it. Otherwise cuDNN's legacy API: with a bias and an epilogue,
// float32/float16/float64 run as one cudnnConvolutionBiasActivationForward where cuDNN takes the
// case. Else the convolution is followed by one epilogue kernel. Conv and FusedConv.
// channels_last: X, Z, Y are [N, H, W, C] and W is [M, R, S, C/group] (2-D, symmetric pads).
Status conv_forward(KernelContext& ctx, const DeviceTensor* B, const ConvEpilogue& ep,
                    const char* what, bool channels_last = false);
// Conv's supports(): float dtypes, 1 to 3 spatial dims.
std::string conv_supports(const ir::Node& node);
// y = act(y + bias[c] + z) on y viewed as [outer, channels, inner] (bias and z may be null).
Status launch_conv_epilogue(KernelContext& ctx, DType dtype, void* y, const void* bias,
                            const ConvEpilogue& ep, int64_t outer, int64_t channels, int64_t inner);
// Channels-last 2-D MaxPool / AveragePool (fused_conv.cu): x [n, h, w, c] → y [n, oh, ow, c];
// pads: top, left, bottom, right. Semantics of the CPU reference (src/backends/cpu/pool.cc).
struct ChannelsLastPoolGeom {
  int64_t n = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};
Status launch_channels_last_pool(KernelContext& ctx, DType dtype, const ChannelsLastPoolGeom& g,
                                 bool max, bool count_include_pad, const void* x, void* y);
// Since the process started (for tests and diagnostics): how many convolutions with an
// epilogue (residual or activation) ran it inside cuDNN (fused) and how many as convolution +
// epilogue kernel (unfused); how many forward convolutions ran through the graph-API path and
// how many through the legacy API.
struct ConvFusionCounts {
  uint64_t fused = 0, unfused = 0;
  uint64_t graph = 0, legacy = 0;
};
ConvFusionCounts conv_fusion_counts();

// ---- pooling (nn_pool.cu) ----

enum class PoolKind : int { kMax = 0, kAvg = 1, kLp = 2 };

struct PoolGeom {
  int64_t planes = 0;  // N * C
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
          d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
};
Status launch_pool(KernelContext& ctx, DType dtype, const PoolGeom& g, PoolKind kind,
                   bool count_include_pad, float p, bool col_major_indices, const void* x, void* y,
                   int64_t* indices);
Status launch_global_pool(KernelContext& ctx, DType dtype, PoolKind kind, float p, int64_t planes,
                          int64_t size, const void* x, void* y);

// ---- normalization (nn_norm.cu) ----

// How a row's scale/bias index is found. Rows are contiguous slices of `len` elements.
// LayerNorm over the last axis of [rows, len] rows, with 1-D scale and bias (bias may be null):
// y = LN(x + skip) when skip is given (x + skip rounded to the dtype, stored to `sum` when that
// is given), else LN(x). Warp-per-row kernel (fused_norm.cu); float32, float16, bfloat16.
Status launch_last_axis_layer_norm(KernelContext& ctx, DType dtype, const void* x, const void* skip,
                                   const void* scale, const void* bias, void* y, void* sum,
                                   int64_t rows, int64_t len, float eps);

enum class AffineMode : int {
  kNone = 0,          // no parameter (scale 1 / bias 0)
  kPerElement = 1,    // index j (the parameter spans the row)
  kBroadcast = 2,     // index map(row * len + j) (BroadcastMap over X's shape)
  kChannel = 3,       // index row % channels (InstanceNorm)
  kGroupChannel = 4,  // index (row % groups) * per_group + j / spatial (GroupNorm-21)
  kGroup = 5,         // index row % groups (GroupNorm-18)
};

struct RowNormArgs {
  DType dtype = DType::kFloat32;  // X, Y, scale and bias
  int64_t rows = 0, len = 0;
  double eps = 1e-5;
  bool rms = false;  // no mean subtraction
  const void* x = nullptr;
  void* y = nullptr;
  const void* scale = nullptr;
  const void* bias = nullptr;
  AffineMode scale_mode = AffineMode::kNone, bias_mode = AffineMode::kNone;
  std::vector<int64_t> x_shape, scale_shape, bias_shape;  // for kBroadcast
  int64_t channels = 1;                                   // kChannel
  int64_t groups = 1;                                     // kGroup*
  int64_t per_group = 1;                                  // kGroupChannel
  int64_t spatial = 1;                                    // kGroupChannel
  float* mean_out = nullptr;                              // optional, one float per row
  float* inv_std_out = nullptr;                           // optional
};
Status launch_row_norm(KernelContext& ctx, const RowNormArgs& a);

// BatchNormalization inference: y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c], x
// viewed as [outer, C, inner]; all tensors of `dtype`.
Status launch_batch_norm(KernelContext& ctx, DType dtype, const void* x, void* y, const void* scale,
                         const void* bias, const void* mean, const void* var, double eps,
                         int64_t outer, int64_t channels, int64_t inner);

// LpNormalization (p = 1 or 2) along the middle dim of x viewed as [outer, n, inner].
Status launch_lp_norm(KernelContext& ctx, DType dtype, const void* x, void* y, int p, int64_t outer,
                      int64_t n, int64_t inner);

// Softmax over the last dim of x [rows, len], in place allowed (used by Attention).
Status launch_softmax_rows(KernelContext& ctx, DType dtype, const void* x, void* y, int64_t rows,
                           int64_t len);

// ---- Attention (misc_attention.cu) ----

// out[bh, t, :] = t < past ? past[bh, t, :] : cur[bh, t - past, :] (rows of `row` elements).
Status concat_seq(KernelContext& ctx, int elem_bytes, const void* past, const void* cur, void* out,
                  int64_t bh, int64_t past_len, int64_t cur_len, int64_t row);

// Masking, softcap and softmax of attention scores [batch, heads, sq, total] in place (scores
// are already scaled); optional qk_matmul_output in `qk` (mode 0..3).
struct AttentionScoreArgs {
  DType dtype = DType::kFloat32;
  void* scores = nullptr;
  int64_t batch = 0, heads = 0, sq = 0, total = 0, past = 0;
  const void* mask = nullptr;  // dtype or bool
  bool mask_bool = false;
  int64_t mask_stride[3] = {0, 0, 0};  // batch, head, query (key stride 1)
  int64_t mask_last = 0;               // mask length along keys
  const int64_t* nonpad = nullptr;     // [batch] or null
  bool causal = false;
  int64_t left = -1, right = -1;
  float softcap = 0.f;
  void* qk = nullptr;
  int qk_mode = 0;
};
Status launch_attention_scores(KernelContext& ctx, const AttentionScoreArgs& a);

// ---- RNN / GRU / LSTM cells (misc_rnn.cu) ----

// One time step of one direction for every batch entry: thread (b, j) reads the precomputed
// input projection xw (row `xw_row(t, b)`, G*H wide), the recurrent projection hr [batch, G*H]
// and updates h/c [batch, H] in place; writes Y (when non-null) at its layout position, zero
// for steps beyond sequence_lens[b]. kind: 0 RNN, 1 GRU, 2 LSTM. GRU without
// linear_before_reset runs in two phases: phase 1 writes z and r*h (into z_buf and rh_buf),
// phase 2 (after the caller's GEMM rhr = rh_buf * Rh^T) finishes the step.
struct RnnStepArgs {
  DType dtype = DType::kFloat32;
  int kind = 0;
  int phase = 0;  // GRU without linear_before_reset: 1 or 2; else 0 (single phase)
  int64_t t = 0, seq = 0, batch = 0, hidden = 0, num_dir = 1, dir = 0;
  int layout = 0;
  const void* xw = nullptr;  // [seq*batch rows in X order, G*H]
  const void* hr = nullptr;  // [batch, G*H]
  const void* wb = nullptr;  // [G*H] or null
  const void* rb = nullptr;  // [G*H] or null
  const void* p = nullptr;   // LSTM peepholes [3H] or null
  void* h = nullptr;         // [batch, H]
  void* c = nullptr;         // LSTM [batch, H]
  void* y = nullptr;         // Y or null
  void* z_buf = nullptr;     // GRU phase buffers [batch, H]
  void* rh_buf = nullptr;
  const void* rhr = nullptr;  // GRU phase 2: [batch, H]
  const int32_t* lens = nullptr;
  bool has_clip = false;
  float clip = 0.f;
  bool input_forget = false;
  bool linear_before_reset = false;
};
Status launch_rnn_step(KernelContext& ctx, const RnnStepArgs& a);

// Registration of the nn sub-families (called from register_nn_kernels).
void register_matmul_kernels(KernelRegistry& r);
void register_conv_kernels(KernelRegistry& r);
void register_pool_kernels(KernelRegistry& r);
void register_norm_kernels(KernelRegistry& r);
// Einsum (misc_einsum.cc) and Attention (misc_attention.cc), registered by the misc family.
void register_einsum_kernels(KernelRegistry& r);
void register_attention_kernels(KernelRegistry& r);
void register_rnn_kernels(KernelRegistry& r);
void register_nms_kernels(KernelRegistry& r);
void register_quantize_kernels(KernelRegistry& r);  // misc_quantize.cu

}  // namespace kiln::cuda
