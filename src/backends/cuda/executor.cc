#include "backends/cuda/executor.h"

#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>

#include "backend/memory_planner.h"
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/tuner.h"

namespace kiln::cuda {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

// CUDA-graph capture and the calls that may not overlap it. While one stream captures, a
// cudaMalloc/cudaFree, a library handle's creation or a first kernel launch on another thread
// can invalidate the capture (the driver synchronizes the device for them). Kiln's own contexts
// therefore run under a shared lock and capture under an exclusive one: a capture (once per
// context and input shape, a few milliseconds) briefly pauses the engine's other contexts.
}  // namespace

void collect_outer_names(const ir::Node& n, std::vector<std::string>* names) {
  for (const ir::Attribute& a : n.attrs) {
    if (a.g) a.g->collect_outer_scope_names(names);
    for (const auto& sg : a.graphs)
      if (sg) sg->collect_outer_scope_names(names);
  }
}

std::shared_mutex& device_api_mutex() {
  static auto* m = new std::shared_mutex();
  return *m;
}

// ---------------------------------------------------------------------------------------------
// Executor

namespace {

struct Block;

struct Slot {
  Datum host;
  bool has_host = false;
  DeviceTensor dev;
  std::shared_ptr<Block> block;  // null for weights and caller-owned device inputs
  bool has_dev = false;
};

struct DScope {
  DScope* parent = nullptr;
  std::unordered_map<std::string, Slot> values;
  Slot* find(const std::string& name) {
    for (DScope* s = this; s != nullptr; s = s->parent) {
      auto it = s->values.find(name);
      if (it != s->values.end()) return &it->second;
    }
    return nullptr;
  }
};

struct ArenaPlan {
  std::vector<uint64_t> offsets;
  std::vector<uint64_t> sizes;
  uint64_t peak = 0;
  bool capturable = false;
  int failed_captures = 0;
};

struct GraphEntry {
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> pinned;         // host data the graph copies to the device (shape-derived)
  std::vector<DeviceTensor> inputs;  // staged input addresses, in main-graph input order
  std::vector<RunOutput> outputs;
};

void destroy_graph(GraphEntry& g) {
  if (g.exec) cudaGraphExecDestroy(g.exec);
  g.exec = nullptr;
  for (void* p : g.pinned) cudaFreeHost(p);
  g.pinned.clear();
}

// A refusal inside graph capture: the run falls back to normal execution.
constexpr const char* kNotCapturable = "not capturable: ";

}  // namespace

struct Executor::Impl : public KernelServices {
  std::shared_ptr<const Program> program;
  cudaStream_t own_stream = nullptr;
  cudaStream_t cur = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  void* workspace_ptr = nullptr;
  uint64_t workspace_size = 0;

  // Arena.
  void* arena = nullptr;
  uint64_t arena_capacity = 0;
  std::map<std::string, ArenaPlan> plans;
  const ArenaPlan* plan = nullptr;
  std::vector<backend::BufferUse> records;
  int seq = 0;
  int step = 0;
  bool irregular = false;
  bool capturing = false;
  std::string capture_refusal;
  std::vector<void*> capture_pinned;  // pinned copies of host data made during a capture

  bool use_graphs = false;
  bool profiling = false;
  StepTuner* tuner = nullptr;
  int opt_profile = 0;  // optimization profile of the current run's shapes (selects tactics)
  std::map<std::string, GraphEntry> graphs;
  std::vector<RunOutput> outputs;
  std::vector<std::shared_ptr<Block>> kept;
  RunStats stats;
  std::vector<StepTime> profile;
  // Profiling: a pinned flag that holds the stream while a layer is enqueued, and the events
  // around the layer (see run_step).
  int* hold_flag = nullptr;
  long long hold_cycles = 0;
  cudaEvent_t prof_ev[2] = {nullptr, nullptr};
  Status ensure_profiling_resources();

  // The node running now (for KernelServices).
  const ir::Node* node = nullptr;
  std::vector<Slot>* out_slots = nullptr;
  std::vector<Slot*>* in_slots = nullptr;

  ~Impl() override;
  StatusOr<std::shared_ptr<Block>> allocate(uint64_t bytes, const std::string& what);
  void released(Block* b);

  // KernelServices
  StatusOr<DeviceTensor*> allocate_output(int i, DType dtype, std::vector<int64_t> shape) override;
  Status alias_output(int i, int j, std::vector<int64_t> shape) override;
  StatusOr<void*> workspace(uint64_t bytes) override;
  uint64_t workspace_limit() const override { return program->options().workspace_bytes; }
  cudaStream_t stream() const override { return cur; }
  cublasLtHandle_t cublaslt() override { return lt; }
  cudnnHandle_t cudnn() override {
    cudnnSetStream(dnn, cur);
    return dnn;
  }

  Status sync(const char* why);
  Status to_host(Slot& s, const std::string& name);
  Status to_device(Slot& s, const std::string& name);
  StatusOr<std::vector<Slot>> run_graph(const ir::Graph& g, std::vector<Slot> inputs,
                                        DScope* parent);
  Status run_step(const Program::Step& st, DScope& scope);
  Status run_gpu_step(const Program::Step& st, DScope& scope);
  // Runs the step's CUDA kernel once with `tactic` into `outs` (one slot per node output).
  Status run_kernel(const Program::Step& st, const std::vector<const DeviceTensor*>& dev_in,
                    const std::vector<const Tensor*>& host_in, std::vector<Slot*>& slots,
                    int64_t tactic, std::vector<int64_t>* candidates, std::vector<Slot>* outs);
  Status run_cpu_step(const Program::Step& st, DScope& scope);
  Status run_metadata_step(const Program::Step& st, DScope& scope);
  Status run_if(const Program::Step& st, DScope& scope);
  Status run_loop(const Program::Step& st, DScope& scope);
  Status run_scan(const Program::Step& st, DScope& scope);
  StatusOr<Slot*> input_slot(const ir::Node& n, int i, DScope& scope, Slot* tmp);
  Status run_once(const std::vector<RunInput>& inputs, const std::string& sig, bool capture);
  Status replay(GraphEntry& e, const std::vector<RunInput>& inputs);
  int cpu_steps_run = 0;
  int step_copies_to_device = 0;
  Status ensure_arena(uint64_t bytes);
};

namespace {

struct Block {
  Executor::Impl* owner = nullptr;
  void* ptr = nullptr;
  uint64_t bytes = 0;
  int seq = -1;
  bool dynamic = false;
  cudaStream_t stream = nullptr;
  ~Block() {
    if (owner) owner->released(this);
  }
};

}  // namespace

Executor::Impl::~Impl() {
  std::shared_lock<std::shared_mutex> lock(device_api_mutex());
  outputs.clear();
  kept.clear();
  for (auto& [sig, g] : graphs) destroy_graph(g);
  if (own_stream) cudaStreamSynchronize(own_stream);
  for (cudaEvent_t e : prof_ev)
    if (e) cudaEventDestroy(e);
  if (hold_flag) cudaFreeHost(hold_flag);
  if (arena) cudaFree(arena);
  if (workspace_ptr) cudaFree(workspace_ptr);
  if (lt) cublasLtDestroy(lt);
  if (dnn) {
    release_conv_graph_plans(dnn);  // cached plans belong to the handle
    cudnnDestroy(dnn);
  }
  if (own_stream) cudaStreamDestroy(own_stream);
}

StatusOr<std::shared_ptr<Block>> Executor::Impl::allocate(uint64_t bytes, const std::string& what) {
  auto b = std::make_shared<Block>();
  b->bytes = bytes;
  b->seq = seq++;
  if (plan != nullptr && b->seq < static_cast<int>(plan->sizes.size()) &&
      bytes <= plan->sizes[static_cast<size_t>(b->seq)] && arena != nullptr) {
    b->ptr = static_cast<char*>(arena) + plan->offsets[static_cast<size_t>(b->seq)];
  } else {
    if (capturing) return Status(StatusCode::kInternal, std::string(kNotCapturable) + what);
    irregular = true;
    stats.dynamic_allocations++;
    void* p = nullptr;
    cudaError_t e = cudaMallocAsync(&p, std::max<uint64_t>(bytes, 1), cur);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Status(StatusCode::kOutOfMemory,
                    "out of GPU memory allocating " + std::to_string(bytes) + " bytes for " + what);
    }
    b->ptr = p;
    b->dynamic = true;
    b->stream = cur;
  }
  records.push_back({bytes, step, -1});
  b->owner = this;
  return b;
}

void Executor::Impl::released(Block* b) {
  if (b->seq >= 0 && b->seq < static_cast<int>(records.size())) {
    records[static_cast<size_t>(b->seq)].last =
        std::max(step, records[static_cast<size_t>(b->seq)].first);
  }
  if (b->dynamic) cudaFreeAsync(b->ptr, b->stream);
}

Status Executor::Impl::ensure_arena(uint64_t bytes) {
  if (bytes <= arena_capacity) return Status::Ok();
  if (arena) {
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(cur));
    cudaFree(arena);
    arena = nullptr;
    arena_capacity = 0;
    for (auto& [sig, g] : graphs) destroy_graph(g);
    graphs.clear();
  }
  cudaError_t e = cudaMalloc(&arena, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    arena = nullptr;
    return Status(StatusCode::kOutOfMemory, "out of GPU memory for the activation arena (" +
                                                std::to_string(bytes) + " bytes)");
  }
  arena_capacity = bytes;
  return Status::Ok();
}

StatusOr<void*> Executor::Impl::workspace(uint64_t bytes) {
  if (bytes > program->options().workspace_bytes) {
    return Status(StatusCode::kOutOfMemory, "a kernel asked for " + std::to_string(bytes) +
                                                " bytes of workspace, over the " + "limit of " +
                                                std::to_string(program->options().workspace_bytes) +
                                                " (raise it with --workspace)");
  }
  if (bytes <= workspace_size) return workspace_ptr;
  if (capturing)
    return Status(StatusCode::kInternal, std::string(kNotCapturable) + "workspace growth");
  if (workspace_ptr) cudaFreeAsync(workspace_ptr, cur);
  workspace_ptr = nullptr;
  // Captured graphs read the old workspace: they are stale now.
  for (auto& [sig, g] : graphs) destroy_graph(g);
  graphs.clear();
  workspace_size = 0;
  uint64_t size = align_up(bytes, 1 << 20);
  size = std::min(size, program->options().workspace_bytes);
  cudaError_t e = cudaMallocAsync(&workspace_ptr, size, cur);
  if (e != cudaSuccess) {
    cudaGetLastError();
    workspace_ptr = nullptr;
    return Status(StatusCode::kOutOfMemory,
                  "out of GPU memory for " + std::to_string(bytes) + " bytes of kernel workspace");
  }
  workspace_size = size;
  return workspace_ptr;
}

StatusOr<DeviceTensor*> Executor::Impl::allocate_output(int i, DType dtype,
                                                        std::vector<int64_t> shape) {
  if (i < 0 || i >= static_cast<int>(out_slots->size())) {
    return node->error(StatusCode::kInternal,
                       "output index " + std::to_string(i) + " out of range");
  }
  StatusOr<int64_t> n = checked_numel(shape, node->label() + " output " + std::to_string(i));
  if (!n.ok()) return n.take_status();
  uint64_t bytes = dtype_storage_bytes(dtype, static_cast<uint64_t>(*n));
  if (bytes > program->options().max_tensor_bytes) {
    return node->error(StatusCode::kOutOfRange,
                       "output " + std::to_string(i) + " would take " + std::to_string(bytes) +
                           " bytes, over the limit of " +
                           std::to_string(program->options().max_tensor_bytes));
  }
  std::string what = node->label() + " output " + std::to_string(i);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Block> b, allocate(bytes, what));
  Slot& s = (*out_slots)[static_cast<size_t>(i)];
  s.block = std::move(b);
  s.dev.data = s.block->ptr;
  s.dev.dtype = dtype;
  s.dev.shape = std::move(shape);
  s.has_dev = true;
  return &s.dev;
}

Status Executor::Impl::alias_output(int i, int j, std::vector<int64_t> shape) {
  if (i < 0 || i >= static_cast<int>(out_slots->size()) || j < 0 ||
      j >= static_cast<int>(in_slots->size()) || (*in_slots)[static_cast<size_t>(j)] == nullptr ||
      !(*in_slots)[static_cast<size_t>(j)]->has_dev) {
    return node->error(StatusCode::kInternal, "bad alias of output " + std::to_string(i) +
                                                  " to input " + std::to_string(j));
  }
  const Slot& in = *(*in_slots)[static_cast<size_t>(j)];
  StatusOr<int64_t> n = checked_numel(shape, node->label() + " output " + std::to_string(i));
  if (!n.ok()) return n.take_status();
  if (dtype_storage_bytes(in.dev.dtype, static_cast<uint64_t>(*n)) != in.dev.nbytes()) {
    return node->error(StatusCode::kInvalidModel,
                       "output shape " + shape_to_string(shape) + " does not hold the " +
                           std::to_string(in.dev.numel()) + " elements of the input");
  }
  Slot& s = (*out_slots)[static_cast<size_t>(i)];
  s.dev = in.dev;
  s.dev.shape = std::move(shape);
  s.block = in.block;
  s.has_dev = true;
  return Status::Ok();
}

Status Executor::Impl::sync(const char* why) {
  if (capturing) return Status(StatusCode::kInternal, std::string(kNotCapturable) + why);
  stats.host_syncs++;
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(cur));
  return Status::Ok();
}

Status Executor::Impl::to_host(Slot& s, const std::string& name) {
  if (s.has_host) return Status::Ok();
  if (!s.has_dev) return internal_error("value '" + name + "' has no data");
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::create(s.dev.dtype, s.dev.shape));
  if (t.nbytes() > 0) {
    if (capturing)
      return Status(StatusCode::kInternal, std::string(kNotCapturable) + "copy to host");
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(t.mutable_raw(), s.dev.data, t.nbytes(), cudaMemcpyDeviceToHost, cur));
    KILN_RETURN_IF_ERROR(sync("copy to host"));
    stats.copies_to_host++;
  }
  s.host = Datum::of(std::move(t));
  s.has_host = true;
  return Status::Ok();
}

Status Executor::Impl::to_device(Slot& s, const std::string& name) {
  if (s.has_dev) return Status::Ok();
  if (!s.has_host || !s.host.is_tensor()) {
    return internal_error("value '" + name + "' is not a tensor on the host");
  }
  const Tensor& t = s.host.tensor;
  if (t.dtype() == DType::kString) {
    return invalid_argument("value '" + name + "' is a string tensor: it cannot go to the GPU");
  }
  KILN_ASSIGN_OR_RETURN(s.block, allocate(t.nbytes(), "value '" + name + "'"));
  s.dev.data = s.block->ptr;
  s.dev.dtype = t.dtype();
  s.dev.shape = t.shape();
  if (t.nbytes() > 0) {
    const void* src = t.raw();
    if (capturing) {
      // The graph replays this copy: give it pinned memory that lives as long as the graph.
      // Host values reach here only from shapes and constants, so the bytes are the same at
      // every replay of this input shape.
      void* pinned = nullptr;
      KILN_CUDA_RETURN_IF_ERROR(cudaHostAlloc(&pinned, t.nbytes(), cudaHostAllocDefault));
      std::memcpy(pinned, src, t.nbytes());
      capture_pinned.push_back(pinned);
      src = pinned;
    }
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(s.dev.data, src, t.nbytes(), cudaMemcpyHostToDevice, cur));
    stats.copies_to_device++;
    step_copies_to_device++;
  }
  s.has_dev = true;
  return Status::Ok();
}

StatusOr<std::vector<Slot>> Executor::Impl::run_graph(const ir::Graph& g, std::vector<Slot> inputs,
                                                      DScope* parent) {
  const Program::GraphPlan* gp = program->plan(&g);
  if (gp == nullptr) return internal_error("graph '" + g.name + "' was not prepared");
  if (inputs.size() != g.inputs.size()) {
    return invalid_model("graph '" + g.name + "' takes " + std::to_string(g.inputs.size()) +
                         " inputs, was given " + std::to_string(inputs.size()));
  }
  DScope scope;
  scope.parent = parent;
  for (size_t i = 0; i < inputs.size(); ++i) scope.values[g.inputs[i]->name] = std::move(inputs[i]);
  for (const Program::Step& st : gp->steps) {
    KILN_RETURN_IF_ERROR(run_step(st, scope));
    for (const std::string& name : st.release_after) scope.values.erase(name);
    ++step;
  }
  std::vector<Slot> outs;
  outs.reserve(g.outputs.size());
  for (const ir::Value* v : g.outputs) {
    Slot* s = scope.find(v->name);
    if (s != nullptr) {
      outs.push_back(*s);
    } else if (v->constant) {
      Slot c;
      c.host = Datum::of(*v->constant);
      c.has_host = true;
      outs.push_back(std::move(c));
    } else {
      return invalid_model("graph output '" + v->name + "' was never computed");
    }
  }
  return outs;
}

Status Executor::Impl::ensure_profiling_resources() {
  if (hold_flag != nullptr) return Status::Ok();
  for (cudaEvent_t& e : prof_ev) KILN_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
  int device = 0, khz = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device));
  hold_cycles = static_cast<long long>(std::max(khz, 1000000)) * 200;  // 200 ms at most
  KILN_CUDA_RETURN_IF_ERROR(
      cudaHostAlloc(reinterpret_cast<void**>(&hold_flag), sizeof(int), cudaHostAllocMapped));
  return Status::Ok();
}

// Profiling times each step alone. A step that only enqueues GPU work is timed on the GPU: the
// stream is held by a waiting kernel while the host enqueues the step between two events, then
// released, so the events measure the step's kernels back to back and not the host's launch cost
// (which is reported apart as host_ms). Steps that run on the host, or wait for the stream
// themselves (If/Loop/Scan, data-dependent shapes), are timed by the host clock.
Status Executor::Impl::run_step(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  std::chrono::steady_clock::time_point t0;
  const bool hold = profiling && st.gpu != nullptr && !st.metadata_only && !st.gpu->synchronizes;
  int* hold_dev = nullptr;
  if (profiling) {
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(cur));
    if (hold) {
      KILN_RETURN_IF_ERROR(ensure_profiling_resources());
      __atomic_store_n(hold_flag, 0, __ATOMIC_SEQ_CST);
      KILN_CUDA_RETURN_IF_ERROR(
          cudaHostGetDevicePointer(reinterpret_cast<void**>(&hold_dev), hold_flag, 0));
      KILN_RETURN_IF_ERROR(launch_stream_hold(cur, hold_dev, hold_cycles));
      KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(prof_ev[0], cur));
    }
    t0 = std::chrono::steady_clock::now();
  }
  Status s;
  bool gpu = st.gpu != nullptr;
  if (st.metadata_only) {
    s = run_metadata_step(st, scope);
  } else if (st.gpu != nullptr) {
    s = run_gpu_step(st, scope);
  } else if (st.gpu_if) {
    gpu = true;
    s = run_if(st, scope);
  } else if (st.gpu_loop) {
    gpu = true;
    s = run_loop(st, scope);
  } else if (st.gpu_scan) {
    gpu = true;
    s = run_scan(st, scope);
  } else {
    s = run_cpu_step(st, scope);
  }
  if (profiling) {
    const cudaError_t rec = hold ? cudaEventRecord(prof_ev[1], cur) : cudaSuccess;
    const double host_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (hold) __atomic_store_n(hold_flag, 1, __ATOMIC_SEQ_CST);  // release the stream
    KILN_RETURN_IF_ERROR(s);
    if (rec != cudaSuccess) return cuda_error(rec, "cudaEventRecord");
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(cur));
    double ms = host_ms;
    if (hold) {
      float ev_ms = 0;
      KILN_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ev_ms, prof_ev[0], prof_ev[1]));
      ms = ev_ms;
    } else {
      ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    profile.push_back({&n, gpu, ms, host_ms, hold});
  }
  return s;
}

Status Executor::Impl::run_metadata_step(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  if (!n.has_input(0)) return n.error(StatusCode::kInvalidModel, "required input 0 is missing");
  const ir::Value* v = n.inputs[0];
  std::vector<int64_t> shape;
  Slot* in = scope.find(v->name);
  if (in != nullptr && in->has_dev) {
    shape = in->dev.shape;
  } else if (in != nullptr && in->has_host && in->host.is_tensor()) {
    shape = in->host.tensor.shape();
  } else if (in == nullptr && v->constant) {
    shape = v->constant->shape();
  } else {
    return n.error(StatusCode::kInvalidModel, "input '" + v->name + "' is not a computed tensor");
  }
  Datum d;
  StatusOr<int64_t> numel = checked_numel(shape, v->name);
  if (!numel.ok()) return numel.take_status();
  if (n.op_type == "Size") {
    d = Datum::of(Tensor::scalar<int64_t>(*numel));
  } else {
    int64_t rank = static_cast<int64_t>(shape.size());
    int64_t start = n.attr_int("start", 0), end = n.attr_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    std::vector<int64_t> dims(shape.begin() + start, shape.begin() + std::max(start, end));
    d = Datum::of(Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
  }
  if (n.has_output(0)) {
    Slot out;
    out.host = std::move(d);
    out.has_host = true;
    scope.values[n.outputs[0]->name] = std::move(out);
  }
  return Status::Ok();
}

namespace {

// The runs of one tunable step in tuning mode: each run of the kernel gets its own outputs.
class TuningRuns final : public TunableStep {
 public:
  TuningRuns(Executor::Impl* ex, const Program::Step& st,
             const std::vector<const DeviceTensor*>& dev_in,
             const std::vector<const Tensor*>& host_in, std::vector<Slot*>& slots)
      : ex_(ex), st_(st), dev_in_(dev_in), host_in_(host_in), slots_(slots) {}

  const ir::Node& node() const override { return *st_.node; }
  const std::vector<const DeviceTensor*>& inputs() const override { return dev_in_; }
  StatusOr<int> run(int64_t tactic, std::vector<int64_t>* candidates) override {
    std::vector<Slot> outs;
    KILN_RETURN_IF_ERROR(
        ex_->run_kernel(st_, dev_in_, host_in_, slots_, tactic, candidates, &outs));
    runs_.push_back(std::move(outs));
    return static_cast<int>(runs_.size()) - 1;
  }
  std::vector<const DeviceTensor*> outputs(int run) const override {
    std::vector<const DeviceTensor*> out;
    if (run < 0 || run >= static_cast<int>(runs_.size())) return out;
    for (const Slot& s : runs_[static_cast<size_t>(run)])
      out.push_back(s.has_dev ? &s.dev : nullptr);
    return out;
  }
  void drop(int run) override {
    if (run >= 0 && run < static_cast<int>(runs_.size()) && run != finished_) {
      runs_[static_cast<size_t>(run)].clear();
    }
  }
  void finish(int run) override { finished_ = run; }
  cudaStream_t stream() const override { return ex_->cur; }

  StatusOr<std::vector<Slot>> take_finished() {
    if (finished_ < 0 || finished_ >= static_cast<int>(runs_.size()) ||
        runs_[static_cast<size_t>(finished_)].size() != st_.node->outputs.size()) {
      return st_.node->error(StatusCode::kInternal, "tuning kept no run of the kernel");
    }
    return std::move(runs_[static_cast<size_t>(finished_)]);
  }

 private:
  Executor::Impl* ex_;
  const Program::Step& st_;
  const std::vector<const DeviceTensor*>& dev_in_;
  const std::vector<const Tensor*>& host_in_;
  std::vector<Slot*>& slots_;
  std::vector<std::vector<Slot>> runs_;
  int finished_ = -1;
};

}  // namespace

Status Executor::Impl::run_kernel(const Program::Step& st,
                                  const std::vector<const DeviceTensor*>& dev_in,
                                  const std::vector<const Tensor*>& host_in,
                                  std::vector<Slot*>& slots, int64_t tactic,
                                  std::vector<int64_t>* candidates, std::vector<Slot>* outs) {
  const ir::Node& n = *st.node;
  outs->assign(n.outputs.size(), Slot());
  node = &n;
  out_slots = outs;
  in_slots = &slots;
  KernelContext ctx(n, dev_in, host_in, this, tactic, program->options().allow_tf32);
  ctx.set_tactic_candidates(candidates);
  if (st.gpu->synchronizes && capturing) {
    return Status(StatusCode::kInternal, std::string(kNotCapturable) + "data-dependent output");
  }
  Status s;
  try {
    s = st.gpu->run(ctx);
  } catch (const std::bad_alloc&) {
    s = n.error(StatusCode::kOutOfMemory, "ran out of host memory");
  } catch (const std::exception& e) {
    s = n.error(StatusCode::kInternal, std::string("kernel threw: ") + e.what());
  }
  if (st.gpu->synchronizes) stats.host_syncs++;
  node = nullptr;
  out_slots = nullptr;
  in_slots = nullptr;
  if (s.ok() && !ctx.attr_status().ok()) s = ctx.attr_status();
  return s;
}

Status Executor::Impl::run_gpu_step(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  size_t ni = n.inputs.size();
  std::vector<const DeviceTensor*> dev_in(ni, nullptr);
  std::vector<const Tensor*> host_in(ni, nullptr);
  std::vector<Slot*> slots(ni, nullptr);
  std::vector<Slot> temps;
  temps.reserve(ni);
  for (size_t i = 0; i < ni; ++i) {
    const ir::Value* v = n.inputs[i];
    if (v == nullptr) continue;
    Slot* s = scope.find(v->name);
    bool host_wanted = st.gpu->is_host_input(static_cast<int>(i));
    if (s == nullptr && !v->constant) {
      if (const ir::Value* c = program->outer_constant(v)) v = c;
    }
    if (s == nullptr) {
      if (!v->constant) {
        return n.error(StatusCode::kInvalidModel,
                       "input '" + v->name + "' has not been computed before this node");
      }
      if (host_wanted) {
        host_in[i] = v->constant.get();
        continue;
      }
      const DeviceTensor* w = program->weight(v);
      if (w != nullptr) {
        temps.emplace_back();
        temps.back().dev = *w;
        temps.back().has_dev = true;
        slots[i] = &temps.back();
        dev_in[i] = &temps.back().dev;
        continue;
      }
      // A constant the program did not upload (e.g. from a subgraph's outer scope): copy it.
      temps.emplace_back();
      temps.back().host = Datum::of(*v->constant);
      temps.back().has_host = true;
      s = &temps.back();
    }
    if (host_wanted) {
      KILN_RETURN_IF_ERROR(to_host(*s, v->name));
      if (!s->host.is_tensor()) {
        return n.error(StatusCode::kInvalidModel, "input '" + v->name + "' is not a tensor");
      }
      host_in[i] = &s->host.tensor;
    } else {
      if (!s->has_dev && !(s->has_host && s->host.is_tensor())) {
        return n.error(StatusCode::kInvalidModel, "input '" + v->name + "' is not a tensor");
      }
      KILN_RETURN_IF_ERROR(to_device(*s, v->name));
      dev_in[i] = &s->dev;
    }
    slots[i] = s;
  }
  if (st.def != nullptr && !st.def->leading_inputs_optional) {
    for (int i = 0; i < st.def->min_inputs; ++i) {
      if (i >= static_cast<int>(ni) || (dev_in[static_cast<size_t>(i)] == nullptr &&
                                        host_in[static_cast<size_t>(i)] == nullptr)) {
        return n.error(StatusCode::kInvalidModel,
                       "required input " + std::to_string(i) + " is missing");
      }
    }
  }
  std::vector<Slot> outs;
  if (tuner != nullptr && st.gpu->tunable && !capturing) {
    TuningRuns runs(this, st, dev_in, host_in, slots);
    KILN_RETURN_IF_ERROR(tuner->tune(runs));
    KILN_ASSIGN_OR_RETURN(outs, runs.take_finished());
  } else {
    KILN_RETURN_IF_ERROR(
        run_kernel(st, dev_in, host_in, slots, st.tactic_for(opt_profile), nullptr, &outs));
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const ir::Value* v = n.outputs[i];
    if (v == nullptr) continue;
    if (!outs[i].has_dev) {
      return n.error(StatusCode::kInternal,
                     "CUDA kernel produced no value for output " + std::to_string(i));
    }
    scope.values[v->name] = std::move(outs[i]);
  }
  return Status::Ok();
}

Status Executor::Impl::run_cpu_step(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  if (st.cpu == nullptr) return n.error(StatusCode::kUnsupportedOp, "no CPU kernel");
  if (capturing && !st.host_math) {
    return Status(StatusCode::kInternal, std::string(kNotCapturable) + "CPU step");
  }
  if (!st.host_math) cpu_steps_run++;
  static const Datum kAbsent;
  std::vector<const Datum*> inputs(n.inputs.size(), &kAbsent);
  std::vector<Datum> consts;
  consts.reserve(n.inputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ir::Value* v = n.inputs[i];
    if (v == nullptr) continue;
    Slot* s = scope.find(v->name);
    if (s == nullptr && !v->constant) {
      if (const ir::Value* c = program->outer_constant(v)) v = c;
    }
    if (s == nullptr) {
      if (!v->constant) {
        return n.error(StatusCode::kInvalidModel,
                       "input '" + v->name + "' has not been computed before this node");
      }
      consts.push_back(Datum::of(*v->constant));
      inputs[i] = &consts.back();
      continue;
    }
    KILN_RETURN_IF_ERROR(to_host(*s, v->name));
    if (st.def->tensor_only && !s->host.is_tensor() && s->host.kind != Datum::Kind::kAbsent) {
      return n.error(StatusCode::kInvalidModel, "input " + std::to_string(i) + " ('" + v->name +
                                                    "') is " + datum_kind_phrase(s->host.kind) +
                                                    ", expected a tensor");
    }
    inputs[i] = &s->host;
  }
  if (!st.def->leading_inputs_optional) {
    for (int i = 0; i < st.def->min_inputs; ++i) {
      if (i >= static_cast<int>(inputs.size()) ||
          inputs[static_cast<size_t>(i)]->kind == Datum::Kind::kAbsent) {
        return n.error(StatusCode::kInvalidModel,
                       "required input " + std::to_string(i) + " is missing");
      }
    }
  }
  // Values the node's subgraphs read from enclosing scopes, on the host.
  cpu::Scope cscope;
  std::vector<std::string> outer;
  collect_outer_names(n, &outer);
  for (const std::string& name : outer) {
    if (cscope.values.count(name)) continue;
    Slot* s = scope.find(name);
    if (s == nullptr) {
      // A constant of an enclosing graph (the subgraphs resolve names through scopes only).
      for (const ir::Graph* g = st.graph; g != nullptr; g = g->parent) {
        const ir::Value* o = g->find_value(name);
        if (o == nullptr) continue;
        if (o->is_outer_scope) continue;
        if (o->constant) cscope.values[name] = Datum::of(*o->constant);
        break;
      }
      continue;
    }
    KILN_RETURN_IF_ERROR(to_host(*s, name));
    cscope.values[name] = s->host;
  }
  cpu::KernelContext ctx(n, std::move(inputs), const_cast<cpu::Executor*>(&program->cpu_executor()),
                         &cscope, program->options().max_tensor_bytes);
  Status s;
  try {
    s = st.cpu(ctx);
  } catch (const std::bad_alloc&) {
    s = n.error(StatusCode::kOutOfMemory, "ran out of host memory");
  } catch (const std::exception& e) {
    s = n.error(StatusCode::kInternal, std::string("kernel threw: ") + e.what());
  }
  if (s.ok() && !ctx.attr_status().ok()) s = ctx.attr_status();
  if (!s.ok()) return s;
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const ir::Value* v = n.outputs[i];
    if (v == nullptr) continue;
    Datum& d = ctx.outputs()[i];
    if (d.kind == Datum::Kind::kAbsent) {
      return n.error(StatusCode::kInternal,
                     "kernel produced no value for output " + std::to_string(i));
    }
    Slot out;
    out.host = std::move(d);
    out.has_host = true;
    scope.values[v->name] = std::move(out);
  }
  return Status::Ok();
}

Status Executor::Impl::run_if(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  if (!n.has_input(0)) return n.error(StatusCode::kInvalidModel, "required input 0 is missing");
  const ir::Value* cv = n.inputs[0];
  Slot* cs = scope.find(cv->name);
  Slot tmp;
  if (cs == nullptr) {
    if (!cv->constant) return n.error(StatusCode::kInvalidModel, "condition was not computed");
    tmp.host = Datum::of(*cv->constant);
    tmp.has_host = true;
    cs = &tmp;
  }
  KILN_RETURN_IF_ERROR(to_host(*cs, cv->name));
  if (!cs->host.is_tensor() || cs->host.tensor.numel() != 1) {
    return n.error(StatusCode::kInvalidModel, "condition must be a tensor of one element");
  }
  bool cond = cs->host.tensor.get_double(0) != 0;
  const ir::Graph* branch = n.attr_graph(cond ? "then_branch" : "else_branch");
  if (branch == nullptr) return n.error(StatusCode::kInvalidModel, "missing branch graph");
  StatusOr<std::vector<Slot>> outs = run_graph(*branch, {}, &scope);
  if (!outs.ok()) {
    return outs.take_status().with_context(n.label() + " subgraph '" + branch->name + "'");
  }
  if (outs->size() != n.outputs.size()) {
    return n.error(StatusCode::kInvalidModel,
                   "branch '" + branch->name + "' gives " + std::to_string(outs->size()) +
                       " outputs, the node has " + std::to_string(n.outputs.size()));
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i]) scope.values[n.outputs[i]->name] = std::move((*outs)[i]);
  }
  return Status::Ok();
}

namespace {

std::string signature_of(const std::vector<RunInput>& inputs) {
  std::string sig;
  for (const RunInput& in : inputs) {
    sig += in.name;
    if (in.value != nullptr) {
      sig += 'v';
      sig += in.value->describe();
      sig += ';';
      continue;
    }
    sig += in.host ? 'h' : 'd';
    const std::vector<int64_t>& shape = in.host ? in.host->shape() : in.device.shape;
    sig += std::to_string(static_cast<int>(in.host ? in.host->dtype() : in.device.dtype));
    sig += shape_to_string(shape);
    sig += ';';
  }
  return sig;
}

bool is_not_capturable(const Status& s) {
  return !s.ok() && s.message().find(kNotCapturable) != std::string::npos;
}

}  // namespace

Status Executor::Impl::run_once(const std::vector<RunInput>& inputs, const std::string& sig,
                                bool capture) {
  records.clear();
  seq = 0;
  step = 0;
  irregular = false;
  cpu_steps_run = 0;
  const ir::Graph& g = program->graph();
  std::vector<Slot> in_slots(g.inputs.size());
  std::vector<DeviceTensor> staged(g.inputs.size());
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const ir::Value* v = g.inputs[i];
    const RunInput* feed = nullptr;
    for (const RunInput& in : inputs)
      if (in.name == v->name) feed = &in;
    Slot& s = in_slots[i];
    if (feed == nullptr) {
      if (!v->constant) {
        return invalid_argument("input '" + v->name + "' (" + v->type.to_string() +
                                ") was not given");
      }
      s.host = Datum::of(*v->constant);
      s.has_host = true;
      continue;
    }
    if (feed->value != nullptr) {
      s.host = *feed->value;
      s.has_host = true;
      if (s.host.is_tensor() && s.host.tensor.dtype() != DType::kString) {
        KILN_RETURN_IF_ERROR(to_device(s, v->name));
      }
    } else if (feed->host != nullptr) {
      s.host = Datum::of(*feed->host);
      s.has_host = true;
      if (feed->host->dtype() != DType::kString) KILN_RETURN_IF_ERROR(to_device(s, v->name));
    } else if (use_graphs) {
      KILN_ASSIGN_OR_RETURN(s.block, allocate(feed->device.nbytes(), "input '" + v->name + "'"));
      s.dev = feed->device;
      s.dev.data = s.block->ptr;
      if (s.dev.nbytes() > 0) {
        KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(s.dev.data, feed->device.data, s.dev.nbytes(),
                                                  cudaMemcpyDeviceToDevice, cur));
      }
      s.has_dev = true;
    } else {
      s.dev = feed->device;
      s.has_dev = true;
    }
    if (s.has_dev) staged[i] = s.dev;
  }
  step_copies_to_device = 0;
  stats.copies_to_device = 0;
  cudaGraph_t graph = nullptr;
  if (capture) {
    // Relaxed: pinned staging for shape-derived host values is allocated while capturing.
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(cur, cudaStreamCaptureModeRelaxed));
    capturing = true;
    capture_pinned.clear();
  }
  StatusOr<std::vector<Slot>> outs = run_graph(g, std::move(in_slots), nullptr);
  if (capture) {
    capturing = false;
    cudaError_t e = cudaStreamEndCapture(cur, &graph);
    if (!outs.ok() || e != cudaSuccess) {
      if (graph) cudaGraphDestroy(graph);
      for (void* p : capture_pinned) cudaFreeHost(p);
      capture_pinned.clear();
      cudaGetLastError();
      if (outs.ok()) return cuda_error(e, "cudaStreamEndCapture");
      return outs.take_status();
    }
  }
  if (!outs.ok()) return outs.take_status();
  outputs.clear();
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    Slot& s = (*outs)[i];
    RunOutput o;
    o.name = g.outputs[i]->name;
    if (s.has_dev) {
      o.on_device = true;
      o.device = s.dev;
      if (s.block) kept.push_back(s.block);
    } else {
      o.host = s.host;
    }
    outputs.push_back(std::move(o));
  }
  outs->clear();
  for (backend::BufferUse& r : records)
    if (r.last < r.first) r.last = step;
  if (capture) {
    GraphEntry entry;
    cudaError_t e = cudaGraphInstantiate(&entry.exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
      cudaGetLastError();
      for (void* p : capture_pinned) cudaFreeHost(p);
      capture_pinned.clear();
      return cuda_error(e, "cudaGraphInstantiate");
    }
    entry.inputs = staged;
    entry.outputs = outputs;
    entry.pinned = std::move(capture_pinned);
    capture_pinned.clear();
    KILN_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(entry.exec, cur));
    stats.graph_captured = true;
    graphs[sig] = std::move(entry);
  }
  if (plan == nullptr || irregular) {
    backend::MemoryPlan mp = backend::plan_memory(records);
    ArenaPlan ap;
    ap.offsets = std::move(mp.offsets);
    ap.peak = mp.peak;
    for (const backend::BufferUse& r : records) ap.sizes.push_back(r.bytes);
    ap.capturable = stats.host_syncs == 0 && cpu_steps_run == 0 && stats.copies_to_host == 0;
    auto old = plans.find(sig);
    if (old != plans.end()) ap.failed_captures = old->second.failed_captures;
    plans[sig] = std::move(ap);
  }
  return Status::Ok();
}

Status Executor::Impl::replay(GraphEntry& e, const std::vector<RunInput>& inputs) {
  const ir::Graph& g = program->graph();
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const RunInput* feed = nullptr;
    for (const RunInput& in : inputs)
      if (in.name == g.inputs[i]->name) feed = &in;
    if (feed == nullptr || feed->value != nullptr) continue;
    const DeviceTensor& dst = e.inputs[i];
    if (dst.data == nullptr || dst.nbytes() == 0) continue;
    if (feed->host != nullptr) {
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst.data, feed->host->raw(), dst.nbytes(), cudaMemcpyHostToDevice, cur));
    } else {
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst.data, feed->device.data, dst.nbytes(),
                                                cudaMemcpyDeviceToDevice, cur));
    }
  }
  KILN_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(e.exec, cur));
  outputs = e.outputs;
  stats.graph_replayed = true;
  return Status::Ok();
}

StatusOr<std::unique_ptr<Executor>> Executor::create(std::shared_ptr<const Program> program) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->impl_ = std::make_unique<Impl>();
  Impl& im = *ex->impl_;
  im.program = std::move(program);
  std::shared_lock<std::shared_mutex> lock(device_api_mutex());
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&im.own_stream, cudaStreamNonBlocking));
  im.cur = im.own_stream;
  if (cublasLtCreate(&im.lt) != CUBLAS_STATUS_SUCCESS) {
    return Status(StatusCode::kInternal, "cublasLtCreate failed");
  }
  cudnnStatus_t ds = cudnnCreate(&im.dnn);
  if (ds != CUDNN_STATUS_SUCCESS) {
    return Status(StatusCode::kInternal,
                  std::string("cudnnCreate failed: ") + cudnnGetErrorString(ds));
  }
  return ex;
}

Executor::~Executor() = default;

cudaStream_t Executor::stream() const {
  return impl_->own_stream;
}

Status Executor::run(const std::vector<RunInput>& inputs, cudaStream_t stream) {
  Impl& im = *impl_;
  im.outputs.clear();
  im.kept.clear();
  im.cur = stream != nullptr ? stream : im.own_stream;
  im.stats = RunStats();
  im.profile.clear();
  std::string sig = signature_of(inputs);
  const bool graphs_on = im.use_graphs && !im.profiling && im.tuner == nullptr;
  auto graph = graphs_on ? im.graphs.find(sig) : im.graphs.end();
  auto pit = im.plans.find(sig);
  // Tuning runs allocate differently each time (candidates, cache hits): never from a plan.
  ArenaPlan* plan = pit == im.plans.end() || im.tuner != nullptr ? nullptr : &pit->second;
  const bool capture = graphs_on && graph == im.graphs.end() && plan != nullptr && plan->capturable;
  std::shared_lock<std::shared_mutex> shared(device_api_mutex(), std::defer_lock);
  std::unique_lock<std::shared_mutex> exclusive(device_api_mutex(), std::defer_lock);
  if (capture) {
    exclusive.lock();
  } else {
    shared.lock();
  }
  if (graph != im.graphs.end()) return im.replay(graph->second, inputs);
  im.plan = plan;
  if (im.plan != nullptr) KILN_RETURN_IF_ERROR(im.ensure_arena(im.plan->peak));
  Status s = im.run_once(inputs, sig, capture);
  if (capture && !s.ok()) {
    // The run could not be captured (an op that synchronizes, or a CUDA error while capturing):
    // it runs again uncaptured, and its error, if any, is the one reported. After two failed
    // captures the shape runs uncaptured for good.
    ArenaPlan& p = im.plans[sig];
    if (is_not_capturable(s) || ++p.failed_captures >= 2) p.capturable = false;
    im.stats = RunStats();
    im.stats.graph_refusal = s.message();
    im.outputs.clear();
    im.kept.clear();
    s = im.run_once(inputs, sig, false);
  } else if (im.use_graphs && !capture && im.plan != nullptr && !im.plan->capturable) {
    im.stats.graph_refusal = "the run has host synchronizations or CPU steps";
  }
  im.plan = nullptr;
  return s;
}

const std::vector<RunOutput>& Executor::outputs() const {
  return impl_->outputs;
}
const RunStats& Executor::stats() const {
  return impl_->stats;
}
void Executor::set_cuda_graph(bool on) {
  impl_->use_graphs = on;
}
void Executor::set_profiling(bool on) {
  impl_->profiling = on;
}
void Executor::set_tuner(StepTuner* tuner) {
  impl_->tuner = tuner;
}
void Executor::set_profile(int profile) {
  impl_->opt_profile = profile;
}
const std::vector<StepTime>& Executor::profile() const {
  return impl_->profile;
}
uint64_t Executor::arena_bytes() const {
  return impl_->arena_capacity;
}

// The slot of input i of `n` (a computed value, or a constant copied into *tmp).
StatusOr<Slot*> Executor::Impl::input_slot(const ir::Node& n, int i, DScope& scope, Slot* tmp) {
  const ir::Value* v = n.inputs[static_cast<size_t>(i)];
  Slot* s = scope.find(v->name);
  if (s != nullptr) return s;
  if (!v->constant) {
    if (const ir::Value* c = program->outer_constant(v)) v = c;
  }
  if (!v->constant) {
    return n.error(StatusCode::kInvalidModel,
                   "input '" + v->name + "' has not been computed before this node");
  }
  tmp->host = Datum::of(*v->constant);
  tmp->has_host = true;
  return tmp;
}

Status Executor::Impl::run_loop(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  const ir::Graph* body = n.attr_graph("body");
  if (body == nullptr) return n.error(StatusCode::kInvalidModel, "needs graph attribute 'body'");
  const int n_carried = std::max(0, static_cast<int>(n.inputs.size()) - 2);
  const int body_outs = static_cast<int>(body->outputs.size());
  if (static_cast<int>(body->inputs.size()) != n_carried + 2 || body_outs < n_carried + 1) {
    return n.error(StatusCode::kInvalidModel, "the body does not fit the loop-carried values");
  }
  const int n_scan = body_outs - 1 - n_carried;
  if (static_cast<int>(n.outputs.size()) > n_carried + n_scan) {
    return n.error(StatusCode::kInvalidModel, "has more outputs than the body gives");
  }
  const bool has_m = n.has_input(0), has_cond = n.has_input(1);
  if (!has_m && !has_cond) {
    return n.error(StatusCode::kUnsupportedAttribute,
                   "has neither a trip count nor a condition: the loop would never end");
  }
  int64_t trip = 0;
  bool cond = true;
  if (has_m) {
    Slot tmp;
    KILN_ASSIGN_OR_RETURN(Slot * s, input_slot(n, 0, scope, &tmp));
    KILN_RETURN_IF_ERROR(to_host(*s, n.inputs[0]->name));
    if (!s->host.is_tensor() || s->host.tensor.dtype() != DType::kInt64 ||
        s->host.tensor.numel() != 1) {
      return n.error(StatusCode::kInvalidModel, "trip count M must be one int64");
    }
    trip = s->host.tensor.data<int64_t>()[0];
  }
  if (has_cond) {
    Slot tmp;
    KILN_ASSIGN_OR_RETURN(Slot * s, input_slot(n, 1, scope, &tmp));
    KILN_RETURN_IF_ERROR(to_host(*s, n.inputs[1]->name));
    if (!s->host.is_tensor() || s->host.tensor.numel() != 1) {
      return n.error(StatusCode::kInvalidModel, "the condition must be one element");
    }
    cond = s->host.tensor.get_double(0) != 0;
  }
  std::vector<Slot> carried;
  for (int i = 0; i < n_carried; ++i) {
    if (!n.has_input(i + 2)) {
      return n.error(StatusCode::kInvalidModel,
                     "loop-carried input " + std::to_string(i) + " is missing");
    }
    Slot tmp;
    KILN_ASSIGN_OR_RETURN(Slot * s, input_slot(n, i + 2, scope, &tmp));
    carried.push_back(*s);
  }
  constexpr int64_t kMaxIterations = 100'000'000;
  std::vector<std::vector<Slot>> scans(static_cast<size_t>(n_scan));
  int64_t it = 0;
  for (; (!has_m || it < trip) && cond; ++it) {
    if (it >= kMaxIterations) {
      return n.error(StatusCode::kOutOfRange,
                     "stopped after " + std::to_string(kMaxIterations) + " iterations");
    }
    std::vector<Slot> in(static_cast<size_t>(n_carried + 2));
    in[0].host = Datum::of(Tensor::scalar<int64_t>(it));
    in[0].has_host = true;
    in[1].host = Datum::of(Tensor::scalar<bool>(cond));
    in[1].has_host = true;
    for (int i = 0; i < n_carried; ++i)
      in[static_cast<size_t>(i + 2)] = std::move(carried[static_cast<size_t>(i)]);
    StatusOr<std::vector<Slot>> outs = run_graph(*body, std::move(in), &scope);
    if (!outs.ok()) {
      return outs.take_status().with_context(n.label() + " body, iteration " + std::to_string(it));
    }
    if (has_cond) {
      Slot& c = (*outs)[0];
      KILN_RETURN_IF_ERROR(to_host(c, "condition"));
      if (!c.host.is_tensor() || c.host.tensor.numel() != 1) {
        return n.error(StatusCode::kInvalidModel, "the body's condition must be one element");
      }
      cond = c.host.tensor.get_double(0) != 0;
    }
    for (int i = 0; i < n_carried; ++i)
      carried[static_cast<size_t>(i)] = std::move((*outs)[static_cast<size_t>(i + 1)]);
    for (int k = 0; k < n_scan; ++k) {
      Slot& sv = (*outs)[static_cast<size_t>(1 + n_carried + k)];
      if (!sv.has_dev) KILN_RETURN_IF_ERROR(to_device(sv, "scan output"));
      if (!scans[static_cast<size_t>(k)].empty()) {
        const DeviceTensor& first = scans[static_cast<size_t>(k)][0].dev;
        if (first.dtype != sv.dev.dtype || first.shape != sv.dev.shape) {
          return n.error(StatusCode::kInvalidModel, "scan output " + std::to_string(k) +
                                                        " changes its type across iterations");
        }
      }
      scans[static_cast<size_t>(k)].push_back(std::move(sv));
    }
  }
  for (int i = 0; i < static_cast<int>(n.outputs.size()); ++i) {
    const ir::Value* ov = n.outputs[static_cast<size_t>(i)];
    if (ov == nullptr) continue;
    if (i < n_carried) {
      scope.values[ov->name] = std::move(carried[static_cast<size_t>(i)]);
      continue;
    }
    std::vector<Slot>& parts = scans[static_cast<size_t>(i - n_carried)];
    Slot out;
    if (parts.empty()) {
      // No iteration: an empty stack of the body output's known shape.
      const ir::TypeInfo& t = body->outputs[static_cast<size_t>(1 + i)]->type;
      std::vector<int64_t> shape = {0};
      for (const ir::Dim& d : t.shape.dims) shape.push_back(d.known() ? d.value : 0);
      KILN_ASSIGN_OR_RETURN(
          Tensor e,
          Tensor::create(t.dtype == DType::kUndefined ? DType::kFloat32 : t.dtype, shape));
      out.host = Datum::of(std::move(e));
      out.has_host = true;
    } else {
      const DeviceTensor& first = parts[0].dev;
      std::vector<int64_t> shape = first.shape;
      shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));
      uint64_t each = first.nbytes();
      KILN_ASSIGN_OR_RETURN(out.block, allocate(each * parts.size(), n.label() + " scan output"));
      out.dev.data = out.block->ptr;
      out.dev.dtype = first.dtype;
      out.dev.shape = std::move(shape);
      out.has_dev = true;
      for (size_t k = 0; k < parts.size() && each > 0; ++k) {
        KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(static_cast<char*>(out.dev.data) + k * each,
                                                  parts[k].dev.data, each, cudaMemcpyDeviceToDevice,
                                                  cur));
      }
    }
    scope.values[ov->name] = std::move(out);
  }
  return Status::Ok();
}

namespace {

int64_t product(const std::vector<int64_t>& v, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < v.size(); ++i) p *= v[i];
  return p;
}

// Normalized axis `raw` of a tensor of rank `rank`, or -1 when out of range.
int64_t norm_axis(int64_t raw, int64_t rank) {
  int64_t a = raw < 0 ? raw + rank : raw;
  return a >= 0 && a < rank ? a : -1;
}

}  // namespace

// Scan (opset 9+): scan inputs are cut along their axes on the device (a view when the cut is
// contiguous, a 2-D strided copy otherwise), the body runs once per element, and the scan
// outputs are stacked along their axes with strided copies.
Status Executor::Impl::run_scan(const Program::Step& st, DScope& scope) {
  const ir::Node& n = *st.node;
  const ir::Graph* body = n.attr_graph("body");
  if (body == nullptr) return n.error(StatusCode::kInvalidModel, "needs graph attribute 'body'");
  const int nin = static_cast<int>(n.inputs.size());
  const int64_t m = n.attr_int("num_scan_inputs", -1);
  if (m < 1 || m > nin) {
    return n.error(
        StatusCode::kInvalidModel,
        "num_scan_inputs must be in [1, " + std::to_string(nin) + "], got " + std::to_string(m));
  }
  const int n_state = nin - static_cast<int>(m);
  const int n_scan_in = static_cast<int>(m);
  const int n_scan_out = static_cast<int>(body->outputs.size()) - n_state;
  if (static_cast<int>(body->inputs.size()) != nin || n_scan_out < 0 ||
      static_cast<int>(n.outputs.size()) > static_cast<int>(body->outputs.size())) {
    return n.error(StatusCode::kInvalidModel, "the body does not fit the state and scan inputs");
  }
  std::vector<Slot> state;
  std::vector<Slot*> scan_in;
  std::vector<Slot> tmps(static_cast<size_t>(nin));
  for (int i = 0; i < nin; ++i) {
    if (!n.has_input(i)) {
      return n.error(StatusCode::kInvalidModel, "input " + std::to_string(i) + " is missing");
    }
    KILN_ASSIGN_OR_RETURN(Slot * s, input_slot(n, i, scope, &tmps[static_cast<size_t>(i)]));
    if (i < n_state) {
      state.push_back(*s);
    } else {
      KILN_RETURN_IF_ERROR(to_device(*s, n.inputs[static_cast<size_t>(i)]->name));
      if (s->dev.rank() < 1) {
        return n.error(StatusCode::kInvalidModel, "scan inputs must have rank >= 1");
      }
      scan_in.push_back(s);
    }
  }
  auto axes_of = [&](const char* name, size_t count, std::vector<int64_t>* out) -> Status {
    *out = n.attr_ints(name, {});
    if (out->empty()) out->assign(count, 0);
    if (out->size() != count) {
      return n.error(StatusCode::kInvalidModel, std::string(name) + " has " +
                                                    std::to_string(out->size()) +
                                                    " entries, expected " + std::to_string(count));
    }
    return Status::Ok();
  };
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
  KILN_RETURN_IF_ERROR(axes_of("scan_input_axes", static_cast<size_t>(n_scan_in), &in_axes));
  KILN_RETURN_IF_ERROR(axes_of("scan_input_directions", static_cast<size_t>(n_scan_in), &in_dirs));
  KILN_RETURN_IF_ERROR(axes_of("scan_output_axes", static_cast<size_t>(n_scan_out), &out_axes));
  KILN_RETURN_IF_ERROR(
      axes_of("scan_output_directions", static_cast<size_t>(n_scan_out), &out_dirs));
  int64_t seq = -1;
  for (int j = 0; j < n_scan_in; ++j) {
    const DeviceTensor& x = scan_in[static_cast<size_t>(j)]->dev;
    int64_t a = norm_axis(in_axes[static_cast<size_t>(j)], x.rank());
    if (a < 0) return n.error(StatusCode::kInvalidModel, "scan_input_axes out of range");
    in_axes[static_cast<size_t>(j)] = a;
    int64_t len = x.dim(static_cast<int>(a));
    if (seq >= 0 && len != seq) {
      return n.error(StatusCode::kInvalidModel, "scan inputs have different sequence lengths");
    }
    seq = len;
  }
  std::vector<std::vector<Slot>> parts(static_cast<size_t>(n_scan_out));
  for (int64_t t = 0; t < seq; ++t) {
    std::vector<Slot> in;
    for (Slot& s : state) in.push_back(std::move(s));
    for (int j = 0; j < n_scan_in; ++j) {
      const Slot& src = *scan_in[static_cast<size_t>(j)];
      const DeviceTensor& x = src.dev;
      const size_t a = static_cast<size_t>(in_axes[static_cast<size_t>(j)]);
      const int64_t idx = in_dirs[static_cast<size_t>(j)] ? seq - 1 - t : t;
      const uint64_t es = dtype_storage_bytes(x.dtype, 1);
      const int64_t outer = product(x.shape, 0, a);
      const uint64_t inner = static_cast<uint64_t>(product(x.shape, a + 1, x.shape.size())) * es;
      Slot cut;
      cut.dev.dtype = x.dtype;
      cut.dev.shape = x.shape;
      cut.dev.shape.erase(cut.dev.shape.begin() + static_cast<std::ptrdiff_t>(a));
      cut.has_dev = true;
      char* base = static_cast<char*>(x.data) + static_cast<uint64_t>(idx) * inner;
      if (outer == 1) {
        cut.dev.data = base;  // a view: the element is contiguous
        cut.block = src.block;
      } else {
        KILN_ASSIGN_OR_RETURN(cut.block, allocate(inner * static_cast<uint64_t>(outer),
                                                  n.label() + " scan input slice"));
        cut.dev.data = cut.block->ptr;
        if (inner > 0) {
          KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
              cut.dev.data, inner, base, inner * static_cast<uint64_t>(x.dim(static_cast<int>(a))),
              inner, static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, cur));
        }
      }
      in.push_back(std::move(cut));
    }
    StatusOr<std::vector<Slot>> outs = run_graph(*body, std::move(in), &scope);
    if (!outs.ok()) {
      return outs.take_status().with_context(n.label() + " body, element " + std::to_string(t));
    }
    state.clear();
    for (int i = 0; i < n_state; ++i) state.push_back(std::move((*outs)[static_cast<size_t>(i)]));
    for (int k = 0; k < n_scan_out; ++k) {
      Slot& sv = (*outs)[static_cast<size_t>(n_state + k)];
      KILN_RETURN_IF_ERROR(to_device(sv, "scan output"));
      auto& list = parts[static_cast<size_t>(k)];
      if (!list.empty() &&
          (list[0].dev.dtype != sv.dev.dtype || list[0].dev.shape != sv.dev.shape)) {
        return n.error(StatusCode::kInvalidModel,
                       "scan output " + std::to_string(k) + " changes its type across elements");
      }
      list.push_back(std::move(sv));
    }
  }
  for (int i = 0; i < static_cast<int>(n.outputs.size()); ++i) {
    const ir::Value* ov = n.outputs[static_cast<size_t>(i)];
    if (ov == nullptr) continue;
    if (i < n_state) {
      scope.values[ov->name] = std::move(state[static_cast<size_t>(i)]);
      continue;
    }
    const int k = i - n_state;
    std::vector<Slot>& list = parts[static_cast<size_t>(k)];
    Slot out;
    if (list.empty()) {
      const ir::TypeInfo& t = body->outputs[static_cast<size_t>(i)]->type;
      std::vector<int64_t> shape;
      for (const ir::Dim& d : t.shape.dims) shape.push_back(d.known() ? d.value : 0);
      int64_t a = std::max<int64_t>(
          0, norm_axis(out_axes[static_cast<size_t>(k)], static_cast<int64_t>(shape.size()) + 1));
      shape.insert(shape.begin() + a, 0);
      KILN_ASSIGN_OR_RETURN(
          Tensor e,
          Tensor::create(t.dtype == DType::kUndefined ? DType::kFloat32 : t.dtype, shape));
      out.host = Datum::of(std::move(e));
      out.has_host = true;
      scope.values[ov->name] = std::move(out);
      continue;
    }
    const DeviceTensor& p0 = list[0].dev;
    const int64_t r = p0.rank() + 1;
    const int64_t b = norm_axis(out_axes[static_cast<size_t>(k)], r);
    if (b < 0) return n.error(StatusCode::kInvalidModel, "scan_output_axes out of range");
    const int64_t T = static_cast<int64_t>(list.size());
    std::vector<int64_t> shape = p0.shape;
    shape.insert(shape.begin() + b, T);
    const uint64_t es = dtype_storage_bytes(p0.dtype, 1);
    const int64_t outer = product(p0.shape, 0, static_cast<size_t>(b));
    const uint64_t inner =
        static_cast<uint64_t>(product(p0.shape, static_cast<size_t>(b), p0.shape.size())) * es;
    KILN_ASSIGN_OR_RETURN(
        out.block, allocate(inner * static_cast<uint64_t>(outer * T), n.label() + " scan output"));
    out.dev.data = out.block->ptr;
    out.dev.dtype = p0.dtype;
    out.dev.shape = std::move(shape);
    out.has_dev = true;
    for (int64_t t = 0; t < T && inner > 0; ++t) {
      const int64_t pos = out_dirs[static_cast<size_t>(k)] ? T - 1 - t : t;
      char* dst = static_cast<char*>(out.dev.data) + static_cast<uint64_t>(pos) * inner;
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
          dst, inner * static_cast<uint64_t>(T), list[static_cast<size_t>(t)].dev.data, inner,
          inner, static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, cur));
    }
    scope.values[ov->name] = std::move(out);
  }
  return Status::Ok();
}

}  // namespace kiln::cuda
