// kiln bench: throughput and latency of an engine, as trtexec reports them: end-to-end latency
// split into host-to-device copy, GPU compute and device-to-host copy, and the enqueue time.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "cli.h"
#include "commands.h"
#include "engine_cache.h"
#include "runtime/engine_data.h"

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kiln::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  double latency = 0, h2d = 0, compute = 0, d2h = 0, enqueue = 0;  // ms
};

struct Summary {
  double min = 0, max = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0;
};

Summary summarize_ms(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  s.median = pct(50);
  s.p90 = pct(90);
  s.p95 = pct(95);
  s.p99 = pct(99);
  return s;
}

void print_summary(const char* what, const Summary& s) {
  std::printf(
      "%-18s min = %.5f ms, max = %.5f ms, mean = %.5f ms, median = %.5f ms, "
      "percentile(90%%) = %.5f ms, percentile(95%%) = %.5f ms, percentile(99%%) = %.5f ms\n",
      what, s.min, s.max, s.mean, s.median, s.p90, s.p95, s.p99);
}

nlohmann::json summary_json(const Summary& s) {
  return {{"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"median", s.median},
          {"p90", s.p90}, {"p95", s.p95}, {"p99", s.p99}};
}

StatusOr<std::vector<std::pair<std::string, HostTensor>>> make_inputs(const Engine& e,
                                                                      const BenchOptions& o) {
  std::map<std::string, std::vector<int64_t>> given;
  if (!o.shapes.empty()) {
    KILN_ASSIGN_OR_RETURN(given, parse_shape_list(o.shapes));
  }
  for (const auto& [name, s] : given) {
    bool known = false;
    for (const TensorInfo& t : e.inputs()) known |= t.name == name;
    if (!known) return invalid_argument("--shapes names '" + name + "', not an input of the model");
  }
  std::vector<std::pair<std::string, HostTensor>> out;
  std::mt19937_64 rng(o.seed);
  for (const TensorInfo& t : e.inputs()) {
    std::vector<int64_t> shape = t.shape;
    auto it = given.find(t.name);
    if (it != given.end()) {
      shape = it->second;
    } else if (!e.profiles().empty() && e.profiles()[0].inputs.count(t.name)) {
      shape = e.profiles()[0].inputs.at(t.name).opt;
    }
    bool dynamic = false;
    for (int64_t& d : shape) {
      if (d < 0) {
        d = 1;
        dynamic = true;
      }
    }
    if (dynamic) {
      std::fprintf(stderr,
                   "kiln: input '%s' has dynamic dims: benchmarking %s (set with --shapes)\n",
                   t.name.c_str(), shape_to_string(shape).c_str());
    }
    if (!t.is_tensor || t.dtype == DType::kString) {
      return invalid_argument("input '" + t.name +
                              "' is not a numeric tensor: bench cannot fill it");
    }
    HostTensor h = HostTensor::zeros(t.dtype, shape);
    // Seeded values in [-1, 1) for floats, small non-negative integers otherwise (indices).
    StatusOr<Tensor> tt = Tensor::create(DType::kFloat32, shape);
    if (!tt.ok()) return tt.take_status();
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    float* f = tt->mutable_data<float>();
    bool is_float = is_floating(t.dtype);
    for (int64_t i = 0; i < tt->numel(); ++i)
      f[i] = is_float ? uni(rng) : static_cast<float>(rng() % 2);
    CastOptions co;
    StatusOr<Tensor> conv = convert_tensor(*tt, t.dtype, co);
    if (!conv.ok()) return conv.take_status();
    if (h.data.size() == conv->nbytes() && !h.data.empty()) {
      std::memcpy(h.data.data(), conv->raw(), h.data.size());
    }
    out.emplace_back(t.name, std::move(h));
  }
  return out;
}

struct Worker {
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<Sample> samples;
  Status status;
#ifdef KILN_HAVE_CUDA
  cudaStream_t stream = nullptr;
  cudaEvent_t ev[4] = {};
  std::vector<void*> host_in, dev_in;
  std::vector<uint64_t> in_bytes;
  std::map<std::string, std::pair<void*, uint64_t>> host_out;
#endif
};

Status run_cpu_once(Worker& w, const std::vector<std::pair<std::string, HostTensor>>& inputs,
                    bool record) {
  auto t0 = Clock::now();
  for (const auto& [n, h] : inputs) KILN_RETURN_IF_ERROR(w.ctx->set_input(n, h));
  auto t1 = Clock::now();
  KILN_RETURN_IF_ERROR(w.ctx->execute());
  auto t2 = Clock::now();
  if (record) {
    Sample s;
    s.enqueue = std::chrono::duration<double, std::milli>(t2 - t1).count();
    s.compute = s.enqueue;
    s.h2d = std::chrono::duration<double, std::milli>(t1 - t0).count();
    s.latency = std::chrono::duration<double, std::milli>(t2 - t0).count();
    w.samples.push_back(s);
  }
  return Status::Ok();
}

#ifdef KILN_HAVE_CUDA
#define BENCH_CUDA(expr)                                                                        \
  do {                                                                                          \
    cudaError_t e_ = (expr);                                                                    \
    if (e_ != cudaSuccess)                                                                      \
      return Status(StatusCode::kInternal, std::string(#expr) + ": " + cudaGetErrorString(e_)); \
  } while (0)

Status setup_cuda(Worker& w, const Engine& e,
                  const std::vector<std::pair<std::string, HostTensor>>& inputs, bool graph) {
  w.stream = static_cast<cudaStream_t>(w.ctx->stream());
  for (cudaEvent_t& ev : w.ev) BENCH_CUDA(cudaEventCreate(&ev));
  for (const auto& [n, h] : inputs) {
    void* hp = nullptr;
    void* dp = nullptr;
    uint64_t bytes = h.data.size();
    BENCH_CUDA(cudaMallocHost(&hp, std::max<uint64_t>(bytes, 1)));
    BENCH_CUDA(cudaMalloc(&dp, std::max<uint64_t>(bytes, 1)));
    if (bytes) std::memcpy(hp, h.data.data(), bytes);
    w.host_in.push_back(hp);
    w.dev_in.push_back(dp);
    w.in_bytes.push_back(bytes);
    BENCH_CUDA(cudaMemcpy(dp, hp, bytes, cudaMemcpyHostToDevice));
    DeviceTensorView v{dp, h.dtype, h.shape};
    KILN_RETURN_IF_ERROR(w.ctx->set_input_device(n, v));
  }
  w.ctx->set_cuda_graph(graph);
  (void)e;
  return Status::Ok();
}

Status run_cuda_once(Worker& w, const Engine& e, bool record) {
  BENCH_CUDA(cudaEventRecord(w.ev[0], w.stream));
  for (size_t i = 0; i < w.dev_in.size(); ++i) {
    if (w.in_bytes[i]) {
      BENCH_CUDA(cudaMemcpyAsync(w.dev_in[i], w.host_in[i], w.in_bytes[i], cudaMemcpyHostToDevice,
                                 w.stream));
    }
  }
  BENCH_CUDA(cudaEventRecord(w.ev[1], w.stream));
  auto t0 = Clock::now();
  KILN_RETURN_IF_ERROR(w.ctx->enqueue(w.stream));
  auto t1 = Clock::now();
  BENCH_CUDA(cudaEventRecord(w.ev[2], w.stream));
  for (const TensorInfo& t : e.outputs()) {
    StatusOr<DeviceTensorView> v = w.ctx->device_output(t.name);
    if (!v.ok()) continue;  // outputs computed on the host need no copy
    uint64_t bytes = dtype_storage_bytes(
        v->dtype, static_cast<uint64_t>(HostTensor{v->dtype, v->shape, {}}.numel()));
    auto& slot = w.host_out[t.name];
    if (slot.second < bytes) {
      if (slot.first) cudaFreeHost(slot.first);
      slot.first = nullptr;
      BENCH_CUDA(cudaMallocHost(&slot.first, bytes));
      slot.second = bytes;
    }
    if (bytes) {
      BENCH_CUDA(cudaMemcpyAsync(slot.first, v->data, bytes, cudaMemcpyDeviceToHost, w.stream));
    }
  }
  BENCH_CUDA(cudaEventRecord(w.ev[3], w.stream));
  BENCH_CUDA(cudaEventSynchronize(w.ev[3]));
  if (record) {
    Sample s;
    float ms = 0;
    cudaEventElapsedTime(&ms, w.ev[0], w.ev[3]);
    s.latency = ms;
    cudaEventElapsedTime(&ms, w.ev[0], w.ev[1]);
    s.h2d = ms;
    cudaEventElapsedTime(&ms, w.ev[1], w.ev[2]);
    s.compute = ms;
    cudaEventElapsedTime(&ms, w.ev[2], w.ev[3]);
    s.d2h = ms;
    s.enqueue = std::chrono::duration<double, std::milli>(t1 - t0).count();
    w.samples.push_back(s);
  }
  return Status::Ok();
}

void teardown_cuda(Worker& w) {
  for (cudaEvent_t ev : w.ev)
    if (ev) cudaEventDestroy(ev);
  for (void* p : w.host_in) cudaFreeHost(p);
  for (void* p : w.dev_in) cudaFree(p);
  for (auto& [n, s] : w.host_out)
    if (s.first) cudaFreeHost(s.first);
}
#endif

}  // namespace

int bench_command(const BenchOptions& o) {
  StatusOr<std::shared_ptr<Engine>> loaded = open_engine(o.model, o.engine);
  if (!loaded.ok()) return report_error(loaded.status());
  const Engine& e = **loaded;
  bool gpu = e.device() == Device::kCuda;
#ifndef KILN_HAVE_CUDA
  gpu = false;
#endif
  if (o.streams < 1 || o.streams > 64)
    return report_error(invalid_argument("--streams must be 1..64"));
  StatusOr<std::vector<std::pair<std::string, HostTensor>>> inputs = make_inputs(e, o);
  if (!inputs.ok()) return report_error(inputs.status());

  std::vector<Worker> workers(static_cast<size_t>(o.streams));
  for (Worker& w : workers) {
    StatusOr<std::unique_ptr<ExecutionContext>> c = e.create_context();
    if (!c.ok()) return report_error(c.status());
    w.ctx = std::move(c).value();
#ifdef KILN_HAVE_CUDA
    if (gpu) {
      Status st = setup_cuda(w, e, *inputs, o.cuda_graph);
      if (!st.ok()) return report_error(st);
    }
#endif
  }
  auto once = [&](Worker& w, bool record) -> Status {
#ifdef KILN_HAVE_CUDA
    if (gpu) return run_cuda_once(w, e, record);
#endif
    return run_cpu_once(w, *inputs, record);
  };
  // Warm-up (each context: at least two runs, which plan the arena and capture the CUDA graph).
  for (Worker& w : workers) {
    for (int i = 0; i < 3; ++i) {
      Status st = once(w, false);
      if (!st.ok()) return report_error(st);
    }
  }
  auto wstart = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - wstart).count() < o.warmup_s) {
    Status st = once(workers[0], false);
    if (!st.ok()) return report_error(st);
  }
  std::string notes = workers[0].ctx->run_notes();

  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  auto body = [&](Worker& w) {
    while (!failed) {
      double el = std::chrono::duration<double>(Clock::now() - t0).count();
      if (el >= o.duration_s && static_cast<int>(w.samples.size()) * o.streams >= o.iterations &&
          !w.samples.empty()) {
        break;
      }
      w.status = once(w, true);
      if (!w.status.ok()) failed = true;
    }
  };
  if (workers.size() == 1) {
    body(workers[0]);
  } else {
    std::vector<std::thread> threads;
    for (Worker& w : workers) threads.emplace_back(body, std::ref(w));
    for (std::thread& t : threads) t.join();
  }
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  for (Worker& w : workers)
    if (!w.status.ok()) return report_error(w.status);

  std::vector<double> lat, h2d, comp, d2h, enq;
  for (Worker& w : workers)
    for (const Sample& s : w.samples) {
      lat.push_back(s.latency);
      h2d.push_back(s.h2d);
      comp.push_back(s.compute);
      d2h.push_back(s.d2h);
      enq.push_back(s.enqueue);
    }
  int64_t batch = 1;
  if (!inputs->empty() && !(*inputs)[0].second.shape.empty()) batch = (*inputs)[0].second.shape[0];
  double qps = static_cast<double>(lat.size()) / wall;
  std::printf("=== %s (%s engine%s, %d stream%s) ===\n", o.model.c_str(), device_name(e.device()),
              o.cuda_graph ? ", CUDA graph" : "", o.streams, o.streams > 1 ? "s" : "");
  for (const auto& [n, h] : *inputs)
    std::printf("Input %s: %s%s\n", n.c_str(), dtype_name(h.dtype),
                shape_to_string(h.shape).c_str());
  std::printf("Timed runs: %zu in %.3f s\n", lat.size(), wall);
  std::printf("Throughput: %.2f qps (%.1f inferences/s at batch %lld)\n", qps,
              qps * static_cast<double>(batch), static_cast<long long>(batch));
  Summary sl = summarize_ms(lat), sh = summarize_ms(h2d), sc = summarize_ms(comp),
          sd = summarize_ms(d2h), se = summarize_ms(enq);
  print_summary("Latency:", sl);
  if (gpu) {
    print_summary("H2D Latency:", sh);
    print_summary("GPU Compute Time:", sc);
    print_summary("D2H Latency:", sd);
  } else {
    print_summary("Input copy:", sh);
    print_summary("Compute Time:", sc);
  }
  print_summary("Enqueue Time:", se);
  if (!notes.empty()) std::printf("Run notes: %s\n", notes.c_str());

  nlohmann::json j;
  if (o.profile) {
    Worker& w = workers[0];
    w.ctx->set_profiling(true);
    std::map<std::string, std::pair<LayerTime, int>> acc;
    std::vector<std::string> order;
    const int runs = 10;
    for (int r = 0; r < runs; ++r) {
      Status st = once(w, false);
      if (!st.ok()) return report_error(st);
      for (const LayerTime& t : w.ctx->layer_times()) {
        std::string key = t.name + "\x1f" + t.op;
        auto it = acc.find(key);
        if (it == acc.end()) {
          acc[key] = {t, 1};
          order.push_back(key);
        } else {
          it->second.first.ms += t.ms;
          it->second.first.host_ms += t.host_ms;
          it->second.second++;
        }
      }
    }
    w.ctx->set_profiling(false);
    double total = 0, host_total = 0;
    for (auto& [k, v] : acc) {
      total += v.first.ms / v.second;
      host_total += v.first.host_ms / v.second;
    }
    std::printf("\n=== Per-layer time (average of %d profiled runs, each layer alone) ===\n", runs);
    if (gpu) {
      std::printf(
          "ms: GPU time of the layer's kernels (CUDA events, the stream held while the layer is\n"
          "enqueued, so launch cost is excluded; * = host wall time: the layer waits on the "
          "host).\n"
          "host ms: time the host spends enqueuing the layer.\n");
    }
    std::printf("%-48s %-22s %-5s %10s %7s %10s\n", "layer", "op", "dev", "ms", "%", "host ms");
    j["layers"] = nlohmann::json::array();
    for (const std::string& k : order) {
      const auto& [t, n] = acc[k];
      const double ms = t.ms / n, host_ms = t.host_ms / n;
      std::printf("%-48.48s %-22.22s %-5s %9.4f%s %6.1f%% %10.4f\n", t.name.c_str(), t.op.c_str(),
                  t.device.c_str(), ms, gpu && !t.gpu_timed ? "*" : " ",
                  total > 0 ? 100.0 * ms / total : 0.0, host_ms);
      j["layers"].push_back({{"name", t.name},
                             {"op", t.op},
                             {"device", t.device},
                             {"ms", ms},
                             {"host_ms", host_ms},
                             {"gpu_timed", t.gpu_timed}});
    }
    std::printf("%-48s %-22s %-5s %9.4f  %7s %10.4f\n", "total", "", "", total, "", host_total);
  }
#ifdef KILN_HAVE_CUDA
  for (Worker& w : workers)
    if (gpu) teardown_cuda(w);
#endif
  if (!o.json.empty()) {
    j["model"] = o.model;
    j["device"] = device_name(e.device());
    j["streams"] = o.streams;
    j["cuda_graph"] = o.cuda_graph;
    j["runs"] = lat.size();
    j["seconds"] = wall;
    j["throughput_qps"] = qps;
    j["batch"] = batch;
    j["latency_ms"] = summary_json(sl);
    j["h2d_ms"] = summary_json(sh);
    j["compute_ms"] = summary_json(sc);
    j["d2h_ms"] = summary_json(sd);
    j["enqueue_ms"] = summary_json(se);
    j["notes"] = notes;
    std::ofstream f(o.json);
    f << j.dump(2) << "\n";
    if (!f) return report_error(io_error("cannot write " + o.json));
  }
  return kExitOk;
}

}  // namespace kiln::cli
