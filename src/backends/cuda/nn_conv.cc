// Conv and ConvTranspose on cuDNN. The forward convolution (Conv, kiln.FusedConv) first tries
// cuDNN's graph API with cached execution plans (conv_graph.cc: float16/bfloat16, float32 with
// TF32, symmetric pads), which runs the bias, residual and activation in the same plan or in one
// epilogue kernel after it. The cases it does not take (float32 without TF32, float64,
// asymmetric pads, no usable engine) and ConvTranspose run cuDNN's legacy API
// (cudnnConvolutionForward, cudnnConvolutionBackwardData), whose algorithm choices are cached
// per geometry. 1-D convolutions run as 2-D with H = 1. cuDNN pads symmetrically: asymmetric
// Conv pads are materialized by padding the input into the workspace, and ConvTranspose with
// asymmetric (or output_shape-implied) pads computes the full transposed convolution and crops
// it. On the legacy path the bias is added by our own kernel, or with the epilogue by
// cudnnConvolutionBiasActivationForward where cuDNN takes it. kiln.FusedConv's channels-last
// form (src/ops/layout.h) runs on NHWC tensor descriptors and an NHWC filter.
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <map>
#include <memory>
#include <mutex>

#include "backend/tactic.h"
#include "backends/cuda/common.cuh"
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"
#include "ops/layout.h"
#include "ops/nn_window.h"

namespace kiln::cuda {
namespace {

Status dnn_error(cudnnStatus_t s, const char* what) {
  return Status(StatusCode::kInternal, std::string(what) + " failed: " + cudnnGetErrorString(s));
}

#define KILN_DNN_RETURN_IF_ERROR(expr)          \
  do {                                          \
    cudnnStatus_t kiln_dnn_st_ = (expr);        \
    if (kiln_dnn_st_ != CUDNN_STATUS_SUCCESS) { \
      return dnn_error(kiln_dnn_st_, #expr);    \
    }                                           \
  } while (0)

// RAII holders of the cuDNN descriptors of one convolution.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~Descs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
  Status create() {
    KILN_DNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&x));
    KILN_DNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&y));
    KILN_DNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(&w));
    KILN_DNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv));
    return Status::Ok();
  }
};

cudnnDataType_t dnn_type(DType t) {
  switch (t) {
    case DType::kFloat16:
      return CUDNN_DATA_HALF;
    case DType::kBFloat16:
      return CUDNN_DATA_BFLOAT16;
    case DType::kFloat64:
      return CUDNN_DATA_DOUBLE;
    default:
      return CUDNN_DATA_FLOAT;
  }
}

bool conv_dtype_ok(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

// Packed NCHW-style strides of `dims`.
std::vector<int> packed_strides(const std::vector<int>& dims) {
  std::vector<int> s(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Strides of channels-first `dims` [N, C, s...] stored channels-last ([N, s..., C] packed), or
// packed when !channels_last.
std::vector<int> layout_strides(const std::vector<int>& dims, bool channels_last) {
  if (!channels_last || dims.size() < 3) return packed_strides(dims);
  std::vector<int> s(dims.size(), 1);
  int run = dims[1];  // C is innermost
  for (size_t i = dims.size(); i-- > 2;) {
    s[i] = run;
    run *= dims[i];
  }
  s[0] = run;
  return s;
}

bool to_ints(const std::vector<int64_t>& v, std::vector<int>* out) {
  out->clear();
  for (int64_t d : v) {
    if (d < 0 || d > INT32_MAX) return false;
    out->push_back(static_cast<int>(d));
  }
  return true;
}

// 1-D becomes 2-D with a leading size-1 spatial dim.
std::vector<int64_t> lift_1d(const std::vector<int64_t>& shape) {
  if (shape.size() != 3) return shape;
  return {shape[0], shape[1], 1, shape[2]};
}

// Sets the x/y tensor descriptors, the filter and the convolution (symmetric `pads`, one per
// spatial dim after lifting).
Status set_descs(Descs& d, DType dt, const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                 const std::vector<int64_t>& ys, std::vector<int64_t> pads,
                 std::vector<int64_t> strides, std::vector<int64_t> dilations, int64_t group,
                 bool allow_tf32, bool channels_last = false) {
  if (pads.size() == 1) {  // lift 1-D geometry
    pads.insert(pads.begin(), 0);
    strides.insert(strides.begin(), 1);
    dilations.insert(dilations.begin(), 1);
  }
  std::vector<int> xi, wi, yi, pi, si, di;
  if (!to_ints(lift_1d(xs), &xi) || !to_ints(lift_1d(ws), &wi) || !to_ints(lift_1d(ys), &yi) ||
      !to_ints(pads, &pi) || !to_ints(strides, &si) || !to_ints(dilations, &di) ||
      group > INT32_MAX) {
    return Status(StatusCode::kUnsupportedAttribute, "convolution sizes beyond 2^31");
  }
  const cudnnDataType_t t = dnn_type(dt);
  const std::vector<int> xst = layout_strides(xi, channels_last),
                         yst = layout_strides(yi, channels_last);
  KILN_DNN_RETURN_IF_ERROR(
      cudnnSetTensorNdDescriptor(d.x, t, static_cast<int>(xi.size()), xi.data(), xst.data()));
  KILN_DNN_RETURN_IF_ERROR(
      cudnnSetTensorNdDescriptor(d.y, t, static_cast<int>(yi.size()), yi.data(), yst.data()));
  KILN_DNN_RETURN_IF_ERROR(
      cudnnSetFilterNdDescriptor(d.w, t, channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                 static_cast<int>(wi.size()), wi.data()));
  const cudnnDataType_t compute = dt == DType::kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  KILN_DNN_RETURN_IF_ERROR(cudnnSetConvolutionNdDescriptor(d.conv, static_cast<int>(pi.size()),
                                                           pi.data(), si.data(), di.data(),
                                                           CUDNN_CROSS_CORRELATION, compute));
  KILN_DNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(d.conv, static_cast<int>(group)));
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  if (dt == DType::kFloat16 || dt == DType::kBFloat16) math = CUDNN_TENSOR_OP_MATH;
  if (dt == DType::kFloat32) math = allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  KILN_DNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(d.conv, math));
  return Status::Ok();
}

std::vector<int64_t> permute_dims(const std::vector<int64_t>& shape,
                                  const std::vector<int64_t>& perm) {
  std::vector<int64_t> out;
  for (int64_t p : perm) out.push_back(shape[static_cast<size_t>(p)]);
  return out;
}

// The perf results a convolution may use: deterministic algorithms only (runs give bit-identical
// results) unless none is usable, within the workspace limit, TF32 only where allowed.
template <typename Perf>
std::vector<int> usable_perfs(const Perf* perfs, int count, uint64_t ws_limit, DType dt,
                              bool allow_tf32) {
  std::vector<int> usable;
  for (bool deterministic : {true, false}) {
    for (int i = 0; i < count; ++i) {
      if (perfs[i].status != CUDNN_STATUS_SUCCESS) continue;
      if (deterministic && perfs[i].determinism != CUDNN_DETERMINISTIC) continue;
      if (perfs[i].memory > ws_limit) continue;
      if (dt == DType::kFloat32 && !allow_tf32 && perfs[i].mathType != CUDNN_FMA_MATH &&
          perfs[i].mathType != CUDNN_DEFAULT_MATH) {
        continue;
      }
      usable.push_back(i);
    }
    if (!usable.empty()) break;
  }
  return usable;
}

// Which perf result to use: the algorithm and math type the tactic encodes (backend/tactic.h)
// when it is usable at this shape, else the first usable one (-1: none). With a candidate list
// (build-time tuning), appends the usable ones as tactics, the default first.
template <typename Perf>
int pick_perf(const Perf* perfs, int count, uint64_t ws_limit, int64_t tactic,
              backend::TacticKind kind, DType dt, bool allow_tf32,
              std::vector<int64_t>* candidates) {
  const std::vector<int> usable = usable_perfs(perfs, count, ws_limit, dt, allow_tf32);
  if (usable.empty()) return -1;
  if (candidates != nullptr && candidates->empty()) {
    for (int i : usable) {
      const int64_t t = backend::encode_cudnn_tactic(
          kind, {static_cast<int>(perfs[i].algo), static_cast<int>(perfs[i].mathType)});
      if (t >= 0 && std::find(candidates->begin(), candidates->end(), t) == candidates->end()) {
        candidates->push_back(t);
      }
    }
  }
  backend::CudnnTactic want;
  if (backend::decode_cudnn_tactic(tactic, kind, &want)) {
    for (int i : usable) {
      if (static_cast<int>(perfs[i].algo) == want.algo &&
          static_cast<int>(perfs[i].mathType) == want.math) {
        count_tactic(true);
        return i;
      }
    }
    count_tactic(false);
  }
  return usable[0];
}

// The cuDNN enum values the tactic encoding names (backend/tactic.cc prints them).
static_assert(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM == 1 &&
                  CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED == 7 &&
                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED == 5 &&
                  CUDNN_TENSOR_OP_MATH == 1 && CUDNN_FMA_MATH == 3,
              "cuDNN enum values changed: update backend/tactic.cc");

// Algorithm choices per convolution geometry (the heuristic query is the costly part).
struct AlgoChoice {
  int algo = 0;
  int math = 0;
};
std::mutex g_algo_mu;
std::map<std::vector<int64_t>, AlgoChoice>& algo_cache() {
  static auto* m = new std::map<std::vector<int64_t>, AlgoChoice>();
  return *m;
}
bool algo_cache_get(const std::vector<int64_t>& key, AlgoChoice* out) {
  std::lock_guard<std::mutex> lock(g_algo_mu);
  auto it = algo_cache().find(key);
  if (it == algo_cache().end()) return false;
  *out = it->second;
  return true;
}
void algo_cache_put(const std::vector<int64_t>& key, AlgoChoice c) {
  std::lock_guard<std::mutex> lock(g_algo_mu);
  if (algo_cache().size() >= 4096) algo_cache().clear();
  algo_cache()[key] = c;
}
StatusOr<std::vector<int64_t>> algo_key(int kind, const KernelContext& ctx, DType dt,
                                        const std::vector<int64_t>& xs,
                                        const std::vector<int64_t>& ws,
                                        const std::vector<int64_t>& ys,
                                        const std::vector<int64_t>& pads, const ops::Window& w,
                                        int64_t group, uint64_t ws_avail) {
  int device = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  std::vector<int64_t> k = {kind,
                            device,
                            static_cast<int64_t>(dt),
                            ctx.allow_tf32(),
                            group,
                            static_cast<int64_t>(ws_avail),
                            ctx.tactic()};
  for (const auto* v : {&xs, &ws, &ys, &pads, &w.strides, &w.dilations}) {
    k.push_back(static_cast<int64_t>(v->size()));
    k.insert(k.end(), v->begin(), v->end());
  }
  return k;
}

uint64_t align_up(uint64_t v) {
  return (v + 255) & ~uint64_t{255};
}

struct ConvSetup {
  int n = 0;  // spatial dims
  int64_t N = 0, C = 0, M = 0, group = 1;
  ops::Window w;
  std::vector<int64_t> out_shape;
};

Status setup(KernelContext& ctx, const DeviceTensor& X, const DeviceTensor& W, bool transpose,
             ConvSetup* cs) {
  if (X.rank() < 3 || X.rank() > 5) return ctx.invalid("X must have rank 3 to 5");
  if (W.rank() != X.rank()) return ctx.invalid("W must have the rank of X");
  if (W.dtype != X.dtype) return ctx.invalid("W must have the dtype of X");
  cs->n = X.rank() - 2;
  cs->N = X.dim(0);
  cs->C = X.dim(1);
  cs->group = ctx.attr_int("group", 1);
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (cs->group < 1) return ctx.invalid("group must be >= 1");
  if (cs->C % cs->group != 0) return ctx.invalid("input channels are not divisible by group");
  if (!transpose) {
    cs->M = W.dim(0);
    if (W.dim(1) * cs->group != cs->C) return ctx.invalid("W does not match X channels / group");
    if (cs->M % cs->group != 0) return ctx.invalid("output channels are not divisible by group");
  } else {
    if (W.dim(0) != cs->C) return ctx.invalid("W dim 0 must equal X channels");
    cs->M = W.dim(1) * cs->group;
  }
  ops::WindowOptions opts;
  opts.allow_output_padding = transpose;
  for (int i = 0; i < cs->n; ++i) {
    if (W.dim(i + 2) < 1) return ctx.invalid("W has an empty kernel dim");
    opts.kernel_from_weight.push_back(W.dim(i + 2));
  }
  KILN_ASSIGN_OR_RETURN(cs->w, ops::read_window(ctx.node(), cs->n, opts));
  std::vector<int64_t> requested;
  if (transpose) {
    requested = ctx.attr_ints("output_shape");
    KILN_RETURN_IF_ERROR(ctx.attr_status());
    if (requested.size() == static_cast<size_t>(cs->n + 2)) {
      requested.erase(requested.begin(), requested.begin() + 2);
    }
    if (!requested.empty() && requested.size() != static_cast<size_t>(cs->n)) {
      return ctx.invalid("output_shape has the wrong length");
    }
    for (int64_t r : requested) {
      if (r < 0) return ctx.invalid("output_shape has a negative value");
    }
  }
  cs->out_shape = {cs->N, cs->M};
  for (int i = 0; i < cs->n; ++i) {
    int64_t o = 0;
    if (transpose) {
      KILN_ASSIGN_OR_RETURN(o, ops::conv_transpose_output(
                                   ctx.node(), cs->w, i, X.dim(i + 2),
                                   requested.empty() ? -1 : requested[static_cast<size_t>(i)]));
    } else {
      KILN_ASSIGN_OR_RETURN(o, ops::window_output(ctx.node(), cs->w, i, X.dim(i + 2)));
    }
    cs->out_shape.push_back(o);
  }
  return Status::Ok();
}

// The last `n` dims of `shape` right-aligned into 3 slots (others 1).
void slots3(const std::vector<int64_t>& shape, int n, int64_t out[3]) {
  out[0] = out[1] = out[2] = 1;
  for (int i = 0; i < n; ++i) out[3 - n + i] = shape[shape.size() - static_cast<size_t>(n - i)];
}

// RAII holders of the extra descriptors of cudnnConvolutionBiasActivationForward.
struct EpilogueDescs {
  cudnnTensorDescriptor_t bias = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ~EpilogueDescs() {
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

std::atomic<uint64_t> g_fused_runs{0}, g_unfused_runs{0}, g_graph_runs{0}, g_legacy_runs{0};

// y = act(conv(x) + bias + z) in one cuDNN call. CUDNN_STATUS_NOT_SUPPORTED (or BAD_PARAM, for a
// data-type combination this cuDNN does not take) lets the caller fall back.
cudnnStatus_t bias_activation_forward(cudnnHandle_t h, const Descs& d, DType dt, int y_rank,
                                      int64_t channels, const void* x, const void* w,
                                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes,
                                      const void* bias, const ConvEpilogue& ep, void* y,
                                      bool channels_last) {
  EpilogueDescs e;
  cudnnStatus_t st = cudnnCreateTensorDescriptor(&e.bias);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  st = cudnnCreateActivationDescriptor(&e.act);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  // Bias [1, M, 1, ...] of the data type (float for float32, half for float16, double).
  std::vector<int> dims(static_cast<size_t>(y_rank), 1);
  dims[1] = static_cast<int>(channels);
  const std::vector<int> strides = layout_strides(dims, channels_last);
  st = cudnnSetTensorNdDescriptor(e.bias, dnn_type(dt), y_rank, dims.data(), strides.data());
  if (st != CUDNN_STATUS_SUCCESS) return st;
  const cudnnActivationMode_t mode =
      ep.act == ops::ConvActivation::kRelu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY;
  st = cudnnSetActivationDescriptor(e.act, mode, CUDNN_PROPAGATE_NAN, 0.0);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  const float one_f = 1.f, zero_f = 0.f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool dbl = dt == DType::kFloat64;
  const void* alpha1 = dbl ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* alpha2 =
      ep.z ? alpha1 : (dbl ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f));
  // Without a residual, y stands in for z with alpha2 = 0.
  return cudnnConvolutionBiasActivationForward(h, alpha1, d.x, x, d.w, w, d.conv, algo, ws,
                                               ws_bytes, alpha2, d.y, ep.z ? ep.z : y, e.bias, bias,
                                               e.act, d.y, y);
}

}  // namespace

ConvFusionCounts conv_fusion_counts() {
  return {g_fused_runs.load(), g_unfused_runs.load(), g_graph_runs.load(), g_legacy_runs.load()};
}

Status conv_forward(KernelContext& ctx, const DeviceTensor* B, const ConvEpilogue& ep,
                    const char* what, bool channels_last) {
  // Channels-last: X [N, H, W, C], W [M, R, S, C/group], Z and Y [N, OH, OW, M]. X and W are
  // described to the setup in channels-first order (views of the same data) and to cuDNN with
  // channels-last strides and the NHWC filter format.
  DeviceTensor X = ctx.input(0);
  DeviceTensor W = ctx.input(1);
  if (channels_last) {
    if (X.rank() != 4 || W.rank() != 4) {
      return ctx.unsupported("channels-last convolution needs X and W of rank 4");
    }
    X.shape = permute_dims(X.shape, ops::to_channels_first_perm(4));
    W.shape = permute_dims(W.shape, ops::to_channels_first_perm(4));
  }
  ConvSetup cs;
  KILN_RETURN_IF_ERROR(setup(ctx, X, W, false, &cs));
  if (B && (B->rank() != 1 || B->dim(0) != cs.M || B->dtype != X.dtype)) {
    return ctx.invalid("B must have shape [M] and the dtype of X");
  }
  const std::vector<int64_t> y_shape =
      channels_last ? permute_dims(cs.out_shape, ops::to_channels_last_perm(4)) : cs.out_shape;
  if (ep.z && (ep.z_shape == nullptr || *ep.z_shape != y_shape)) {
    return ctx.invalid("residual Z does not have the output's shape");
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, y_shape));
  if (Y->numel() == 0) return Status::Ok();
  const int n = cs.n;
  const uint64_t es = dtype_storage_bytes(X.dtype, 1);
  // The bias and epilogue see y as [outer, M, inner]: channels-last has the channel innermost.
  const int64_t inner = channels_last ? 1 : Y->numel() / (cs.N * cs.M);
  const int64_t outer = channels_last ? Y->numel() / cs.M : cs.N;
  const bool has_epilogue = ep.z != nullptr || ep.act != ops::ConvActivation::kNone;
  // Y holds conv(x, w): add the bias, the residual, the activation.
  auto finish = [&]() -> Status {
    if (has_epilogue) {
      ++g_unfused_runs;
      return launch_conv_epilogue(ctx, X.dtype, Y->data, B ? B->data : nullptr, ep, outer, cs.M,
                                  inner);
    }
    if (B) return add_channel_bias(ctx, X.dtype, Y->data, B->data, outer, cs.M, inner);
    return Status::Ok();
  };
  if (X.numel() == 0 || W.numel() == 0) {  // C = 0: y is the bias (or 0)
    KILN_RETURN_IF_ERROR(fill_float(ctx, X.dtype, Y->data, Y->numel(), 0.0));
    KILN_RETURN_IF_ERROR(finish());
    return ctx.check_launch(what);
  }
  bool symmetric = true;
  for (int i = 0; i < n; ++i) {
    if (cs.w.pads[static_cast<size_t>(i)] != cs.w.pads[static_cast<size_t>(i + n)]) {
      symmetric = false;
    }
  }
  std::vector<int64_t> xs = X.shape, pads(static_cast<size_t>(n));
  uint64_t pad_bytes = 0;
  ShiftGeom pg;
  if (!symmetric && channels_last) {
    return ctx.unsupported("channels-last convolution with asymmetric pads");
  }
  if (symmetric) {
    ConvGraphArgs ga;
    ga.dtype = X.dtype;
    ga.channels_last = channels_last;
    ga.x_shape = X.shape;
    ga.w_shape = W.shape;
    ga.y_shape = cs.out_shape;
    ga.pads.assign(cs.w.pads.begin(), cs.w.pads.begin() + n);
    ga.strides = cs.w.strides;
    ga.dilations = cs.w.dilations;
    ga.x = X.data;
    ga.w = W.data;
    ga.y = Y->data;
    ga.bias = B ? B->data : nullptr;
    ga.ep = ep;
    KILN_ASSIGN_OR_RETURN(const ConvGraphRun run, conv_graph_forward(ctx, ga));
    if (run != ConvGraphRun::kNotTaken) {
      ++g_graph_runs;
      if (has_epilogue) ++(run == ConvGraphRun::kFused ? g_fused_runs : g_unfused_runs);
      return ctx.check_launch(what);
    }
  }
  ++g_legacy_runs;
  if (!symmetric) {
    pg.planes = cs.N * cs.C;
    slots3(X.shape, n, pg.in);
    for (int i = 0; i < n; ++i) {
      const int j = 3 - n + i;
      const int64_t pb = cs.w.pads[static_cast<size_t>(i)],
                    pe = cs.w.pads[static_cast<size_t>(i + n)];
      pg.out[j] = pg.in[j] + pb + pe;
      pg.shift[j] = -pb;
      xs[static_cast<size_t>(i + 2)] = pg.out[j];
    }
    pad_bytes = align_up(dtype_storage_bytes(
        X.dtype, static_cast<uint64_t>(pg.planes * pg.out[0] * pg.out[1] * pg.out[2])));
  } else {
    for (int i = 0; i < n; ++i) pads[static_cast<size_t>(i)] = cs.w.pads[static_cast<size_t>(i)];
  }
  if (pad_bytes > ctx.workspace_limit()) return ctx.out_of_range("padded input exceeds workspace");
  Descs d;
  KILN_RETURN_IF_ERROR(d.create());
  KILN_RETURN_IF_ERROR(set_descs(d, X.dtype, xs, W.shape, cs.out_shape, pads, cs.w.strides,
                                 cs.w.dilations, cs.group, ctx.allow_tf32(), channels_last));
  cudnnHandle_t h = ctx.cudnn();
  KILN_DNN_RETURN_IF_ERROR(cudnnSetStream(h, ctx.stream()));
  const uint64_t ws_avail = ctx.workspace_limit() - pad_bytes;
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> key,
                        algo_key(channels_last ? 2 : 0, ctx, X.dtype, xs, W.shape, cs.out_shape,
                                 pads, cs.w, cs.group, ws_avail));
  AlgoChoice ch;
  if (ctx.tactic_candidates() != nullptr || !algo_cache_get(key, &ch)) {
    constexpr int kMaxAlgos = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    cudnnConvolutionFwdAlgoPerf_t perfs[kMaxAlgos];
    int returned = 0;
    KILN_DNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y,
                                                                    kMaxAlgos, &returned, perfs));
    const int pick =
        pick_perf(perfs, returned, ws_avail, ctx.tactic(), backend::TacticKind::kCudnnForward,
                  X.dtype, ctx.allow_tf32(), ctx.tactic_candidates());
    if (pick < 0) {
      return ctx.node().error(StatusCode::kInternal,
                              "cuDNN has no forward algorithm within the workspace limit");
    }
    ch.algo = static_cast<int>(perfs[pick].algo);
    ch.math = static_cast<int>(perfs[pick].mathType);
    algo_cache_put(key, ch);
  }
  const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(ch.algo);
  if (!(X.dtype == DType::kFloat32 && !ctx.allow_tf32()) && X.dtype != DType::kFloat64) {
    KILN_DNN_RETURN_IF_ERROR(
        cudnnSetConvolutionMathType(d.conv, static_cast<cudnnMathType_t>(ch.math)));
  }
  size_t algo_ws = 0;
  KILN_DNN_RETURN_IF_ERROR(
      cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, &algo_ws));
  if (algo_ws > ws_avail) return ctx.out_of_range("convolution workspace exceeds the limit");
  void* ws = nullptr;
  const uint64_t total_ws = pad_bytes + algo_ws;
  if (total_ws > 0) {
    KILN_ASSIGN_OR_RETURN(ws, ctx.workspace(total_ws));
  }
  const void* xin = X.data;
  if (!symmetric) {
    KILN_RETURN_IF_ERROR(shift_copy(ctx, static_cast<int>(es), X.data, ws, pg));
    xin = ws;
  }
  void* algo_ptr = algo_ws > 0 ? static_cast<char*>(ws) + pad_bytes : nullptr;
  const float one_f = 1.f, zero_f = 0.f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool dbl = X.dtype == DType::kFloat64;
  const void* one = dbl ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* zero = dbl ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);
  // One cuDNN call for bias + residual + activation where cuDNN has it: float32, float16 and
  // float64 with a bias; the identity activation only with IMPLICIT_PRECOMP_GEMM.
  if (has_epilogue && B &&
      (X.dtype == DType::kFloat32 || X.dtype == DType::kFloat16 || X.dtype == DType::kFloat64) &&
      (ep.act == ops::ConvActivation::kRelu ||
       algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
    const cudnnStatus_t st = bias_activation_forward(
        h, d, X.dtype, static_cast<int>(lift_1d(cs.out_shape).size()), cs.M, xin, W.data, algo,
        algo_ptr, algo_ws, B->data, ep, Y->data, channels_last);
    if (st == CUDNN_STATUS_SUCCESS) {
      ++g_fused_runs;
      return ctx.check_launch(what);
    }
    if (st != CUDNN_STATUS_NOT_SUPPORTED && st != CUDNN_STATUS_BAD_PARAM) {
      return dnn_error(st, "cudnnConvolutionBiasActivationForward");
    }
  }
  KILN_DNN_RETURN_IF_ERROR(cudnnConvolutionForward(h, one, d.x, xin, d.w, W.data, d.conv, algo,
                                                   algo_ptr, algo_ws, zero, d.y, Y->data));
  KILN_RETURN_IF_ERROR(finish());
  return ctx.check_launch(what);
}

namespace {

Status conv_run(KernelContext& ctx) {
  return conv_forward(ctx, ctx.has_input(2) ? &ctx.input(2) : nullptr, ConvEpilogue{}, "Conv");
}

Status conv_transpose_run(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  const DeviceTensor& W = ctx.input(1);
  ConvSetup cs;
  KILN_RETURN_IF_ERROR(setup(ctx, X, W, true, &cs));
  const DeviceTensor* B = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (B && (B->rank() != 1 || B->dim(0) != cs.M || B->dtype != X.dtype)) {
    return ctx.invalid("B must have shape [M] and the dtype of X");
  }
  KILN_ASSIGN_OR_RETURN(DeviceTensor * Y, ctx.allocate(0, X.dtype, cs.out_shape));
  if (Y->numel() == 0) return Status::Ok();
  const int n = cs.n;
  const uint64_t es = dtype_storage_bytes(X.dtype, 1);
  const int64_t inner = Y->numel() / (cs.N * cs.M);
  if (X.numel() == 0 || W.numel() == 0) {
    KILN_RETURN_IF_ERROR(fill_float(ctx, X.dtype, Y->data, Y->numel(), 0.0));
    if (B)
      KILN_RETURN_IF_ERROR(add_channel_bias(ctx, X.dtype, Y->data, B->data, cs.N, cs.M, inner));
    return Status::Ok();
  }
  // Direct when pads are symmetric and the forward convolution of Y's size gives X's size.
  bool direct = true;
  std::vector<int64_t> pads(static_cast<size_t>(n)), core = cs.out_shape;
  for (int i = 0; i < n; ++i) {
    const size_t b = static_cast<size_t>(i), e = static_cast<size_t>(i + n);
    const int64_t pb = cs.w.pads[b], pe = cs.w.pads[e];
    const int64_t span = cs.out_shape[b + 2] + 2 * pb - cs.w.extent(i);
    if (pb != pe || pb < 0 || span < 0 || span / cs.w.strides[b] + 1 != X.dim(i + 2)) {
      direct = false;
    }
    pads[b] = pb;
  }
  ShiftGeom cg;
  uint64_t core_bytes = 0;
  if (!direct) {
    // Full transposed convolution (no pads, no output_padding), then crop/pad into Y.
    cg.planes = cs.N * cs.M;
    slots3(cs.out_shape, n, cg.out);
    for (int i = 0; i < n; ++i) {
      const size_t b = static_cast<size_t>(i);
      pads[b] = 0;
      core[b + 2] = cs.w.strides[b] * (X.dim(i + 2) - 1) + cs.w.extent(i);
      const int j = 3 - n + i;
      cg.in[j] = core[b + 2];
      cg.shift[j] = cs.w.pads[b];
    }
    int64_t core_numel = 1;
    for (int64_t v : core) core_numel *= v;
    core_bytes = align_up(dtype_storage_bytes(X.dtype, static_cast<uint64_t>(core_numel)));
    if (core_bytes > ctx.workspace_limit()) {
      return ctx.out_of_range("transposed convolution scratch exceeds the workspace limit");
    }
  }
  Descs d;
  KILN_RETURN_IF_ERROR(d.create());
  // Forward-convolution view: "x" is Y (M channels), "y" is X (C channels), W is [C, M/g, k].
  KILN_RETURN_IF_ERROR(set_descs(d, X.dtype, core, W.shape, X.shape, pads, cs.w.strides,
                                 cs.w.dilations, cs.group, ctx.allow_tf32()));
  cudnnHandle_t h = ctx.cudnn();
  KILN_DNN_RETURN_IF_ERROR(cudnnSetStream(h, ctx.stream()));
  const uint64_t ws_avail = ctx.workspace_limit() - core_bytes;
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> key, algo_key(1, ctx, X.dtype, core, W.shape, X.shape,
                                                           pads, cs.w, cs.group, ws_avail));
  AlgoChoice ch;
  if (ctx.tactic_candidates() != nullptr || !algo_cache_get(key, &ch)) {
    constexpr int kMaxAlgos = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    cudnnConvolutionBwdDataAlgoPerf_t perfs[kMaxAlgos];
    int returned = 0;
    KILN_DNN_RETURN_IF_ERROR(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, d.w, d.y, d.conv, d.x, kMaxAlgos, &returned, perfs));
    const int pick =
        pick_perf(perfs, returned, ws_avail, ctx.tactic(), backend::TacticKind::kCudnnBackwardData,
                  X.dtype, ctx.allow_tf32(), ctx.tactic_candidates());
    if (pick < 0) {
      return ctx.node().error(StatusCode::kInternal,
                              "cuDNN has no backward-data algorithm within the workspace limit");
    }
    ch.algo = static_cast<int>(perfs[pick].algo);
    ch.math = static_cast<int>(perfs[pick].mathType);
    algo_cache_put(key, ch);
  }
  const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(ch.algo);
  if (!(X.dtype == DType::kFloat32 && !ctx.allow_tf32()) && X.dtype != DType::kFloat64) {
    KILN_DNN_RETURN_IF_ERROR(
        cudnnSetConvolutionMathType(d.conv, static_cast<cudnnMathType_t>(ch.math)));
  }
  size_t algo_ws = 0;
  KILN_DNN_RETURN_IF_ERROR(
      cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo, &algo_ws));
  if (algo_ws > ws_avail) return ctx.out_of_range("convolution workspace exceeds the limit");
  void* ws = nullptr;
  if (core_bytes + algo_ws > 0) {
    KILN_ASSIGN_OR_RETURN(ws, ctx.workspace(core_bytes + algo_ws));
  }
  void* out = direct ? Y->data : ws;
  void* algo_ptr = algo_ws > 0 ? static_cast<char*>(ws) + core_bytes : nullptr;
  const float one_f = 1.f, zero_f = 0.f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool dbl = X.dtype == DType::kFloat64;
  const void* one = dbl ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* zero = dbl ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);
  KILN_DNN_RETURN_IF_ERROR(cudnnConvolutionBackwardData(h, one, d.w, W.data, d.y, X.data, d.conv,
                                                        algo, algo_ptr, algo_ws, zero, d.x, out));
  if (!direct) KILN_RETURN_IF_ERROR(shift_copy(ctx, static_cast<int>(es), ws, Y->data, cg));
  if (B) KILN_RETURN_IF_ERROR(add_channel_bias(ctx, X.dtype, Y->data, B->data, cs.N, cs.M, inner));
  return ctx.check_launch("ConvTranspose");
}

}  // namespace

std::string conv_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!conv_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  if (std::string r = require_dtypes(node, {t}); !r.empty()) return r;
  if (node.has_input(0) && node.inputs[0]->type.shape.rank_known) {
    const int r = node.inputs[0]->type.shape.rank();
    if (r < 3 || r > 5) return "rank " + std::to_string(r) + " (only 1-3 spatial dims)";
  }
  return {};
}

void register_conv_kernels(KernelRegistry& r) {
  KernelDef conv{"", "Conv", conv_supports, conv_run};
  conv.tunable = true;
  r.add(conv);
  KernelDef transpose{"", "ConvTranspose", conv_supports, conv_transpose_run};
  transpose.tunable = true;
  r.add(transpose);
}

}  // namespace kiln::cuda
