// Host check (see run.sh): unary check.
#include <cstdio>
#include <filesystem>
#include "backends/cuda/elementwise_unary.cu"
#include "onnx/importer.h"
using namespace kiln;
using namespace kiln::cuda;
namespace fs = std::filesystem;
int main() {
  int pass = 0, fail = 0, skip = 0;
  for (const auto& e : fs::directory_iterator(KILN_NODE_SUITE)) {
    std::string name = e.path().filename().string();
    if (name.find("expanded") != std::string::npos) continue;
    auto m = onnx::load_model((e.path() / "model.onnx").string());
    if (!m.ok() || (*m)->graph->nodes().size() != 1) continue;
    const ir::Node& node = *(*m)->graph->nodes()[0];
    const UnInfo* o = find_un(node.op_type);
    if (!o) continue;
    if (!unary_supports(node).empty()) {
      ++skip;
      continue;
    }
    int op = o->op;
    Params p;
    switch (op) {
      case kShrink:
        p.alpha = node.attr_float("bias", 0.f);
        p.beta = node.attr_float("lambd", 0.5f);
        break;
      case kGeluErf:
        if (node.attr_string("approximate", "none") == "tanh") op = kGeluTanh;
        break;
      case kLeakyRelu:
        p.alpha = node.attr_float("alpha", 0.01f);
        break;
      case kThresholdedRelu:
      case kElu:
      case kSwish:
      case kCelu:
        p.alpha = node.attr_float("alpha", 1.f);
        break;
      case kSelu:
        p.alpha = node.attr_float("alpha", 1.67326319217681884765625f);
        p.gamma = node.attr_float("gamma", 1.05070102214813232421875f);
        break;
      case kHardSigmoid:
        p.alpha = node.attr_float("alpha", 0.2f);
        p.beta = node.attr_float("beta", 0.5f);
        break;
      case kIsInf:
        p.flags = (node.attr_int("detect_positive", 1) != 0 ? 1 : 0) |
                  (node.attr_int("detect_negative", 1) != 0 ? 2 : 0);
        break;
      default:
        break;
    }
    auto rd = [&](std::string f) {
      return onnx::read_value_file((e.path() / "test_data_set_0" / f).string()).value().tensor;
    };
    Tensor x = rd("input_0.pb"), want = rd("output_0.pb");
    bool ok = true;
    std::string msg;
    for (int64_t i = 0; i < x.numel() && ok; ++i) {
      double got;
      const DType t = x.dtype();
      if (t == DType::kBool)
        got = !x.data<uint8_t>()[i];
      else if (ew::is_float_dtype(t)) {
        if (t == DType::kFloat64) {
          double v = x.data<double>()[i];
          got = op == kIsNaN   ? std::isnan(v)
                : op == kIsInf ? (std::isinf(v) && (v > 0 ? (p.flags & 1) : (p.flags & 2)))
                               : float_op<double>(op, v, p);
        } else {
          float v = (float)x.get_double(i);
          got = op == kIsNaN   ? std::isnan(v)
                : op == kIsInf ? (std::isinf(v) && (v > 0 ? (p.flags & 1) : (p.flags & 2)))
                               : float_op<float>(op, v, p);
          if (t != DType::kFloat32 && op != kIsNaN && op != kIsInf)
            got = convert_tensor(Tensor::scalar<float>((float)got), t).value().get_double(0);
        }
      } else {
        switch (t) {
          case DType::kInt8:
            got = int_op<int8_t>(op, x.data<int8_t>()[i], p);
            break;
          case DType::kInt16:
            got = int_op<int16_t>(op, x.data<int16_t>()[i], p);
            break;
          case DType::kInt32:
            got = int_op<int32_t>(op, x.data<int32_t>()[i], p);
            break;
          case DType::kInt64:
            got = int_op<int64_t>(op, x.data<int64_t>()[i], p);
            break;
          case DType::kUInt8:
            got = int_op<uint8_t>(op, x.data<uint8_t>()[i], p);
            break;
          case DType::kUInt16:
            got = int_op<uint16_t>(op, x.data<uint16_t>()[i], p);
            break;
          case DType::kUInt32:
            got = int_op<uint32_t>(op, x.data<uint32_t>()[i], p);
            break;
          case DType::kUInt64:
            got = (double)int_op<uint64_t>(op, x.data<uint64_t>()[i], p);
            break;
          default:
            got = 0;
        }
      }
      double exp = want.get_double(i);
      ok = (std::isnan(got) && std::isnan(exp)) || got == exp ||
           std::fabs(got - exp) <= 1e-5 * std::fabs(exp) + 1e-6;
      if (!ok)
        msg = "at " + std::to_string(i) + " x=" + std::to_string(x.get_double(i)) + " got " +
              std::to_string(got) + " want " + std::to_string(exp);
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
