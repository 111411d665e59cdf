// Kiln's public C++ API. Standard headers only.
//
//   auto engine = kiln::Engine::from_onnx("model.onnx");          // import + optimize
//   auto ctx = (*engine)->create_execution_context();
//   ctx->set_input("x", kiln::HostTensor::zeros(kiln::DType::kFloat32, {1, 3, 32, 32}));
//   ctx->execute();
//   const kiln::HostTensor* y = ctx->output("y");
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <span>

#include "kiln/builder.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln {

// A dense, row-major tensor in host memory. Sub-byte types are packed (low bits first).
struct HostTensor {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;

  static HostTensor zeros(DType dtype, std::vector<int64_t> shape);
  int64_t numel() const;
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(data.data());
  }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data.data());
  }
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;          // -1 where the dimension is dynamic
  std::vector<std::string> dim_names;  // symbolic names of dynamic dims ("" if none)
  bool is_tensor = true;               // false for sequences, optionals, maps
};

class ExecutionContext;

// A tensor in device memory (CUDA engines), not owned.
struct DeviceTensorView {
  void* data = nullptr;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
};

// Time of one layer in a profiled run.
struct LayerTime {
  std::string name;    // node name
  std::string op;      // op type
  std::string device;  // "cuda", "cpu"
  // The layer's time: on the GPU, its kernels' time measured with CUDA events while the stream
  // was held until the whole layer was enqueued (host launch cost excluded); on the CPU, and for
  // GPU layers that wait on the host (If, Loop, data-dependent shapes), wall-clock time.
  double ms = 0;
  double host_ms = 0;      // host time spent enqueuing (GPU) or running (CPU) the layer
  bool gpu_timed = false;  // ms is event-timed GPU time
};

// Memory for an output, given by the application: device memory on a CUDA engine, host memory on
// a CPU engine. After each run Kiln asks for room for the output's shape in that run (known only
// once the run got there for NonZero, NonMaxSuppression and the like) and writes the output
// there: on the run's stream for a CUDA engine, before the call returns for a CPU engine.
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  // At least `bytes` bytes (possibly 0) aligned to `alignment`, for output `name`. `current` is
  // what this allocator returned for the output last time (null at first): return it again when
  // it is large enough. Null (for bytes > 0) refuses: the run fails with an error naming the
  // output.
  virtual void* reallocate_output(const std::string& name, void* current, uint64_t bytes,
                                  uint64_t alignment) = 0;
  // The output's shape in this run, told before the output is written.
  virtual void notify_shape(const std::string& name, const std::vector<int64_t>& shape) = 0;
};

// A built model ready to run: immutable, shared between threads; each thread runs through its
// own ExecutionContext.
class Engine {
 public:
  virtual ~Engine() = default;
  // Imports an ONNX model and builds a CPU engine in memory.
  static StatusOr<std::unique_ptr<Engine>> from_onnx(const std::string& path);
  // Loads an engine file (memory-mapped). Refuses files that are damaged or built for another
  // target, saying what to rebuild.
  static StatusOr<std::shared_ptr<Engine>> load(const std::string& path);
  // Same, from engine bytes in memory.
  static StatusOr<std::shared_ptr<Engine>> deserialize(std::span<const uint8_t> bytes);

  virtual Device device() const = 0;
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  virtual const std::vector<OptimizationProfile>& profiles() const = 0;
  // Layers with their device, kernel, tactic and precision; memory use; build options (JSON).
  virtual std::string describe_json() const = 0;
  // A new context; null when it cannot be made (create_context says why).
  virtual std::unique_ptr<ExecutionContext> create_execution_context() const = 0;
  virtual StatusOr<std::unique_ptr<ExecutionContext>> create_context() const = 0;
};

// Per-run state: bound inputs, produced outputs, the stream and activation memory (CUDA).
class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  // Binds an input by name (copied). Checked against the model's dtype, static dims and the
  // engine's optimization profiles.
  virtual Status set_input(const std::string& name, HostTensor tensor) = 0;
  // Binds an input already in device memory (CUDA engines; not copied: keep it valid until the
  // run completes).
  virtual Status set_input_device(const std::string& name, const DeviceTensorView& tensor) = 0;
  // Runs synchronously; outputs are then on the host (output()).
  virtual Status execute() = 0;
  // Enqueues a run on `stream` (a cudaStream_t; null: the context's own) and returns at once.
  // Outputs stay on the device (device_output()) and are valid once the stream gets there and
  // until the next run. On a CPU engine this runs synchronously.
  virtual Status enqueue(void* stream = nullptr) = 0;
  // An output of the last execute(), or null when there is no such (tensor) output.
  virtual const HostTensor* output(const std::string& name) const = 0;
  // An output of the last enqueue() on the device; shapes that depend on data are final here.
  virtual StatusOr<DeviceTensorView> device_output(const std::string& name) const = 0;
  // Writes output `name` of every later run into memory from `allocator` (null: stop). The
  // allocator must outlive its use by this context. Outputs without one stay readable through
  // output() / device_output().
  virtual Status set_output_allocator(const std::string& name, OutputAllocator* allocator) = 0;
  // The context's own CUDA stream (null on a CPU engine).
  virtual void* stream() const = 0;
  // Capture each input shape's run into a CUDA graph and replay it (CUDA engines).
  virtual void set_cuda_graph(bool on) = 0;
  // Time every layer of later runs (slows them down).
  virtual void set_profiling(bool on) = 0;
  virtual std::vector<LayerTime> layer_times() const = 0;
  // What the last run did that a user tuning latency may want to know (host syncs, copies,
  // CUDA graph replay or why not).
  virtual std::string run_notes() const = 0;
};

}  // namespace kiln
