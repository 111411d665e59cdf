// RNN, GRU and LSTM on the GPU (forward / reverse / bidirectional, layout 0 and 1, clip,
// sequence_lens, initial states, peepholes, input_forget, linear_before_reset; default
// activations only). Per direction: one GEMM projects every time step's input (X W^T), then per
// step one GEMM for the recurrent projection (H R^T; GRU without linear_before_reset adds a
// second one for (r * H) Rh^T) and a pointwise cell kernel. Reverse directions step from the
// last time step down; entries past their sequence length keep their state, so each batch
// entry's reverse pass starts at its own last valid step.
#include <algorithm>
#include <cctype>

#include "backends/cuda/common.cuh"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/nn_internal.h"

namespace kiln::cuda {
namespace {

int cell_kind(const ir::Node& node) {
  if (node.op_type == "RNN") return 0;
  if (node.op_type == "GRU") return 1;
  return 2;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string rnn_supports(const ir::Node& node) {
  const DType t = input_dtype(node, 0);
  if (!gemm_dtype_ok(t)) return std::string("dtype ") + dtype_name(t);
  for (int i = 1; i < static_cast<int>(node.inputs.size()); ++i) {
    if (!node.has_input(i)) continue;
    const DType want = i == 4 ? DType::kInt32 : t;
    if (input_dtype(node, i) != want) return "input " + std::to_string(i) + " dtype";
  }
  for (int i = 0; i < static_cast<int>(node.outputs.size()); ++i) {
    if (node.has_output(i) && output_dtype(node, i) != t) return "output dtype";
  }
  if (node.has_attr("activation_alpha") || node.has_attr("activation_beta")) {
    return "activation_alpha/beta";
  }
  const int kind = cell_kind(node);
  const std::vector<std::string> defaults =
      kind == 0 ? std::vector<std::string>{"tanh"}
                : (kind == 1 ? std::vector<std::string>{"sigmoid", "tanh"}
                             : std::vector<std::string>{"sigmoid", "tanh", "tanh"});
  const std::vector<std::string> acts = node.attr_strings("activations");
  for (size_t i = 0; i < acts.size(); ++i) {
    if (lower(acts[i]) != defaults[i % defaults.size()]) return "non-default activations";
  }
  const std::string dir = node.attr_string("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional") return "direction";
  return {};
}

uint64_t align_up(uint64_t v) {
  return (v + 255) & ~uint64_t{255};
}

Status rnn_run(KernelContext& ctx) {
  const int kind = cell_kind(ctx.node());
  const int gates = kind == 0 ? 1 : (kind == 1 ? 3 : 4);
  for (int i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) return ctx.invalid("X, W and R are required");
  }
  const DeviceTensor& X = ctx.input(0);
  const DeviceTensor& W = ctx.input(1);
  const DeviceTensor& R = ctx.input(2);
  const DType dt = X.dtype;
  const int es = static_cast<int>(dtype_storage_bytes(dt, 1));
  const int64_t layout = ctx.attr_int("layout", 0);
  const std::string direction = ctx.attr_string("direction", "forward");
  int64_t hidden = ctx.attr_int("hidden_size", -1);
  const bool has_clip = ctx.node().has_attr("clip");
  const float clip = ctx.attr_float("clip", 0.f);
  const bool lbr = ctx.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = ctx.attr_int("input_forget", 0) != 0;
  KILN_RETURN_IF_ERROR(ctx.attr_status());
  if (layout != 0 && layout != 1) return ctx.invalid("layout must be 0 or 1");
  int64_t num_dir;
  if (direction == "forward" || direction == "reverse") {
    num_dir = 1;
  } else if (direction == "bidirectional") {
    num_dir = 2;
  } else {
    return ctx.invalid("direction must be forward, reverse or bidirectional");
  }
  if (X.rank() != 3) return ctx.invalid("X must have rank 3");
  if (W.dtype != dt || R.dtype != dt) return ctx.invalid("W and R must have X's dtype");
  const int64_t seq = layout == 0 ? X.dim(0) : X.dim(1);
  const int64_t batch = layout == 0 ? X.dim(1) : X.dim(0);
  const int64_t in_size = X.dim(2);
  if (hidden < 0 && R.rank() == 3) hidden = R.dim(2);
  if (hidden <= 0) return ctx.invalid("hidden_size must be positive");
  if (has_clip && !(clip > 0.f)) return ctx.invalid("clip must be positive");
  const int64_t gh = gates * hidden;
  if (W.shape != std::vector<int64_t>{num_dir, gh, in_size})
    return ctx.invalid("W has a wrong shape");
  if (R.shape != std::vector<int64_t>{num_dir, gh, hidden})
    return ctx.invalid("R has a wrong shape");
  const DeviceTensor* B = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (B && (B->dtype != dt || B->shape != std::vector<int64_t>{num_dir, 2 * gh})) {
    return ctx.invalid("B has a wrong shape");
  }
  const int32_t* lens = nullptr;
  if (ctx.has_input(4)) {
    const DeviceTensor& s = ctx.input(4);
    if (s.dtype != DType::kInt32 || s.numel() != batch) {
      return ctx.invalid("sequence_lens must hold batch_size int32 values");
    }
    lens = s.as<int32_t>();
  }
  const std::vector<int64_t> state_shape = layout == 0
                                               ? std::vector<int64_t>{num_dir, batch, hidden}
                                               : std::vector<int64_t>{batch, num_dir, hidden};
  for (int i : {5, 6}) {
    if (i == 6 && kind != 2) continue;
    if (ctx.has_input(i) && (ctx.input(i).dtype != dt || ctx.input(i).shape != state_shape)) {
      return ctx.invalid("initial state has a wrong shape");
    }
  }
  const DeviceTensor* P = kind == 2 && ctx.has_input(7) ? &ctx.input(7) : nullptr;
  if (P && (P->dtype != dt || P->shape != std::vector<int64_t>{num_dir, 3 * hidden})) {
    return ctx.invalid("P has a wrong shape");
  }

  DeviceTensor* Y = nullptr;
  DeviceTensor* Yh = nullptr;
  DeviceTensor* Yc = nullptr;
  if (ctx.wants_output(0)) {
    const std::vector<int64_t> ys = layout == 0 ? std::vector<int64_t>{seq, num_dir, batch, hidden}
                                                : std::vector<int64_t>{batch, seq, num_dir, hidden};
    KILN_ASSIGN_OR_RETURN(Y, ctx.allocate(0, dt, ys));
  }
  if (ctx.wants_output(1)) {
    KILN_ASSIGN_OR_RETURN(Yh, ctx.allocate(1, dt, state_shape));
  }
  if (kind == 2 && ctx.wants_output(2)) {
    KILN_ASSIGN_OR_RETURN(Yc, ctx.allocate(2, dt, state_shape));
  }
  const int64_t state_n = num_dir * batch * hidden;
  if (state_n == 0) {
    if (Y) KILN_RETURN_IF_ERROR(fill_float(ctx, dt, Y->data, Y->numel(), 0.0));
    return Status::Ok();
  }
  // Scratch: xw [seq*batch, gh], h and c [num_dir, batch, hidden], hr [batch, gh], GRU buffers.
  const uint64_t xw_b = align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(seq * batch * gh)));
  const uint64_t st_b = align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(state_n)));
  const uint64_t hr_b = align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(batch * gh)));
  const uint64_t bh_b = align_up(dtype_storage_bytes(dt, static_cast<uint64_t>(batch * hidden)));
  const bool two_phase = kind == 1 && !lbr;
  const uint64_t own = xw_b + 2 * st_b + hr_b + (two_phase ? 3 * bh_b : 0);
  GemmWorkspace gws;
  gws.external = true;
  gws.bytes = gemm_workspace_budget(ctx, own);
  const uint64_t total = own + gws.bytes;
  KILN_ASSIGN_OR_RETURN(void* wsv, ctx.workspace(total));
  char* ws = static_cast<char*>(wsv);
  void* xw = ws;
  void* hs = ws + xw_b;
  void* cs = ws + xw_b + st_b;
  void* hr = ws + xw_b + 2 * st_b;
  void* zb = ws + xw_b + 2 * st_b + hr_b;
  void* rhb = static_cast<char*>(zb) + bh_b;
  void* rhr = static_cast<char*>(rhb) + bh_b;
  gws.ptr = ws + own;

  // Initial states as [num_dir, batch, hidden].
  auto load_state = [&](int input, void* dst) -> Status {
    if (!ctx.has_input(input)) return fill_float(ctx, dt, dst, state_n, 0.0);
    const DeviceTensor& s = ctx.input(input);
    if (layout == 0) {
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst, s.data, s.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
      return Status::Ok();
    }
    return permute(ctx, es, s.data, s.shape, {1, 0, 2}, dst);
  };
  KILN_RETURN_IF_ERROR(load_state(5, hs));
  if (kind == 2) KILN_RETURN_IF_ERROR(load_state(6, cs));

  const uint64_t esz = static_cast<uint64_t>(es);
  for (int64_t d = 0; d < num_dir; ++d) {
    const bool reverse = direction == "reverse" || d == 1;
    const char* wd =
        static_cast<const char*>(W.data) + static_cast<uint64_t>(d * gh * in_size) * esz;
    const char* rd =
        static_cast<const char*>(R.data) + static_cast<uint64_t>(d * gh * hidden) * esz;
    char* hd = static_cast<char*>(hs) + static_cast<uint64_t>(d * batch * hidden) * esz;
    char* cd = static_cast<char*>(cs) + static_cast<uint64_t>(d * batch * hidden) * esz;
    // xw = X rows * W_d^T (rows in X's own order).
    GemmArgs g;
    g.dtype = dt;
    g.trans_b = true;
    g.m = seq * batch;
    g.n = gh;
    g.k = in_size;
    g.lda = in_size;
    g.ldb = in_size;
    g.ldc = gh;
    g.a = X.data;
    g.b = wd;
    g.c = xw;
    g.ws = gws;
    if (in_size == 0) {
      KILN_RETURN_IF_ERROR(fill_float(ctx, dt, xw, seq * batch * gh, 0.0));
    } else {
      KILN_RETURN_IF_ERROR(gemm(ctx, g));
    }
    RnnStepArgs a;
    a.dtype = dt;
    a.kind = kind;
    a.seq = seq;
    a.batch = batch;
    a.hidden = hidden;
    a.num_dir = num_dir;
    a.dir = d;
    a.layout = static_cast<int>(layout);
    a.xw = xw;
    a.hr = hr;
    if (B) {
      a.wb = static_cast<const char*>(B->data) + static_cast<uint64_t>(d * 2 * gh) * esz;
      a.rb = static_cast<const char*>(B->data) + static_cast<uint64_t>(d * 2 * gh + gh) * esz;
    }
    if (P) a.p = static_cast<const char*>(P->data) + static_cast<uint64_t>(d * 3 * hidden) * esz;
    a.h = hd;
    a.c = kind == 2 ? cd : nullptr;
    a.y = Y ? Y->data : nullptr;
    a.z_buf = zb;
    a.rh_buf = rhb;
    a.rhr = rhr;
    a.lens = lens;
    a.has_clip = has_clip;
    a.clip = clip;
    a.input_forget = input_forget;
    a.linear_before_reset = lbr;
    for (int64_t s = 0; s < seq; ++s) {
      a.t = reverse ? seq - 1 - s : s;
      // hr = h * R_d^T
      GemmArgs gr;
      gr.dtype = dt;
      gr.trans_b = true;
      gr.m = batch;
      gr.n = gh;
      gr.k = hidden;
      gr.lda = hidden;
      gr.ldb = hidden;
      gr.ldc = gh;
      gr.a = hd;
      gr.b = rd;
      gr.c = hr;
      gr.ws = gws;
      KILN_RETURN_IF_ERROR(gemm(ctx, gr));
      if (!two_phase) {
        a.phase = 0;
        KILN_RETURN_IF_ERROR(launch_rnn_step(ctx, a));
        continue;
      }
      a.phase = 1;
      KILN_RETURN_IF_ERROR(launch_rnn_step(ctx, a));
      // rhr = (r * h) * Rh^T, Rh = rows [2H, 3H) of R_d.
      GemmArgs gh2 = gr;
      gh2.n = hidden;
      gh2.ldc = hidden;
      gh2.a = rhb;
      gh2.b = rd + static_cast<uint64_t>(2 * hidden * hidden) * esz;
      gh2.c = rhr;
      KILN_RETURN_IF_ERROR(gemm(ctx, gh2));
      a.phase = 2;
      KILN_RETURN_IF_ERROR(launch_rnn_step(ctx, a));
    }
  }
  auto emit_state = [&](DeviceTensor* out, void* src) -> Status {
    if (out == nullptr) return Status::Ok();
    if (layout == 0) {
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(out->data, src, out->nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
      return Status::Ok();
    }
    return permute(ctx, es, src, {num_dir, batch, hidden}, {1, 0, 2}, out->data);
  };
  KILN_RETURN_IF_ERROR(emit_state(Yh, hs));
  KILN_RETURN_IF_ERROR(emit_state(Yc, cs));
  return ctx.check_launch("recurrent");
}

}  // namespace

void register_rnn_kernels(KernelRegistry& r) {
  r.add({"", "RNN", rnn_supports, rnn_run});
  r.add({"", "GRU", rnn_supports, rnn_run});
  r.add({"", "LSTM", rnn_supports, rnn_run});
}

}  // namespace kiln::cuda
