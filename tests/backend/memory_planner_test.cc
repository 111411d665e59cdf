#include "backend/memory_planner.h"

#include <gtest/gtest.h>

#include <random>

namespace kiln::backend {
namespace {

TEST(MemoryPlanner, ChainReusesMemory) {
  // a -> b -> c -> d: each buffer lives for two steps; only two are ever live together.
  std::vector<BufferUse> uses = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  MemoryPlan p = plan_memory(uses);
  EXPECT_TRUE(plan_is_valid(uses, p));
  EXPECT_EQ(p.peak, 2 * 1024u);  // 1000 aligned to 256
  EXPECT_EQ(p.total, 4 * 1024u);
}

TEST(MemoryPlanner, DisjointLifetimesShareOneSlot) {
  std::vector<BufferUse> uses = {{512, 0, 0}, {256, 1, 1}, {512, 2, 2}};
  MemoryPlan p = plan_memory(uses);
  EXPECT_TRUE(plan_is_valid(uses, p));
  EXPECT_EQ(p.peak, 512u);
  for (uint64_t off : p.offsets) EXPECT_EQ(off, 0u);
}

TEST(MemoryPlanner, AllLiveNeedsTheSum) {
  std::vector<BufferUse> uses = {{300, 0, 5}, {700, 0, 5}, {100, 0, 5}};
  MemoryPlan p = plan_memory(uses);
  EXPECT_TRUE(plan_is_valid(uses, p));
  EXPECT_EQ(p.peak, 512u + 768u + 256u);
  for (uint64_t off : p.offsets) EXPECT_EQ(off % kArenaAlignment, 0u);
}

TEST(MemoryPlanner, FillsGapsBestFit) {
  // A big long-lived buffer and a hole left by a short-lived one: the later small buffer
  // reuses the hole instead of growing the arena.
  std::vector<BufferUse> uses = {{4096, 0, 10}, {1024, 0, 1}, {2048, 0, 10}, {1024, 2, 3}};
  MemoryPlan p = plan_memory(uses);
  EXPECT_TRUE(plan_is_valid(uses, p));
  EXPECT_EQ(p.peak, 4096u + 2048u + 1024u);
}

TEST(MemoryPlanner, RandomPlansAreValidAndNoWorseThanSum) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    int n = 1 + static_cast<int>(rng() % 60);
    std::vector<BufferUse> uses;
    for (int i = 0; i < n; ++i) {
      int first = static_cast<int>(rng() % 40);
      int len = static_cast<int>(rng() % 10);
      uses.push_back({static_cast<uint64_t>(rng() % 100000), first, first + len});
    }
    MemoryPlan p = plan_memory(uses);
    ASSERT_TRUE(plan_is_valid(uses, p)) << "trial " << trial;
    EXPECT_LE(p.peak, p.total);
    // The peak is at least the largest set of simultaneously live buffers.
    uint64_t lower = 0;
    for (int s = 0; s < 50; ++s) {
      uint64_t live = 0;
      for (const BufferUse& u : uses)
        if (u.first <= s && s <= u.last)
          live += (u.bytes + 255) / 256 * 256 + (u.bytes == 0 ? 256 : 0);
      lower = std::max(lower, live);
    }
    EXPECT_GE(p.peak, lower);
  }
}

TEST(MemoryPlanner, Deterministic) {
  std::vector<BufferUse> uses = {{100, 0, 3}, {100, 1, 2}, {100, 2, 5}, {100, 0, 0}};
  MemoryPlan a = plan_memory(uses), b = plan_memory(uses);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.peak, b.peak);
}

}  // namespace
}  // namespace kiln::backend
