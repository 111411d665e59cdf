// Host check (see run.sh): binary check.
#include <cstdio>
#include <filesystem>
#include "backends/cuda/elementwise_binary.cu"
#include "onnx/importer.h"
using namespace kiln;
using namespace kiln::cuda;
namespace fs = std::filesystem;
int64_t off(int mode, const BroadcastMap& m, int64_t linear) {
  if (mode == kFull) return linear;
  if (mode == kScalar) return 0;
  int64_t o = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    o += (linear % m.out_dims[d]) * m.in_strides[d];
    linear /= m.out_dims[d];
  }
  return o;
}
template <typename C>
bool run_case(int op, const Tensor& a, const Tensor& b, const Tensor& want, std::string* msg) {
  std::vector<int64_t> out = broadcast_shapes(a.shape(), b.shape()).value();
  if (op == kPRelu) out = a.shape();
  int ma_, mb_;
  BroadcastMap ma, mb;
  int64_t n = ew::numel_of(out);
  if (n == 0) return true;
  plan_modes(a.shape(), b.shape(), out, &ma_, &mb_, &ma, &mb);
  const C* pa = a.data<C>();
  const C* pb = b.data<C>();
  for (int64_t i = 0; i < n; ++i) {
    C x = pa[off(ma_, ma, i)], y = pb[off(mb_, mb, i)];
    double got, exp;
    if (bool_out(op)) {
      got = compare<C>(op, x, y);
      exp = want.data<uint8_t>()[i];
    } else {
      got = (double)arith<C>(op, x, y);
      exp = want.get_double(i);
    }
    if (want.dtype() == DType::kFloat16 || want.dtype() == DType::kBFloat16)
      got = Tensor::scalar<float>((float)got).get_double(0),
      got = convert_tensor(Tensor::scalar<float>((float)got), want.dtype()).value().get_double(0);
    bool ok = (std::isnan(got) && std::isnan(exp)) || got == exp ||
              std::fabs(got - exp) <= 1e-5 * std::fabs(exp) + 1e-6;
    if (!ok) {
      *msg = "at " + std::to_string(i) + " got " + std::to_string(got) + " want " +
             std::to_string(exp);
      return false;
    }
  }
  return true;
}
int main() {
  int pass = 0, fail = 0, skip = 0;
  for (const auto& e : fs::directory_iterator(KILN_NODE_SUITE)) {
    std::string name = e.path().filename().string();
    if (name.find("expanded") != std::string::npos) continue;
    auto m = onnx::load_model((e.path() / "model.onnx").string());
    if (!m.ok() || (*m)->graph->nodes().size() != 1) continue;
    const ir::Node& node = *(*m)->graph->nodes()[0];
    const OpInfo* o = find_op(node.op_type);
    if (!o) continue;
    if (!binary_supports(node).empty()) {
      ++skip;
      continue;
    }
    int op = o->op;
    if (op == kMod && node.attr_int("fmod", 0) == 1) op = kFMod;
    if (op == kShl && node.attr_string("direction", "") == "RIGHT") op = kShr;
    auto rd = [&](std::string f) {
      return onnx::read_value_file((e.path() / "test_data_set_0" / f).string()).value().tensor;
    };
    Tensor a = rd("input_0.pb"), b = rd("input_1.pb"), want = rd("output_0.pb");
    if (a.dtype() != b.dtype()) {
      ++skip;
      continue;
    }
    std::string msg;
    bool ok = true;
    auto fl = [&](const Tensor& t) { return convert_tensor(t, DType::kFloat32).value(); };
    switch (a.dtype()) {
      case DType::kFloat32:
        ok = run_case<float>(op, a, b, want, &msg);
        break;
      case DType::kFloat16:
      case DType::kBFloat16:
        ok = run_case<float>(op, fl(a), fl(b), want, &msg);
        break;
      case DType::kFloat64:
        ok = run_case<double>(op, a, b, want, &msg);
        break;
      case DType::kInt8:
        ok = run_case<int8_t>(op, a, b, want, &msg);
        break;
      case DType::kInt16:
        ok = run_case<int16_t>(op, a, b, want, &msg);
        break;
      case DType::kInt32:
        ok = run_case<int32_t>(op, a, b, want, &msg);
        break;
      case DType::kInt64:
        ok = run_case<int64_t>(op, a, b, want, &msg);
        break;
      case DType::kUInt8:
        ok = run_case<uint8_t>(op, a, b, want, &msg);
        break;
      case DType::kUInt16:
        ok = run_case<uint16_t>(op, a, b, want, &msg);
        break;
      case DType::kUInt32:
        ok = run_case<uint32_t>(op, a, b, want, &msg);
        break;
      case DType::kUInt64:
        ok = run_case<uint64_t>(op, a, b, want, &msg);
        break;
      case DType::kBool:
        ok = run_case<bool>(op, a, b, want, &msg);
        break;
      default:
        ++skip;
        continue;
    }
    if (ok)
      ++pass;
    else {
      ++fail;
      printf("FAIL %s: %s\n", name.c_str(), msg.c_str());
    }
  }
  printf("pass=%d fail=%d skip=%d\n", pass, fail, skip);
}
