// The CUDA program of an engine: each graph's steps (GPU kernel or CPU fallback, tactics) and
// the weights its GPU steps read, uploaded once. Executors (executor.cc) run it.
#include <algorithm>
#include <shared_mutex>
#include <unordered_set>

#include "backends/cuda/cuda_util.h"
#include "backends/cuda/executor.h"

namespace kiln::cuda {
namespace {

bool is_metadata_op(const ir::Node& n) {
  return (n.domain.empty() || n.domain == "ai.onnx") &&
         (n.op_type == "Shape" || n.op_type == "Size");
}

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

}  // namespace

StatusOr<std::shared_ptr<const Program>> Program::create(
    const ir::Graph& graph, std::unordered_map<const ir::Node*, NodeChoice> choices,
    ProgramOptions options) {
  std::shared_ptr<Program> p(new Program());
  p->graph_ = &graph;
  p->options_ = options;
  std::shared_lock<std::shared_mutex> lock(device_api_mutex());
  cpu::Executor::Options cpu_options;
  cpu_options.max_tensor_bytes = options.max_tensor_bytes;
  KILN_ASSIGN_OR_RETURN(p->cpu_, cpu::Executor::create(graph, cpu_options));
  KILN_RETURN_IF_ERROR(p->prepare(graph, choices));
  KILN_RETURN_IF_ERROR(p->upload_weights());
  return std::shared_ptr<const Program>(std::move(p));
}

Program::~Program() {
  std::shared_lock<std::shared_mutex> lock(device_api_mutex());
  if (weight_memory_ != nullptr) cudaFree(weight_memory_);
}

const Program::GraphPlan* Program::plan(const ir::Graph* g) const {
  auto it = plans_.find(g);
  return it == plans_.end() ? nullptr : &it->second;
}

const ir::Value* Program::outer_constant(const ir::Value* v) const {
  auto it = outer_constants_.find(v);
  return it == outer_constants_.end() ? nullptr : it->second;
}

const DeviceTensor* Program::weight(const ir::Value* v) const {
  auto it = weights_.find(v);
  return it == weights_.end() ? nullptr : &it->second;
}

Status Program::prepare(const ir::Graph& graph,
                        const std::unordered_map<const ir::Node*, NodeChoice>& choices) {
  GraphPlan plan;
  for (const auto& v : graph.values()) {
    if (!v->is_outer_scope) continue;
    for (const ir::Graph* g = graph.parent; g != nullptr; g = g->parent) {
      const ir::Value* o = g->find_value(v->name);
      if (o == nullptr || o->is_outer_scope) continue;
      if (o->constant && !o->is_graph_input) outer_constants_[v.get()] = o;
      break;
    }
  }
  std::unordered_map<std::string, size_t> last_use;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ir::Node& n = *nodes[i];
    for (const ir::Value* v : n.inputs)
      if (v && !v->is_outer_scope) last_use[v->name] = i;
    std::vector<std::string> outer;
    collect_outer_names(n, &outer);
    for (const auto& nm : outer) last_use[nm] = i;
    for (const ir::Value* v : n.outputs)
      if (v && !last_use.count(v->name)) last_use[v->name] = i;
  }
  std::unordered_set<std::string> keep;
  for (const ir::Value* v : graph.outputs)
    if (v) keep.insert(v->name);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ir::Node& n = *nodes[i];
    Step s;
    s.node = &n;
    s.graph = &graph;
    s.def = ops::OpRegistry::global().find(n.domain, n.op_type);
    s.cpu = cpu::KernelRegistry::global().find(n.domain, n.op_type);
    s.metadata_only = is_metadata_op(n);
    auto it = choices.find(&n);
    s.host_math = it != choices.end() && it->second.host_math;
    bool default_domain = n.domain.empty() || n.domain == "ai.onnx";
    bool control =
        (n.op_type == "If" || n.op_type == "Loop" || n.op_type == "Scan") && default_domain;
    if (it != choices.end() && it->second.gpu && !s.metadata_only) {
      s.tactic = it->second.tactic;
      s.profile_tactics = it->second.profile_tactics;
      if (!control) {
        s.gpu = KernelRegistry::global().find(n.domain, n.op_type);
        if (s.gpu == nullptr) {
          return n.error(StatusCode::kUnsupportedOp,
                         "the engine places this node on the GPU but this Kiln has no CUDA kernel "
                         "for it: rebuild the engine with `kiln build`");
        }
      }
    }
    if (s.def == nullptr) return n.error(StatusCode::kUnsupportedOp, "no op definition");
    bool gpu_control = control && it != choices.end() && it->second.gpu;
    s.gpu_if = gpu_control && n.op_type == "If";
    s.gpu_loop = gpu_control && n.op_type == "Loop";
    s.gpu_scan = gpu_control && n.op_type == "Scan";
    bool on_gpu = s.gpu != nullptr || gpu_control;
    (on_gpu ? gpu_steps_ : cpu_steps_)++;
    plan.steps.push_back(std::move(s));
    for (const ir::Attribute& a : n.attrs) {
      if (a.g) KILN_RETURN_IF_ERROR(prepare(*a.g, choices));
      for (const auto& sg : a.graphs)
        if (sg) KILN_RETURN_IF_ERROR(prepare(*sg, choices));
    }
  }
  for (const auto& [name, step] : last_use)
    if (!keep.count(name)) plan.steps[step].release_after.push_back(name);
  plans_[&graph] = std::move(plan);
  return Status::Ok();
}

Status Program::upload_weights() {
  // Constants read on the device by GPU steps, in every graph.
  std::vector<const ir::Value*> needed;
  std::unordered_set<const ir::Value*> seen;
  for (const auto& [g, plan] : plans_) {
    for (const Step& s : plan.steps) {
      if (s.gpu == nullptr) continue;
      for (size_t i = 0; i < s.node->inputs.size(); ++i) {
        const ir::Value* v = s.node->inputs[i];
        if (v != nullptr && !v->constant) v = outer_constant(v);
        if (v == nullptr || !v->constant || s.gpu->is_host_input(static_cast<int>(i))) continue;
        if (v->constant->dtype() == DType::kString) continue;
        if (seen.insert(v).second) needed.push_back(v);
      }
    }
  }
  uint64_t total = 0;
  std::vector<uint64_t> offsets;
  for (const ir::Value* v : needed) {
    offsets.push_back(total);
    total += align_up(std::max<uint64_t>(v->constant->nbytes(), 1), 256);
  }
  weight_bytes_ = total;
  if (total == 0) return Status::Ok();
  cudaError_t e = cudaMalloc(&weight_memory_, total);
  if (e != cudaSuccess) {
    cudaGetLastError();
    weight_memory_ = nullptr;
    return Status(StatusCode::kOutOfMemory,
                  "the engine's weights (" + std::to_string(total) +
                      " bytes) do not fit on the GPU: " + cudaGetErrorString(e));
  }
  for (size_t k = 0; k < needed.size(); ++k) {
    const Tensor& t = *needed[k]->constant;
    DeviceTensor d;
    d.data = static_cast<char*>(weight_memory_) + offsets[k];
    d.dtype = t.dtype();
    d.shape = t.shape();
    if (t.nbytes() > 0) {
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(d.data, t.raw(), t.nbytes(), cudaMemcpyHostToDevice));
    }
    weights_[needed[k]] = std::move(d);
  }
  return Status::Ok();
}

}  // namespace kiln::cuda
