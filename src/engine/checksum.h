// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of engine file headers and
// sections. Hardware accelerated (SSE4.2 crc32, three interleaved streams on large buffers) with a
// portable table version for builds without SSE4.2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::engine {

// CRC-32C of `n` bytes. `seed` is the CRC of the bytes before (0 to start), so
// crc32c(b, nb, crc32c(a, na)) == crc32c(a followed by b). crc32c("123456789", 9) == 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t seed = 0);

namespace detail {
// The portable byte-table implementation (the fallback without SSE4.2); exposed for tests.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t seed = 0);
// True when crc32c uses the SSE4.2 instruction.
bool crc32c_is_hardware();
}  // namespace detail

}  // namespace kiln::engine
