// The timing cache (backend/timing_cache.h): round trip, keys, another device or library version
// ignored, damaged and truncated files warned about and ignored (never a crash), atomic update.
#include "backend/timing_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln::backend {
namespace {

TimingDevice h200() {
  return {"NVIDIA H200", 90, 13000, 91900, 130000};
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_all(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

class TimingCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_timing_cache_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    path_ = (dir_ / "cache.json").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  TimingCache sample() {
    TimingCache c(h200());
    c.put("ai.onnx::Conv|a", {0x0100000000000101, 0.25, 8, 11});
    c.put("ai.onnx::MatMul|b", {0x0300000000012345, 1.5, 4, 4});
    return c;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(TimingCacheTest, RoundTrip) {
  TimingCache c = sample();
  ASSERT_TRUE(c.save(path_).ok());
  std::string warning;
  TimingCache back = TimingCache::load(path_, h200(), &warning);
  EXPECT_EQ(warning, "");
  ASSERT_EQ(back.size(), 2u);
  const TimingEntry* e = back.find("ai.onnx::Conv|a");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->tactic, 0x0100000000000101);
  EXPECT_DOUBLE_EQ(e->ms, 0.25);
  EXPECT_EQ(e->timed, 8);
  EXPECT_EQ(e->available, 11);
  EXPECT_EQ(back.find("nothing"), nullptr);
  EXPECT_EQ(back.serialize(), c.serialize());  // stable text: same cache, same bytes
}

TEST_F(TimingCacheTest, MissingFileIsAnEmptyCacheWithoutWarning) {
  std::string warning;
  TimingCache c = TimingCache::load((dir_ / "absent.json").string(), h200(), &warning);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(warning, "");
}

TEST_F(TimingCacheTest, AnotherDeviceOrLibraryIsIgnoredWithAWarning) {
  ASSERT_TRUE(sample().save(path_).ok());
  std::vector<TimingDevice> others(5, h200());
  others[0].gpu_name = "NVIDIA H100 80GB HBM3";
  others[1].sm = 80;
  others[2].cuda_runtime = 12080;
  others[3].cudnn = 90100;
  others[4].cublaslt = 120800;
  for (const TimingDevice& d : others) {
    std::string warning;
    TimingCache c = TimingCache::load(path_, d, &warning);
    EXPECT_EQ(c.size(), 0u) << d.describe();
    EXPECT_NE(warning.find("do not apply here"), std::string::npos) << warning;
  }
}

TEST_F(TimingCacheTest, DamagedFilesAreIgnoredWithAWarning) {
  ASSERT_TRUE(sample().save(path_).ok());
  const std::string good = read_all(path_);
  // Truncations (cutting only the final newline leaves a valid file).
  const size_t end = good.rfind('}');
  ASSERT_NE(end, std::string::npos);
  for (size_t n = 0; n <= end; n = n + 7 > end && n != end ? end : n + 7) {
    write_all(path_, good.substr(0, n));
    std::string warning;
    TimingCache c = TimingCache::load(path_, h200(), &warning);
    EXPECT_EQ(c.size(), 0u) << n;
    EXPECT_FALSE(warning.empty()) << n;
  }
  // Byte flips: never a crash; a cache that loads has the entries it had, or none.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x15);
    std::string warning;
    TimingCache c = TimingCache::parse(bad, h200(), &warning);
    if (warning.empty()) {
      EXPECT_EQ(c.size(), 2u) << i;  // a flip in whitespace-insensitive places only
    } else {
      EXPECT_EQ(c.size(), 0u) << i;
    }
  }
  for (const char* text :
       {"", "null", "[]", "{}", "{\"format\":\"kiln-timing-cache\"}",
        "{\"format\":\"kiln-timing-cache\",\"version\":2}", "\xff\xfe garbage"}) {
    std::string warning;
    TimingCache c = TimingCache::parse(text, h200(), &warning);
    EXPECT_EQ(c.size(), 0u) << text;
    EXPECT_FALSE(warning.empty()) << text;
  }
}

TEST_F(TimingCacheTest, EditedEntryFailsTheChecksum) {
  ASSERT_TRUE(sample().save(path_).ok());
  std::string text = read_all(path_);
  const size_t at = text.find("0.25");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 4, "0.75");
  std::string warning;
  TimingCache c = TimingCache::parse(text, h200(), &warning);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_NE(warning.find("checksum"), std::string::npos) << warning;
}

TEST_F(TimingCacheTest, SaveIsAtomicAndMergesTheFileOnDisk) {
  ASSERT_TRUE(sample().save(path_).ok());
  // Another build adds an entry in between; ours overrides where both have the key.
  TimingCache other(h200());
  other.put("ai.onnx::Gemm|c", {0x0300000000000001, 0.1, 2, 3});
  other.put("ai.onnx::Conv|a", {0x0100000000000001, 0.5, 8, 11});
  ASSERT_TRUE(other.save(path_).ok());
  TimingCache back = TimingCache::load(path_, h200(), nullptr);
  EXPECT_EQ(back.size(), 3u);
  EXPECT_EQ(back.find("ai.onnx::Conv|a")->tactic, 0x0100000000000001);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  // A damaged file on disk is replaced, not merged.
  write_all(path_, "{ damaged");
  ASSERT_TRUE(sample().save(path_).ok());
  std::string warning;
  EXPECT_EQ(TimingCache::load(path_, h200(), &warning).size(), 2u);
  EXPECT_EQ(warning, "");
  // An unwritable place is an error value.
  EXPECT_FALSE(sample().save((dir_ / "no" / "such" / "dir.json").string()).ok());
}

TEST(TuningKey, NamesOpAttributesShapesAndOptions) {
  ir::Graph g;
  ir::Node* n = g.add_node("Conv", "", "c");
  ir::Attribute strides;
  strides.name = "strides";
  strides.type = ir::AttrType::kInts;
  strides.ints = {2, 2};
  ir::Attribute group;
  group.name = "group";
  group.type = ir::AttrType::kInt;
  group.i = 1;
  n->attrs = {strides, group};
  std::vector<TensorSig> in = {
      {true, DType::kFloat16, {1, 64, 56, 56}}, {true, DType::kFloat16, {64, 64, 3, 3}}, {}};
  std::vector<TensorSig> out = {{true, DType::kFloat16, {1, 64, 28, 28}}};
  const std::string k = tuning_key(*n, in, out, true, 1 << 20);
  EXPECT_EQ(k,
            "ai.onnx::Conv|group=1;strides=[2,2]|in:float16[1,64,56,56],float16[64,64,3,3],-|"
            "out:float16[1,64,28,28]|tf32:1|ws:1048576");
  // Attribute order does not matter; every part does.
  n->attrs = {group, strides};
  EXPECT_EQ(tuning_key(*n, in, out, true, 1 << 20), k);
  EXPECT_NE(tuning_key(*n, in, out, false, 1 << 20), k);
  EXPECT_NE(tuning_key(*n, in, out, true, 1 << 21), k);
  in[0].shape[0] = 2;
  EXPECT_NE(tuning_key(*n, in, out, true, 1 << 20), k);
  in[0].shape[0] = 1;
  in[0].dtype = DType::kFloat32;
  EXPECT_NE(tuning_key(*n, in, out, true, 1 << 20), k);
  in[0].dtype = DType::kFloat16;
  n->attrs[0].i = 2;
  EXPECT_NE(tuning_key(*n, in, out, true, 1 << 20), k);
  n->attrs[0].i = 1;
  n->domain = "kiln";
  EXPECT_NE(tuning_key(*n, in, out, true, 1 << 20), k);
}

}  // namespace
}  // namespace kiln::backend
