#include "backend/memory_planner.h"

#include <algorithm>
#include <numeric>

namespace kiln::backend {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

bool lifetimes_overlap(const BufferUse& a, const BufferUse& b) {
  return a.first <= b.last && b.first <= a.last;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<BufferUse>& uses, uint64_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(uses.size(), 0);
  std::vector<size_t> order(uses.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return uses[a].bytes > uses[b].bytes; });
  struct Placed {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Placed> placed;  // sorted by begin
  placed.reserve(uses.size());
  for (size_t idx : order) {
    const BufferUse& u = uses[idx];
    uint64_t size = align_up(std::max<uint64_t>(u.bytes, 1), alignment);
    plan.total += size;
    // Best fit: the smallest gap between live buffers that holds `size`.
    uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
    for (const Placed& p : placed) {
      if (!lifetimes_overlap(uses[p.index], u)) continue;
      if (p.begin >= cursor + size && p.begin - cursor < best_gap) {
        best = cursor;
        best_gap = p.begin - cursor;
      }
      cursor = std::max(cursor, p.end);
    }
    if (best == UINT64_MAX) best = cursor;
    plan.offsets[idx] = best;
    plan.peak = std::max(plan.peak, best + size);
    Placed np{best, best + size, idx};
    placed.insert(
        std::upper_bound(placed.begin(), placed.end(), np,
                         [](const Placed& a, const Placed& b) { return a.begin < b.begin; }),
        np);
  }
  return plan;
}

bool plan_is_valid(const std::vector<BufferUse>& uses, const MemoryPlan& plan) {
  if (plan.offsets.size() != uses.size()) return false;
  for (size_t i = 0; i < uses.size(); ++i) {
    uint64_t bi = plan.offsets[i], ei = bi + std::max<uint64_t>(uses[i].bytes, 1);
    if (ei > plan.peak) return false;
    for (size_t j = i + 1; j < uses.size(); ++j) {
      if (!lifetimes_overlap(uses[i], uses[j])) continue;
      uint64_t bj = plan.offsets[j], ej = bj + std::max<uint64_t>(uses[j].bytes, 1);
      if (bi < ej && bj < ei) return false;
    }
  }
  return true;
}

}  // namespace kiln::backend
