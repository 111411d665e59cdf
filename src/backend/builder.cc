// build_engine: ONNX → IR → passes → placement → (trial run) → engine file bytes.
#include <chrono>
#include <cstdio>
#include <fstream>

#include "backend/builder.h"
#include "backend/cuda_backend.h"
#include "backend/placement.h"
#include "backend/timing_cache.h"
#include "engine/engine_file.h"
#include "kiln/builder.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "runtime/engine_io.h"

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

// A one-line progress display on stderr: stage, item i of n, elapsed time.
class Progress {
 public:
  explicit Progress(bool on) : on_(on), start_(Clock::now()) {}
  ~Progress() { done(); }
  void stage(const std::string& name, int i = 0, int n = 0) {
    if (!on_) return;
    double s = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string bar;
    if (n > 0) {
      int filled = static_cast<int>(24.0 * i / n);
      bar = " [" + std::string(static_cast<size_t>(filled), '#') +
            std::string(static_cast<size_t>(24 - filled), '.') + "] " + std::to_string(i) + "/" +
            std::to_string(n);
    }
    std::fprintf(stderr, "\r\033[K[kiln build] %-10s%s  %.1fs", name.c_str(), bar.c_str(), s);
    std::fflush(stderr);
    shown_ = true;
  }
  void done() {
    if (on_ && shown_) {
      std::fprintf(stderr, "\n");
      shown_ = false;
    }
  }

 private:
  bool on_;
  bool shown_ = false;
  Clock::time_point start_;
};

Status check_profiles(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  for (size_t pi = 0; pi < profiles.size(); ++pi) {
    std::string where = "profile " + std::to_string(pi) + ": ";
    for (const auto& [name, r] : profiles[pi].inputs) {
      const ir::Value* v = nullptr;
      for (const ir::Value* in : g.inputs)
        if (in->name == name && !in->constant) v = in;
      if (v == nullptr) {
        std::string names;
        for (const ir::Value* in : g.inputs)
          if (!in->constant) names += (names.empty() ? "" : ", ") + in->name;
        return invalid_argument(where + "the model has no input named '" + name +
                                "' (its inputs: " + names + ")");
      }
      size_t rank = r.opt.size();
      if (r.min.size() != rank || r.max.size() != rank) {
        return invalid_argument(where + "input '" + name +
                                "': min, opt and max shapes must have the same rank");
      }
      if (v->type.shape.rank_known && static_cast<size_t>(v->type.shape.rank()) != rank) {
        return invalid_argument(where + "input '" + name + "' has rank " +
                                std::to_string(v->type.shape.rank()) + ", the profile gives " +
                                shape_to_string(r.opt));
      }
      for (size_t d = 0; d < rank; ++d) {
        if (r.min[d] < 0 || r.min[d] > r.opt[d] || r.opt[d] > r.max[d]) {
          return invalid_argument(where + "input '" + name + "' dimension " + std::to_string(d) +
                                  ": need 0 <= min <= opt <= max, got " + std::to_string(r.min[d]) +
                                  ", " + std::to_string(r.opt[d]) + ", " +
                                  std::to_string(r.max[d]));
        }
        if (v->type.shape.rank_known) {
          const ir::Dim& dim = v->type.shape.dims[d];
          if (dim.known() && (r.min[d] != dim.value || r.max[d] != dim.value)) {
            return invalid_argument(
                where + "input '" + name + "' dimension " + std::to_string(d) + " is fixed at " +
                std::to_string(dim.value) + " by the model, the profile gives [" +
                std::to_string(r.min[d]) + ", " + std::to_string(r.max[d]) + "]");
          }
        }
      }
    }
  }
  return Status::Ok();
}

// The nodes of `g` and its subgraphs in runtime::collect_nodes' order (the steps' order),
// mutable: the builder owns the graph.
void mutable_nodes(ir::Graph& g, std::vector<ir::Node*>* out) {
  for (const auto& n : g.nodes()) {
    out->push_back(n.get());
    for (ir::Attribute& a : n->attrs) {
      if (a.g) mutable_nodes(*a.g, out);
      for (const auto& sg : a.graphs)
        if (sg) mutable_nodes(*sg, out);
    }
  }
}

uint64_t constant_bytes(const ir::Graph& g) {
  uint64_t total = 0;
  for (const auto& v : g.values())
    if (v->constant && v->constant->dtype() != DType::kString) total += v->constant->nbytes();
  for (const auto& n : g.nodes())
    for (const ir::Attribute& a : n->attrs) {
      if (a.g) total += constant_bytes(*a.g);
      for (const auto& sg : a.graphs)
        if (sg) total += constant_bytes(*sg);
    }
  return total;
}

// Input shapes of a trial run: each profile's max shapes, or the model's static shapes.
std::vector<std::vector<std::pair<std::string, std::vector<int64_t>>>> trial_shapes(
    const runtime::EngineData& data) {
  std::vector<std::vector<std::pair<std::string, std::vector<int64_t>>>> out;
  auto fill = [&](const OptimizationProfile* p) -> bool {
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const TensorInfo& t : data.inputs) {
      if (!t.is_tensor || t.dtype == DType::kString) return false;
      std::vector<int64_t> s = t.shape;
      if (p != nullptr) {
        auto it = p->inputs.find(t.name);
        if (it != p->inputs.end()) s = it->second.max;
      }
      for (int64_t d : s)
        if (d < 0) return false;
      shapes.emplace_back(t.name, s);
    }
    out.push_back(std::move(shapes));
    return true;
  };
  if (data.profiles.empty()) {
    fill(nullptr);
  } else {
    for (const OptimizationProfile& p : data.profiles) fill(&p);
  }
  return out;
}

// Input shapes of the tuning run: each profile's opt shapes, or the model's static shapes.
std::vector<backend::InputShapes> tuning_shapes(const runtime::EngineData& data) {
  std::vector<backend::InputShapes> out;
  auto fill = [&](const OptimizationProfile* p) {
    backend::InputShapes shapes;
    for (const TensorInfo& t : data.inputs) {
      if (!t.is_tensor || t.dtype == DType::kString) return;
      std::vector<int64_t> s = t.shape;
      if (p != nullptr) {
        auto it = p->inputs.find(t.name);
        if (it != p->inputs.end()) s = it->second.opt;
      }
      for (int64_t d : s)
        if (d < 0) return;
      shapes.emplace_back(t.name, s);
    }
    out.push_back(std::move(shapes));
  };
  if (data.profiles.empty()) {
    fill(nullptr);
  } else {
    for (const OptimizationProfile& p : data.profiles) fill(&p);
  }
  return out;
}

// The tuning run of a CUDA engine (opt level >= 1): chooses the steps' tactics, reads and
// updates the timing cache, and prepares the backend again with the chosen tactics.
Status tune_engine(runtime::EngineData& data, std::shared_ptr<runtime::EngineData> shared,
                   const BuilderConfig& config, const backend::GpuInfo& gpu, BuildReport* report,
                   std::vector<std::string>* warnings) {
  const auto t0 = Clock::now();
  backend::TimingDevice device{gpu.name, gpu.sm, gpu.cuda_runtime, gpu.cudnn, gpu.cublaslt};
  backend::TimingCache cache(device);
  if (!config.timing_cache_path.empty()) {
    std::string warning;
    cache = backend::TimingCache::load(config.timing_cache_path, device, &warning);
    if (!warning.empty()) warnings->push_back(warning);
  }
  const std::vector<backend::InputShapes> shapes = tuning_shapes(data);
  if (shapes.empty()) {
    warnings->push_back(
        "tactic tuning skipped: the inputs have no concrete shapes (give "
        "--opt-shapes)");
    return Status::Ok();
  }
  StatusOr<backend::TuningResult> tuned =
      backend::cuda_tune(std::move(shared), shapes, config.opt_level, &cache);
  if (!tuned.ok()) {
    warnings->push_back("tactic tuning failed, kernels keep their default tactics: " +
                        tuned.status().message());
    return Status::Ok();
  }
  constexpr size_t kMaxNotes = 20;
  for (size_t i = 0; i < tuned->notes.size() && i < kMaxNotes; ++i) {
    warnings->push_back("tuning: " + tuned->notes[i]);
  }
  if (tuned->notes.size() > kMaxNotes) {
    warnings->push_back("tuning: " + std::to_string(tuned->notes.size() - kMaxNotes) +
                        " more note(s)");
  }
  bool changed = false;
  for (size_t i = 0; i < data.steps.size() && i < tuned->tactics.size(); ++i) {
    runtime::StepRecord& step = data.steps[i];
    if (step.tactic != tuned->tactics[i]) changed = true;
    step.tactic = tuned->tactics[i];
    // Per-profile tactics only where a later profile chose differently (kept for every
    // profile then; a profile whose run did not reach the node keeps profile 0's).
    std::vector<int64_t> per;
    bool differs = false;
    for (const std::vector<int64_t>& p : tuned->profile_tactics) {
      const int64_t t = i < p.size() && p[i] != -1 ? p[i] : step.tactic;
      differs |= t != step.tactic;
      per.push_back(t);
    }
    if (!differs) per.clear();
    if (per != step.profile_tactics) changed = true;
    step.profile_tactics = std::move(per);
  }
  if (changed) {
    data.cuda_program.reset();  // the weights are on the GPU once at a time
    KILN_RETURN_IF_ERROR(runtime::prepare_backend(data));
  }
  if (!config.timing_cache_path.empty()) {
    Status saved = cache.save(config.timing_cache_path);
    if (!saved.ok()) warnings->push_back("timing cache not written: " + saved.message());
  }
  if (report != nullptr) {
    report->tuned = true;
    report->tuned_nodes = tuned->nodes_tuned;
    report->timed_candidates = tuned->candidates_timed;
    report->cache_hits = tuned->cache_hits;
    report->tuning_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return Status::Ok();
}

}  // namespace

namespace backend {

StatusOr<std::shared_ptr<runtime::EngineData>> build_engine_data(const std::string& onnx_path,
                                                                 const BuilderConfig& config,
                                                                 BuildReport* report) {
  auto t0 = Clock::now();
  Progress progress(config.progress);
  if (config.opt_level < 0 || config.opt_level > 5) {
    return invalid_argument("optimization level must be 0..5, got " +
                            std::to_string(config.opt_level));
  }
  if (config.fp16 && config.bf16) {
    return invalid_argument("--fp16 and --bf16 exclude each other: pick one");
  }
  progress.stage("import");
  auto data = std::make_shared<runtime::EngineData>();
  KILN_ASSIGN_OR_RETURN(data->model, onnx::load_model(onnx_path));
  ir::Graph& g = *data->model->graph;
  KILN_RETURN_IF_ERROR_CTX(check_profiles(g, config.profiles), onnx_path);
  progress.stage("optimize");
  if (config.opt_level > 0) {
    KILN_RETURN_IF_ERROR_CTX(passes::PassManager::default_pipeline().run(g), onnx_path);
    KILN_RETURN_IF_ERROR_CTX(passes::PassManager::fusion_pipeline().run(g), onnx_path);
  }
  if (config.fp16 || config.bf16) {
    progress.stage("precision");
    StatusOr<bool> lowered =
        passes::lower_precision(g, config.fp16 ? DType::kFloat16 : DType::kBFloat16);
    if (!lowered.ok()) return lowered.take_status().with_context(onnx_path);
  }
  if (config.device == Device::kCuda && config.opt_level > 0) {
    // After precision (the convolutions' dtypes are final) and the fusions: NHWC convolutions.
    StatusOr<bool> laid_out = passes::layout_nhwc(g);
    if (!laid_out.ok()) return laid_out.take_status().with_context(onnx_path);
    StatusOr<bool> copies = passes::fuse_layout_copy(g);
    if (!copies.ok()) return copies.take_status().with_context(onnx_path);
  }
  data->device = config.device;
  data->options.tf32 = config.tf32;
  data->options.fp16 = config.fp16;
  data->options.bf16 = config.bf16;
  data->options.workspace_bytes = config.workspace_bytes;
  data->options.opt_level = config.opt_level;
  data->options.strict = config.strict;
  data->profiles = config.profiles;
  backend::GpuInfo gpu_info;
  if (config.device == Device::kCuda) {
    StatusOr<backend::GpuInfo> gpu = backend::cuda_device();
    if (!gpu.ok()) {
      return gpu.take_status().with_context(
          "cannot build a CUDA engine here (build one for the CPU with --device cpu)");
    }
    gpu_info = *gpu;
  }
  progress.stage("place");
  backend::PlacementResult placed = backend::place_nodes(g, config.device);
  if (config.strict && !placed.fallbacks.empty()) {
    std::string msg = onnx_path + ": --strict: " + std::to_string(placed.fallbacks.size()) +
                      " node(s) cannot run on the " + device_name(config.device) + ":";
    for (size_t i = 0; i < placed.fallbacks.size() && i < 20; ++i) {
      msg += "\n  " + placed.fallbacks[i];
    }
    if (placed.fallbacks.size() > 20) msg += "\n  ...";
    return Status(StatusCode::kUnsupportedOp, msg);
  }
  data->steps = std::move(placed.steps);
  runtime::collect_nodes(g, &data->nodes);
  if (config.device == Device::kCuda) {
    // Build-time kernel work (NVRTC-compiled pointwise kernels), stored in the nodes.
    progress.stage("compile kernels");
    std::vector<ir::Node*> nodes;
    mutable_nodes(g, &nodes);
    for (size_t i = 0; i < nodes.size() && i < data->steps.size(); ++i) {
      if (data->steps[i].device != Device::kCuda) continue;
      KILN_RETURN_IF_ERROR_CTX(backend::cuda_embed(*nodes[i], gpu_info.sm), onnx_path);
    }
  }
  for (const ir::Value* v : g.inputs)
    if (!v->constant) data->inputs.push_back(runtime::tensor_info_of(*v));
  for (const ir::Value* v : g.outputs) data->outputs.push_back(runtime::tensor_info_of(*v));
  data->weight_bytes = constant_bytes(g);

  std::vector<std::string> warnings;
  if (!config.timing_cache_path.empty() &&
      (config.device != Device::kCuda || config.opt_level == 0)) {
    warnings.push_back("--timing-cache " + config.timing_cache_path +
                       ": not used (tactics are tuned for CUDA engines at --opt-level 1 and up)");
  }
  if (config.device == Device::kCuda) {
    progress.stage("prepare");
    KILN_RETURN_IF_ERROR_CTX(runtime::prepare_backend(*data), onnx_path);
    if (config.opt_level >= 1) {
      progress.stage("tune");
      KILN_RETURN_IF_ERROR_CTX(tune_engine(*data, data, config, gpu_info, report, &warnings),
                               onnx_path);
    }
    auto shapes = trial_shapes(*data);
    for (size_t i = 0; i < shapes.size(); ++i) {
      progress.stage("trial run", static_cast<int>(i), static_cast<int>(shapes.size()));
      StatusOr<uint64_t> peak = backend::cuda_trial_run(data, shapes[i]);
      if (peak.ok()) {
        data->peak_activation_bytes = std::max(data->peak_activation_bytes, *peak);
      } else {
        warnings.push_back("trial run at the largest shapes failed: " + peak.status().message());
      }
    }
  }
  progress.done();
  if (report != nullptr) {
    report->nodes = placed.top_level;
    report->nodes_on_device = placed.top_level_on_device;
    report->fallbacks = std::move(placed.fallbacks);
    report->fallbacks.insert(report->fallbacks.end(), warnings.begin(), warnings.end());
    report->weight_bytes = data->weight_bytes;
    report->peak_activation_bytes = data->peak_activation_bytes;
    report->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return data;
}

}  // namespace backend

StatusOr<std::vector<uint8_t>> build_engine(const std::string& onnx_path,
                                            const BuilderConfig& config, BuildReport* report) {
  auto t0 = Clock::now();
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<runtime::EngineData> data,
                        backend::build_engine_data(onnx_path, config, report));
  KILN_ASSIGN_OR_RETURN(engine::TargetInfo target, runtime::current_target(config.device));
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, runtime::serialize_engine(*data, target));
  if (report != nullptr) report->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return bytes;
}

Status build_engine_file(const std::string& onnx_path, const std::string& engine_path,
                         const BuilderConfig& config, BuildReport* report) {
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_engine(onnx_path, config, report));
  std::string tmp = engine_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return invalid_argument("cannot write engine file '" + engine_path + "'");
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f) return invalid_argument("writing engine file '" + engine_path + "' failed");
  }
  if (std::rename(tmp.c_str(), engine_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return invalid_argument("cannot write engine file '" + engine_path + "'");
  }
  return Status::Ok();
}

StatusOr<std::map<std::string, std::vector<int64_t>>> parse_shape_list(const std::string& spec) {
  std::map<std::string, std::vector<int64_t>> out;
  size_t i = 0;
  auto fail = [&](const std::string& why) {
    return invalid_argument("shape list '" + spec + "': " + why +
                            " (expected name:1x3x224x224[,name2:...])");
  };
  while (i < spec.size()) {
    std::string name;
    if (spec[i] == '\'' || spec[i] == '"') {
      char q = spec[i++];
      size_t end = spec.find(q, i);
      if (end == std::string::npos) return fail("unterminated quote");
      name = spec.substr(i, end - i);
      i = end + 1;
      if (i >= spec.size() || spec[i] != ':') return fail("':' expected after '" + name + "'");
    } else {
      size_t colon =
          spec.rfind(':', spec.find(',', i) == std::string::npos ? spec.size() : spec.find(',', i));
      if (colon == std::string::npos || colon < i) return fail("missing ':'");
      name = spec.substr(i, colon - i);
      i = colon;
    }
    ++i;  // ':'
    size_t end = spec.find(',', i);
    if (end == std::string::npos) end = spec.size();
    std::string dims = spec.substr(i, end - i);
    std::vector<int64_t> shape;
    if (!dims.empty() && dims != "scalar") {
      size_t p = 0;
      while (p <= dims.size()) {
        size_t x = dims.find('x', p);
        if (x == std::string::npos) x = dims.size();
        std::string tok = dims.substr(p, x - p);
        if (tok.empty() || tok.find_first_not_of("0123456789") != std::string::npos ||
            tok.size() > 15) {
          return fail("bad dimension '" + tok + "' for '" + name + "'");
        }
        shape.push_back(std::stoll(tok));
        p = x + 1;
      }
    }
    if (name.empty()) return fail("empty input name");
    if (out.count(name)) return fail("input '" + name + "' given twice");
    out[name] = std::move(shape);
    i = end + (end < spec.size() ? 1 : 0);
  }
  if (out.empty()) return fail("no shapes");
  return out;
}

}  // namespace kiln
