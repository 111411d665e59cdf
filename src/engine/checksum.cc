#include "engine/checksum.h"

#include <array>
#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace kiln::engine {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed

// Slicing-by-8 tables: kTables[0] is the classic byte table; kTables[k][b] is the CRC register
// contribution of byte b followed by k zero bytes.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][b] = c;
    }
    for (int k = 1; k < 8; ++k) {
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
};
constexpr Tables kTables;

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Works on the raw register (no pre/post inversion).
uint32_t portable_update(uint32_t c, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    c ^= load32(p);
    const uint32_t hi = load32(p + 4);
    c = t[7][c & 0xff] ^ t[6][(c >> 8) & 0xff] ^ t[5][(c >> 16) & 0xff] ^ t[4][c >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__SSE4_2__)

inline uint32_t hw_update(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// Z(s): the register after feeding `kBytes` zero bytes to register state s. Linear in s over
// GF(2), so it is a table lookup per byte of s (4 x 256 entries built from the 32 unit states).
template <size_t kBytes>
struct ZeroShift {
  static_assert(kBytes % 8 == 0);
  std::array<std::array<uint32_t, 256>, 4> t{};
  ZeroShift() {
    uint32_t unit[32];
    for (int bit = 0; bit < 32; ++bit) {
      uint64_t c = uint32_t{1} << bit;
      for (size_t i = 0; i < kBytes / 8; ++i) c = _mm_crc32_u64(c, 0);
      unit[bit] = static_cast<uint32_t>(c);
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t v = 0;
        for (int bit = 0; bit < 8; ++bit)
          if (b & (1u << bit)) v ^= unit[8 * k + bit];
        t[static_cast<size_t>(k)][b] = v;
      }
    }
  }
  uint32_t operator()(uint32_t s) const {
    return t[0][s & 0xff] ^ t[1][(s >> 8) & 0xff] ^ t[2][(s >> 16) & 0xff] ^ t[3][s >> 24];
  }
};

// Three independent streams over consecutive blocks of kBytes, combined by zero-extension:
// crc(A|B|C) = Z(Z(crc(A)) ^ crc0(B)) ^ crc0(C), crc0 starting from a zero register.
template <size_t kBytes>
uint32_t hw_three_way(uint32_t crc, const uint8_t*& p, size_t& n) {
  static const ZeroShift<kBytes> shift;
  while (n >= 3 * kBytes) {
    uint64_t a = crc, b = 0, c = 0;
    const uint8_t* pa = p;
    const uint8_t* pb = p + kBytes;
    const uint8_t* pc = p + 2 * kBytes;
    for (size_t i = 0; i < kBytes; i += 8) {
      a = _mm_crc32_u64(a, load64(pa + i));
      b = _mm_crc32_u64(b, load64(pb + i));
      c = _mm_crc32_u64(c, load64(pc + i));
    }
    crc = shift(shift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
          static_cast<uint32_t>(c);
    p += 3 * kBytes;
    n -= 3 * kBytes;
  }
  return crc;
}

#endif

}  // namespace

namespace detail {

uint32_t crc32c_portable(const void* data, size_t n, uint32_t seed) {
  return ~portable_update(~seed, static_cast<const uint8_t*>(data), n);
}

bool crc32c_is_hardware() {
#if defined(__SSE4_2__)
  return true;
#else
  return false;
#endif
}

}  // namespace detail

uint32_t crc32c(const void* data, size_t n, uint32_t seed) {
#if defined(__SSE4_2__)
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~seed;
  c = hw_three_way<8192>(c, p, n);
  c = hw_three_way<256>(c, p, n);
  return ~hw_update(c, p, n);
#else
  return detail::crc32c_portable(data, n, seed);
#endif
}

}  // namespace kiln::engine
