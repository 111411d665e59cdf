// CRC-32C: known vectors, chaining, and the hardware (3-stream) path against the portable table.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/checksum.h"

namespace kiln::engine {
namespace {

TEST(Crc32c, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(detail::crc32c_portable(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  std::vector<uint8_t> b(32, 0);
  EXPECT_EQ(crc32c(b.data(), 32), 0x8A9136AAu);
  std::fill(b.begin(), b.end(), 0xff);
  EXPECT_EQ(crc32c(b.data(), 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(b.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(detail::crc32c_portable(b.data(), 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crc32c(b.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(detail::crc32c_portable(b.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, HardwareMatchesPortableAtEverySizeAndAlignment) {
  std::printf("[ crc32c ] hardware path: %s\n", detail::crc32c_is_hardware() ? "SSE4.2" : "no");
  std::mt19937 rng(3);
  std::vector<uint8_t> buf(3 * 8192 * 3 + 3 * 256 * 2 + 64);
  for (auto& v : buf) v = static_cast<uint8_t>(rng());
  std::vector<size_t> sizes;
  for (size_t n = 0; n < 1100; ++n) sizes.push_back(n);
  // Around the three-way block sizes (3 x 256 and 3 x 8192) and their multiples.
  for (size_t block : {size_t{768}, size_t{24576}, size_t{49152}, size_t{73728}}) {
    for (size_t d = 0; d < 20; ++d) {
      sizes.push_back(block + d);
      sizes.push_back(block - d - 1);
    }
  }
  for (size_t n : sizes) {
    for (size_t offset : {size_t{0}, size_t{1}, size_t{7}, size_t{13}}) {
      if (offset + n > buf.size()) continue;
      const uint32_t seed = static_cast<uint32_t>(n * 2654435761u);
      ASSERT_EQ(crc32c(buf.data() + offset, n, seed),
                detail::crc32c_portable(buf.data() + offset, n, seed))
          << "n=" << n << " offset=" << offset;
    }
  }
}

TEST(Crc32c, ChainsAcrossSplits) {
  std::mt19937 rng(5);
  std::vector<uint8_t> buf(100000);
  for (auto& v : buf) v = static_cast<uint8_t>(rng());
  const uint32_t whole = crc32c(buf.data(), buf.size());
  for (size_t split :
       {size_t{0}, size_t{1}, size_t{4095}, size_t{24576}, size_t{77777}, buf.size()}) {
    EXPECT_EQ(crc32c(buf.data() + split, buf.size() - split, crc32c(buf.data(), split)), whole);
    EXPECT_EQ(detail::crc32c_portable(buf.data() + split, buf.size() - split,
                                      detail::crc32c_portable(buf.data(), split)),
              whole);
  }
  // A single flipped bit always changes the CRC.
  buf[50000] ^= 0x10;
  EXPECT_NE(crc32c(buf.data(), buf.size()), whole);
}

TEST(Crc32c, Throughput) {
  std::vector<uint8_t> buf(100u << 20);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 31 + (i >> 12));
  volatile uint32_t sink = crc32c(buf.data(), buf.size());  // warm the pages
  auto t0 = std::chrono::steady_clock::now();
  sink = crc32c(buf.data(), buf.size());
  const double hw = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();
  const uint32_t portable = detail::crc32c_portable(buf.data(), buf.size());
  const double sw = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(sink, portable);
  std::printf("[ crc32c ] 100 MiB: %.1f ms (%.1f GB/s); portable table: %.1f ms\n", hw * 1e3,
              buf.size() / hw / 1e9, sw * 1e3);
}

}  // namespace
}  // namespace kiln::engine
