#include "backend/placement.h"

#include <unordered_set>

#include "backend/cuda_backend.h"

namespace kiln::backend {
namespace {

bool default_domain(const ir::Node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

bool is_metadata(const ir::Node& n) {
  return default_domain(n) && (n.op_type == "Shape" || n.op_type == "Size");
}

bool is_integer_like(DType t) {
  return t == DType::kInt64 || t == DType::kInt32 || t == DType::kBool;
}

std::string precision_of(const ir::Node& n) {
  for (const ir::Value* v : n.outputs)
    if (v && v->type.is_tensor() && v->type.dtype != DType::kUndefined)
      return dtype_name(v->type.dtype);
  return "";
}

class Placer {
 public:
  explicit Placer(Device device) : device_(device) {}

  void place(const ir::Graph& g, bool top, bool forced_cpu, const std::string& forced_note) {
    for (const auto& np : g.nodes()) {
      const ir::Node& n = *np;
      runtime::StepRecord r;
      r.name = n.name;
      r.op = n.op_type;
      r.precision = precision_of(n);
      bool on_device = false;
      bool fallback = false;
      if (device_ == Device::kCpu) {
        r.device = Device::kCpu;
        r.kernel = "cpu:" + n.op_type;
        on_device = true;
      } else if (forced_cpu) {
        r.device = Device::kCpu;
        r.kernel = "cpu:" + n.op_type;
        r.note = forced_note;
      } else if (is_metadata(n)) {
        r.device = Device::kCuda;
        r.kernel = "host:" + n.op_type + " (reads shapes only)";
        on_device = true;
        mark_host_outputs(n);
      } else if (default_domain(n) && n.op_type == "If") {
        r.device = Device::kCuda;
        r.kernel = "control:If (condition on the host, branch on the GPU)";
        on_device = true;
      } else if (default_domain(n) && n.op_type == "Scan" && n.opset >= 9 && all_tensors(n)) {
        r.device = Device::kCuda;
        r.kernel = "control:Scan (slices and stacks on the GPU, body on the GPU)";
        on_device = true;
      } else if (default_domain(n) && n.op_type == "Loop" && all_tensors(n)) {
        r.device = Device::kCuda;
        r.kernel = "control:Loop (trip count and condition on the host, body on the GPU)";
        on_device = true;
      } else if (is_shape_math(n)) {
        r.device = Device::kCpu;
        r.kernel = "cpu:" + n.op_type;
        r.note = kShapeComputationNote;
        on_device = true;
        mark_host_outputs(n);
      } else {
        std::string why = cuda_supports(n);
        if (why.empty()) {
          r.device = Device::kCuda;
          r.kernel = "cuda:" + n.op_type;
          on_device = true;
        } else {
          r.device = Device::kCpu;
          r.kernel = "cpu:" + n.op_type;
          r.note = why;
          fallback = true;
          mark_host_outputs(n);
        }
      }
      if (fallback) result.fallbacks.push_back(n.label() + ": " + r.note);
      if (top) {
        result.top_level++;
        if (on_device) result.top_level_on_device++;
      }
      bool cpu_control = r.device == Device::kCpu && has_subgraph(n);
      result.steps.push_back(std::move(r));
      for (const ir::Attribute& a : n.attrs) {
        std::string note = "inside " + n.label() + ", which runs on the CPU";
        if (a.g) place(*a.g, false, forced_cpu || cpu_control, forced_cpu ? forced_note : note);
        for (const auto& sg : a.graphs)
          if (sg) place(*sg, false, forced_cpu || cpu_control, forced_cpu ? forced_note : note);
      }
    }
  }

  PlacementResult result;

 private:
  static bool all_tensors(const ir::Node& n) {
    for (const ir::Value* v : n.inputs)
      if (v && !v->type.is_tensor()) return false;
    for (const ir::Value* v : n.outputs)
      if (v && !v->type.is_tensor()) return false;
    return true;
  }
  static bool has_subgraph(const ir::Node& n) {
    for (const ir::Attribute& a : n.attrs)
      if (a.g || !a.graphs.empty()) return true;
    return false;
  }
  void mark_host_outputs(const ir::Node& n) {
    for (const ir::Value* v : n.outputs)
      if (v) host_.insert(v);
  }
  bool host_resident(const ir::Value* v) const {
    return v->constant != nullptr || host_.count(v) != 0;
  }
  // Small integer arithmetic on host-resident values (shapes, indices): cheaper on the host
  // than a copy to the GPU and back before the kernel that reads it there.
  bool is_shape_math(const ir::Node& n) const {
    if (has_subgraph(n)) return false;
    bool any_input = false;
    for (const ir::Value* v : n.inputs) {
      if (v == nullptr) continue;
      any_input = true;
      if (!host_resident(v)) return false;
    }
    if (!any_input) return false;
    for (const ir::Value* v : n.outputs) {
      if (v == nullptr) continue;
      if (!v->type.is_tensor() || !is_integer_like(v->type.dtype)) return false;
    }
    return true;
  }

  Device device_;
  std::unordered_set<const ir::Value*> host_;
};

}  // namespace

PlacementResult place_nodes(const ir::Graph& graph, Device device) {
  Placer p(device);
  p.place(graph, true, false, "");
  return std::move(p.result);
}

}  // namespace kiln::backend
