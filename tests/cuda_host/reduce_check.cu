// Host check (see run.sh): reduce check.
#include <cstdio>
#include <filesystem>
#include "backends/cuda/reduction_reduce.cu"
#include "onnx/importer.h"
using namespace kiln;
using namespace kiln::cuda;
namespace fs = std::filesystem;
// Emulates reduce_rows_float's lane partition and xor-tree combine for one row.
template <typename A>
A rows_emul(int k, const std::vector<A>& x, int64_t o, int64_t len) {
  const int tpr = len >= 1024 ? 256 : 32;
  std::vector<Acc<A>> lanes(tpr, r_init<A>(k));
  for (int l = 0; l < tpr; ++l)
    for (int64_t j = l; j < len; j += tpr) r_step<A>(k, lanes[l], x[o * len + j]);
  for (int w = 0; w < tpr / 32; ++w) {
    for (int m = 16; m >= 1; m >>= 1) {
      std::vector<Acc<A>> nxt(32);
      for (int l = 0; l < 32; ++l) {
        Acc<A> a = lanes[w * 32 + l];
        r_combine<A>(k, a, lanes[w * 32 + (l ^ m)]);
        nxt[l] = a;
      }
      for (int l = 0; l < 32; ++l) lanes[w * 32 + l] = nxt[l];
    }
  }
  Acc<A> a = lanes[0];
  for (int w = 1; w < tpr / 32; ++w) r_combine<A>(k, a, lanes[w * 32]);
  return r_finish<A>(k, a, len);
}
int main() {
  int pass = 0, fail = 0, skip = 0, rows_n = 0;
  for (const auto& e : fs::directory_iterator(KILN_NODE_SUITE)) {
    std::string name = e.path().filename().string();
    if (name.find("expanded") != std::string::npos) continue;
    auto m = onnx::load_model((e.path() / "model.onnx").string());
    if (!m.ok() || (*m)->graph->nodes().size() != 1) continue;
    const ir::Node& node = *(*m)->graph->nodes()[0];
    const int k = rk_of(node.op_type);
    if (k < 0) continue;
    if (!reduce_supports(node).empty()) {
      ++skip;
      continue;
    }
    auto rd = [&](std::string f) {
      return onnx::read_value_file((e.path() / "test_data_set_0" / f).string()).value().tensor;
    };
    Tensor x = rd("input_0.pb"), want = rd("output_0.pb");
    std::vector<int64_t> axes;
    if (node.has_input(1)) {
      Tensor a = rd("input_1.pb");
      for (int64_t i = 0; i < a.numel(); ++i) axes.push_back(a.get_int64(i));
    } else
      axes = node.attr_ints("axes");
    const int rank = x.rank();
    const bool noop = node.attr_int("noop_with_empty_axes", 0) != 0;
    std::vector<bool> red(rank, axes.empty() && !noop);
    for (int64_t a : axes) red[normalize_axis(a, rank).value()] = true;
    int64_t count = 1;
    for (int d = 0; d < rank; ++d)
      if (red[d]) count *= x.dim(d);
    bool rows = false;
    RedPlan p = plan_reduction(x.shape(), red, count, &rows);
    if (rows) ++rows_n;
    std::string msg;
    bool ok = true;
    const bool is_f = ew::is_float_dtype(x.dtype());
    if (!is_f) {
      ++skip;
      continue;
    }
    const bool dbl = x.dtype() == DType::kFloat64;
    std::vector<double> xd(x.numel());
    for (int64_t i = 0; i < x.numel(); ++i) xd[i] = x.get_double(i);
    std::vector<float> xf(xd.begin(), xd.end());
    for (int64_t o = 0; o < want.numel() && ok; ++o) {
      double got;
      if (dbl) {
        if (rows)
          got = rows_emul<double>(k, xd, o, p.count);
        else {
          Acc<double> a = r_init<double>(k);
          walk(p, base_offset(p, o), [&](int64_t off) { r_step<double>(k, a, xd[off]); });
          got = r_finish<double>(k, a, p.count);
        }
      } else {
        if (rows)
          got = rows_emul<float>(k, xf, o, p.count);
        else {
          Acc<float> a = r_init<float>(k);
          walk(p, base_offset(p, o), [&](int64_t off) { r_step<float>(k, a, xf[off]); });
          got = r_finish<float>(k, a, p.count);
        }
      }
      double exp = want.get_double(o);
      ok = (std::isnan(got) && std::isnan(exp)) || got == exp ||
           std::fabs(got - exp) <= 1e-4 * std::fabs(exp) + 1e-5;
      if (!ok)
        msg = "at " + std::to_string(o) + " got " + std::to_string(got) + " want " +
              std::to_string(exp);
    }
    if (ok)
      ++pass;
    else {
      ++fail;
      printf("FAIL %s: %s\n", name.c_str(), msg.c_str());
    }
  }
  printf("pass=%d fail=%d skip=%d rows=%d\n", pass, fail, skip, rows_n);
}
