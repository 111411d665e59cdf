// Little-endian byte writer and bounds-checked reader for the engine file's binary sections.
// The reader never reads past its span: a read beyond the end (or a count that cannot fit in the
// bytes left) sets a sticky error, after which every read returns zero and every count returns 0.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::engine {

static_assert(std::endian::native == std::endian::little,
              "the engine file format is little-endian; this code assumes a little-endian host");

class ByteWriter {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i32(int32_t v) { put(&v, 4); }
  void i64(int64_t v) { put(&v, 8); }
  void f32(float v) { u32(std::bit_cast<uint32_t>(v)); }
  // u32 length, then the bytes.
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    put(s.data(), s.size());
  }
  void bytes(const void* p, size_t n) { put(p, n); }
  // Zero bytes up to a multiple of `align`.
  void pad_to(size_t align) {
    while (buf_.size() % align) buf_.push_back(0);
  }
  // Overwrites 4 bytes at `pos` (already written).
  void patch_u32(size_t pos, uint32_t v) { std::memcpy(buf_.data() + pos, &v, 4); }
  void patch_u64(size_t pos, uint64_t v) { std::memcpy(buf_.data() + pos, &v, 8); }

  size_t size() const { return buf_.size(); }
  std::vector<uint8_t>& buffer() { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  void put(const void* p, size_t n) {
    if (n == 0) return;
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  std::vector<uint8_t> buf_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> data) : data_(data) {}

  bool ok() const { return !failed_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return failed_ ? 0 : data_.size() - pos_; }
  bool at_end() const { return !failed_ && pos_ == data_.size(); }
  // Position of the first failure and what was being read ("" while ok).
  size_t error_pos() const { return error_pos_; }
  const std::string& error_what() const { return error_what_; }

  uint8_t u8(const char* what = "a byte") {
    uint8_t v = 0;
    get(&v, 1, what);
    return v;
  }
  uint16_t u16(const char* what = "a u16") { return read<uint16_t>(what); }
  uint32_t u32(const char* what = "a u32") { return read<uint32_t>(what); }
  uint64_t u64(const char* what = "a u64") { return read<uint64_t>(what); }
  int32_t i32(const char* what = "an i32") { return read<int32_t>(what); }
  int64_t i64(const char* what = "an i64") { return read<int64_t>(what); }
  float f32(const char* what = "a float") { return std::bit_cast<float>(u32(what)); }
  std::string str(const char* what = "a string") {
    const uint32_t n = u32(what);
    if (!check(n, what)) return {};
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // A view of the next `n` bytes (empty on failure).
  std::span<const uint8_t> bytes(uint64_t n, const char* what = "bytes") {
    if (!check(n, what)) return {};
    auto s = data_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  // A u32 element count whose elements take at least `min_elem_bytes` each: fails (and returns 0)
  // when they could not fit in the bytes left, so callers may reserve `count` before reading.
  uint32_t count(size_t min_elem_bytes, const char* what = "a count") {
    const uint32_t n = u32(what);
    if (failed_) return 0;
    if (min_elem_bytes > 0 && n > remaining() / min_elem_bytes) {
      fail(what);
      return 0;
    }
    return n;
  }
  // Marks the reader failed (for inconsistencies found by the caller).
  void fail(const char* what) {
    if (failed_) return;
    failed_ = true;
    error_pos_ = pos_;
    error_what_ = what;
  }

 private:
  template <typename T>
  T read(const char* what) {
    T v{};
    get(&v, sizeof(T), what);
    return v;
  }
  bool check(uint64_t n, const char* what) {
    if (failed_) return false;
    if (n > data_.size() - pos_) {
      fail(what);
      return false;
    }
    return true;
  }
  void get(void* out, size_t n, const char* what) {
    if (!check(n, what)) return;
    std::memcpy(out, data_.data() + pos_, n);
    pos_ += n;
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool failed_ = false;
  size_t error_pos_ = 0;
  std::string error_what_;
};

// A copy of `bytes` in a buffer aligned to `align` (a power of two), kept alive by the returned
// handle; `*out` points at the copy.
inline std::shared_ptr<const void> aligned_copy(std::span<const uint8_t> bytes, size_t align,
                                                const uint8_t** out) {
  const size_t n = bytes.size();
  const size_t size = n + (align - n % align) % align;
  if (size < n) throw std::bad_alloc();
  auto* p =
      static_cast<uint8_t*>(::operator new(size == 0 ? align : size, std::align_val_t(align)));
  if (n) std::memcpy(p, bytes.data(), n);
  std::memset(p + n, 0, size - n);
  *out = static_cast<const uint8_t*>(p);
  return std::shared_ptr<const void>(p, [align](const void* q) {
    ::operator delete(const_cast<void*>(q), std::align_val_t(align));
  });
}

}  // namespace kiln::engine
