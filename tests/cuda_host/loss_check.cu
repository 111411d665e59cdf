// Host check (see run.sh): loss check. Runs loss_at (the per-position body of loss_positions)
// and the sum/mean of loss_reduce on the node suite's NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss cases (float and double inputs).
#include <cstdio>
#include <filesystem>

#include "backends/cuda/reduction_loss.cu"
#include "onnx/importer.h"
using namespace kiln;
using namespace kiln::cuda;
namespace fs = std::filesystem;

template <typename T>
bool run_case(const ir::Node& node, const std::vector<Tensor>& in, const std::vector<Tensor>& want,
              std::string* msg) {
  const Tensor& x = in[0];
  const Tensor& t = in[1];
  LossArgs a;
  a.sce = node.op_type == "SoftmaxCrossEntropyLoss";
  a.n = x.dim(0);
  a.c = x.dim(1);
  for (int i = 2; i < x.rank(); ++i) a.d *= x.dim(i);
  a.target32 = t.dtype() == DType::kInt32;
  a.has_ignore = node.has_attr("ignore_index");
  a.ignore = node.attr_int("ignore_index", 0);
  const std::string red = node.attr_string("reduction", "mean");
  const T* w = in.size() > 2 && in[2].defined() ? in[2].data<T>() : nullptr;
  std::vector<T> lp(x.numel());
  const int64_t positions = a.n * a.d;
  std::vector<double> l(positions), ws(positions);
  auto load = [](const T* p, int64_t i) { return p[i]; };
  for (int64_t p = 0; p < positions; ++p) {
    loss_at<T>(x.data<T>(), t.raw(), w, a, p, lp.data(), &l[p], &ws[p], load);
  }
  std::vector<double> got;
  if (red == "none") {
    got = l;
  } else {
    double ls = 0, wsum = 0;
    for (int64_t p = 0; p < positions; ++p) ls += l[p], wsum += ws[p];
    got = {red == "mean" ? ls / wsum : ls};
  }
  for (size_t o = 0; o < want.size(); ++o) {
    for (int64_t i = 0; i < want[o].numel(); ++i) {
      const double g = o == 0 ? static_cast<double>(static_cast<T>(got[i])) : lp[i];
      const double e = want[o].get_double(i);
      if (!((std::isnan(g) && std::isnan(e)) || std::fabs(g - e) <= 1e-5 * std::fabs(e) + 1e-6)) {
        *msg = "output " + std::to_string(o) + " at " + std::to_string(i) + " got " +
               std::to_string(g) + " want " + std::to_string(e);
        return false;
      }
    }
  }
  return true;
}

int main() {
  int pass = 0, fail = 0, skip = 0;
  for (const auto& e : fs::directory_iterator(KILN_NODE_SUITE)) {
    std::string name = e.path().filename().string();
    if (name.find("expanded") != std::string::npos) continue;
    auto mo = onnx::load_model((e.path() / "model.onnx").string());
    if (!mo.ok() || (*mo)->graph->nodes().size() != 1) continue;
    const ir::Node& node = *(*mo)->graph->nodes()[0];
    if (node.op_type != "NegativeLogLikelihoodLoss" && node.op_type != "SoftmaxCrossEntropyLoss")
      continue;
    if (!loss_supports(node).empty()) {
      ++skip;
      continue;
    }
    auto rd = [&](std::string f) {
      return onnx::read_value_file((e.path() / "test_data_set_0" / f).string()).value().tensor;
    };
    std::vector<Tensor> in, want;
    for (int i = 0; i < static_cast<int>(node.inputs.size()); ++i) {
      in.push_back(node.has_input(i) ? rd("input_" + std::to_string(i) + ".pb") : Tensor());
    }
    for (int i = 0; i < static_cast<int>(node.outputs.size()); ++i) {
      if (node.has_output(i)) want.push_back(rd("output_" + std::to_string(i) + ".pb"));
    }
    std::string msg;
    bool ok;
    if (in[0].dtype() == DType::kFloat32) {
      ok = run_case<float>(node, in, want, &msg);
    } else if (in[0].dtype() == DType::kFloat64) {
      ok = run_case<double>(node, in, want, &msg);
    } else {
      ++skip;
      continue;
    }
    if (ok) {
      ++pass;
    } else {
      ++fail;
      printf("FAIL %s: %s\n", name.c_str(), msg.c_str());
    }
  }
  printf("pass=%d fail=%d skip=%d\n", pass, fail, skip);
}
