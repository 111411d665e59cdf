#include "backends/cuda/tuner.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>

#include "backend/cuda_backend.h"
#include "backend/tactic.h"
#include "backends/cuda/cuda_util.h"
#include "runtime/engine_data.h"

namespace kiln::cuda {

TunerOptions tuner_options(int opt_level) {
  TunerOptions o;
  switch (std::clamp(opt_level, 1, 5)) {
    case 1:
      o = {2, 1, 3};
      break;
    case 2:
      o = {4, 1, 5};
      break;
    case 3:
      o = {8, 2, 7};
      break;
    case 4:
      o = {16, 3, 9};
      break;
    default:
      o = {INT_MAX, 3, 11};
      break;
  }
  return o;
}

float tuning_tolerance(DType dtype, bool allow_tf32) {
  switch (dtype) {
    case DType::kFloat64:
      return 1e-9f;
    case DType::kFloat32:
      // TF32 rounds the operands to 10 mantissa bits; without it, only summation order differs.
      return allow_tf32 ? 5e-3f : 2e-4f;
    case DType::kFloat16:
      return 1e-2f;
    case DType::kBFloat16:
      return 4e-2f;
    default:
      return 0.f;
  }
}

StatusOr<Agreement> compare_outputs(cudaStream_t s, const DeviceTensor& ref,
                                    const DeviceTensor& cand, float rtol) {
  Agreement a;
  if (ref.dtype != cand.dtype || ref.shape != cand.shape) {
    a.bad = static_cast<uint64_t>(std::max<int64_t>(ref.numel(), 1));
    a.shape_differs = true;
    return a;
  }
  const DType dt = ref.dtype;
  if (dt != DType::kFloat32 && dt != DType::kFloat16 && dt != DType::kBFloat16 &&
      dt != DType::kFloat64) {
    a.compared = false;
    return a;
  }
  const int64_t n = ref.numel();
  if (n == 0) return a;
  void* scratch = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaMallocAsync(&scratch, 16, s));
  unsigned host[4] = {0, 0, 0, 0};
  Status st = [&]() -> Status {
    KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(scratch, 0, 16, s));
    KILN_RETURN_IF_ERROR(launch_output_compare(s, dt, ref.data, cand.data, n, rtol, scratch));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host, scratch, 16, cudaMemcpyDeviceToHost, s));
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
    return Status::Ok();
  }();
  const cudaError_t freed = cudaFreeAsync(scratch, s);
  KILN_RETURN_IF_ERROR(st);
  KILN_CUDA_RETURN_IF_ERROR(freed);
  static_assert(sizeof(float) == sizeof(unsigned), "float bits");
  std::memcpy(&a.max_ref, &host[0], sizeof(float));
  std::memcpy(&a.max_diff, &host[1], sizeof(float));
  std::memcpy(&a.bad, &host[2], sizeof(a.bad));
  return a;
}

Tuner::Tuner(TunerOptions options, backend::TimingCache* cache, bool allow_tf32,
             uint64_t workspace_bytes)
    : options_(options), cache_(cache), allow_tf32_(allow_tf32), workspace_bytes_(workspace_bytes) {
  options_.max_candidates = std::max(options_.max_candidates, 1);
  options_.warmup = std::max(options_.warmup, 0);
  options_.runs = std::max(options_.runs, 1);
}

Tuner::~Tuner() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  if (hold_flag_ != nullptr) cudaFreeHost(hold_flag_);
}

void Tuner::begin_profile(int index) {
  profile_ = index;
  seen_.clear();
  if (by_profile_.size() <= static_cast<size_t>(index)) by_profile_.resize(index + 1);
}

void Tuner::choose(const ir::Node* n, int64_t tactic) {
  if (chosen_.count(n) == 0) chosen_[n] = tactic;
  if (by_profile_.size() <= static_cast<size_t>(profile_)) by_profile_.resize(profile_ + 1);
  auto& mine = by_profile_[static_cast<size_t>(profile_)];
  if (mine.count(n) == 0) mine[n] = tactic;
}

StatusOr<float> Tuner::time_tactic(TunableStep& step, int64_t tactic, int* last_run) {
  while (events_.size() < static_cast<size_t>(2 * options_.runs)) {
    cudaEvent_t e = nullptr;
    KILN_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
    events_.push_back(e);
  }
  cudaStream_t s = step.stream();
  for (int i = 0; i < options_.warmup; ++i) {
    KILN_ASSIGN_OR_RETURN(int r, step.run(tactic, nullptr));
    step.drop(r);
  }
  // The timed runs are enqueued behind a kernel that holds the stream until all of them are
  // queued, so they run back to back and the events measure GPU time, not the host's enqueue
  // time (which dominates small layers at batch 1).
  if (hold_flag_ == nullptr) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaHostAlloc(reinterpret_cast<void**>(&hold_flag_), sizeof(int), cudaHostAllocMapped));
    int device = 0, khz = 0;
    KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device));
    hold_cycles_ = static_cast<long long>(std::max(khz, 1000000)) * 50;  // 50 ms at most
  }
  __atomic_store_n(hold_flag_, 0, __ATOMIC_SEQ_CST);
  int* hold_dev = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaHostGetDevicePointer(reinterpret_cast<void**>(&hold_dev), hold_flag_, 0));
  KILN_RETURN_IF_ERROR(launch_stream_hold(s, hold_dev, hold_cycles_));
  int last = -1;
  Status queued = Status::Ok();
  for (int i = 0; i < options_.runs && queued.ok(); ++i) {
    cudaError_t e = cudaEventRecord(events_[static_cast<size_t>(2 * i)], s);
    if (e != cudaSuccess) {
      queued = cuda_error(e, "cudaEventRecord");
      break;
    }
    StatusOr<int> r = step.run(tactic, nullptr);
    if (!r.ok()) {
      queued = r.take_status();
      break;
    }
    e = cudaEventRecord(events_[static_cast<size_t>(2 * i + 1)], s);
    if (e != cudaSuccess) queued = cuda_error(e, "cudaEventRecord");
    if (last >= 0) step.drop(last);  // stream-ordered: freed after the run that used it
    last = *r;
  }
  __atomic_store_n(hold_flag_, 1, __ATOMIC_SEQ_CST);
  KILN_RETURN_IF_ERROR(queued);
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  std::vector<float> ms(static_cast<size_t>(options_.runs));
  for (int i = 0; i < options_.runs; ++i) {
    KILN_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms[static_cast<size_t>(i)],
                                                   events_[static_cast<size_t>(2 * i)],
                                                   events_[static_cast<size_t>(2 * i + 1)]));
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  *last_run = last;
  return ms[ms.size() / 2];
}

StatusOr<bool> Tuner::agrees(TunableStep& step, int ref, int run, std::string* why) {
  const std::vector<const DeviceTensor*> a = step.outputs(ref), b = step.outputs(run);
  if (a.size() != b.size()) {
    *why = "a different number of outputs";
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == nullptr || b[i] == nullptr) {
      if (a[i] != b[i]) {
        *why = "output " + std::to_string(i) + " missing";
        return false;
      }
      continue;
    }
    const float tol = tuning_tolerance(a[i]->dtype, allow_tf32_);
    KILN_ASSIGN_OR_RETURN(Agreement ag, compare_outputs(step.stream(), *a[i], *b[i], tol));
    if (ag.shape_differs) {
      *why = "output " + std::to_string(i) + " has another shape";
      return false;
    }
    if (ag.bad > 0) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "output %zu: %llu element(s) differ by more than %g x max|ref| (max diff %g, "
                    "max|ref| %g)",
                    i, static_cast<unsigned long long>(ag.bad), static_cast<double>(tol),
                    static_cast<double>(ag.max_diff), static_cast<double>(ag.max_ref));
      *why = buf;
      return false;
    }
  }
  return true;
}

Status Tuner::tune(TunableStep& step) {
  const ir::Node& n = step.node();
  if (seen_.count(&n) != 0) {  // met again in this profile (a loop body): tuned the first time
    KILN_ASSIGN_OR_RETURN(int run, step.run(-1, nullptr));
    step.finish(run);
    return Status::Ok();
  }
  std::vector<int64_t> candidates;
  KILN_ASSIGN_OR_RETURN(int ref, step.run(-1, &candidates));
  if (candidates.empty()) {  // nothing to choose (an empty GEMM)
    step.finish(ref);
    return Status::Ok();
  }
  seen_.insert(&n);
  if (candidates.size() == 1) {
    choose(&n, candidates[0]);
    step.finish(ref);
    return Status::Ok();
  }
  std::vector<backend::TensorSig> ins, outs;
  for (const DeviceTensor* t : step.inputs()) {
    backend::TensorSig sig;
    if (t != nullptr) sig = {true, t->dtype, t->shape};
    ins.push_back(std::move(sig));
  }
  for (const DeviceTensor* t : step.outputs(ref)) {
    backend::TensorSig sig;
    if (t != nullptr) sig = {true, t->dtype, t->shape};
    outs.push_back(std::move(sig));
  }
  const std::string key = backend::tuning_key(n, ins, outs, allow_tf32_, workspace_bytes_);
  const int limit = static_cast<int>(
      std::min<size_t>(candidates.size(), static_cast<size_t>(options_.max_candidates)));

  // A cache hit: the cached tactic, checked once against the reference, never timed.
  if (cache_ != nullptr) {
    const backend::TimingEntry* e = cache_->find(key);
    if (e != nullptr && e->timed >= limit &&
        std::find(candidates.begin(), candidates.end(), e->tactic) != candidates.end()) {
      const int64_t tactic = e->tactic;
      StatusOr<int> run = step.run(tactic, nullptr);
      std::string why;
      if (run.ok()) {
        StatusOr<bool> ok = agrees(step, ref, *run, &why);
        if (!ok.ok()) return ok.take_status();
        if (*ok) {
          ++cache_hits_;
          choose(&n, tactic);
          step.finish(*run);
          step.drop(ref);
          return Status::Ok();
        }
      } else {
        cudaGetLastError();
        why = run.status().message();
      }
      notes_.push_back(n.label() + ": cached tactic " + backend::describe_tactic(tactic) +
                       " rejected (" + why + "); timing again");
    }
  }

  ++nodes_tuned_;
  int best_run = -1;
  int64_t best_tactic = -1;
  float best_ms = 0;
  for (int i = 0; i < limit; ++i) {
    const int64_t tactic = candidates[static_cast<size_t>(i)];
    int last = -1;
    StatusOr<float> ms = time_tactic(step, tactic, &last);
    ++candidates_timed_;
    if (!ms.ok()) {
      cudaGetLastError();  // a failed launch must not poison the next candidate
      notes_.push_back(n.label() + ": " + backend::describe_tactic(tactic) +
                       " failed: " + ms.status().message());
      if (last >= 0) step.drop(last);
      continue;
    }
    std::string why;
    KILN_ASSIGN_OR_RETURN(bool ok, agrees(step, ref, last, &why));
    if (!ok) {
      notes_.push_back(n.label() + ": " + backend::describe_tactic(tactic) + " rejected: " + why);
      step.drop(last);
      continue;
    }
    if (best_run < 0 || *ms < best_ms) {
      if (best_run >= 0) step.drop(best_run);
      best_run = last;
      best_tactic = tactic;
      best_ms = *ms;
    } else {
      step.drop(last);
    }
  }
  if (best_run < 0) {
    notes_.push_back(n.label() + ": no candidate agreed with the default: it stays");
    step.finish(ref);
    return Status::Ok();
  }
  choose(&n, best_tactic);
  if (cache_ != nullptr) {
    cache_->put(key, {best_tactic, best_ms, limit, static_cast<int>(candidates.size())});
  }
  step.finish(best_run);
  step.drop(ref);
  return Status::Ok();
}

}  // namespace kiln::cuda

namespace kiln::backend {

namespace {

// A fixed-seed generator of the tuning run's inputs (same values on every build).
class InputRng {
 public:
  explicit InputRng(uint64_t seed) : state_(seed) {}
  float uniform() {  // [-1, 1)
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<double>(state_ >> 40) / static_cast<double>(1 << 23)) -
           1.f;
  }

 private:
  uint64_t state_;
};

StatusOr<Tensor> tuning_input(DType dt, const std::vector<int64_t>& shape, InputRng& rng) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dt, shape));
  const int64_t n = t.numel();
  switch (dt) {
    case DType::kFloat32:
      for (int64_t i = 0; i < n; ++i) static_cast<float*>(t.mutable_raw())[i] = rng.uniform();
      break;
    case DType::kFloat64:
      for (int64_t i = 0; i < n; ++i) static_cast<double*>(t.mutable_raw())[i] = rng.uniform();
      break;
    case DType::kFloat16:
      for (int64_t i = 0; i < n; ++i) {
        static_cast<uint16_t*>(t.mutable_raw())[i] = float_to_half(rng.uniform());
      }
      break;
    case DType::kBFloat16:
      for (int64_t i = 0; i < n; ++i) {
        static_cast<uint16_t*>(t.mutable_raw())[i] = float_to_bfloat16(rng.uniform());
      }
      break;
    default:
      break;  // integers and booleans stay 0: a valid index, length or mask for any model
  }
  return t;
}

}  // namespace

StatusOr<TuningResult> cuda_tune(std::shared_ptr<const runtime::EngineData> data,
                                 const std::vector<InputShapes>& profiles, int opt_level,
                                 TimingCache* cache) {
  auto program = std::static_pointer_cast<const cuda::Program>(data->cuda_program);
  if (!program) return internal_error("the engine's CUDA program was not prepared");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Executor> ex, cuda::Executor::create(program));
  cuda::Tuner tuner(cuda::tuner_options(opt_level), cache, program->options().allow_tf32,
                    program->options().workspace_bytes);
  ex->set_tuner(&tuner);
  TuningResult result;
  for (size_t p = 0; p < profiles.size(); ++p) {
    tuner.begin_profile(static_cast<int>(p));
    InputRng rng(0x6b696c6e00000000ull + p);
    std::vector<Tensor> tensors;
    tensors.reserve(profiles[p].size());
    std::vector<cuda::RunInput> ins;
    for (const auto& [name, shape] : profiles[p]) {
      DType dt = DType::kFloat32;
      for (const TensorInfo& t : data->inputs)
        if (t.name == name) dt = t.dtype;
      KILN_ASSIGN_OR_RETURN(Tensor t, tuning_input(dt, shape, rng));
      tensors.push_back(std::move(t));
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      cuda::RunInput in;
      in.name = profiles[p][i].first;
      in.host = &tensors[i];
      ins.push_back(std::move(in));
    }
    Status s = ex->run(ins);
    if (s.ok()) {
      const cudaError_t e = cudaStreamSynchronize(ex->stream());
      if (e != cudaSuccess) s = cuda::cuda_error(e, "cudaStreamSynchronize after the tuning run");
    }
    if (!s.ok()) {
      cudaGetLastError();
      result.notes.push_back("tuning run of profile " + std::to_string(p) +
                             " failed: " + s.message());
    }
  }
  result.tactics.assign(data->nodes.size(), -1);
  for (size_t i = 0; i < data->nodes.size(); ++i) {
    auto it = tuner.chosen().find(data->nodes[i]);
    if (it != tuner.chosen().end()) result.tactics[i] = it->second;
  }
  for (const auto& chosen : tuner.chosen_by_profile()) {
    std::vector<int64_t> t(data->nodes.size(), -1);
    for (size_t i = 0; i < data->nodes.size(); ++i) {
      auto it = chosen.find(data->nodes[i]);
      if (it != chosen.end()) t[i] = it->second;
    }
    result.profile_tactics.push_back(std::move(t));
  }
  result.nodes_tuned = tuner.nodes_tuned();
  result.candidates_timed = tuner.candidates_timed();
  result.cache_hits = tuner.cache_hits();
  result.notes.insert(result.notes.end(), tuner.notes().begin(), tuner.notes().end());
  return result;
}

}  // namespace kiln::backend
