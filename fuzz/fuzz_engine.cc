// libFuzzer target: bytes → engine file (header, section table, sections) → graph decoding and
// CPU engine set-up (Engine::deserialize). Each input is tried as is (the framing checks) and with
// its size and checksums repaired (engine::repair_framing), so that mutations reach the decoders
// behind the checksums.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/engine_file.h"
#include "kiln/kiln.h"

namespace {

void try_engine(std::span<const uint8_t> bytes) {
  auto engine = kiln::Engine::deserialize(bytes);
  if (engine.ok()) {
    auto ctx = engine.value()->create_context();
    (void)ctx;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try_engine(std::span<const uint8_t>(data, size));
  std::vector<uint8_t> repaired(data, data + size);
  kiln::engine::repair_framing(repaired);
  try_engine(repaired);
  return 0;
}
