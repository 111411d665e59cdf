// Outputs written into application memory through OutputAllocator: the bookkeeping both kinds of
// execution context share (which output goes where, the memory given last time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::runtime {

class OutputSinks {
 public:
  // Alignment asked of every allocator (what CUDA's own allocations give).
  static constexpr uint64_t kAlignment = 256;

  // Registers (or, with null, removes) the allocator of output `name` of `outputs`.
  Status set(const std::vector<TensorInfo>& outputs, const std::string& name,
             OutputAllocator* allocator);

  bool empty() const { return sinks_.empty(); }

  // Where output `name` of this run goes: null when it has no allocator. Tells the allocator the
  // shape, asks it for room for `bytes`, and fails when it refuses or misaligns.
  StatusOr<void*> destination(const std::string& name, const std::vector<int64_t>& shape,
                              uint64_t bytes);

 private:
  struct Sink {
    std::string name;
    OutputAllocator* allocator = nullptr;
    void* current = nullptr;
  };
  std::vector<Sink> sinks_;
};

}  // namespace kiln::runtime
