#include "runtime/engine_io.h"

#include <nlohmann/json.hpp>

#include "backend/cuda_backend.h"
#include "backend/tactic.h"
#include "engine/engine_file.h"
#include "engine/graph_codec.h"

namespace kiln::runtime {
namespace {

using nlohmann::json;

const char* kCpuIsa = "x86-64-v3";

std::vector<uint8_t> to_bytes(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return std::vector<uint8_t>(s.begin(), s.end());
}

StatusOr<json> parse_section(const engine::EngineFile& f, engine::SectionKind kind,
                             const std::string& path) {
  std::span<const uint8_t> b = f.section(kind);
  if (b.empty()) {
    return invalid_model(path + ": engine file has no " + engine::section_kind_name(kind) +
                         " section");
  }
  json j = json::parse(b.begin(), b.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return invalid_model(path + ": the " + std::string(engine::section_kind_name(kind)) +
                         " section is not valid JSON");
  }
  return j;
}

json shape_json(const std::vector<int64_t>& v) {
  return json(v);
}

template <typename T>
bool get_to(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  try {
    *out = it->get<T>();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

StatusOr<engine::TargetInfo> current_target(Device device) {
  engine::TargetInfo t;
  t.cpu_isa = kCpuIsa;
  if (device == Device::kCpu) {
    t.device = "cpu";
    return t;
  }
  KILN_ASSIGN_OR_RETURN(backend::GpuInfo g, backend::cuda_device());
  t.device = "cuda";
  t.sm = g.sm;
  t.gpu_name = g.name;
  t.cuda_runtime = g.cuda_runtime;
  t.cudnn = g.cudnn;
  t.cublaslt = g.cublaslt;
  return t;
}

StatusOr<std::vector<uint8_t>> serialize_engine(const EngineData& data,
                                                const engine::TargetInfo& target) {
  KILN_ASSIGN_OR_RETURN(engine::EncodedModel enc, engine::encode_model(*data.model));
  json opts = {{"device", device_name(data.device)},
               {"tf32", data.options.tf32},
               {"fp16", data.options.fp16},
               {"bf16", data.options.bf16},
               {"workspace_bytes", data.options.workspace_bytes},
               {"opt_level", data.options.opt_level},
               {"strict", data.options.strict}};
  json meta = {{"device", device_name(data.device)},
               {"options", opts},
               {"weight_bytes", data.weight_bytes},
               {"peak_activation_bytes", data.peak_activation_bytes},
               {"model_path", data.model->path}};
  json steps = json::array();
  for (const StepRecord& s : data.steps) {
    json step = {{"name", s.name},     {"op", s.op},         {"device", device_name(s.device)},
                 {"kernel", s.kernel}, {"tactic", s.tactic}, {"precision", s.precision},
                 {"note", s.note}};
    if (!s.profile_tactics.empty()) step["profile_tactics"] = s.profile_tactics;
    steps.push_back(std::move(step));
  }
  json profiles = json::array();
  for (const OptimizationProfile& p : data.profiles) {
    json inputs = json::object();
    for (const auto& [name, r] : p.inputs) {
      inputs[name] = {
          {"min", shape_json(r.min)}, {"opt", shape_json(r.opt)}, {"max", shape_json(r.max)}};
    }
    profiles.push_back({{"inputs", inputs}});
  }
  json plan = {{"peak_activation_bytes", data.peak_activation_bytes},
               {"arena_alignment", 256},
               {"note", "activations share one arena planned by liveness per input shape"}};
  engine::EngineWriter w;
  w.add_section(engine::SectionKind::kMeta, to_bytes(meta));
  w.add_section(engine::SectionKind::kSteps, to_bytes(steps));
  w.add_section(engine::SectionKind::kProfiles, to_bytes(profiles));
  w.add_section(engine::SectionKind::kMemoryPlan, to_bytes(plan));
  w.add_section(engine::SectionKind::kGraph, std::move(enc.graph));
  w.add_section(engine::SectionKind::kWeights, std::move(enc.weights));
  engine::EngineHeaderInfo h;
  h.kiln_version = KILN_VERSION;
  h.target = target;
  h.build_options = opts.dump();
  return w.serialize(h);
}

StatusOr<std::shared_ptr<EngineData>> load_engine_data(
    std::shared_ptr<const engine::EngineFile> file) {
  const std::string& path = file->path();
  const engine::EngineHeaderInfo& h = file->header();
  auto data = std::make_shared<EngineData>();
  data->file = file;
  if (h.target.device == "cpu") {
    data->device = Device::kCpu;
  } else if (h.target.device == "cuda") {
    data->device = Device::kCuda;
  } else {
    return invalid_model(path + ": unknown engine target device '" + h.target.device + "'");
  }
  StatusOr<engine::TargetInfo> here_or = current_target(data->device);
  if (!here_or.ok()) {
    const engine::TargetInfo& t = h.target;
    return Status(StatusCode::kDeviceMismatch,
                  path + ": engine built for sm_" + std::to_string(t.sm) + " (" + t.gpu_name +
                      ") with CUDA " + engine::cuda_version_string(t.cuda_runtime) + ", cuDNN " +
                      engine::cudnn_version_string(t.cudnn) +
                      "; here: " + here_or.status().message() +
                      ": run it on that GPU, or build a CPU engine with `kiln build --device cpu`");
  }
  engine::TargetInfo here = std::move(here_or).value();
  std::string warning;
  KILN_RETURN_IF_ERROR_CTX(engine::check_target(h.target, here, &warning), path);

  KILN_ASSIGN_OR_RETURN(json meta, parse_section(*file, engine::SectionKind::kMeta, path));
  KILN_ASSIGN_OR_RETURN(json steps, parse_section(*file, engine::SectionKind::kSteps, path));
  KILN_ASSIGN_OR_RETURN(json profiles, parse_section(*file, engine::SectionKind::kProfiles, path));
  if (!meta.is_object() || !steps.is_array() || !profiles.is_array()) {
    return invalid_model(path + ": engine metadata has the wrong structure");
  }
  const json& opts = meta.contains("options") ? meta["options"] : json::object();
  get_to(opts, "tf32", &data->options.tf32);
  get_to(opts, "fp16", &data->options.fp16);
  get_to(opts, "bf16", &data->options.bf16);
  get_to(opts, "workspace_bytes", &data->options.workspace_bytes);
  get_to(opts, "opt_level", &data->options.opt_level);
  get_to(opts, "strict", &data->options.strict);
  get_to(meta, "weight_bytes", &data->weight_bytes);
  get_to(meta, "peak_activation_bytes", &data->peak_activation_bytes);

  StatusOr<std::unique_ptr<ir::Model>> model =
      engine::decode_model(file->section(engine::SectionKind::kGraph),
                           file->section(engine::SectionKind::kWeights), file->owner());
  if (!model.ok()) return model.take_status().with_context(path);
  data->model = std::move(model).value();
  data->model->path = path;
  collect_nodes(*data->model->graph, &data->nodes);
  if (steps.size() != data->nodes.size()) {
    return invalid_model(path + ": the steps section lists " + std::to_string(steps.size()) +
                         " nodes, the graph has " + std::to_string(data->nodes.size()));
  }
  for (const json& s : steps) {
    StepRecord r;
    std::string dev;
    if (!s.is_object() || !get_to(s, "op", &r.op) || !get_to(s, "device", &dev)) {
      return invalid_model(path + ": a step of the steps section is malformed");
    }
    get_to(s, "name", &r.name);
    get_to(s, "kernel", &r.kernel);
    get_to(s, "tactic", &r.tactic);
    if (s.contains("profile_tactics") && (!get_to(s, "profile_tactics", &r.profile_tactics) ||
                                          r.profile_tactics.size() > profiles.size())) {
      return invalid_model(path + ": the profile tactics of step '" + r.name + "' are malformed");
    }
    get_to(s, "precision", &r.precision);
    get_to(s, "note", &r.note);
    r.device = dev == "cuda" ? Device::kCuda : Device::kCpu;
    if (r.device == Device::kCuda && data->device != Device::kCuda) {
      return invalid_model(path + ": a CPU engine places node '" + r.name + "' on the GPU");
    }
    data->steps.push_back(std::move(r));
  }
  for (size_t i = 0; i < data->nodes.size(); ++i) {
    if (data->nodes[i]->op_type != data->steps[i].op) {
      return invalid_model(path + ": step " + std::to_string(i) + " is for op " +
                           data->steps[i].op + ", the graph has " + data->nodes[i]->op_type);
    }
  }
  for (const json& p : profiles) {
    OptimizationProfile prof;
    if (!p.is_object() || !p.contains("inputs") || !p["inputs"].is_object()) {
      return invalid_model(path + ": a profile of the profiles section is malformed");
    }
    for (const auto& [name, r] : p["inputs"].items()) {
      ShapeRange sr;
      if (!get_to(r, "min", &sr.min) || !get_to(r, "opt", &sr.opt) || !get_to(r, "max", &sr.max) ||
          sr.min.size() != sr.opt.size() || sr.min.size() != sr.max.size()) {
        return invalid_model(path + ": the profile of input '" + name + "' is malformed");
      }
      prof.inputs[name] = std::move(sr);
    }
    data->profiles.push_back(std::move(prof));
  }
  for (const ir::Value* v : data->model->graph->inputs)
    if (!v->constant) data->inputs.push_back(tensor_info_of(*v));
  for (const ir::Value* v : data->model->graph->outputs)
    data->outputs.push_back(tensor_info_of(*v));
  KILN_RETURN_IF_ERROR_CTX(prepare_backend(*data), path);
  data->describe = describe_engine(*data, h.target, h.kiln_version, file->file_size());
  return data;
}

Status prepare_backend(EngineData& data) {
  if (data.device == Device::kCpu) {
    cpu::Executor::Options eo;
    KILN_ASSIGN_OR_RETURN(data.cpu, cpu::Executor::create(*data.model->graph, eo));
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(data.cuda_program, backend::create_cuda_program(data));
  return Status::Ok();
}

std::string describe_engine(const EngineData& data, const engine::TargetInfo& target,
                            const std::string& kiln_version, uint64_t file_size) {
  json j;
  j["kiln_version"] = kiln_version;
  j["target"] = {{"device", target.device},
                 {"sm", target.sm},
                 {"gpu", target.gpu_name},
                 {"cuda_runtime", engine::cuda_version_string(target.cuda_runtime)},
                 {"cudnn", engine::cudnn_version_string(target.cudnn)},
                 {"cublaslt", target.cublaslt},
                 {"cpu_isa", target.cpu_isa}};
  j["options"] = {
      {"tf32", data.options.tf32},           {"fp16", data.options.fp16},
      {"bf16", data.options.bf16},           {"workspace_bytes", data.options.workspace_bytes},
      {"opt_level", data.options.opt_level}, {"strict", data.options.strict}};
  j["memory"] = {{"weight_bytes", data.weight_bytes},
                 {"peak_activation_bytes", data.peak_activation_bytes},
                 {"file_bytes", file_size}};
  auto tinfo = [](const TensorInfo& t) {
    json dims = json::array();
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (t.shape[i] >= 0) {
        dims.push_back(t.shape[i]);
      } else {
        dims.push_back(t.dim_names[i].empty() ? "?" : t.dim_names[i]);
      }
    }
    return json{{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", dims}};
  };
  j["inputs"] = json::array();
  for (const TensorInfo& t : data.inputs) j["inputs"].push_back(tinfo(t));
  j["outputs"] = json::array();
  for (const TensorInfo& t : data.outputs) j["outputs"].push_back(tinfo(t));
  j["profiles"] = json::array();
  for (const OptimizationProfile& p : data.profiles) {
    json inputs = json::object();
    for (const auto& [name, r] : p.inputs)
      inputs[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    j["profiles"].push_back(inputs);
  }
  j["layers"] = json::array();
  for (size_t i = 0; i < data.steps.size(); ++i) {
    const StepRecord& s = data.steps[i];
    const ir::Node& n = *data.nodes[i];
    json ins = json::array(), outs = json::array();
    for (const ir::Value* v : n.inputs) ins.push_back(v ? v->type.to_string() : "-");
    for (const ir::Value* v : n.outputs) outs.push_back(v ? v->type.to_string() : "-");
    json l = {{"name", s.name},     {"op", s.op},         {"device", device_name(s.device)},
              {"kernel", s.kernel}, {"tactic", s.tactic}, {"precision", s.precision},
              {"inputs", ins},      {"outputs", outs}};
    if (s.tactic != -1) l["algorithm"] = backend::describe_tactic(s.tactic);
    if (!s.profile_tactics.empty()) {
      json per = json::array();
      for (int64_t t : s.profile_tactics) {
        per.push_back(t == -1 ? std::string("default") : backend::describe_tactic(t));
      }
      l["profile_algorithms"] = per;
    }
    if (!s.note.empty()) l["note"] = s.note;
    j["layers"].push_back(l);
  }
  // Names come from the engine file and need not be valid UTF-8: replaced, never thrown on.
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace kiln::runtime
