// CUDA kernels of NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//
// Input [N, C, D...] is read as [n, c, d]; target [N, D...] (int32/int64, on the device). One
// thread per (n, d) position gathers -logp[n, target, d] * weight[target] (SCE: log-softmax over
// the class axis first, in double, also written to the optional log_prob output). Ignored
// targets (== ignore_index) give loss 0 and weight 0. "sum"/"mean" then reduce the per-position
// losses and weights in one block, in double; "mean" divides by the sum of weights (0/0 is NaN
// when every target is ignored), as the CPU kernel does.
//
// A target outside [0, C) that is not ignore_index is an error on the CPU; here (targets live on
// the device) it reads nothing and makes its loss NaN, so the result is NaN instead of an error.
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/ew_util.cuh"

namespace kiln::cuda {
namespace {

using namespace ew;  // NOLINT

struct LossArgs {
  int64_t n = 0, c = 0, d = 1;
  bool target32 = false;
  bool has_ignore = false;
  int64_t ignore = 0;
  bool sce = false;
};

// Position p = (b, k): its loss and weight; the log-probabilities of its classes go to log_prob
// (SCE, when given). Element reads go through load(ptr, index) (T to float/double).
template <typename T, typename Load>
__host__ __device__ __forceinline__ void loss_at(const T* x, const void* target, const T* weight,
                                                 const LossArgs& a, int64_t p, T* log_prob,
                                                 double* loss_out, double* w_out, Load load) {
  const int64_t b = p / a.d, k = p % a.d;
  const int64_t t =
      a.target32 ? static_cast<const int32_t*>(target)[p] : static_cast<const int64_t*>(target)[p];
  const T* xs = x + b * a.c * a.d + k;  // class ch at xs[ch * d]
  double m = 0.0, ls = 0.0;
  if (a.sce) {
    m = -std::numeric_limits<double>::infinity();
    for (int64_t ch = 0; ch < a.c; ++ch) m = fmax(m, static_cast<double>(load(xs, ch * a.d)));
    double sum = 0.0;
    for (int64_t ch = 0; ch < a.c; ++ch) sum += exp(static_cast<double>(load(xs, ch * a.d)) - m);
    ls = log(sum);
    if (log_prob != nullptr) {
      T* lp = log_prob + b * a.c * a.d + k;
      for (int64_t ch = 0; ch < a.c; ++ch) {
        const double v = static_cast<double>(load(xs, ch * a.d)) - m - ls;
        lp[ch * a.d] = static_cast<T>(v);
      }
    }
  }
  double loss = 0.0, w = 0.0;
  if (!(a.has_ignore && t == a.ignore)) {
    if (t < 0 || t >= a.c) {
      loss = std::numeric_limits<double>::quiet_NaN();
    } else {
      w = weight != nullptr ? static_cast<double>(load(weight, t)) : 1.0;
      double logp = static_cast<double>(load(xs, t * a.d));
      if (a.sce) logp = logp - m - ls;
      loss = -logp * w;
    }
  }
  *loss_out = loss;
  *w_out = w;
}

struct DeviceLoad {
  template <typename T>
  __device__ __forceinline__ Compute<T> operator()(const T* p, int64_t i) const {
    return load_c(p, i);
  }
};

template <typename T>
__global__ void loss_positions(const T* x, const void* target, const T* weight, LossArgs a,
                               T* log_prob, T* loss_out, double* lbuf, double* wbuf) {
  const int64_t positions = a.n * a.d;
  KILN_GRID_STRIDE_LOOP(p, positions) {
    double loss, w;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      loss_at(x, target, weight, a, p, log_prob, &loss, &w, DeviceLoad{});
    } else {
      // float16/bfloat16 log_prob: computed in double, stored through float.
      loss_at<T>(x, target, weight, a, p, nullptr, &loss, &w, DeviceLoad{});
      if (log_prob != nullptr) {
        const int64_t b = p / a.d, k = p % a.d;
        const T* xs = x + b * a.c * a.d + k;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t ch = 0; ch < a.c; ++ch) m = fmax(m, static_cast<double>(load_c(xs, ch * a.d)));
        double sum = 0.0;
        for (int64_t ch = 0; ch < a.c; ++ch)
          sum += exp(static_cast<double>(load_c(xs, ch * a.d)) - m);
        const double ls = log(sum);
        T* lp = log_prob + b * a.c * a.d + k;
        for (int64_t ch = 0; ch < a.c; ++ch) {
          const double v = static_cast<double>(load_c(xs, ch * a.d)) - m - ls;
          lp[ch * a.d] = to_t<T>(static_cast<float>(v));
        }
      }
    }
    if (loss_out != nullptr) loss_out[p] = to_t<T>(static_cast<Compute<T>>(loss));
    if (lbuf != nullptr) {
      lbuf[p] = loss;
      wbuf[p] = w;
    }
  }
}

template <typename T>
__global__ void loss_reduce(const double* lbuf, const double* wbuf, int64_t count, bool mean,
                            T* y) {
  __shared__ double sl[256], sw[256];
  double l = 0.0, w = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    l += lbuf[i];
    w += wbuf[i];
  }
  sl[threadIdx.x] = l;
  sw[threadIdx.x] = w;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sl[threadIdx.x] += sl[threadIdx.x + s];
      sw[threadIdx.x] += sw[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double r = mean ? sl[0] / sw[0] : sl[0];
    y[0] = to_t<T>(static_cast<Compute<T>>(r));
  }
}

std::string loss_supports(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1)) return "missing input";
  const DType t = input_dtype(node, 0);
  if (!is_float_dtype(t)) return std::string("dtype ") + dtype_name(t);
  const DType tt = input_dtype(node, 1);
  if (tt != DType::kInt32 && tt != DType::kInt64)
    return std::string("target dtype ") + dtype_name(tt);
  if (node.has_input(2) && input_dtype(node, 2) != t) return "weight dtype differs from input";
  const std::string red = node.attr_string("reduction", "mean");
  if (red != "none" && red != "sum" && red != "mean") return "bad reduction";
  return {};
}

Status loss_run(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& target = ctx.input(1);
  LossArgs a;
  a.sce = ctx.node().op_type == "SoftmaxCrossEntropyLoss";
  if (!is_float_dtype(x.dtype)) return ctx.unsupported_type(x.dtype);
  if (x.rank() < 2) return ctx.invalid("input must have rank >= 2");
  a.n = x.dim(0);
  a.c = x.dim(1);
  for (int i = 2; i < x.rank(); ++i) a.d *= x.dim(i);
  if (target.dtype != DType::kInt64 && target.dtype != DType::kInt32) {
    return ctx.invalid(std::string("target must be int32 or int64, got ") +
                       dtype_name(target.dtype));
  }
  a.target32 = target.dtype == DType::kInt32;
  std::vector<int64_t> want = x.shape;
  want.erase(want.begin() + 1);
  if (target.shape != want) {
    return ctx.invalid("target " + shape_to_string(target.shape) + " does not match input " +
                       shape_to_string(x.shape));
  }
  const DeviceTensor* weight = nullptr;
  if (ctx.num_inputs() > 2 && ctx.has_input(2)) {
    weight = &ctx.input(2);
    if (weight->rank() != 1 || weight->dim(0) != a.c) {
      return ctx.invalid("weight must have shape [" + std::to_string(a.c) + "]");
    }
    if (weight->dtype != x.dtype) return ctx.invalid("weight dtype differs from input");
  }
  a.has_ignore = ctx.node().has_attr("ignore_index");
  a.ignore = ctx.attr_int("ignore_index", 0);
  const std::string red = ctx.attr_string("reduction", "mean");
  if (red != "none" && red != "sum" && red != "mean") {
    return ctx.invalid("reduction must be none, sum or mean, got '" + red + "'");
  }
  const bool none = red == "none";
  const int64_t positions = a.n * a.d;
  KILN_ASSIGN_OR_RETURN(DeviceTensor * y,
                        ctx.allocate(0, x.dtype, none ? want : std::vector<int64_t>{}));
  DeviceTensor* log_prob = nullptr;
  if (a.sce && ctx.num_outputs() > 1 && ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(log_prob, ctx.allocate(1, x.dtype, x.shape));
  }
  double* lbuf = nullptr;
  double* wbuf = nullptr;
  if (!none && positions > 0) {
    KILN_ASSIGN_OR_RETURN(void* ws, ctx.workspace(static_cast<uint64_t>(positions) * 16));
    lbuf = static_cast<double*>(ws);
    wbuf = lbuf + positions;
  }
  Status st = Status::Ok();
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (positions > 0) {
      const Launch l = launch_for(positions);
      loss_positions<T><<<l.grid, l.block, 0, ctx.stream()>>>(
          x.as<T>(), target.data, weight != nullptr ? weight->as<T>() : nullptr, a,
          log_prob != nullptr ? log_prob->as<T>() : nullptr, none ? y->as<T>() : nullptr, lbuf,
          wbuf);
    }
    if (!none) {
      // An empty batch sums to 0 (mean: 0/0, NaN).
      loss_reduce<T><<<1, 256, 0, ctx.stream()>>>(lbuf, wbuf, positions, red == "mean", y->as<T>());
    }
    set_status(st, ctx.check_launch(ctx.node().op_type.c_str()));
  });
  return st;
}

}  // namespace

void register_red_loss_kernels(KernelRegistry& r) {
  for (const char* name : {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"}) {
    KernelDef d;
    d.op_type = name;
    d.supports = &loss_supports;
    d.run = &loss_run;
    r.add(d);
  }
}

}  // namespace kiln::cuda
