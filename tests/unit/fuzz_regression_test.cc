// Inputs that once crashed a fuzz target (tests/data/fuzz_regressions/<target>/): each is fed to
// the same entry point as the target and must end cleanly. Under the sanitizer build this also
// checks that no out-of-bounds access or undefined behaviour is left.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/npy.h"
#include "engine/engine_file.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(KILN_SOURCE_DIR) / "tests/data/fuzz_regressions" / target;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The same limits as the fuzz targets.
constexpr uint64_t kFuzzMaxTensorBytes = uint64_t{64} << 20;

TEST(FuzzRegression, Onnx) {
  for (const fs::path& p : inputs("fuzz_onnx")) {
    SCOPED_TRACE(p.string());
    const std::vector<uint8_t> bytes = read_all(p);
    onnx::LoadOptions options;
    options.max_tensor_bytes = kFuzzMaxTensorBytes;
    auto m = onnx::load_model_from_bytes(bytes, p.filename().string(), {}, options);
    if (!m.ok()) EXPECT_FALSE(m.status().message().empty());
  }
}

TEST(FuzzRegression, Engine) {
  for (const fs::path& p : inputs("fuzz_engine")) {
    SCOPED_TRACE(p.string());
    std::vector<uint8_t> bytes = read_all(p);
    for (int repaired = 0; repaired < 2; ++repaired) {
      if (repaired) engine::repair_framing(bytes);
      auto e = Engine::deserialize(bytes);
      if (e.ok()) {
        auto ctx = e.value()->create_context();
        (void)ctx;
      } else {
        EXPECT_FALSE(e.status().message().empty());
      }
    }
  }
}

TEST(FuzzRegression, Npy) {
  for (const fs::path& p : inputs("fuzz_npy")) {
    SCOPED_TRACE(p.string());
    const std::vector<uint8_t> bytes = read_all(p);
    auto t = read_npy_from_bytes(bytes, p.filename().string(), kFuzzMaxTensorBytes);
    if (!t.ok()) EXPECT_FALSE(t.status().message().empty());
  }
}

TEST(FuzzRegression, ValueFile) {
  for (const fs::path& p : inputs("fuzz_pb")) {
    SCOPED_TRACE(p.string());
    const std::vector<uint8_t> bytes = read_all(p);
    if (bytes.empty()) continue;
    // The first byte picks the expected message, as in fuzz/fuzz_pb.cc.
    using ir::TypeInfo;
    TypeInfo expected;
    switch (bytes[0] % 5) {
      case 0:
        break;
      case 1:
        expected = TypeInfo::tensor(DType::kFloat32);
        break;
      case 2:
        expected = TypeInfo::sequence_of(TypeInfo::tensor(DType::kFloat32));
        break;
      case 3:
        expected = TypeInfo::optional_of(TypeInfo::tensor(DType::kFloat32));
        break;
      default:
        expected.kind = TypeInfo::Kind::kMap;
        expected.dtype = DType::kInt64;
        expected.elem = std::make_shared<TypeInfo>(TypeInfo::tensor(DType::kFloat32));
        break;
    }
    auto v = onnx::read_value_bytes(std::span<const uint8_t>(bytes).subspan(1),
                                    p.filename().string(), {}, nullptr, expected);
    if (!v.ok()) EXPECT_FALSE(v.status().message().empty());
  }
}

}  // namespace
}  // namespace kiln
