// The CUDA kernels' supports() over the ONNX node suite: every node of every test model that a
// registered CUDA kernel claims is asked whether it can run, with the types inference gave it.
// Refusals must be deliberate (dtypes the CUDA backend leaves to the CPU); anything else is
// listed. Needs no GPU: supports() reads only the IR.
#ifdef KILN_HAVE_CUDA

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "onnx/importer.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string node_suite_dir() {
  const fs::path built = fs::path(KILN_BINARY_DIR) / "onnx-1.23.1" / "node";
  if (fs::exists(built)) return built.string();
  return "/work/data/node";
}

// Reasons a CUDA kernel may give for leaving a node to the CPU on purpose.
bool deliberate(const std::string& why) {
  // Training-mode Dropout (random masks) and BatchNormalization (running statistics) and
  // Einsum's diagonals are left to the CPU: none occurs in an inference graph's hot path.
  for (const char* ok :
       {"float8", "float4", "int4", "int2", "uint4", "uint2", "string", "complex",
        "row longer than", "training Dropout runs on the CPU", "training outputs", "(diagonal)"}) {
    if (why.find(ok) != std::string::npos) return true;
  }
  return false;
}

void visit(const ir::Graph& g, const std::string& test, std::map<std::string, int>* accepted,
           std::vector<std::string>* refused) {
  const cuda::KernelRegistry& reg = cuda::KernelRegistry::global();
  for (const auto& n : g.nodes()) {
    const cuda::KernelDef* def = reg.find(n->domain, n->op_type);
    if (def == nullptr || def->supports == nullptr) continue;
    // Without inferred dtypes (inference gave up on the value) refusing is the only safe answer.
    bool typed = true;
    for (const ir::Value* v : n->inputs) {
      if (v != nullptr && (!v->type.is_tensor() || v->type.dtype == DType::kUndefined)) {
        typed = false;
      }
    }
    const std::string why = def->supports(*n);
    if (!typed) continue;
    if (why.empty()) {
      ++(*accepted)[n->op_type];
    } else if (!deliberate(why)) {
      refused->push_back(test + ": " + n->op_type + ": " + why);
    } else if (std::getenv("KILN_SUPPORTS_VERBOSE") != nullptr) {
      std::printf("refused on purpose: %s: %s: %s\n", test.c_str(), n->op_type.c_str(),
                  why.c_str());
    }
  }
}

TEST(CudaSupports, NodeSuiteRefusesOnlyOnPurpose) {
  const std::string dir = node_suite_dir();
  if (!fs::exists(dir)) GTEST_SKIP() << "no node suite at " << dir;
  std::map<std::string, int> accepted;
  std::vector<std::string> refused;
  int models = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path model = entry.path() / "model.onnx";
    if (!fs::exists(model)) continue;
    auto m = onnx::load_model(model.string());
    if (!m.ok()) continue;  // models the importer refuses are the CPU suite's business
    ++models;
    visit(*(*m)->graph, entry.path().filename().string(), &accepted, &refused);
  }
  EXPECT_GT(models, 1000);
  std::string list;
  for (const std::string& r : refused) list += r + "\n";
  EXPECT_TRUE(refused.empty()) << refused.size() << " unexpected refusals:\n" << list;
  // The elementwise and reduction families are registered and accept their common cases.
  for (const char* op :
       {"Add", "Relu", "Cast", "Where", "ReduceSum", "Softmax", "TopK", "CumSum", "ArgMax",
        "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss", "BitCast"}) {
    EXPECT_GT(accepted[op], 0) << op;
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_HAVE_CUDA
