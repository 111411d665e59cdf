// Build-time tactic tuning of CUDA kernels (the builder's tuning run, backend::cuda_tune).
//
// The executor runs the engine once per profile at its OPT shapes in tuning mode: each step whose
// kernel is tunable reaches Tuner::tune with its real inputs. The tuner runs the kernel with its
// default tactic (the reference, which also lists the candidates), then times each candidate up
// to the opt level's cap (CUDA events: warm-up runs, then the median of several), rejects any
// whose outputs disagree with the reference beyond the dtype's tolerance, and keeps the fastest
// correct one: its outputs are what the following steps read. A timing-cache hit takes the
// cached tactic after one checked run, without timing.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/timing_cache.h"
#include "backends/cuda/executor.h"

namespace kiln::cuda {

// How hard the tuning tries, from the opt level (1..5): at most `max_candidates` tactics per
// node, each with `warmup` untimed and `runs` timed runs.
struct TunerOptions {
  int max_candidates = 8;
  int warmup = 2;
  int runs = 7;
};
TunerOptions tuner_options(int opt_level);

// Largest |candidate - reference| allowed, relative to max |reference|, per output dtype: what
// accumulation-order rounding (and TF32 where allowed) can explain.
float tuning_tolerance(DType dtype, bool allow_tf32);

// How a candidate's output compares with the reference's.
struct Agreement {
  bool compared = true;  // false: a dtype the check does not read (taken as agreeing)
  bool shape_differs = false;
  uint64_t bad = 0;  // elements beyond the tolerance
  float max_ref = 0, max_diff = 0;
};
StatusOr<Agreement> compare_outputs(cudaStream_t s, const DeviceTensor& ref,
                                    const DeviceTensor& cand, float rtol);
// The comparison kernels (tuner_compare.cu) for float32/float16/bfloat16/float64: `scratch` is 16
// zeroed device bytes that receive [max |ref| bits, max diff bits, mismatch count (uint64)].
Status launch_output_compare(cudaStream_t s, DType dtype, const void* ref, const void* cand,
                             int64_t n, float rtol, void* scratch);

// Holds stream `s` until the host sets *flag (pinned, mapped host memory) to non-zero, or about
// `max_cycles` GPU clocks pass.
Status launch_stream_hold(cudaStream_t s, const int* flag, long long max_cycles);

class Tuner final : public StepTuner {
 public:
  Tuner(TunerOptions options, backend::TimingCache* cache, bool allow_tf32,
        uint64_t workspace_bytes);
  ~Tuner() override;

  // Results of later profiles only fill the cache; a node keeps the first profile's choice.
  void begin_profile(int index);
  Status tune(TunableStep& step) override;

  // The tactic chosen per node in the first profile (nodes absent: not reached or nothing to
  // choose), and per profile.
  const std::unordered_map<const ir::Node*, int64_t>& chosen() const { return chosen_; }
  const std::vector<std::unordered_map<const ir::Node*, int64_t>>& chosen_by_profile() const {
    return by_profile_;
  }
  int nodes_tuned() const { return nodes_tuned_; }
  int candidates_timed() const { return candidates_timed_; }
  int cache_hits() const { return cache_hits_; }
  // Rejected candidates and other remarks, one line each.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  // Median milliseconds of `runs` timed runs of `tactic` (after the warm-up); *last_run is the
  // last run's id (its outputs are kept).
  StatusOr<float> time_tactic(TunableStep& step, int64_t tactic, int* last_run);
  // Whether run `run`'s outputs agree with run `ref`'s; *why says how they differ.
  StatusOr<bool> agrees(TunableStep& step, int ref, int run, std::string* why);
  void choose(const ir::Node* n, int64_t tactic);

  TunerOptions options_;
  backend::TimingCache* cache_;
  bool allow_tf32_;
  uint64_t workspace_bytes_;
  int profile_ = 0;
  std::unordered_set<const ir::Node*> seen_;  // tuned in the current profile
  std::unordered_map<const ir::Node*, int64_t> chosen_;
  std::vector<std::unordered_map<const ir::Node*, int64_t>> by_profile_;
  int nodes_tuned_ = 0, candidates_timed_ = 0, cache_hits_ = 0;
  std::vector<std::string> notes_;
  std::vector<cudaEvent_t> events_;
  int* hold_flag_ = nullptr;  // pinned host word releasing the stream hold of the timed runs
  long long hold_cycles_ = 0;
};

}  // namespace kiln::cuda
