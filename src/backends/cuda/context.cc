// ExecutionContext of a CUDA engine, and the CUDA half of the runtime boundary.
#include <cuda_runtime_api.h>

#include <sstream>

#include "backend/cuda_backend.h"
#include "backend/placement.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/executor.h"
#include "kiln/kiln.h"
#include "runtime/engine_data.h"
#include "runtime/output_sinks.h"

namespace kiln::backend {
namespace {

using runtime::EngineData;

class CudaContext final : public ExecutionContext {
 public:
  CudaContext(std::shared_ptr<const EngineData> data, std::unique_ptr<cuda::Executor> ex)
      : data_(std::move(data)), ex_(std::move(ex)) {}

  const TensorInfo* find_input(const std::string& name) const {
    for (const TensorInfo& i : data_->inputs)
      if (i.name == name) return &i;
    return nullptr;
  }

  Status set_input(const std::string& name, HostTensor tensor) override {
    const TensorInfo* info = find_input(name);
    if (info == nullptr) return invalid_argument("the model has no input named '" + name + "'");
    KILN_RETURN_IF_ERROR(check_dtype(*info, tensor.dtype));
    KILN_RETURN_IF_ERROR(runtime::check_input_shape(*data_, *info, tensor.shape));
    KILN_ASSIGN_OR_RETURN(Tensor t, runtime::tensor_from_host(name, tensor));
    Binding& b = binding(name);
    b.host = std::move(t);
    b.on_device = false;
    return Status::Ok();
  }

  Status set_input_device(const std::string& name, const DeviceTensorView& view) override {
    const TensorInfo* info = find_input(name);
    if (info == nullptr) return invalid_argument("the model has no input named '" + name + "'");
    KILN_RETURN_IF_ERROR(check_dtype(*info, view.dtype));
    KILN_RETURN_IF_ERROR(runtime::check_input_shape(*data_, *info, view.shape));
    StatusOr<int64_t> n = checked_numel(view.shape, "input '" + name + "'");
    if (!n.ok()) return n.take_status();
    if (view.data == nullptr && *n > 0) {
      return invalid_argument("input '" + name + "': null device pointer");
    }
    Binding& b = binding(name);
    b.device.data = view.data;
    b.device.dtype = view.dtype;
    b.device.shape = view.shape;
    b.on_device = true;
    return Status::Ok();
  }

  Status enqueue(void* stream) override {
    std::vector<cuda::RunInput> ins;
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (Binding& b : bindings_) {
      cuda::RunInput in;
      in.name = b.name;
      if (b.on_device) {
        in.device = b.device;
        shapes.emplace_back(b.name, b.device.shape);
      } else {
        in.host = &b.host;
        shapes.emplace_back(b.name, b.host.shape());
      }
      ins.push_back(std::move(in));
    }
    KILN_RETURN_IF_ERROR(runtime::check_profile_fit(*data_, shapes));
    ex_->set_profile(runtime::profile_index(*data_, shapes));
    host_outputs_.clear();
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    KILN_RETURN_IF_ERROR(ex_->run(ins, s));
    if (sinks_.empty()) return Status::Ok();
    if (s == nullptr) s = ex_->stream();
    for (const cuda::RunOutput& o : ex_->outputs()) {
      if (o.on_device) {
        KILN_ASSIGN_OR_RETURN(void* dst,
                              sinks_.destination(o.name, o.device.shape, o.device.nbytes()));
        if (dst != nullptr && o.device.nbytes() > 0) {
          KILN_CUDA_RETURN_IF_ERROR(
              cudaMemcpyAsync(dst, o.device.data, o.device.nbytes(), cudaMemcpyDeviceToDevice, s));
        }
      } else if (o.host.is_tensor() && o.host.tensor.dtype() != DType::kString) {
        const Tensor& t = o.host.tensor;
        KILN_ASSIGN_OR_RETURN(void* dst, sinks_.destination(o.name, t.shape(), t.nbytes()));
        if (dst != nullptr && t.nbytes() > 0) {
          KILN_CUDA_RETURN_IF_ERROR(
              cudaMemcpyAsync(dst, t.raw(), t.nbytes(), cudaMemcpyHostToDevice, s));
        }
      }
    }
    return Status::Ok();
  }

  Status set_output_allocator(const std::string& name, OutputAllocator* allocator) override {
    return sinks_.set(data_->outputs, name, allocator);
  }

  Status execute() override {
    KILN_RETURN_IF_ERROR(enqueue(nullptr));
    cudaStream_t s = ex_->stream();
    std::vector<std::pair<std::string, HostTensor>> outs;
    for (const cuda::RunOutput& o : ex_->outputs()) {
      if (o.on_device) {
        HostTensor h;
        h.dtype = o.device.dtype;
        h.shape = o.device.shape;
        h.data.resize(o.device.nbytes());
        if (!h.data.empty()) {
          KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(h.data.data(), o.device.data, h.data.size(),
                                                    cudaMemcpyDeviceToHost, s));
        }
        outs.emplace_back(o.name, std::move(h));
      } else if (o.host.is_tensor() && o.host.tensor.dtype() != DType::kString) {
        outs.emplace_back(o.name, runtime::host_from_tensor(o.host.tensor));
      }
    }
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
    host_outputs_ = std::move(outs);
    return Status::Ok();
  }

  const HostTensor* output(const std::string& name) const override {
    for (const auto& [n, t] : host_outputs_)
      if (n == name) return &t;
    return nullptr;
  }

  StatusOr<DeviceTensorView> device_output(const std::string& name) const override {
    for (const cuda::RunOutput& o : ex_->outputs()) {
      if (o.name != name) continue;
      if (!o.on_device) {
        return invalid_argument("output '" + name +
                                "' was computed on the host (see `kiln inspect`): read it with "
                                "execute() and output()");
      }
      DeviceTensorView v;
      v.data = o.device.data;
      v.dtype = o.device.dtype;
      v.shape = o.device.shape;
      return v;
    }
    return invalid_argument("no output named '" + name + "' in the last run");
  }

  void* stream() const override { return ex_->stream(); }
  void set_cuda_graph(bool on) override { ex_->set_cuda_graph(on); }
  void set_profiling(bool on) override { ex_->set_profiling(on); }
  std::vector<LayerTime> layer_times() const override {
    std::vector<LayerTime> out;
    for (const cuda::StepTime& t : ex_->profile()) {
      out.push_back(
          {t.node->name, t.node->op_type, t.gpu ? "cuda" : "cpu", t.ms, t.host_ms, t.gpu_timed});
    }
    return out;
  }
  std::string run_notes() const override {
    const cuda::RunStats& s = ex_->stats();
    std::ostringstream o;
    if (s.graph_replayed) o << "CUDA graph replayed; ";
    if (s.graph_captured) o << "CUDA graph captured; ";
    if (!s.graph_refusal.empty()) o << "no CUDA graph: " << s.graph_refusal << "; ";
    o << s.host_syncs << " host sync(s), " << s.copies_to_host << " copies to host, "
      << s.copies_to_device << " copies to device, " << s.dynamic_allocations
      << " allocation(s) outside the arena (arena " << ex_->arena_bytes() << " bytes)";
    return o.str();
  }

 private:
  struct Binding {
    std::string name;
    bool on_device = false;
    Tensor host;
    cuda::DeviceTensor device;
  };
  Binding& binding(const std::string& name) {
    for (Binding& b : bindings_)
      if (b.name == name) return b;
    bindings_.push_back(Binding{name, false, {}, {}});
    return bindings_.back();
  }
  Status check_dtype(const TensorInfo& info, DType dt) const {
    if (info.dtype != DType::kUndefined && info.dtype != dt) {
      return invalid_argument("input '" + info.name + "' is " + dtype_name(info.dtype) +
                              ", was given " + dtype_name(dt));
    }
    return Status::Ok();
  }

  std::shared_ptr<const EngineData> data_;
  std::unique_ptr<cuda::Executor> ex_;
  std::vector<Binding> bindings_;
  std::vector<std::pair<std::string, HostTensor>> host_outputs_;
  runtime::OutputSinks sinks_;
};

}  // namespace

StatusOr<std::shared_ptr<const void>> create_cuda_program(const runtime::EngineData& data) {
  std::unordered_map<const ir::Node*, cuda::NodeChoice> choices;
  for (size_t i = 0; i < data.nodes.size() && i < data.steps.size(); ++i) {
    cuda::NodeChoice c;
    c.gpu = data.steps[i].device == Device::kCuda;
    c.host_math = data.steps[i].note == kShapeComputationNote;
    c.tactic = data.steps[i].tactic;
    c.profile_tactics = data.steps[i].profile_tactics;
    choices[data.nodes[i]] = c;
  }
  cuda::ProgramOptions po;
  po.workspace_bytes = data.options.workspace_bytes;
  po.allow_tf32 = data.options.tf32;
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<const cuda::Program> p,
                        cuda::Program::create(*data.model->graph, std::move(choices), po));
  return std::static_pointer_cast<const void>(p);
}

StatusOr<std::unique_ptr<ExecutionContext>> create_cuda_context(
    std::shared_ptr<const runtime::EngineData> data) {
  auto program = std::static_pointer_cast<const cuda::Program>(data->cuda_program);
  if (!program) return internal_error("the engine's CUDA program was not prepared");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Executor> ex, cuda::Executor::create(program));
  return std::unique_ptr<ExecutionContext>(new CudaContext(std::move(data), std::move(ex)));
}

StatusOr<uint64_t> cuda_trial_run(
    std::shared_ptr<const runtime::EngineData> data,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& inputs) {
  auto program = std::static_pointer_cast<const cuda::Program>(data->cuda_program);
  if (!program) return internal_error("the engine's CUDA program was not prepared");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Executor> ex, cuda::Executor::create(program));
  std::vector<Tensor> tensors;
  tensors.reserve(inputs.size());
  std::vector<cuda::RunInput> ins;
  for (const auto& [name, shape] : inputs) {
    DType dt = DType::kFloat32;
    for (const TensorInfo& t : data->inputs)
      if (t.name == name) dt = t.dtype;
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dt, shape));
    tensors.push_back(std::move(t));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    cuda::RunInput in;
    in.name = inputs[i].first;
    in.host = &tensors[i];
    ins.push_back(std::move(in));
  }
  // The first run records the allocations and plans the arena; the second runs in it.
  KILN_RETURN_IF_ERROR(ex->run(ins));
  KILN_RETURN_IF_ERROR(ex->run(ins));
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ex->stream()));
  return ex->arena_bytes();
}

StatusOr<std::vector<Datum>> cuda_run_values(
    std::shared_ptr<const runtime::EngineData> data,
    const std::vector<std::pair<std::string, Datum>>& feeds) {
  auto program = std::static_pointer_cast<const cuda::Program>(data->cuda_program);
  if (!program) return internal_error("the engine's CUDA program was not prepared");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Executor> ex, cuda::Executor::create(program));
  std::vector<cuda::RunInput> ins;
  for (const auto& [name, d] : feeds) {
    cuda::RunInput in;
    in.name = name;
    in.value = &d;
    ins.push_back(std::move(in));
  }
  KILN_RETURN_IF_ERROR(ex->run(ins));
  std::vector<Datum> out;
  for (const cuda::RunOutput& o : ex->outputs()) {
    if (!o.on_device) {
      out.push_back(o.host);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::create(o.device.dtype, o.device.shape));
    if (t.nbytes() > 0) {
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(t.mutable_raw(), o.device.data, t.nbytes(),
                                                cudaMemcpyDeviceToHost, ex->stream()));
    }
    out.push_back(Datum::of(std::move(t)));
  }
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ex->stream()));
  return out;
}

}  // namespace kiln::backend
