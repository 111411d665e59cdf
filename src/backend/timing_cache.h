// The timing cache (`kiln build --timing-cache FILE`): the tactic the builder chose for each
// tuned kernel signature, so a rebuild with a warm cache times nothing.
//
// A cache belongs to one GPU and one set of libraries (TimingDevice): a file written for another
// one is ignored with a warning, never trusted. A missing file is an empty cache; a damaged one
// (not JSON, wrong format or version, checksum mismatch) is ignored with a warning. The file is
// JSON (format "kiln-timing-cache", version 1; see docs/engine-format.md) and is replaced
// atomically (written to a temporary file, then renamed). No CUDA types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::backend {

// What makes timings comparable: the GPU and the library versions.
struct TimingDevice {
  std::string gpu_name;
  int sm = 0;            // major * 10 + minor
  int cuda_runtime = 0;  // cudaRuntimeGetVersion
  int cudnn = 0;         // cudnnGetVersion
  int cublaslt = 0;      // cublasLtGetVersion
  bool operator==(const TimingDevice& o) const;
  std::string describe() const;
};

struct TimingEntry {
  int64_t tactic = -1;
  double ms = 0;      // median time of the chosen tactic
  int timed = 0;      // candidates timed when it was chosen
  int available = 0;  // candidates the kernel offered
};

// A tensor of a kernel signature: dtype and concrete shape (absent: an omitted optional one).
struct TensorSig {
  bool present = false;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
};

// The cache key of a tuned node: op (domain and type), every attribute (sorted by name),
// input and output dtypes and shapes, TF32 permission and the workspace limit.
std::string tuning_key(const ir::Node& node, const std::vector<TensorSig>& inputs,
                       const std::vector<TensorSig>& outputs, bool allow_tf32,
                       uint64_t workspace_bytes);

class TimingCache {
 public:
  explicit TimingCache(TimingDevice device = {}) : device_(std::move(device)) {}

  // Reads `path`. Missing file: an empty cache, no warning. Unreadable, damaged, or written for
  // another device or library version: an empty cache and `*warning` says why.
  static TimingCache load(const std::string& path, const TimingDevice& device,
                          std::string* warning);
  // Parses file contents (as load does once the file is read).
  static TimingCache parse(const std::string& text, const TimingDevice& device,
                           std::string* warning);
  std::string serialize() const;
  // Writes the cache to `path` atomically: the entries of the file as it is now (when it is a
  // valid cache of this device) merged under ours, written to a temporary file, renamed.
  Status save(const std::string& path) const;

  const TimingEntry* find(const std::string& key) const;
  void put(const std::string& key, const TimingEntry& e);
  size_t size() const { return entries_.size(); }
  const TimingDevice& device() const { return device_; }
  const std::map<std::string, TimingEntry>& entries() const { return entries_; }

 private:
  TimingDevice device_;
  std::map<std::string, TimingEntry> entries_;
};

}  // namespace kiln::backend
