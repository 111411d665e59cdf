// The engine file container: writer → open round trips, and refusals (not an engine, an ONNX
// model, other format versions, truncation at every length, every byte flip, bad section tables),
// target checks, and the time to open a 200 MB engine.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "backends/cpu/executor.h"
#include "engine/checksum.h"
#include "engine/engine_file.h"
#include "engine/graph_codec.h"
#include "onnx/importer.h"
#include "runtime/compare.h"
#include "unit/model_compare.h"

namespace fs = std::filesystem;

namespace kiln::engine {
namespace {

bool contains(const std::string& s, const std::string& w) {
  return s.find(w) != std::string::npos;
}
#define EXPECT_MSG_HAS(status, word)              \
  EXPECT_TRUE(contains((status).message(), word)) \
      << "missing '" << (word) << "' in: " << (status).message()

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("kiln_engine_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
void write_file(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

EngineHeaderInfo sample_header() {
  EngineHeaderInfo h;
  h.kiln_version = KILN_VERSION;
  h.target.device = "cuda";
  h.target.sm = 90;
  h.target.gpu_name = "NVIDIA H100 80GB HBM3";
  h.target.cuda_runtime = 13000;
  h.target.cudnn = 91400;
  h.target.cublaslt = 130100;
  h.target.cpu_isa = "x86-64-v3";
  h.build_options = R"({"precision":"fp16","workspace_mb":1024,"name":"caf\u00e9"})";
  return h;
}

struct Sample {
  EngineWriter writer;
  std::map<SectionKind, std::vector<uint8_t>> sections;
};

Sample sample_engine(size_t weights_bytes) {
  Sample s;
  s.sections[SectionKind::kMeta] = random_bytes(100, 1);
  s.sections[SectionKind::kGraph] = random_bytes(333, 2);
  s.sections[SectionKind::kWeights] = random_bytes(weights_bytes, 3);
  s.sections[SectionKind::kSteps] = {};
  s.sections[SectionKind::kKernels] = random_bytes(17, 4);
  for (SectionKind k : {SectionKind::kMeta, SectionKind::kGraph, SectionKind::kWeights,
                        SectionKind::kSteps, SectionKind::kKernels}) {
    s.writer.add_section(k, s.sections[k]);
  }
  return s;
}

// Header fields read back from serialized bytes.
uint32_t header_size_of(const std::vector<uint8_t>& b) {
  uint32_t v;
  std::memcpy(&v, b.data() + 12, 4);
  return v;
}
uint64_t table_offset_of(const std::vector<uint8_t>& b) {
  uint32_t payload;
  std::memcpy(&payload, b.data() + 28, 4);
  return (64 + payload + 7) / 8 * 8;
}
// Recomputes the header CRC after an edit.
void reseal(std::vector<uint8_t>& b) {
  std::memset(b.data() + 32, 0, 4);
  const uint32_t crc = crc32c(b.data(), header_size_of(b));
  std::memcpy(b.data() + 32, &crc, 4);
}
template <typename T>
void poke(std::vector<uint8_t>& b, size_t pos, T v) {
  std::memcpy(b.data() + pos, &v, sizeof v);
}

void expect_same(const EngineFile& f, const Sample& s, const EngineHeaderInfo& h) {
  EXPECT_EQ(f.header(), h);
  for (const auto& [kind, bytes] : s.sections) {
    EXPECT_TRUE(f.has_section(kind)) << section_kind_name(kind);
    auto got = f.section(kind);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), bytes) << section_kind_name(kind);
  }
  EXPECT_FALSE(f.has_section(SectionKind::kProfiles));
  EXPECT_TRUE(f.section(SectionKind::kProfiles).empty());
  for (const auto& e : f.sections()) {
    const uint64_t align = e.kind == static_cast<uint32_t>(SectionKind::kWeights) ? 4096 : 64;
    EXPECT_EQ(e.offset % align, 0u) << e.kind;
  }
}

TEST(EngineFile, WriteThenOpenGivesTheSameHeaderAndSections) {
  TempDir dir;
  Sample s = sample_engine(10000);
  const EngineHeaderInfo h = sample_header();
  const std::string path = dir.file("model.engine");
  ASSERT_TRUE(s.writer.write(path, h).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto bytes = s.writer.serialize(h);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(read_file(path), *bytes);

  auto f = EngineFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  expect_same(**f, s, h);
  EXPECT_EQ((*f)->file_size(), bytes->size());
  EXPECT_EQ((*f)->path(), path);
  // The mapping is page aligned, so the weights section is too.
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->section(SectionKind::kWeights).data()) % 4096, 0u);

  auto m = EngineFile::from_bytes(*bytes, "mem");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  expect_same(**m, s, h);
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*m)->section(SectionKind::kWeights).data()) % 4096, 0u);

  // Sections keep the bytes alive through owner() after the EngineFile is gone.
  auto owner = (*f)->owner();
  auto weights = (*f)->section(SectionKind::kWeights);
  f = Status(StatusCode::kInternal, "dropped");
  EXPECT_EQ(crc32c(weights.data(), weights.size()),
            crc32c(s.sections[SectionKind::kWeights].data(), weights.size()));

  // Overwriting an existing engine replaces it.
  Sample s2 = sample_engine(5);
  ASSERT_TRUE(s2.writer.write(path, h).ok());
  auto f2 = EngineFile::open(path);
  ASSERT_TRUE(f2.ok());
  expect_same(**f2, s2, h);
}

TEST(EngineFile, EmptyEngineAndCpuTarget) {
  EngineWriter w;
  EngineHeaderInfo h;
  h.target.device = "cpu";
  h.target.cpu_isa = build_cpu_isa();
  auto bytes = w.serialize(h);
  ASSERT_TRUE(bytes.ok());
  auto f = EngineFile::from_bytes(*bytes);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->header(), h);
  EXPECT_TRUE((*f)->sections().empty());
  EXPECT_EQ((*f)->file_size(), bytes->size());  // the header alone
}

TEST(EngineFile, ModelSurvivesTheEngineFile) {
  auto m = onnx::load_model(std::string(KILN_SOURCE_DIR) + "/models/example_if.onnx");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto enc = encode_model(**m);
  ASSERT_TRUE(enc.ok());
  EngineWriter w;
  w.add_section(SectionKind::kGraph, enc->graph);
  w.add_section(SectionKind::kWeights, enc->weights);
  TempDir dir;
  const std::string path = dir.file("example_if.kiln");
  ASSERT_TRUE(w.write(path, sample_header()).ok());
  std::unique_ptr<ir::Model> decoded;
  {
    auto f = EngineFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    auto d = decode_model((*f)->section(SectionKind::kGraph), (*f)->section(SectionKind::kWeights),
                          (*f)->owner());
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    decoded = std::move(d).value();
  }  // the EngineFile is gone; the tensors' views keep the mapping
  EXPECT_EQ(testing::diff_models(**m, *decoded), "");
  Tensor x = Tensor::zeros(DType::kFloat32, {1, 3, 32, 32});
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = std::sin(0.1f * i);
  std::vector<std::pair<std::string, Datum>> feeds = {{"x", Datum::of(x)}};
  auto e1 = cpu::Executor::create(*(*m)->graph);
  auto e2 = cpu::Executor::create(*decoded->graph);
  ASSERT_TRUE(e1.ok() && e2.ok());
  auto y1 = (*e1)->run(feeds);
  auto y2 = (*e2)->run(feeds);
  ASSERT_TRUE(y1.ok() && y2.ok());
  ASSERT_EQ(y1->size(), y2->size());
  for (size_t i = 0; i < y1->size(); ++i) EXPECT_EQ(compare_datum((*y1)[i], (*y2)[i], 0.0), "");
}

// ---------------------------------------------------------------- refusals

TEST(EngineFile, RefusesFilesThatAreNotEngines) {
  TempDir dir;
  write_file(dir.file("random.bin"), random_bytes(5000, 9));
  auto f = EngineFile::open(dir.file("random.bin"));
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), dir.file("random.bin") + ": ");
  EXPECT_MSG_HAS(f.status(), "not a Kiln engine file");
  EXPECT_FALSE(contains(f.status().message(), "ONNX"));

  write_file(dir.file("empty"), {});
  f = EngineFile::open(dir.file("empty"));
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), "not a Kiln engine file");

  f = EngineFile::open(dir.file("missing"));
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), "no such file");

  f = EngineFile::open(dir.file(""));
  ASSERT_FALSE(f.ok());

  const std::string text = "KILNENGINE? no, just text";
  f = EngineFile::from_bytes(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                             "notes.txt");
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), "notes.txt: not a Kiln engine file");
}

TEST(EngineFile, RefusesOnnxModelsAndSaysWhatToDo) {
  const std::string onnx_path = std::string(KILN_SOURCE_DIR) + "/models/example_if.onnx";
  auto f = EngineFile::open(onnx_path);
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), onnx_path + ": not a Kiln engine file");
  EXPECT_MSG_HAS(f.status(), "ONNX model");
  EXPECT_MSG_HAS(f.status(), "kiln build");
  // By content too, whatever the name.
  const fs::path suite = fs::is_directory("/work/data/node")
                             ? fs::path("/work/data/node")
                             : fs::path(KILN_BINARY_DIR) / "onnx-1.23.1" / "node";
  for (const char* name : {"test_abs", "test_if", "test_conv_with_strides_padding"}) {
    const fs::path p = suite / name / "model.onnx";
    if (!fs::exists(p)) continue;
    auto bytes = read_file(p.string());
    auto g = EngineFile::from_bytes(bytes, "renamed.engine");
    ASSERT_FALSE(g.ok());
    EXPECT_MSG_HAS(g.status(), "looks like an ONNX model");
    EXPECT_MSG_HAS(g.status(), "kiln build");
  }
}

TEST(EngineFile, RefusesOtherFormatVersions) {
  Sample s = sample_engine(100);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  for (uint32_t version : {2u, 7u, 0u}) {
    std::vector<uint8_t> b = *bytes;
    poke<uint32_t>(b, 8, version);
    reseal(b);
    auto f = EngineFile::from_bytes(b, "old.engine");
    ASSERT_FALSE(f.ok()) << version;
    EXPECT_MSG_HAS(f.status(), "old.engine: ");
    EXPECT_MSG_HAS(f.status(), "format version " + std::to_string(version));
    EXPECT_MSG_HAS(f.status(), "format version 1");
    EXPECT_MSG_HAS(f.status(), version > 1 ? "newer" : "older");
    EXPECT_MSG_HAS(f.status(), "rebuild it with `kiln build`");
  }
}

TEST(EngineFile, RefusesSmallEngineTruncatedAtEveryLength) {
  Sample s = sample_engine(100);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  const std::string full = std::to_string(bytes->size());
  for (size_t len = 0; len < bytes->size(); ++len) {
    auto f = EngineFile::from_bytes(std::span(bytes->data(), len), "t.engine");
    ASSERT_FALSE(f.ok()) << len;
    if (len == 0) {
      EXPECT_MSG_HAS(f.status(), "empty");
      continue;
    }
    EXPECT_MSG_HAS(f.status(), "t.engine: truncated");
    EXPECT_MSG_HAS(f.status(), std::to_string(len) + " bytes");
    if (len >= 64) {
      EXPECT_MSG_HAS(f.status(), full);
    }
  }
}

TEST(EngineFile, RefusesLargeEngineTruncated) {
  Sample s = sample_engine(8u << 20);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  const uint64_t n = bytes->size();
  std::vector<uint64_t> lengths = {
      1,     7,        8,    63, 64, 65, header_size_of(*bytes) - 1u, header_size_of(*bytes),
      n - 1, n - 4096, n / 2};
  std::mt19937_64 rng(11);
  while (lengths.size() < 200) lengths.push_back(rng() % n);
  TempDir dir;
  for (size_t i = 0; i < lengths.size(); ++i) {
    const uint64_t len = lengths[i];
    StatusOr<std::shared_ptr<EngineFile>> f = Status(StatusCode::kInternal, "unset");
    if (i < 10) {  // through real files for a few, in memory for the rest
      write_file(dir.file("cut.engine"), std::span(bytes->data(), len));
      f = EngineFile::open(dir.file("cut.engine"));
    } else {
      f = EngineFile::from_bytes(std::span(bytes->data(), len), "cut.engine");
    }
    ASSERT_FALSE(f.ok()) << len;
    EXPECT_MSG_HAS(f.status(), "cut.engine: truncated");
    EXPECT_MSG_HAS(f.status(), std::to_string(len) + " bytes");
    if (len >= 64) {
      EXPECT_MSG_HAS(f.status(), std::to_string(n));
    }
  }
}

// Where byte `pos` of the file lies: "magic", "header", a section name, or "padding".
std::string region_of(const EngineFile& f, const std::vector<uint8_t>& b, size_t pos) {
  if (pos < 8) return "magic";
  if (pos < header_size_of(b)) return "header";
  for (const auto& e : f.sections()) {
    if (pos >= e.offset && pos < e.offset + e.size) {
      return section_kind_name(static_cast<SectionKind>(e.kind));
    }
  }
  return "padding";
}

void expect_flip_refused(const EngineFile& good, const std::vector<uint8_t>& b, size_t pos,
                         const Status& st) {
  const std::string region = region_of(good, b, pos);
  const std::string at = "flip at " + std::to_string(pos) + " (" + region + "): ";
  ASSERT_FALSE(st.ok()) << at;
  EXPECT_MSG_HAS(st, "f.engine: ") << at;
  if (region == "magic") {
    EXPECT_MSG_HAS(st, "not a Kiln engine file") << at;
  } else if (region == "header") {
    EXPECT_MSG_HAS(st, "corrupted engine file") << at;
    EXPECT_MSG_HAS(st, "header") << at;
  } else if (region == "padding") {
    EXPECT_MSG_HAS(st, "corrupted engine file: nonzero padding") << at;
  } else {
    EXPECT_MSG_HAS(st, "corrupted engine file: section '" + region + "' checksum mismatch") << at;
  }
}

TEST(EngineFile, DetectsEveryByteFlipOfASmallEngine) {
  Sample s = sample_engine(300);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  auto good = EngineFile::from_bytes(*bytes, "f.engine");
  ASSERT_TRUE(good.ok());
  std::vector<uint8_t> b = *bytes;
  for (size_t pos = 0; pos < b.size(); ++pos) {
    for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}, uint8_t{0x40}}) {
      b[pos] ^= mask;
      auto f = EngineFile::from_bytes(b, "f.engine");
      expect_flip_refused(**good, *bytes, pos, f.status());
      b[pos] ^= mask;
    }
  }
}

TEST(EngineFile, DetectsSampledByteFlipsOfALargeEngine) {
  Sample s = sample_engine(4u << 20);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  auto good = EngineFile::from_bytes(*bytes, "f.engine");
  ASSERT_TRUE(good.ok());
  std::vector<uint8_t> b = *bytes;
  std::vector<size_t> positions;
  for (size_t pos = 0; pos < header_size_of(b); ++pos) positions.push_back(pos);
  std::mt19937_64 rng(13);
  for (int i = 0; i < 150; ++i) positions.push_back(rng() % b.size());
  for (const auto& e : (*good)->sections()) {
    if (e.size) positions.push_back(e.offset), positions.push_back(e.offset + e.size - 1);
  }
  for (size_t pos : positions) {
    b[pos] ^= 0x20;
    auto f = EngineFile::from_bytes(b, "f.engine");
    expect_flip_refused(**good, *bytes, pos, f.status());
    b[pos] ^= 0x20;
  }
}

TEST(EngineFile, SectionTableIsChecked) {
  Sample s = sample_engine(1000);
  auto bytes = s.writer.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  const uint64_t table = table_offset_of(*bytes);
  // Entries: meta, graph, weights, steps, kernels (in the order added).
  auto entry = [&](int i) { return static_cast<size_t>(table + 32u * static_cast<uint64_t>(i)); };
  auto refused = [&](std::vector<uint8_t> b, const std::string& word) {
    reseal(b);
    auto f = EngineFile::from_bytes(b, "t.engine");
    ASSERT_FALSE(f.ok()) << word;
    EXPECT_MSG_HAS(f.status(), "t.engine: ");
    EXPECT_MSG_HAS(f.status(), word);
  };
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint32_t>(b, entry(1), 1);  // graph entry claims to be meta
    refused(b, "section 'meta' is listed twice");
  }
  {
    std::vector<uint8_t> b = *bytes;
    uint64_t off;
    std::memcpy(&off, b.data() + entry(0) + 8, 8);
    poke<uint64_t>(b, entry(1) + 8, off);  // graph placed on meta
    refused(b, "section 'graph' overlaps section 'meta'");
  }
  {
    std::vector<uint8_t> b = *bytes;
    uint64_t off;
    std::memcpy(&off, b.data() + entry(2) + 8, 8);
    poke<uint64_t>(b, entry(2) + 8, off + 64);
    refused(b, "section 'weights' offset");
    refused(b, "4096-byte aligned");
  }
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint64_t>(b, entry(4) + 16, uint64_t{1} << 62);  // kernels size past the end
    refused(b, "section 'kernels'");
    refused(b, "outside the file");
  }
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint64_t>(b, entry(0) + 8, 64);  // meta inside the header
    refused(b, "section 'meta' [64, +100) overlaps the header");
  }
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint32_t>(b, entry(3) + 4, 6);
    refused(b, "unknown flags");
  }
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint32_t>(b, 24, 4);  // section count no longer matches the header length
    refused(b, "does not match");
  }
  {
    std::vector<uint8_t> b = *bytes;
    b.push_back(0);  // one byte more than recorded
    refused(b, "trailing bytes");
  }
  {
    std::vector<uint8_t> b = *bytes;
    poke<uint32_t>(b, 64, 1000000);  // the Kiln version string's length
    refused(b, "header payload malformed");
  }
}

TEST(EngineFile, UnknownSectionKinds) {
  EngineWriter w;
  w.add_section(SectionKind::kGraph, {1, 2, 3});
  w.add_raw_section(99, {4, 5}, kSectionOptional);
  auto bytes = w.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  auto f = EngineFile::from_bytes(*bytes);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->sections().size(), 2u);
  EXPECT_EQ((*f)->sections()[1].kind, 99u);
  EXPECT_EQ((*f)->section(SectionKind::kGraph).size(), 3u);

  EngineWriter w2;
  w2.add_raw_section(99, {4, 5});
  bytes = w2.serialize(sample_header());
  ASSERT_TRUE(bytes.ok());
  f = EngineFile::from_bytes(*bytes, "new.engine");
  ASSERT_FALSE(f.ok());
  EXPECT_MSG_HAS(f.status(), "new.engine: section of kind 99 is unknown to this Kiln");
  EXPECT_MSG_HAS(f.status(), "kiln build");
}

TEST(EngineFile, SectionNames) {
  EXPECT_STREQ(section_kind_name(SectionKind::kMeta), "meta");
  EXPECT_STREQ(section_kind_name(SectionKind::kGraph), "graph");
  EXPECT_STREQ(section_kind_name(SectionKind::kWeights), "weights");
  EXPECT_STREQ(section_kind_name(SectionKind::kSteps), "steps");
  EXPECT_STREQ(section_kind_name(SectionKind::kMemoryPlan), "memory_plan");
  EXPECT_STREQ(section_kind_name(SectionKind::kProfiles), "profiles");
  EXPECT_STREQ(section_kind_name(SectionKind::kKernels), "kernels");
  EXPECT_STREQ(section_kind_name(static_cast<SectionKind>(42)), "unknown");
}

// ---------------------------------------------------------------- targets

TargetInfo h100() {
  return sample_header().target;
}

TEST(CheckTarget, SameTargetMatches) {
  std::string warning = "stale";
  EXPECT_TRUE(check_target(h100(), h100(), &warning).ok());
  EXPECT_EQ(warning, "");
  // Patch releases and CUDA minor versions may differ.
  TargetInfo here = h100();
  here.cudnn = 91402;
  here.cublaslt = 130103;
  here.cuda_runtime = 13020;
  EXPECT_TRUE(check_target(h100(), here).ok());
  // A newer CPU runs host code built for an older level.
  here.cpu_isa = "x86-64-v4";
  EXPECT_TRUE(check_target(h100(), here).ok());
  // Libraries the engine does not use are not required.
  TargetInfo engine = h100();
  engine.cudnn = 0;
  here.cudnn = 0;
  EXPECT_TRUE(check_target(engine, here).ok());
}

TEST(CheckTarget, OtherGpuNameIsAWarning) {
  TargetInfo here = h100();
  here.gpu_name = "NVIDIA H100 PCIe";
  std::string warning;
  EXPECT_TRUE(check_target(h100(), here, &warning).ok());
  EXPECT_TRUE(contains(warning, "NVIDIA H100 80GB HBM3")) << warning;
  EXPECT_TRUE(contains(warning, "NVIDIA H100 PCIe")) << warning;
  EXPECT_TRUE(check_target(h100(), here).ok());  // no warning slot
}

TEST(CheckTarget, Mismatches) {
  TargetInfo l4 = h100();
  l4.sm = 89;
  l4.gpu_name = "NVIDIA L4";
  Status st = check_target(h100(), l4);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_EQ(st.message(),
            "engine built for sm_90 (NVIDIA H100 80GB HBM3) with CUDA 13.0, cuDNN 9.14; this GPU "
            "is sm_89 (NVIDIA L4): rebuild it with `kiln build`");

  TargetInfo here = h100();
  here.cudnn = 91000;
  st = check_target(h100(), here);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_MSG_HAS(st, "cuDNN 9.14");
  EXPECT_MSG_HAS(st, "cuDNN 9.10");
  EXPECT_MSG_HAS(st, "kiln build");

  here = h100();
  here.cudnn = 0;
  st = check_target(h100(), here);
  EXPECT_MSG_HAS(st, "no cuDNN");

  here = h100();
  here.cuda_runtime = 12080;
  st = check_target(h100(), here);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_MSG_HAS(st, "CUDA 13.0");
  EXPECT_MSG_HAS(st, "CUDA 12.8");

  here = h100();
  here.cublaslt = 130200;
  st = check_target(h100(), here);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_MSG_HAS(st, "cuBLASLt 13.1");
  EXPECT_MSG_HAS(st, "cuBLASLt 13.2");

  TargetInfo cpu;
  cpu.device = "cpu";
  cpu.cpu_isa = "x86-64-v3";
  st = check_target(h100(), cpu);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_MSG_HAS(st, "'cuda'");
  EXPECT_MSG_HAS(st, "'cpu'");
  EXPECT_MSG_HAS(st, "kiln build");
  st = check_target(cpu, h100());
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);

  TargetInfo old_cpu = cpu;
  old_cpu.cpu_isa = "x86-64-v2";
  st = check_target(cpu, old_cpu);
  ASSERT_EQ(st.code(), StatusCode::kDeviceMismatch);
  EXPECT_MSG_HAS(st, "x86-64-v3");
  EXPECT_MSG_HAS(st, "x86-64-v2");
  TargetInfo arm = cpu;
  arm.cpu_isa = "aarch64";
  EXPECT_EQ(check_target(cpu, arm).code(), StatusCode::kDeviceMismatch);
  EXPECT_EQ(check_target(arm, cpu).code(), StatusCode::kDeviceMismatch);
  TargetInfo v4 = cpu;
  v4.cpu_isa = "x86-64-v4";
  EXPECT_TRUE(check_target(cpu, v4).ok());
  EXPECT_EQ(check_target(v4, cpu).code(), StatusCode::kDeviceMismatch);
  // The host code of a cuda engine is checked too.
  here = h100();
  here.cpu_isa = "x86-64-v2";
  EXPECT_EQ(check_target(h100(), here).code(), StatusCode::kDeviceMismatch);
}

TEST(CheckTarget, ThisMachineRunsWhatThisBuildTargets) {
  TargetInfo engine, here;
  engine.device = here.device = "cpu";
  engine.cpu_isa = build_cpu_isa();
  here.cpu_isa = host_cpu_isa();
  std::printf("[ target ] build %s, host %s\n", engine.cpu_isa.c_str(), here.cpu_isa.c_str());
  EXPECT_TRUE(check_target(engine, here).ok()) << check_target(engine, here).to_string();
}

TEST(CheckTarget, VersionStrings) {
  EXPECT_EQ(cudnn_version_string(91400), "9.14.0");
  EXPECT_EQ(cudnn_version_string(90100), "9.1.0");
  EXPECT_EQ(cudnn_version_string(8906), "8.9.6");
  EXPECT_EQ(cuda_version_string(13000), "13.0");
  EXPECT_EQ(cuda_version_string(12080), "12.8");
  EXPECT_EQ(cuda_version_string(11020), "11.2");
  EXPECT_EQ(cublaslt_version_string(130100), "13.1.0");
  EXPECT_EQ(cublaslt_version_string(120804), "12.8.4");
}

// ---------------------------------------------------------------- timing

TEST(EngineFile, OpensA200MBEngineQuickly) {
  TempDir dir;
  const std::string path = dir.file("big.engine");
  {
    EngineWriter w;
    std::vector<uint8_t> weights(200u << 20);
    for (size_t i = 0; i < weights.size(); i += 8) {
      const uint64_t v = i * 0x9E3779B97F4A7C15ull;
      std::memcpy(weights.data() + i, &v, 8);
    }
    w.add_section(SectionKind::kGraph, random_bytes(4096, 5));
    w.add_section(SectionKind::kWeights, std::move(weights));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(w.write(path, sample_header()).ok());
    std::printf("[ engine file ] wrote 200 MiB in %.0f ms\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e3);
  }
  for (int round = 0; round < 2; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    auto f = EngineFile::open(path);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ((*f)->section(SectionKind::kWeights).size(), 200u << 20);
    std::printf(
        "[ engine file ] open (mmap + header and section CRCs) of a 200 MiB engine: %.1f ms\n",
        s * 1e3);
  }
}

}  // namespace
}  // namespace kiln::engine
