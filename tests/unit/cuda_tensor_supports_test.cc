// The CUDA tensor-family kernels accept the ONNX node conformance cases of their ops (supports()
// on the imported, type-inferred graphs), and refuse exactly the documented cases. Runs without
// a GPU: supports() reads only the IR. Built only with the CUDA backend.
#include <gtest/gtest.h>

#ifdef KILN_HAVE_CUDA

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "backends/cuda/kernel.h"
#include "onnx/importer.h"

namespace kiln {
namespace {

const std::set<std::string>& tensor_ops() {
  static const std::set<std::string> ops = {"Reshape",
                                            "Flatten",
                                            "Squeeze",
                                            "Unsqueeze",
                                            "Identity",
                                            "Dropout",
                                            "Transpose",
                                            "Concat",
                                            "Split",
                                            "Slice",
                                            "Expand",
                                            "Tile",
                                            "Pad",
                                            "CenterCropPad",
                                            "DepthToSpace",
                                            "SpaceToDepth",
                                            "ConstantOfShape",
                                            "Gather",
                                            "GatherElements",
                                            "GatherND",
                                            "Scatter",
                                            "ScatterElements",
                                            "ScatterND",
                                            "Trilu",
                                            "EyeLike",
                                            "OneHot",
                                            "Range",
                                            "NonZero",
                                            "Resize",
                                            "Upsample",
                                            "Shape",
                                            "Size",
                                            "Constant",
                                            "Compress",
                                            "ReverseSequence",
                                            "TensorScatter",
                                            "GridSample",
                                            "AffineGrid",
                                            "Unique"};
  return ops;
}

std::string node_dir() {
  if (const char* env = std::getenv("KILN_NODE_DIR")) return env;  // e.g. Debian's 1.12 suite
  for (const std::string& d :
       {std::string(KILN_BINARY_DIR) + "/onnx-1.23.1/node", std::string("/work/data/node")}) {
    if (std::filesystem::is_directory(d)) return d;
  }
  return {};
}

// Single-node cases whose (only) node is refused on purpose.
bool expected_refusal(const std::string& test) {
  static const std::set<std::string> refused = {
      // training_mode is a graph input, not a constant false
      "test_training_dropout", "test_training_dropout_default",
      "test_training_dropout_default_mask", "test_training_dropout_mask",
      "test_training_dropout_zero_ratio", "test_training_dropout_zero_ratio_mask",
      // optional / sequence values (not tensors)
      "test_identity_opt", "test_identity_sequence"};
  if (refused.count(test) != 0) return true;
  // Sub-byte, string and 16-byte element types are not moved by the CUDA copy kernels.
  for (const char* t : {"int4", "uint4", "int2", "uint2", "float4", "string"}) {
    if (test.find(t) != std::string::npos) return true;
  }
  return false;
}

TEST(CudaTensorSupports, AcceptsTheNodeConformanceCases) {
  const std::string dir = node_dir();
  if (dir.empty()) GTEST_SKIP() << "no ONNX node suite";
  const cuda::KernelRegistry& reg = cuda::KernelRegistry::global();
  int accepted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string test = entry.path().filename().string();
    auto model = onnx::load_model((entry.path() / "model.onnx").string());
    if (!model.ok()) continue;
    const auto& nodes = (*model)->graph->nodes();
    if (nodes.size() != 1) continue;
    const ir::Node& n = *nodes[0];
    if (!n.domain.empty() || tensor_ops().count(n.op_type) == 0) continue;
    const cuda::KernelDef* def = reg.find(n.domain, n.op_type);
    ASSERT_NE(def, nullptr) << n.op_type;
    const std::string why = def->supports(n);
    if (expected_refusal(test)) {
      EXPECT_FALSE(why.empty()) << test << " was expected to be refused";
    } else {
      EXPECT_EQ(why, "") << test;
      ++accepted;
    }
  }
  EXPECT_GT(accepted, 150);
}

// Multi-node cases (function expansions): every tensor-family node is accepted, except in
// the cases refused on purpose.
TEST(CudaTensorSupports, AcceptsTheExpandedCases) {
  const std::string dir = node_dir();
  if (dir.empty()) GTEST_SKIP() << "no ONNX node suite";
  const cuda::KernelRegistry& reg = cuda::KernelRegistry::global();
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string test = entry.path().filename().string();
    auto model = onnx::load_model((entry.path() / "model.onnx").string());
    if (!model.ok()) continue;
    const auto& nodes = (*model)->graph->nodes();
    if (nodes.size() == 1 || expected_refusal(test)) continue;
    for (const auto& np : nodes) {
      const ir::Node& n = *np;
      if (!n.domain.empty() || tensor_ops().count(n.op_type) == 0) continue;
      EXPECT_EQ(reg.find(n.domain, n.op_type)->supports(n), "") << test << " " << n.op_type;
      ++checked;
    }
  }
  EXPECT_GT(checked, 500);
}

}  // namespace
}  // namespace kiln

#endif  // KILN_HAVE_CUDA
