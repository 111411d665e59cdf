// Host check (see run.sh): softmax check. Emulates soft_rows (strided per-thread maxima, xor
// shuffles, cross-warp combine) and soft_cols on the node suite's Softmax/LogSoftmax/Hardmax.
#include <cstdio>
#include <filesystem>

#include "backends/cuda/reduction_softmax.cu"
#include "onnx/importer.h"
using namespace kiln;
using namespace kiln::cuda;
namespace fs = std::filesystem;

// The row's (max, first argmax) as soft_rows computes it with `block` threads.
void row_max(const float* x, int64_t n, unsigned block, float* m_out, int64_t* arg_out) {
  std::vector<float> m(block, -INFINITY);
  std::vector<int64_t> arg(block, INT64_MAX);
  for (unsigned t = 0; t < block; ++t)
    for (int64_t j = t; j < n; j += block) max_combine(m[t], arg[t], x[j], j);
  for (unsigned w = 0; w < block / 32; ++w) {
    for (int s = 16; s >= 1; s >>= 1) {
      std::vector<float> nm(32);
      std::vector<int64_t> na(32);
      for (int l = 0; l < 32; ++l) {
        float mm = m[w * 32 + l];
        int64_t aa = arg[w * 32 + l];
        max_combine(mm, aa, m[w * 32 + (l ^ s)], arg[w * 32 + (l ^ s)]);
        nm[l] = mm;
        na[l] = aa;
      }
      for (int l = 0; l < 32; ++l) {
        m[w * 32 + l] = nm[l];
        arg[w * 32 + l] = na[l];
      }
    }
  }
  float mm = m[0];
  int64_t aa = arg[0];
  for (unsigned w = 1; w < block / 32; ++w) max_combine(mm, aa, m[w * 32], arg[w * 32]);
  *m_out = mm;
  *arg_out = aa;
}

int main() {
  int pass = 0, fail = 0, skip = 0;
  for (const auto& e : fs::directory_iterator(KILN_NODE_SUITE)) {
    std::string name = e.path().filename().string();
    if (name.find("expanded") != std::string::npos) continue;
    auto mo = onnx::load_model((e.path() / "model.onnx").string());
    if (!mo.ok() || (*mo)->graph->nodes().size() != 1) continue;
    const ir::Node& node = *(*mo)->graph->nodes()[0];
    if (node.op_type != "Softmax" && node.op_type != "LogSoftmax" && node.op_type != "Hardmax")
      continue;
    if (!soft_supports(node).empty()) {
      ++skip;
      continue;
    }
    const int kind = kind_of(node.op_type);
    auto rd = [&](std::string f) {
      return onnx::read_value_file((e.path() / "test_data_set_0" / f).string()).value().tensor;
    };
    Tensor xt = rd("input_0.pb"), want = rd("output_0.pb");
    const bool legacy = node.opset < 13;
    const int64_t axis_attr = node.attr_int("axis", legacy ? 1 : -1);
    int64_t outer = 1, n = 1, inner = 1;
    if (xt.rank() > 0) {
      const int axis = normalize_axis(axis_attr, xt.rank()).value();
      for (int d = 0; d < xt.rank(); ++d) {
        if (d < axis)
          outer *= xt.dim(d);
        else if (d == axis || legacy)
          n *= xt.dim(d);
        else
          inner *= xt.dim(d);
      }
    }
    std::vector<float> x(xt.numel()), y(xt.numel());
    for (int64_t i = 0; i < xt.numel(); ++i) x[i] = static_cast<float>(xt.get_double(i));
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        std::vector<float> row(n);
        for (int64_t j = 0; j < n; ++j) row[j] = x[(o * n + j) * inner + i];
        float m;
        int64_t arg;
        if (inner == 1) {
          unsigned block = 32;
          while (block < 1024 && static_cast<int64_t>(block) < n) block *= 2;
          if (block > 256) block = 256;
          row_max(row.data(), n, block, &m, &arg);
        } else {
          m = -INFINITY;
          arg = INT64_MAX;
          for (int64_t j = 0; j < n; ++j) max_combine(m, arg, row[j], j);
        }
        float sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += std::exp(row[j] - m);
        for (int64_t j = 0; j < n; ++j) {
          float v = kind == kHardmax   ? (j == arg ? 1.f : 0.f)
                    : kind == kSoftmax ? std::exp(row[j] - m) * (1.f / sum)
                                       : (row[j] - m) - std::log(sum);
          y[(o * n + j) * inner + i] = v;
        }
      }
    }
    bool ok = true;
    std::string msg;
    for (int64_t i = 0; i < want.numel() && ok; ++i) {
      const double got = y[i], exp = want.get_double(i);
      ok = (std::isnan(got) && std::isnan(exp)) || got == exp ||
           std::fabs(got - exp) <= 1e-4 * std::fabs(exp) + 1e-5;
      if (!ok)
        msg = "at " + std::to_string(i) + " got " + std::to_string(got) + " want " +
              std::to_string(exp);
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
