// Activation memory planning: buffers whose lifetimes do not overlap share bytes of one arena.
//
// The runtime records, for one input shape, every device allocation of a run (size, the step
// that made it, the step after which it was freed) and plans offsets for them; later runs with
// the same shapes place allocation k at offset k. The builder does the same at each profile's
// largest shapes and records the peak in the engine.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::backend {

struct BufferUse {
  uint64_t bytes = 0;
  int first = 0;  // first step the buffer is live in
  int last = 0;   // last step the buffer is live in (>= first)
};

struct MemoryPlan {
  std::vector<uint64_t> offsets;  // one per BufferUse, aligned to `alignment`
  uint64_t peak = 0;              // arena bytes needed
  uint64_t total = 0;             // sum of aligned sizes (what no sharing would need)
};

inline constexpr uint64_t kArenaAlignment = 256;

// Greedy by size (largest first), each buffer at the lowest offset that does not overlap any
// already-placed buffer live at the same time. Deterministic.
MemoryPlan plan_memory(const std::vector<BufferUse>& uses, uint64_t alignment = kArenaAlignment);

// True when no two buffers that are live at the same step overlap in the arena.
bool plan_is_valid(const std::vector<BufferUse>& uses, const MemoryPlan& plan);

}  // namespace kiln::backend
