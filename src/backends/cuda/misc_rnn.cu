// Pointwise cell kernels of RNN, GRU and LSTM (default activations: Tanh; Sigmoid/Tanh;
// Sigmoid/Tanh/Tanh), one thread per (batch, hidden) element and time step. The GEMMs are
// issued by the host code (misc_rnn.cc). Semantics follow src/backends/cpu/misc_rnn.cc.
#include <type_traits>

#include "backends/cuda/common.cuh"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccOf<T> ld(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>) {
    return p[i];
  } else {
    return load_f(p, i);
  }
}
template <typename T>
__device__ __forceinline__ T st(AccOf<T> v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return from_f<T>(v);
  }
}

template <typename A>
__device__ __forceinline__ A sigm(A v) {
  return A(1) / (A(1) + exp(-v));
}

template <typename T>
__global__ void rnn_step_kernel(RnnStepArgs a) {
  using A = AccOf<T>;
  const T* xw = static_cast<const T*>(a.xw);
  const T* hr = static_cast<const T*>(a.hr);
  const T* wb = static_cast<const T*>(a.wb);
  const T* rb = static_cast<const T*>(a.rb);
  const T* pp = static_cast<const T*>(a.p);
  T* h = static_cast<T*>(a.h);
  T* c = static_cast<T*>(a.c);
  T* y = static_cast<T*>(a.y);
  T* zb = static_cast<T*>(a.z_buf);
  T* rhb = static_cast<T*>(a.rh_buf);
  const T* rhr = static_cast<const T*>(a.rhr);
  const int64_t H = a.hidden;
  const int gates = a.kind == 0 ? 1 : (a.kind == 1 ? 3 : 4);
  const int64_t GH = gates * H;
  const A clip = a.clip;
  auto clipv = [&](A v) { return a.has_clip ? (v < -clip ? -clip : (v > clip ? clip : v)) : v; };
  KILN_GRID_STRIDE_LOOP(idx, a.batch * H) {
    const int64_t b = idx / H, j = idx % H;
    int64_t len = a.seq;
    if (a.lens != nullptr) {
      len = a.lens[b];
      len = len < 0 ? 0 : (len > a.seq ? a.seq : len);  // the CPU kernel rejects these
    }
    const int64_t yi = a.layout == 0 ? ((a.t * a.num_dir + a.dir) * a.batch + b) * H + j
                                     : ((b * a.seq + a.t) * a.num_dir + a.dir) * H + j;
    if (a.t >= len) {
      if (y != nullptr && a.phase != 1) y[yi] = st<T>(A(0));
      continue;
    }
    const int64_t xrow = a.layout == 0 ? a.t * a.batch + b : b * a.seq + a.t;
    const T* xr = xw + xrow * GH;
    const T* hrr = hr + b * GH;
    auto pre = [&](int64_t g) {  // x and recurrent projections of gate row g, with biases
      A v = ld(xr, g) + ld(hrr, g);
      if (wb != nullptr) v += ld(wb, g);
      if (rb != nullptr) v += ld(rb, g);
      return v;
    };
    A hn;
    if (a.kind == 0) {
      hn = tanh(clipv(pre(j)));
    } else if (a.kind == 1) {
      // Gate order z, r, h.
      if (a.phase == 2) {
        const A z = ld(zb, idx);
        A v = ld(xr, 2 * H + j) + ld(rhr, idx);
        if (wb != nullptr) v += ld(wb, 2 * H + j);
        if (rb != nullptr) v += ld(rb, 2 * H + j);
        const A ht = tanh(clipv(v));
        hn = (A(1) - z) * ht + z * ld(h, idx);
      } else {
        const A z = sigm(clipv(pre(j)));
        const A r = sigm(clipv(pre(H + j)));
        if (a.phase == 1) {
          zb[idx] = st<T>(z);
          rhb[idx] = st<T>(r * ld(h, idx));
          continue;
        }
        // linear_before_reset: h~ = tanh(xw_h + wb_h + r * (hr_h + rb_h)).
        A rec = ld(hrr, 2 * H + j);
        if (rb != nullptr) rec += ld(rb, 2 * H + j);
        A v = ld(xr, 2 * H + j) + r * rec;
        if (wb != nullptr) v += ld(wb, 2 * H + j);
        const A ht = tanh(clipv(v));
        hn = (A(1) - z) * ht + z * ld(h, idx);
      }
    } else {
      // Gate order i, o, f, c; peepholes i, o, f.
      const A cprev = ld(c, idx);
      const A pi = pp != nullptr ? ld(pp, j) : A(0);
      const A po = pp != nullptr ? ld(pp, H + j) : A(0);
      const A pf = pp != nullptr ? ld(pp, 2 * H + j) : A(0);
      const A i = sigm(clipv(pre(j) + pi * cprev));
      A f = sigm(clipv(pre(2 * H + j) + pf * cprev));
      if (a.input_forget) f = A(1) - i;
      const A g = tanh(clipv(pre(3 * H + j)));
      const A cn = f * cprev + i * g;
      const A o = sigm(clipv(pre(H + j) + po * cn));
      c[idx] = st<T>(cn);
      hn = o * tanh(cn);
    }
    h[idx] = st<T>(hn);
    if (y != nullptr) y[yi] = st<T>(hn);
  }
}

}  // namespace

Status launch_rnn_step(KernelContext& ctx, const RnnStepArgs& a) {
  const int64_t n = a.batch * a.hidden;
  if (n <= 0) return Status::Ok();
  const Launch l = launch_for(n);
  const bool ok = dispatch_float(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    rnn_step_kernel<T><<<l.grid, l.block, 0, ctx.stream()>>>(a);
  });
  if (!ok) return ctx.unsupported_type(a.dtype);
  return ctx.check_launch("recurrent cell");
}

}  // namespace kiln::cuda
