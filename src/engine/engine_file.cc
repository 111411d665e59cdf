#include "engine/engine_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/check.h"
#include "engine/byte_io.h"
#include "engine/checksum.h"

namespace kiln::engine {
namespace {

// Offsets of the fixed prefix fields.
constexpr size_t kOffVersion = 8;
constexpr size_t kOffHeaderSize = 12;
constexpr size_t kOffFileSize = 16;
constexpr size_t kOffSectionCount = 24;
constexpr size_t kOffPayloadSize = 28;
constexpr size_t kOffHeaderCrc = 32;
// Most sections a file may list (a sanity bound, far above the kinds that exist).
constexpr uint32_t kMaxSections = 1024;
// Largest header payload (target strings and build options).
constexpr uint32_t kMaxPayload = 16u << 20;

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}
uint64_t section_alignment(uint32_t kind) {
  return kind == static_cast<uint32_t>(SectionKind::kWeights) ? kWeightsSectionAlignment
                                                              : kSectionAlignment;
}

uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t rd64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string kind_label(uint32_t kind) {
  if (is_known_section_kind(kind)) {
    return std::string("'") + section_kind_name(static_cast<SectionKind>(kind)) + "'";
  }
  return "of kind " + std::to_string(kind);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A protobuf ModelProto starts with field 1 (ir_version, varint: tag 0x08) or, in files written
// field by field in another order, with a short tag such as producer_name (0x12) or graph (0x3a);
// either way it is not the magic. The first bytes of an ONNX file also tend to hold "onnx",
// "pytorch", "tf2onnx", "skl2onnx"... among the first few hundred bytes.
bool looks_like_onnx(const uint8_t* data, uint64_t size, const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0) return true;
  if (size >= 2 && data[0] == 0x08 && data[1] >= 1 && data[1] <= 20) return true;
  const std::string head(reinterpret_cast<const char*>(data),
                         static_cast<size_t>(std::min<uint64_t>(size, 512)));
  for (const char* w : {"onnx", "pytorch", "ai.onnx", "keras2onnx"}) {
    if (head.find(w) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

const char* section_kind_name(SectionKind k) {
  switch (k) {
    case SectionKind::kMeta:
      return "meta";
    case SectionKind::kGraph:
      return "graph";
    case SectionKind::kWeights:
      return "weights";
    case SectionKind::kSteps:
      return "steps";
    case SectionKind::kMemoryPlan:
      return "memory_plan";
    case SectionKind::kProfiles:
      return "profiles";
    case SectionKind::kKernels:
      return "kernels";
  }
  return "unknown";
}

bool is_known_section_kind(uint32_t k) {
  return k >= static_cast<uint32_t>(SectionKind::kMeta) &&
         k <= static_cast<uint32_t>(SectionKind::kKernels);
}

// ---------------------------------------------------------------- writer

struct EngineWriter::Layout {
  std::vector<uint8_t> header;  // prefix + payload + table, CRC filled
  std::vector<uint64_t> offsets;
  uint64_t file_size = 0;
};

void EngineWriter::add_section(SectionKind kind, std::vector<uint8_t> bytes) {
  add_raw_section(static_cast<uint32_t>(kind), std::move(bytes), 0);
}

void EngineWriter::add_raw_section(uint32_t kind, std::vector<uint8_t> bytes, uint32_t flags) {
  for (Pending& p : sections_) {
    if (p.kind == kind) {
      p.bytes = std::move(bytes);
      p.flags = flags;
      return;
    }
  }
  sections_.push_back(Pending{kind, flags, std::move(bytes)});
}

StatusOr<EngineWriter::Layout> EngineWriter::layout(const EngineHeaderInfo& header) const {
  ByteWriter payload;
  payload.str(header.kiln_version);
  payload.str(header.target.device);
  payload.i32(header.target.sm);
  payload.str(header.target.gpu_name);
  payload.i32(header.target.cuda_runtime);
  payload.i32(header.target.cudnn);
  payload.i32(header.target.cublaslt);
  payload.str(header.target.cpu_isa);
  payload.str(header.build_options);
  if (payload.size() > kMaxPayload) {
    return invalid_argument("engine header too large (" + std::to_string(payload.size()) +
                            " bytes of target and build options)");
  }
  if (sections_.size() > kMaxSections) return invalid_argument("too many engine sections");

  const uint64_t payload_size = payload.size();
  const uint64_t table_offset = align_up(kPrefixSize + payload_size, 8);
  const uint64_t header_size = table_offset + kSectionEntrySize * sections_.size();

  Layout out;
  uint64_t cursor = header_size;
  for (const Pending& p : sections_) {
    cursor = align_up(cursor, section_alignment(p.kind));
    out.offsets.push_back(cursor);
    cursor += p.bytes.size();
  }
  out.file_size = cursor;

  ByteWriter h;
  h.bytes(kMagic, 8);
  h.u32(kFormatVersion);
  h.u32(static_cast<uint32_t>(header_size));
  h.u64(out.file_size);
  h.u32(static_cast<uint32_t>(sections_.size()));
  h.u32(static_cast<uint32_t>(payload_size));
  h.u32(0);  // header CRC, patched below
  h.u32(0);  // reserved
  h.pad_to(kPrefixSize);
  h.bytes(payload.buffer().data(), payload.size());
  h.pad_to(8);
  for (size_t i = 0; i < sections_.size(); ++i) {
    const Pending& p = sections_[i];
    h.u32(p.kind);
    h.u32(p.flags);
    h.u64(out.offsets[i]);
    h.u64(p.bytes.size());
    h.u32(crc32c(p.bytes.data(), p.bytes.size()));
    h.u32(0);
  }
  KILN_CHECK(h.size() == header_size);
  h.patch_u32(kOffHeaderCrc, crc32c(h.buffer().data(), h.size()));
  out.header = h.take();
  return out;
}

StatusOr<std::vector<uint8_t>> EngineWriter::serialize(const EngineHeaderInfo& header) const {
  KILN_ASSIGN_OR_RETURN(Layout l, layout(header));
  std::vector<uint8_t> out(static_cast<size_t>(l.file_size), 0);
  std::memcpy(out.data(), l.header.data(), l.header.size());
  for (size_t i = 0; i < sections_.size(); ++i) {
    const auto& b = sections_[i].bytes;
    if (!b.empty()) std::memcpy(out.data() + l.offsets[i], b.data(), b.size());
  }
  return out;
}

namespace {

Status write_all(int fd, const void* data, size_t n, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(path + ": cannot write: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Status EngineWriter::write(const std::string& path, const EngineHeaderInfo& header) const {
  KILN_ASSIGN_OR_RETURN(Layout l, layout(header));
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(tmp + ": cannot create: " + std::strerror(errno));
  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  Status st = write_all(fd, l.header.data(), l.header.size(), tmp);
  uint64_t pos = l.header.size();
  static const std::vector<uint8_t> zeros(kWeightsSectionAlignment, 0);
  for (size_t i = 0; i < sections_.size() && st.ok(); ++i) {
    st = write_all(fd, zeros.data(), static_cast<size_t>(l.offsets[i] - pos), tmp);
    const auto& b = sections_[i].bytes;
    if (st.ok()) st = write_all(fd, b.data(), b.size(), tmp);
    pos = l.offsets[i] + b.size();
  }
  if (!st.ok()) return fail(st);
  if (::fsync(fd) != 0) return fail(io_error(tmp + ": cannot sync: " + std::strerror(errno)));
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return io_error(tmp + ": cannot close: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return io_error(path + ": cannot rename " + tmp + " to it: " + err);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- reader

StatusOr<std::shared_ptr<EngineFile>> EngineFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found(path + ": no such file");
    return io_error(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + ": not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return invalid_argument(path + ": not a Kiln engine file (the file is empty)");
  }
  int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
  flags |= MAP_POPULATE;  // every byte is read by the CRC check anyway: fault the pages in bulk
#endif
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, flags, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) return io_error(path + ": cannot mmap: " + std::strerror(err));
  const size_t len = static_cast<size_t>(size);
  std::shared_ptr<const void> owner(p,
                                    [len](const void* q) { ::munmap(const_cast<void*>(q), len); });
  return verify(std::move(owner), static_cast<const uint8_t*>(p), size, path);
}

StatusOr<std::shared_ptr<EngineFile>> EngineFile::from_bytes(std::span<const uint8_t> bytes,
                                                             std::string name) {
  const uint8_t* data = nullptr;
  std::shared_ptr<const void> owner = aligned_copy(bytes, kWeightsSectionAlignment, &data);
  return verify(std::move(owner), data, bytes.size(), std::move(name));
}

StatusOr<std::shared_ptr<EngineFile>> EngineFile::verify(std::shared_ptr<const void> owner,
                                                         const uint8_t* data, uint64_t size,
                                                         std::string path) {
  const std::string& P = path;
  auto corrupt = [&](const std::string& what) {
    return invalid_model(P + ": corrupted engine file: " + what + ": rebuild it with `kiln build`");
  };
  // Magic.
  if (size == 0) return invalid_argument(P + ": not a Kiln engine file (the file is empty)");
  const uint64_t magic_len = std::min<uint64_t>(size, 8);
  if (std::memcmp(data, kMagic, static_cast<size_t>(magic_len)) != 0) {
    if (looks_like_onnx(data, size, path)) {
      return invalid_argument(P +
                              ": not a Kiln engine file: it looks like an ONNX model; build "
                              "an engine from it with `kiln build`");
    }
    return invalid_argument(P +
                            ": not a Kiln engine file (it does not start with the KILNENG "
                            "magic)");
  }
  if (size < kPrefixSize) {
    return invalid_model(P + ": truncated engine file: the file has " + std::to_string(size) +
                         " bytes, less than the " + std::to_string(kPrefixSize) +
                         "-byte header prefix");
  }
  const uint32_t version = rd32(data + kOffVersion);
  const uint32_t header_size = rd32(data + kOffHeaderSize);
  const uint64_t recorded_size = rd64(data + kOffFileSize);
  const uint32_t count = rd32(data + kOffSectionCount);
  const uint32_t payload_size = rd32(data + kOffPayloadSize);
  const uint32_t stored_crc = rd32(data + kOffHeaderCrc);
  if (header_size < kPrefixSize || header_size > recorded_size) {
    return corrupt("the header length (" + std::to_string(header_size) +
                   " bytes) does not fit the recorded file size (" + std::to_string(recorded_size) +
                   " bytes)");
  }
  if (size < header_size) {
    return invalid_model(P + ": truncated engine file: the file has " + std::to_string(size) +
                         " bytes, its header records " + std::to_string(recorded_size) +
                         " (the header alone needs " + std::to_string(header_size) + ")");
  }
  // Header CRC (the CRC field reads as zero).
  uint32_t crc = crc32c(data, kOffHeaderCrc);
  const uint8_t zero[4] = {0, 0, 0, 0};
  crc = crc32c(zero, 4, crc);
  crc = crc32c(data + kOffHeaderCrc + 4, header_size - kOffHeaderCrc - 4, crc);
  if (crc != stored_crc) {
    return corrupt("header checksum mismatch (stored " + hex32(stored_crc) + ", computed " +
                   hex32(crc) + ")");
  }
  if (version != kFormatVersion) {
    return invalid_argument(
        P + ": engine format version " + std::to_string(version) + " is " +
        (version > kFormatVersion ? "newer" : "older") +
        " than this Kiln (" KILN_VERSION ") reads (format version " +
        std::to_string(kFormatVersion) + "): rebuild it with `kiln build`" +
        (version > kFormatVersion ? " from this Kiln, or use a newer Kiln" : ""));
  }
  if (size < recorded_size) {
    return invalid_model(P + ": truncated engine file: the file has " + std::to_string(size) +
                         " bytes, its header records " + std::to_string(recorded_size));
  }
  if (size > recorded_size) {
    return corrupt("the file has " + std::to_string(size) + " bytes, its header records " +
                   std::to_string(recorded_size) + " (trailing bytes)");
  }
  if (count > kMaxSections) return corrupt(std::to_string(count) + " sections listed");
  const uint64_t table_offset = align_up(uint64_t{kPrefixSize} + payload_size, 8);
  if (table_offset + uint64_t{kSectionEntrySize} * count != header_size) {
    return corrupt("header length " + std::to_string(header_size) + " does not match " +
                   std::to_string(payload_size) + " payload bytes and " + std::to_string(count) +
                   " sections");
  }

  auto file = std::shared_ptr<EngineFile>(new EngineFile());
  file->path_ = path;
  file->owner_ = std::move(owner);
  file->data_ = data;
  file->size_ = size;

  // Header payload.
  ByteReader r(std::span<const uint8_t>(data + kPrefixSize, payload_size));
  EngineHeaderInfo& h = file->header_;
  h.kiln_version = r.str("the Kiln version");
  h.target.device = r.str("the target device");
  h.target.sm = r.i32("the target sm");
  h.target.gpu_name = r.str("the GPU name");
  h.target.cuda_runtime = r.i32("the CUDA runtime version");
  h.target.cudnn = r.i32("the cuDNN version");
  h.target.cublaslt = r.i32("the cuBLASLt version");
  h.target.cpu_isa = r.str("the CPU ISA");
  h.build_options = r.str("the build options");
  if (!r.ok()) return corrupt("header payload malformed while reading " + r.error_what());
  if (!r.at_end())
    return corrupt("header payload has " + std::to_string(r.remaining()) + " extra bytes");

  // Section table.
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = data + table_offset + uint64_t{kSectionEntrySize} * i;
    SectionEntry s;
    s.kind = rd32(e);
    s.flags = rd32(e + 4);
    s.offset = rd64(e + 8);
    s.size = rd64(e + 16);
    s.crc = rd32(e + 24);
    const std::string label = "section " + kind_label(s.kind);
    if (s.flags & ~kSectionOptional) {
      return corrupt(label + " has unknown flags " + hex32(s.flags));
    }
    if (!is_known_section_kind(s.kind) && !(s.flags & kSectionOptional)) {
      return invalid_argument(P + ": " + label +
                              " is unknown to this Kiln (" KILN_VERSION
                              "): the engine needs a newer Kiln; rebuild it with `kiln build`");
    }
    const std::string range =
        " [" + std::to_string(s.offset) + ", +" + std::to_string(s.size) + ")";
    if (s.offset % section_alignment(s.kind) != 0) {
      return corrupt(label + " offset " + std::to_string(s.offset) + " is not " +
                     std::to_string(section_alignment(s.kind)) + "-byte aligned");
    }
    if (s.offset < header_size) {
      return corrupt(label + range + " overlaps the header (" + std::to_string(header_size) +
                     " bytes)");
    }
    if (s.offset > size || s.size > size - s.offset) {
      return corrupt(label + range + " lies outside the file (" + std::to_string(size) + " bytes)");
    }
    for (const SectionEntry& o : file->entries_) {
      if (o.kind == s.kind) return corrupt(label + " is listed twice");
      if (s.offset < o.offset + o.size && o.offset < s.offset + s.size) {
        return corrupt(label + " overlaps section " + kind_label(o.kind));
      }
    }
    file->entries_.push_back(s);
  }
  // Padding: every byte outside the header and the sections is zero, so that no byte of the file
  // escapes a check.
  {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const SectionEntry& s : file->entries_) spans.emplace_back(s.offset, s.offset + s.size);
    std::sort(spans.begin(), spans.end());
    uint64_t pos = header_size;
    auto zero_until = [&](uint64_t end) -> uint64_t {
      for (; pos < end; ++pos)
        if (data[pos] != 0) return pos;
      return 0;
    };
    for (const auto& [begin, end] : spans) {
      if (uint64_t bad = zero_until(begin))
        return corrupt("nonzero padding at byte " + std::to_string(bad));
      pos = std::max(pos, end);
    }
    if (uint64_t bad = zero_until(size))
      return corrupt("nonzero padding at byte " + std::to_string(bad));
  }
  // Section checksums.
  for (const SectionEntry& s : file->entries_) {
    const uint32_t c = crc32c(data + s.offset, static_cast<size_t>(s.size));
    if (c != s.crc) {
      return corrupt("section " + kind_label(s.kind) + " checksum mismatch (stored " +
                     hex32(s.crc) + ", computed " + hex32(c) + ")");
    }
    if (is_known_section_kind(s.kind)) {
      file->by_kind_[s.kind] =
          std::span<const uint8_t>(data + s.offset, static_cast<size_t>(s.size));
    }
  }
  return file;
}

bool EngineFile::has_section(SectionKind k) const {
  return by_kind_.count(static_cast<uint32_t>(k)) != 0;
}

std::span<const uint8_t> EngineFile::section(SectionKind k) const {
  auto it = by_kind_.find(static_cast<uint32_t>(k));
  return it == by_kind_.end() ? std::span<const uint8_t>() : it->second;
}

void repair_framing(std::vector<uint8_t>& bytes) {
  const uint64_t size = bytes.size();
  if (size < kPrefixSize || std::memcmp(bytes.data(), kMagic, 8) != 0) return;
  uint8_t* data = bytes.data();
  std::memcpy(data + kOffFileSize, &size, 8);
  const uint32_t header_size = rd32(data + kOffHeaderSize);
  const uint32_t count = rd32(data + kOffSectionCount);
  const uint32_t payload_size = rd32(data + kOffPayloadSize);
  const uint64_t table_offset = align_up(uint64_t{kPrefixSize} + payload_size, 8);
  // Section CRCs first (they are part of the header's).
  if (count <= kMaxSections && table_offset + uint64_t{kSectionEntrySize} * count <= size) {
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t* e = data + table_offset + uint64_t{kSectionEntrySize} * i;
      const uint64_t off = rd64(e + 8);
      const uint64_t len = rd64(e + 16);
      if (off > size || len > size - off) continue;
      const uint32_t c = crc32c(data + off, static_cast<size_t>(len));
      std::memcpy(e + 24, &c, 4);
    }
  }
  if (header_size < kPrefixSize || header_size > size) return;
  std::memset(data + kOffHeaderCrc, 0, 4);
  const uint32_t crc = crc32c(data, header_size);
  std::memcpy(data + kOffHeaderCrc, &crc, 4);
}

}  // namespace kiln::engine
