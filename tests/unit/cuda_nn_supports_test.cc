// The CUDA nn/misc kernels accept the ONNX node conformance cases of their ops (supports() is
// host-only, so this runs without a GPU), and refuse exactly the variants they do not implement.
#include <gtest/gtest.h>

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "onnx/importer.h"

namespace kiln {
namespace {

const char* kNodeDir = "/work/data/node";

bool starts_with(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

// Cases of these ops whose first node the CUDA backend must accept.
bool is_candidate(const std::string& name) {
  static const char* prefixes[] = {"test_conv_",
                                   "test_convtranspose",
                                   "test_matmul_",
                                   "test_gemm_",
                                   "test_maxpool_",
                                   "test_averagepool_",
                                   "test_lppool_",
                                   "test_globalaveragepool",
                                   "test_globalmaxpool",
                                   "test_layer_normalization_",
                                   "test_batchnorm_",
                                   "test_instancenorm",
                                   "test_group_normalization_",
                                   "test_rms_normalization_",
                                   "test_lpnormalization",
                                   "test_einsum_",
                                   "test_attention_",
                                   "test_lstm_",
                                   "test_gru_",
                                   "test_rnn_",
                                   "test_simple_rnn_",
                                   "test_nonmaxsuppression_"};
  if (name.find("expanded") != std::string::npos) return false;
  for (const char* p : prefixes) {
    if (starts_with(name, p)) return true;
  }
  return false;
}

// Variants refused on purpose (they run on the CPU backend).
const std::set<std::string> kRefused = {
    "test_maxpool_2d_uint8",                 // integer pooling
    "test_batchnorm_epsilon_training_mode",  // training outputs
    "test_batchnorm_example_training_mode",
    "test_einsum_batch_diagonal",  // repeated label
};

TEST(CudaNnSupports, AcceptsTheConformanceCases) {
  if (!std::filesystem::exists(kNodeDir)) GTEST_SKIP() << "no ONNX node test data";
  const cuda::KernelRegistry& reg = cuda::KernelRegistry::global();
  int checked = 0;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kNodeDir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (!is_candidate(name)) continue;
    auto model = onnx::load_model(std::string(kNodeDir) + "/" + name + "/model.onnx");
    if (!model.ok()) continue;  // loader limits are not this test's concern
    const ir::Graph& g = *(*model)->graph;
    ASSERT_FALSE(g.nodes().empty()) << name;
    const ir::Node& node = *g.nodes().front();
    const cuda::KernelDef* def = reg.find(node.domain, node.op_type);
    ASSERT_NE(def, nullptr) << name << ": no CUDA kernel for " << node.op_type;
    const std::string why = def->supports(node);
    if (kRefused.count(name)) {
      EXPECT_FALSE(why.empty()) << name << " should be refused";
    } else {
      EXPECT_EQ(why, "") << name;
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
  std::printf("checked %d conformance cases\n", checked);
}

}  // namespace
}  // namespace kiln

#endif  // KILN_HAVE_CUDA
