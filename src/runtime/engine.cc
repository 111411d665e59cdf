// The public Engine / ExecutionContext: loading engine files, CPU contexts, and the checks both
// targets share (input dtypes, static dims, optimization profiles).
#include <chrono>
#include <cstring>

#include "backend/cuda_backend.h"
#include "engine/engine_file.h"
#include "kiln/kiln.h"
#include "runtime/engine_data.h"
#include "runtime/engine_io.h"
#include "runtime/output_sinks.h"

namespace kiln {

const char* device_name(Device d) {
  switch (d) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
  }
  return "?";
}

namespace runtime {

void collect_nodes(const ir::Graph& g, std::vector<const ir::Node*>* out) {
  for (const auto& n : g.nodes()) {
    out->push_back(n.get());
    for (const ir::Attribute& a : n->attrs) {
      if (a.g) collect_nodes(*a.g, out);
      for (const auto& sg : a.graphs)
        if (sg) collect_nodes(*sg, out);
    }
  }
}

TensorInfo tensor_info_of(const ir::Value& v) {
  TensorInfo info;
  info.name = v.name;
  info.is_tensor = v.type.is_tensor();
  info.dtype = v.type.dtype;
  for (const ir::Dim& d : v.type.shape.dims) {
    info.shape.push_back(d.known() ? d.value : -1);
    info.dim_names.push_back(d.symbol);
  }
  return info;
}

namespace {

std::string range_text(const ShapeRange& r, size_t d) {
  return "[" + std::to_string(r.min[d]) + ", " + std::to_string(r.max[d]) + "]";
}

// Why `shape` is outside profile `p` for input `name` ("" when inside or unconstrained).
std::string profile_miss(const OptimizationProfile& p, const std::string& name,
                         const std::vector<int64_t>& shape) {
  auto it = p.inputs.find(name);
  if (it == p.inputs.end()) return {};
  const ShapeRange& r = it->second;
  if (r.min.size() != shape.size()) {
    return "rank " + std::to_string(shape.size()) + ", the profile has rank " +
           std::to_string(r.min.size());
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < r.min[d] || shape[d] > r.max[d]) {
      return "dimension " + std::to_string(d) + " is " + std::to_string(shape[d]) + ", allowed " +
             range_text(r, d);
    }
  }
  return {};
}

}  // namespace

Status check_input_shape(const EngineData& data, const TensorInfo& info,
                         const std::vector<int64_t>& shape) {
  const ir::Value* v = data.model->graph->find_value(info.name);
  bool rank_known = v != nullptr && v->type.shape.rank_known;
  if (rank_known && info.shape.size() != shape.size()) {
    return invalid_argument("input '" + info.name + "' has rank " +
                            std::to_string(info.shape.size()) + ", was given " +
                            shape_to_string(shape));
  }
  for (size_t d = 0; rank_known && d < shape.size(); ++d) {
    if (info.shape[d] >= 0 && info.shape[d] != shape[d]) {
      return invalid_argument("input '" + info.name + "' dimension " + std::to_string(d) +
                              " is fixed at " + std::to_string(info.shape[d]) + ", was given " +
                              std::to_string(shape[d]));
    }
  }
  if (data.profiles.empty()) return Status::Ok();
  std::string first_miss;
  for (const OptimizationProfile& p : data.profiles) {
    std::string miss = profile_miss(p, info.name, shape);
    if (miss.empty()) return Status::Ok();
    if (first_miss.empty()) first_miss = miss;
  }
  std::string msg = "input '" + info.name + "' shape " + shape_to_string(shape) +
                    " is outside every optimization profile of the engine: " + first_miss;
  if (data.profiles.size() > 1) {
    msg += " (profile 0; the engine has " + std::to_string(data.profiles.size()) + " profiles)";
  }
  return Status(StatusCode::kUnsupportedDynamicShape,
                msg + ". Rebuild with wider --min-shapes/--max-shapes to run it.");
}

int profile_index(const EngineData& data,
                  const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes) {
  for (size_t p = 0; p < data.profiles.size(); ++p) {
    bool all = true;
    for (const auto& [name, shape] : shapes)
      all &= profile_miss(data.profiles[p], name, shape).empty();
    if (all) return static_cast<int>(p);
  }
  return 0;
}

Status check_profile_fit(const EngineData& data,
                         const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes) {
  if (data.profiles.size() <= 1) return Status::Ok();
  for (const OptimizationProfile& p : data.profiles) {
    bool all = true;
    for (const auto& [name, shape] : shapes) all &= profile_miss(p, name, shape).empty();
    if (all) return Status::Ok();
  }
  return Status(StatusCode::kUnsupportedDynamicShape,
                "the input shapes fit no single optimization profile together: each input fits "
                "some profile, but no profile holds them all");
}

StatusOr<Tensor> tensor_from_host(const std::string& name, const HostTensor& h) {
  if (!is_valid_dtype(static_cast<int>(h.dtype)) || h.dtype == DType::kString ||
      h.dtype == DType::kUndefined) {
    return invalid_argument("input '" + name + "': unsupported dtype for a HostTensor");
  }
  StatusOr<Tensor> t = Tensor::create(h.dtype, h.shape);
  if (!t.ok()) return t.take_status().with_context("input '" + name + "'");
  if (h.data.size() != t->nbytes()) {
    return invalid_argument("input '" + name + "': " + t->type_string() + " needs " +
                            std::to_string(t->nbytes()) + " bytes, the HostTensor holds " +
                            std::to_string(h.data.size()));
  }
  if (t->nbytes() > 0) std::memcpy(t->mutable_raw(), h.data.data(), t->nbytes());
  return t;
}

HostTensor host_from_tensor(const Tensor& t) {
  HostTensor h;
  h.dtype = t.dtype();
  h.shape = t.shape();
  h.data.resize(t.nbytes());
  if (t.nbytes() > 0) std::memcpy(h.data.data(), t.raw(), t.nbytes());
  return h;
}

}  // namespace runtime

namespace {

using runtime::EngineData;

class CpuContext final : public ExecutionContext {
 public:
  explicit CpuContext(std::shared_ptr<const EngineData> data) : data_(std::move(data)) {}

  Status set_input(const std::string& name, HostTensor tensor) override {
    const TensorInfo* info = nullptr;
    for (const TensorInfo& i : data_->inputs)
      if (i.name == name) info = &i;
    if (info == nullptr) return invalid_argument("the model has no input named '" + name + "'");
    KILN_RETURN_IF_ERROR(runtime::check_input_shape(*data_, *info, tensor.shape));
    KILN_ASSIGN_OR_RETURN(Tensor t, runtime::tensor_from_host(name, tensor));
    for (auto& f : feeds_) {
      if (f.first == name) {
        f.second = Datum::of(std::move(t));
        return Status::Ok();
      }
    }
    feeds_.emplace_back(name, Datum::of(std::move(t)));
    return Status::Ok();
  }
  Status set_input_device(const std::string& name, const DeviceTensorView&) override {
    return invalid_argument("input '" + name +
                            "': a CPU engine takes host tensors only (set_input)");
  }
  Status execute() override {
    outputs_.clear();
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& [n, d] : feeds_) shapes.emplace_back(n, d.tensor.shape());
    KILN_RETURN_IF_ERROR(runtime::check_profile_fit(*data_, shapes));
    std::vector<std::pair<const ir::Node*, double>> node_times;
    KILN_ASSIGN_OR_RETURN(std::vector<Datum> outs,
                          data_->cpu->run(feeds_, profiling_ ? &node_times : nullptr));
    if (profiling_) {
      times_.clear();
      times_.reserve(node_times.size());
      for (const auto& [node, ms] : node_times) {
        times_.push_back(
            {node->name.empty() ? node->op_type : node->name, node->op_type, "cpu", ms, ms, false});
      }
    }
    for (size_t i = 0; i < outs.size() && i < data_->outputs.size(); ++i) {
      if (!outs[i].is_tensor() || outs[i].tensor.dtype() == DType::kString) continue;
      const Tensor& t = outs[i].tensor;
      KILN_ASSIGN_OR_RETURN(void* dst,
                            sinks_.destination(data_->outputs[i].name, t.shape(), t.nbytes()));
      if (dst != nullptr && t.nbytes() > 0) std::memcpy(dst, t.raw(), t.nbytes());
      outputs_.emplace_back(data_->outputs[i].name, runtime::host_from_tensor(t));
    }
    return Status::Ok();
  }
  Status set_output_allocator(const std::string& name, OutputAllocator* allocator) override {
    return sinks_.set(data_->outputs, name, allocator);
  }
  Status enqueue(void*) override { return execute(); }
  const HostTensor* output(const std::string& name) const override {
    for (const auto& [n, t] : outputs_)
      if (n == name) return &t;
    return nullptr;
  }
  StatusOr<DeviceTensorView> device_output(const std::string& name) const override {
    return invalid_argument("output '" + name + "': a CPU engine has no device outputs");
  }
  void* stream() const override { return nullptr; }
  void set_cuda_graph(bool) override {}
  void set_profiling(bool on) override { profiling_ = on; }
  std::vector<LayerTime> layer_times() const override { return times_; }
  std::string run_notes() const override { return {}; }

 private:
  std::shared_ptr<const EngineData> data_;
  std::vector<std::pair<std::string, Datum>> feeds_;
  std::vector<std::pair<std::string, HostTensor>> outputs_;
  bool profiling_ = false;
  std::vector<LayerTime> times_;
  runtime::OutputSinks sinks_;
};

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(std::shared_ptr<const EngineData> data) : data_(std::move(data)) {}
  Device device() const override { return data_->device; }
  const std::vector<TensorInfo>& inputs() const override { return data_->inputs; }
  const std::vector<TensorInfo>& outputs() const override { return data_->outputs; }
  const std::vector<OptimizationProfile>& profiles() const override { return data_->profiles; }
  std::string describe_json() const override { return data_->describe; }
  std::unique_ptr<ExecutionContext> create_execution_context() const override {
    StatusOr<std::unique_ptr<ExecutionContext>> c = create_context();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  StatusOr<std::unique_ptr<ExecutionContext>> create_context() const override {
    if (data_->device == Device::kCpu) {
      return std::unique_ptr<ExecutionContext>(new CpuContext(data_));
    }
    return backend::create_cuda_context(data_);
  }

 private:
  std::shared_ptr<const EngineData> data_;
};

StatusOr<std::shared_ptr<Engine>> engine_from_file(std::shared_ptr<const engine::EngineFile> f) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<EngineData> data, runtime::load_engine_data(std::move(f)));
  return std::shared_ptr<Engine>(new EngineImpl(std::move(data)));
}

}  // namespace

StatusOr<std::shared_ptr<Engine>> Engine::load(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<engine::EngineFile> f, engine::EngineFile::open(path));
  return engine_from_file(std::move(f));
}

StatusOr<std::shared_ptr<Engine>> Engine::deserialize(std::span<const uint8_t> bytes) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<engine::EngineFile> f,
                        engine::EngineFile::from_bytes(bytes));
  return engine_from_file(std::move(f));
}

StatusOr<std::unique_ptr<Engine>> Engine::from_onnx(const std::string& path) {
  BuilderConfig config;
  config.device = Device::kCpu;
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_engine(path, config));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<engine::EngineFile> f,
                        engine::EngineFile::from_bytes(bytes, path));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<EngineData> data, runtime::load_engine_data(std::move(f)));
  return std::unique_ptr<Engine>(new EngineImpl(std::move(data)));
}

HostTensor HostTensor::zeros(DType dtype, std::vector<int64_t> shape) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(dtype_storage_bytes(dtype, static_cast<uint64_t>(t.numel())));
  return t;
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace kiln
