// CPU reference kernels of the control family: If, Loop, Scan. The sequence and optional ops
// are in control_sequence.cc.
//
// Loop guards: a Loop with neither a trip count nor a condition input can never stop and is
// refused; a trip count over the executor's iteration limit (Executor::Options, 10^8 unless told
// otherwise: a model that really needs more is not one the reference backend can run in useful
// time) is refused before the first iteration when no condition input could stop the loop
// sooner, and any Loop stops with an error at that limit; the scan outputs it collects may not
// grow past the executor's tensor size limit, which a loop without a condition input checks
// after its first iteration against the whole trip count.
#include <algorithm>

#include "backends/cpu/control_util.h"

namespace kiln::cpu {
namespace {

// Reads a one-element bool tensor (a condition).
StatusOr<bool> read_condition(const KernelContext& ctx, const Datum& d, const std::string& what) {
  if (!d.is_tensor() || d.tensor.dtype() != DType::kBool || d.tensor.numel() != 1) {
    return ctx.invalid(what + " must be a bool tensor of one element, got " + d.describe());
  }
  return d.tensor.data<uint8_t>()[0] != 0;
}

// An empty scan output when the loop ran zero times: dtype and shape come from the declared
// type of the node's output, else of the body's output; unknown dims become 0.
StatusOr<Tensor> empty_scan_output(KernelContext& ctx, const ir::Value* body_out, int out_index,
                                   int axis_hint) {
  const ir::Value* node_out = ctx.node().outputs[static_cast<size_t>(out_index)];
  DType dt = DType::kUndefined;
  std::vector<int64_t> shape;
  bool have_shape = false;
  if (node_out && node_out->type.is_tensor()) {
    dt = node_out->type.dtype;
    if (node_out->type.shape.rank_known) {
      for (const ir::Dim& d : node_out->type.shape.dims) shape.push_back(d.known() ? d.value : 0);
      have_shape = true;
    }
  }
  if (body_out && body_out->type.is_tensor()) {
    if (dt == DType::kUndefined) dt = body_out->type.dtype;
    if (!have_shape && body_out->type.shape.rank_known) {
      for (const ir::Dim& d : body_out->type.shape.dims) shape.push_back(d.known() ? d.value : 0);
      shape.insert(shape.begin() + std::clamp(axis_hint, 0, static_cast<int>(shape.size())), 0);
      have_shape = true;
    }
  }
  if (dt == DType::kUndefined) {
    return ctx.unsupported("ran zero iterations and the dtype of scan output " +
                           std::to_string(out_index) + " is not declared");
  }
  if (!have_shape) shape = {0};
  return Tensor::create(dt, shape, ctx.max_tensor_bytes());
}

// Accumulates the per-iteration values of one scan output, checking they agree and that
// their total stays within the size limit.
class ScanCollector {
 public:
  Status add(const KernelContext& ctx, const Datum& d, int k) {
    if (!d.is_tensor()) {
      return ctx.invalid("scan output " + std::to_string(k) +
                         " of the body must be a tensor, got " + d.describe());
    }
    const Tensor& t = d.tensor;
    if (!parts_.empty() && (t.dtype() != parts_[0].dtype() || t.shape() != parts_[0].shape())) {
      return ctx.invalid("scan output " + std::to_string(k) + " is " + t.type_string() +
                         " in iteration " + std::to_string(parts_.size()) + " but " +
                         parts_[0].type_string() + " in iteration 0");
    }
    KILN_RETURN_IF_ERROR(check_sliceable(ctx, t.dtype()));
    bytes_ += t.dtype() == DType::kString ? static_cast<uint64_t>(t.numel()) * sizeof(std::string)
                                          : t.nbytes();
    if (bytes_ > ctx.max_tensor_bytes()) {
      return ctx.out_of_range("scan output " + std::to_string(k) + " grows past " +
                              std::to_string(ctx.max_tensor_bytes()) + " bytes");
    }
    parts_.push_back(t);
    return Status::Ok();
  }
  std::vector<Tensor>& parts() { return parts_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::vector<Tensor> parts_;
  uint64_t bytes_ = 0;
};

Status if_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(bool cond, read_condition(ctx, ctx.input(0), "the condition"));
  const ir::Graph* g = ctx.attr_graph(cond ? "then_branch" : "else_branch");
  if (g == nullptr) return ctx.invalid("needs graph attributes 'then_branch' and 'else_branch'");
  KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, ctx.run_subgraph(*g, {}));
  if (static_cast<int>(outs.size()) < ctx.num_outputs()) {
    return ctx.invalid("the branch gives " + std::to_string(outs.size()) +
                       " outputs, the node has " + std::to_string(ctx.num_outputs()));
  }
  for (int i = 0; i < ctx.num_outputs(); ++i)
    ctx.set_output(i, std::move(outs[static_cast<size_t>(i)]));
  return Status::Ok();
}

Status loop_kernel(KernelContext& ctx) {
  const ir::Graph* body = ctx.attr_graph("body");
  if (body == nullptr) return ctx.invalid("needs graph attribute 'body'");
  const int n_carried = std::max(0, ctx.num_inputs() - 2);
  const int body_outs = static_cast<int>(body->outputs.size());
  if (static_cast<int>(body->inputs.size()) != n_carried + 2 || body_outs < n_carried + 1) {
    return ctx.invalid("body has " + std::to_string(body->inputs.size()) + " inputs and " +
                       std::to_string(body_outs) + " outputs, which does not fit " +
                       std::to_string(n_carried) + " loop-carried values");
  }
  const int n_scan = body_outs - 1 - n_carried;
  if (ctx.num_outputs() > n_carried + n_scan) {
    return ctx.invalid("has more outputs than the body gives");
  }
  const bool has_m = ctx.has_input(0);
  const bool has_cond = ctx.has_input(1);
  int64_t trip = 0;
  if (has_m) {
    const Datum& m = ctx.input(0);
    if (!m.is_tensor() || m.tensor.dtype() != DType::kInt64 || m.tensor.numel() != 1) {
      return ctx.invalid("trip count M must be an int64 tensor of one element, got " +
                         m.describe());
    }
    trip = m.tensor.data<int64_t>()[0];
  }
  bool cond = true;
  if (has_cond) {
    KILN_ASSIGN_OR_RETURN(cond, read_condition(ctx, ctx.input(1), "the initial condition"));
  }
  if (!has_m && !has_cond) {
    return ctx.unsupported("has neither a trip count nor a condition: the loop would never end");
  }
  const int64_t max_iterations = ctx.max_loop_iterations();
  if (has_m && !has_cond && trip > max_iterations) {
    return ctx.out_of_range("trip count M = " + std::to_string(trip) + " is over the limit of " +
                            std::to_string(max_iterations) +
                            " iterations and no condition input could end the loop sooner");
  }
  std::vector<Datum> carried;
  for (int i = 0; i < n_carried; ++i) {
    const Datum& d = ctx.input(i + 2);
    if (d.kind == Datum::Kind::kAbsent) {
      return ctx.invalid("loop-carried input " + std::to_string(i) + " is missing");
    }
    carried.push_back(d);
  }
  std::vector<ScanCollector> scans(static_cast<size_t>(n_scan));
  int64_t it = 0;
  for (; (!has_m || it < trip) && cond; ++it) {
    if (it >= max_iterations) {
      return ctx.out_of_range("stopped after " + std::to_string(max_iterations) +
                              " iterations (the executor's iteration limit)");
    }
    std::vector<Datum> in;
    in.reserve(static_cast<size_t>(n_carried + 2));
    in.push_back(Datum::of(Tensor::scalar<int64_t>(it)));
    in.push_back(Datum::of(Tensor::scalar<bool>(cond)));
    for (Datum& d : carried) in.push_back(std::move(d));
    KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, ctx.run_subgraph(*body, std::move(in)));
    // Without a condition input the body's condition output is ignored (the spec's "for" form).
    if (has_cond) {
      KILN_ASSIGN_OR_RETURN(cond, read_condition(ctx, outs[0], "the body's condition output"));
    }
    for (int i = 0; i < n_carried; ++i)
      carried[static_cast<size_t>(i)] = std::move(outs[static_cast<size_t>(i + 1)]);
    for (int k = 0; k < n_scan; ++k) {
      KILN_RETURN_IF_ERROR(
          scans[static_cast<size_t>(k)].add(ctx, outs[static_cast<size_t>(1 + n_carried + k)], k));
      // Without a condition the loop runs all `trip` iterations: when the first one tells that
      // the scan output would not fit, stop now rather than after filling memory.
      if (it == 0 && has_m && !has_cond) {
        const uint64_t per = scans[static_cast<size_t>(k)].bytes();
        if (per > 0 && static_cast<uint64_t>(trip) > ctx.max_tensor_bytes() / per) {
          return ctx.out_of_range("scan output " + std::to_string(k) + " would need " +
                                  std::to_string(trip) + " x " + std::to_string(per) +
                                  " bytes, over the limit of " +
                                  std::to_string(ctx.max_tensor_bytes()));
        }
      }
    }
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    if (i < n_carried) {
      ctx.set_output(i, std::move(carried[static_cast<size_t>(i)]));
      continue;
    }
    if (!ctx.wants_output(i)) continue;
    const int k = i - n_carried;
    std::vector<Tensor>& parts = scans[static_cast<size_t>(k)].parts();
    if (parts.empty()) {
      KILN_ASSIGN_OR_RETURN(
          Tensor e,
          empty_scan_output(ctx, body->outputs[static_cast<size_t>(1 + n_carried + k)], i, 0));
      ctx.set_output(i, std::move(e));
    } else {
      KILN_ASSIGN_OR_RETURN(Tensor y, stack_axis(parts, 0, ctx.max_tensor_bytes(), "scan output"));
      ctx.set_output(i, std::move(y));
    }
  }
  return Status::Ok();
}

// Axis attribute `name` of Scan (one per scan input/output, default 0), normalized against
// `ranks`.
StatusOr<std::vector<int>> scan_axes(KernelContext& ctx, const char* name,
                                     const std::vector<int>& ranks) {
  std::vector<int64_t> a = ctx.attr_ints(name);
  if (a.empty()) a.assign(ranks.size(), 0);
  if (a.size() != ranks.size()) {
    return ctx.invalid(std::string(name) + " has " + std::to_string(a.size()) +
                       " entries, expected " + std::to_string(ranks.size()));
  }
  std::vector<int> out;
  for (size_t i = 0; i < a.size(); ++i) {
    int64_t v = a[i] < 0 ? a[i] + ranks[i] : a[i];
    if (v < 0 || v >= ranks[i]) {
      return ctx.invalid(std::string(name) + "[" + std::to_string(i) +
                         "] = " + std::to_string(a[i]) + " is out of range for rank " +
                         std::to_string(ranks[i]));
    }
    out.push_back(static_cast<int>(v));
  }
  return out;
}

StatusOr<std::vector<int64_t>> scan_directions(KernelContext& ctx, const char* name, size_t n) {
  std::vector<int64_t> d = ctx.attr_ints(name);
  if (d.empty()) d.assign(n, 0);
  if (d.size() != n) {
    return ctx.invalid(std::string(name) + " has " + std::to_string(d.size()) +
                       " entries, expected " + std::to_string(n));
  }
  for (int64_t v : d) {
    if (v != 0 && v != 1) return ctx.invalid(std::string(name) + " entries must be 0 or 1");
  }
  return d;
}

// Scan-9 and later: no batch axis; scan axes and directions per input and output.
Status scan9_kernel(KernelContext& ctx, const ir::Graph& body, int n_state, int n_scan_in) {
  const int body_outs = static_cast<int>(body.outputs.size());
  const int n_scan_out = body_outs - n_state;
  std::vector<int> in_ranks;
  for (int j = 0; j < n_scan_in; ++j) {
    const Datum& d = ctx.input(n_state + j);
    if (!d.is_tensor() || d.tensor.rank() < 1) {
      return ctx.invalid("scan input " + std::to_string(j) +
                         " must be a tensor of rank >= 1, got " + d.describe());
    }
    KILN_RETURN_IF_ERROR(check_sliceable(ctx, d.tensor.dtype()));
    in_ranks.push_back(d.tensor.rank());
  }
  KILN_ASSIGN_OR_RETURN(std::vector<int> in_axes, scan_axes(ctx, "scan_input_axes", in_ranks));
  KILN_ASSIGN_OR_RETURN(
      std::vector<int64_t> in_dirs,
      scan_directions(ctx, "scan_input_directions", static_cast<size_t>(n_scan_in)));
  KILN_ASSIGN_OR_RETURN(
      std::vector<int64_t> out_dirs,
      scan_directions(ctx, "scan_output_directions", static_cast<size_t>(n_scan_out)));
  std::vector<int64_t> out_axes_raw = ctx.attr_ints("scan_output_axes");
  if (!out_axes_raw.empty() && static_cast<int>(out_axes_raw.size()) != n_scan_out) {
    return ctx.invalid("scan_output_axes has " + std::to_string(out_axes_raw.size()) +
                       " entries, expected " + std::to_string(n_scan_out));
  }
  int64_t seq = -1;
  for (int j = 0; j < n_scan_in; ++j) {
    const int64_t len = ctx.input(n_state + j).tensor.dim(in_axes[static_cast<size_t>(j)]);
    if (seq >= 0 && len != seq) {
      return ctx.invalid("scan inputs have different sequence lengths (" + std::to_string(seq) +
                         " and " + std::to_string(len) + ")");
    }
    seq = len;
  }
  std::vector<Datum> state;
  for (int i = 0; i < n_state; ++i) state.push_back(ctx.input(i));
  std::vector<ScanCollector> scans(static_cast<size_t>(n_scan_out));
  for (int64_t t = 0; t < seq; ++t) {
    std::vector<Datum> in;
    for (Datum& d : state) in.push_back(std::move(d));
    for (int j = 0; j < n_scan_in; ++j) {
      const int64_t idx = in_dirs[static_cast<size_t>(j)] ? seq - 1 - t : t;
      KILN_ASSIGN_OR_RETURN(
          Tensor s, take_axis(ctx.input(n_state + j).tensor, in_axes[static_cast<size_t>(j)], idx,
                              ctx.max_tensor_bytes()));
      in.push_back(Datum::of(std::move(s)));
    }
    KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, ctx.run_subgraph(body, std::move(in)));
    state.assign(outs.begin(), outs.begin() + n_state);
    for (int k = 0; k < n_scan_out; ++k) {
      KILN_RETURN_IF_ERROR(
          scans[static_cast<size_t>(k)].add(ctx, outs[static_cast<size_t>(n_state + k)], k));
    }
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    if (i < n_state) {
      ctx.set_output(i, std::move(state[static_cast<size_t>(i)]));
      continue;
    }
    if (!ctx.wants_output(i)) continue;
    const int k = i - n_state;
    std::vector<Tensor>& parts = scans[static_cast<size_t>(k)].parts();
    const int64_t raw_axis = out_axes_raw.empty() ? 0 : out_axes_raw[static_cast<size_t>(k)];
    if (parts.empty()) {
      KILN_ASSIGN_OR_RETURN(Tensor e,
                            empty_scan_output(ctx, body.outputs[static_cast<size_t>(i)], i,
                                              static_cast<int>(std::max<int64_t>(raw_axis, 0))));
      ctx.set_output(i, std::move(e));
      continue;
    }
    const int r = parts[0].rank() + 1;
    const int64_t axis = raw_axis < 0 ? raw_axis + r : raw_axis;
    if (axis < 0 || axis >= r) {
      return ctx.invalid("scan_output_axes[" + std::to_string(k) +
                         "] = " + std::to_string(raw_axis) + " is out of range for rank " +
                         std::to_string(r));
    }
    if (out_dirs[static_cast<size_t>(k)]) std::reverse(parts.begin(), parts.end());
    KILN_ASSIGN_OR_RETURN(
        Tensor y, stack_axis(parts, static_cast<int>(axis), ctx.max_tensor_bytes(), "scan output"));
    ctx.set_output(i, std::move(y));
  }
  return Status::Ok();
}

// Scan-8: inputs carry a batch axis (0) and scan inputs a sequence axis (1); sequence_lens
// gives each batch entry's length. Scan outputs past an entry's length are zero.
Status scan8_kernel(KernelContext& ctx, const ir::Graph& body, int n_state, int n_scan_in) {
  const int first = 1;
  const int n_scan_out = static_cast<int>(body.outputs.size()) - n_state;
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dirs,
                        scan_directions(ctx, "directions", static_cast<size_t>(n_scan_in)));
  int64_t batch = -1, max_seq = -1;
  for (int j = 0; j < n_state + n_scan_in; ++j) {
    const Datum& d = ctx.input(first + j);
    const bool is_scan = j >= n_state;
    if (!d.is_tensor() || d.tensor.rank() < (is_scan ? 2 : 1)) {
      return ctx.invalid(
          std::string(is_scan ? "scan input" : "state input") + " " +
          std::to_string(is_scan ? j - n_state : j) + " must be a tensor of rank >= " +
          (is_scan ? "2 [batch, sequence, ...]" : "1 [batch, ...]") + ", got " + d.describe());
    }
    KILN_RETURN_IF_ERROR(check_sliceable(ctx, d.tensor.dtype()));
    if (batch >= 0 && d.tensor.dim(0) != batch) {
      return ctx.invalid("inputs disagree on the batch size");
    }
    batch = d.tensor.dim(0);
    if (is_scan) {
      if (max_seq >= 0 && d.tensor.dim(1) != max_seq) {
        return ctx.invalid("scan inputs have different sequence lengths");
      }
      max_seq = d.tensor.dim(1);
    }
  }
  std::vector<int64_t> lens(static_cast<size_t>(batch), max_seq);
  if (ctx.has_input(0)) {
    const Datum& sl = ctx.input(0);
    if (!sl.is_tensor() || !is_integer(sl.tensor.dtype()) || sl.tensor.numel() != batch) {
      return ctx.invalid("sequence_lens must be an integer tensor of " + std::to_string(batch) +
                         " entries, got " + sl.describe());
    }
    for (int64_t b = 0; b < batch; ++b) {
      lens[static_cast<size_t>(b)] = sl.tensor.get_int64(b);
      if (lens[static_cast<size_t>(b)] < 0 || lens[static_cast<size_t>(b)] > max_seq) {
        return ctx.out_of_range("sequence_lens[" + std::to_string(b) +
                                "] = " + std::to_string(lens[static_cast<size_t>(b)]) +
                                " is outside [0, " + std::to_string(max_seq) + "]");
      }
    }
  }
  std::vector<std::vector<Tensor>> final_states(static_cast<size_t>(n_state));
  // scan_parts[k][b][t]
  std::vector<std::vector<std::vector<Tensor>>> scan_parts(
      static_cast<size_t>(n_scan_out),
      std::vector<std::vector<Tensor>>(static_cast<size_t>(batch)));
  std::vector<Tensor> protos(static_cast<size_t>(n_scan_out));
  uint64_t bytes = 0;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Datum> state;
    for (int i = 0; i < n_state; ++i) {
      KILN_ASSIGN_OR_RETURN(Tensor s,
                            take_axis(ctx.input(first + i).tensor, 0, b, ctx.max_tensor_bytes()));
      state.push_back(Datum::of(std::move(s)));
    }
    std::vector<Tensor> seqs;
    for (int j = 0; j < n_scan_in; ++j) {
      KILN_ASSIGN_OR_RETURN(
          Tensor s, take_axis(ctx.input(first + n_state + j).tensor, 0, b, ctx.max_tensor_bytes()));
      seqs.push_back(std::move(s));
    }
    const int64_t len = lens[static_cast<size_t>(b)];
    for (int64_t t = 0; t < len; ++t) {
      std::vector<Datum> in;
      for (Datum& d : state) in.push_back(std::move(d));
      for (int j = 0; j < n_scan_in; ++j) {
        const int64_t idx = dirs[static_cast<size_t>(j)] ? len - 1 - t : t;
        KILN_ASSIGN_OR_RETURN(
            Tensor s, take_axis(seqs[static_cast<size_t>(j)], 0, idx, ctx.max_tensor_bytes()));
        in.push_back(Datum::of(std::move(s)));
      }
      KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs, ctx.run_subgraph(body, std::move(in)));
      state.assign(outs.begin(), outs.begin() + n_state);
      for (int k = 0; k < n_scan_out; ++k) {
        const Datum& d = outs[static_cast<size_t>(n_state + k)];
        if (!d.is_tensor()) return ctx.invalid("scan outputs of the body must be tensors");
        Tensor& p = protos[static_cast<size_t>(k)];
        if (p.defined() && (p.dtype() != d.tensor.dtype() || p.shape() != d.tensor.shape())) {
          return ctx.invalid("scan output " + std::to_string(k) +
                             " changes type across iterations: " + p.type_string() + " and " +
                             d.tensor.type_string());
        }
        KILN_RETURN_IF_ERROR(check_sliceable(ctx, d.tensor.dtype()));
        bytes += d.tensor.dtype() == DType::kString ? d.tensor.numel() * sizeof(std::string)
                                                    : d.tensor.nbytes();
        if (bytes > ctx.max_tensor_bytes()) return ctx.out_of_range("scan outputs grow too large");
        if (!p.defined()) p = d.tensor;
        scan_parts[static_cast<size_t>(k)][static_cast<size_t>(b)].push_back(d.tensor);
      }
    }
    for (int i = 0; i < n_state; ++i) {
      if (!state[static_cast<size_t>(i)].is_tensor())
        return ctx.invalid("state outputs must be tensors");
      final_states[static_cast<size_t>(i)].push_back(state[static_cast<size_t>(i)].tensor);
    }
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    if (i < n_state) {
      if (batch == 0) {
        ctx.set_output(i, ctx.input(first + i));
        continue;
      }
      KILN_ASSIGN_OR_RETURN(Tensor y, stack_axis(final_states[static_cast<size_t>(i)], 0,
                                                 ctx.max_tensor_bytes(), "state output"));
      ctx.set_output(i, std::move(y));
      continue;
    }
    if (!ctx.wants_output(i)) continue;
    const int k = i - n_state;
    const Tensor& p = protos[static_cast<size_t>(k)];
    if (!p.defined()) {
      // No iteration ran (every length is 0): zeros of the body's declared element shape.
      const ir::Value* bo = body.outputs[static_cast<size_t>(i)];
      if (!bo || !bo->type.is_tensor() || bo->type.dtype == DType::kUndefined ||
          !bo->type.shape.fully_known()) {
        return ctx.unsupported("every sequence is empty and the type of scan output " +
                               std::to_string(k) + " is not fully declared");
      }
      std::vector<int64_t> s = {batch, max_seq};
      for (const ir::Dim& d : bo->type.shape.dims) s.push_back(d.value);
      KILN_ASSIGN_OR_RETURN(Tensor z, Tensor::create(bo->type.dtype, s, ctx.max_tensor_bytes()));
      ctx.set_output(i, std::move(z));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor zero,
                          Tensor::create(p.dtype(), p.shape(), ctx.max_tensor_bytes()));
    std::vector<Tensor> per_batch;
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Tensor>& parts = scan_parts[static_cast<size_t>(k)][static_cast<size_t>(b)];
      while (static_cast<int64_t>(parts.size()) < max_seq) parts.push_back(zero);
      KILN_ASSIGN_OR_RETURN(Tensor y, stack_axis(parts, 0, ctx.max_tensor_bytes(), "scan output"));
      per_batch.push_back(std::move(y));
    }
    KILN_ASSIGN_OR_RETURN(Tensor y,
                          stack_axis(per_batch, 0, ctx.max_tensor_bytes(), "scan output"));
    ctx.set_output(i, std::move(y));
  }
  return Status::Ok();
}

Status scan_kernel(KernelContext& ctx) {
  const ir::Graph* body = ctx.attr_graph("body");
  if (body == nullptr) return ctx.invalid("needs graph attribute 'body'");
  const bool v8 = ctx.opset() > 0 && ctx.opset() < 9;
  const int first = v8 ? 1 : 0;
  const int nin = ctx.num_inputs() - first;
  const int64_t m = ctx.attr_int("num_scan_inputs", -1);
  if (m < 1 || m > nin) {
    return ctx.invalid("num_scan_inputs must be in [1, " + std::to_string(nin) + "], got " +
                       std::to_string(m));
  }
  const int n_state = nin - static_cast<int>(m);
  if (static_cast<int>(body->inputs.size()) != nin ||
      static_cast<int>(body->outputs.size()) < n_state ||
      ctx.num_outputs() > static_cast<int>(body->outputs.size())) {
    return ctx.invalid("body has " + std::to_string(body->inputs.size()) + " inputs and " +
                       std::to_string(body->outputs.size()) + " outputs, which does not fit " +
                       std::to_string(n_state) + " state and " + std::to_string(m) +
                       " scan inputs");
  }
  for (int i = 0; i < nin; ++i) {
    if (!ctx.has_input(first + i))
      return ctx.invalid("input " + std::to_string(first + i) + " is missing");
  }
  return v8 ? scan8_kernel(ctx, *body, n_state, static_cast<int>(m))
            : scan9_kernel(ctx, *body, n_state, static_cast<int>(m));
}

}  // namespace

void register_control_kernels(KernelRegistry& r) {
  r.add("", "If", if_kernel);
  r.add("", "Loop", loop_kernel);
  r.add("", "Scan", scan_kernel);
  register_sequence_kernels(r);
}

}  // namespace kiln::cpu
