// The engine file container: a checksummed header (magic, format version, build target, build
// options) and a table of sections (graph, weights, steps, ...), each 64-byte aligned (weights:
// 4096) so the file can be mmapped and its tensors used in place. Layout: docs/engine-format.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::engine {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
// Size of the fixed binary prefix of the header (its layout never changes between versions).
inline constexpr uint32_t kPrefixSize = 64;
// Size of one section table entry.
inline constexpr uint32_t kSectionEntrySize = 32;
// Alignment of sections in the file (the weights section: kWeightsSectionAlignment).
inline constexpr uint64_t kSectionAlignment = 64;
inline constexpr uint64_t kWeightsSectionAlignment = 4096;
// Section table entry flag: a reader that does not know the section's kind may ignore it.
inline constexpr uint32_t kSectionOptional = 1;

enum class SectionKind : uint32_t {
  kMeta = 1,
  kGraph = 2,
  kWeights = 3,
  kSteps = 4,
  kMemoryPlan = 5,
  kProfiles = 6,
  kKernels = 7
};
// "meta", "graph", "weights", "steps", "memory_plan", "profiles", "kernels"; "unknown" otherwise.
const char* section_kind_name(SectionKind k);
// True for the kinds above.
bool is_known_section_kind(uint32_t k);

struct TargetInfo {
  std::string device;    // "cpu" or "cuda"
  int sm = 0;            // e.g. 90 (cuda only)
  std::string gpu_name;  // "NVIDIA H100 80GB HBM3"
  int cuda_runtime = 0;  // cudaRuntimeGetVersion, e.g. 13000
  int cudnn = 0;         // cudnnGetVersion, e.g. 91400 (0: not used / not available)
  int cublaslt = 0;      // cublasLtGetVersion, e.g. 130100 (0: not used / not available)
  std::string cpu_isa;   // e.g. "x86-64-v3" (cpu and cuda: host code)
  bool operator==(const TargetInfo&) const = default;
};

struct EngineHeaderInfo {
  std::string kiln_version;  // KILN_VERSION
  TargetInfo target;
  std::string build_options;  // JSON text of the build options, shown by inspect
  bool operator==(const EngineHeaderInfo&) const = default;
};

class EngineWriter {
 public:
  // Adds (or replaces) a section. Each section is 64-byte aligned in the file (weights: 4096, so
  // the section could be mmapped on page bounds). Sections are laid out in the order added.
  void add_section(SectionKind kind, std::vector<uint8_t> bytes);
  // A section of any kind number, with table flags (kSectionOptional): for tests and for adding
  // kinds that older readers may skip.
  void add_raw_section(uint32_t kind, std::vector<uint8_t> bytes, uint32_t flags = 0);
  // The whole file in memory.
  StatusOr<std::vector<uint8_t>> serialize(const EngineHeaderInfo& header) const;
  // Writes to `path`.tmp, then renames it to `path` (a reader never sees a partial file).
  Status write(const std::string& path, const EngineHeaderInfo& header) const;

 private:
  struct Pending {
    uint32_t kind;
    uint32_t flags;
    std::vector<uint8_t> bytes;
  };
  struct Layout;
  StatusOr<Layout> layout(const EngineHeaderInfo& header) const;
  std::vector<Pending> sections_;
};

class EngineFile {
 public:
  struct SectionEntry {
    uint32_t kind = 0;
    uint32_t flags = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint32_t crc = 0;
  };

  // mmaps `path` (read-only) and verifies: magic (and says so when the file looks like an ONNX
  // model), header length, header CRC, format version, file size vs the recorded size
  // (truncated: both sizes), the section table (known or skippable kinds, inside the file,
  // aligned, non-overlapping) and each section's CRC (names the corrupted section). Errors start
  // with "<path>: ".
  static StatusOr<std::shared_ptr<EngineFile>> open(const std::string& path);
  // Same over bytes in memory (copied into a 4096-byte aligned buffer).
  static StatusOr<std::shared_ptr<EngineFile>> from_bytes(std::span<const uint8_t> bytes,
                                                          std::string name = "<memory>");

  const EngineHeaderInfo& header() const { return header_; }
  uint32_t format_version() const { return kFormatVersion; }
  bool has_section(SectionKind k) const;
  std::span<const uint8_t> section(SectionKind k) const;  // empty if absent
  // The table as stored (known kinds and skipped optional ones), for `kiln inspect`.
  const std::vector<SectionEntry>& sections() const { return entries_; }
  std::shared_ptr<const void> owner() const { return owner_; }  // keeps the mapping alive
  uint64_t file_size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  EngineFile() = default;
  static StatusOr<std::shared_ptr<EngineFile>> verify(std::shared_ptr<const void> owner,
                                                      const uint8_t* data, uint64_t size,
                                                      std::string path);
  std::string path_;
  EngineHeaderInfo header_;
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::vector<SectionEntry> entries_;
  std::map<uint32_t, std::span<const uint8_t>> by_kind_;
};

// Rewrites the recorded file size and every checksum (header and sections) of `bytes` to match
// its contents, as far as its framing can be read; a no-op on bytes without the magic. For
// fuzzing and its regression tests: a mutated file then reaches the decoders behind the checks.
void repair_framing(std::vector<uint8_t>& bytes);

// Compares the engine's target with this machine's: OK, or kDeviceMismatch with a message naming
// both sides and the remedy, e.g. "engine built for sm_90 (NVIDIA H100 80GB HBM3) with CUDA 13.0,
// cuDNN 9.14; this GPU is sm_89 (NVIDIA L4): rebuild it with `kiln build`". Rules: the device
// kind must match; for cuda the sm must match exactly, cuDNN and cuBLASLt major.minor must match
// (when the engine uses them: non-zero), the CUDA runtime major must match; a different gpu_name
// alone is a warning (OK, *warning filled). The engine's cpu_isa (when set) must be the same as
// this machine's or a subset of it (x86-64-v3 runs on v4).
Status check_target(const TargetInfo& engine, const TargetInfo& here,
                    std::string* warning = nullptr);

// Version pretty-printers: 91400 → "9.14.0" (cuDNN 8: 8906 → "8.9.6"), 13000 → "13.0",
// cuBLASLt 130100 → "13.1.0".
std::string cudnn_version_string(int v);
std::string cuda_version_string(int v);
std::string cublaslt_version_string(int v);

// x86-64 micro-architecture level of this CPU ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"),
// or the architecture name elsewhere.
std::string host_cpu_isa();
// Level this Kiln binary was compiled for (from the compiler's target macros).
std::string build_cpu_isa();

}  // namespace kiln::engine
