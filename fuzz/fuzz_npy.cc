// libFuzzer target: bytes → .npy reader.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = kiln::read_npy_from_bytes(std::span<const uint8_t>(data, size), "fuzz.npy",
                                     uint64_t{64} << 20);
  (void)t;
  return 0;
}
