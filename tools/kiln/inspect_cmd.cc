#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

#include "backend/tactic.h"
#include "backends/cpu/executor.h"
#include "cli.h"
#include "commands.h"
#include "engine_cache.h"
#include "ir/printer.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"

namespace kiln::cli {
namespace {

void count_ops(const ir::Graph& g, std::map<std::string, int>* hist) {
  for (const auto& n : g.nodes()) {
    (*hist)[(n->domain.empty() ? "" : n->domain + ".") + n->op_type]++;
    for (const ir::Attribute& a : n->attrs) {
      if (a.g) count_ops(*a.g, hist);
      for (const auto& sg : a.graphs)
        if (sg) count_ops(*sg, hist);
    }
  }
}

std::string mb(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(b) / 1e6);
  return buf;
}

int inspect_engine(const InspectOptions& o) {
  StatusOr<std::shared_ptr<Engine>> e = Engine::load(o.model);
  if (!e.ok()) return report_error(e.status());
  std::string text = (*e)->describe_json();
  if (o.json) {
    std::cout << text << "\n";
    return kExitOk;
  }
  nlohmann::json j = nlohmann::json::parse(text);
  const auto& t = j["target"];
  std::printf("engine   %s (Kiln %s)\n", o.model.c_str(),
              j["kiln_version"].get<std::string>().c_str());
  if (t["device"] == "cuda") {
    std::printf("target   cuda sm_%d (%s), CUDA %s, cuDNN %s, cuBLASLt %d\n", t["sm"].get<int>(),
                t["gpu"].get<std::string>().c_str(), t["cuda_runtime"].get<std::string>().c_str(),
                t["cudnn"].get<std::string>().c_str(), t["cublaslt"].get<int>());
  } else {
    std::printf("target   cpu (%s)\n", t["cpu_isa"].get<std::string>().c_str());
  }
  std::printf("options  %s\n", j["options"].dump().c_str());
  const auto& m = j["memory"];
  std::printf("memory   weights %s, peak activations %s, file %s\n",
              mb(m["weight_bytes"].get<uint64_t>()).c_str(),
              mb(m["peak_activation_bytes"].get<uint64_t>()).c_str(),
              mb(m["file_bytes"].get<uint64_t>()).c_str());
  for (const char* side : {"inputs", "outputs"}) {
    std::printf("%s\n", side);
    for (const auto& io : j[side]) {
      std::printf("  %s: %s%s\n", io["name"].get<std::string>().c_str(),
                  io["dtype"].get<std::string>().c_str(), io["shape"].dump().c_str());
    }
  }
  int pi = 0;
  for (const auto& p : j["profiles"]) {
    std::printf("profile %d\n", pi++);
    for (const auto& [name, r] : p.items()) {
      std::printf("  %s: min %s opt %s max %s\n", name.c_str(), r["min"].dump().c_str(),
                  r["opt"].dump().c_str(), r["max"].dump().c_str());
    }
  }
  std::printf("layers (%zu)\n", j["layers"].size());
  std::printf("  %-4s %-36s %-18s %-5s %-28s %-6s %-9s %s\n", "#", "name", "op", "dev", "kernel",
              "tactic", "precision", "shapes (in -> out)");
  int i = 0;
  for (const auto& l : j["layers"]) {
    std::string shapes;
    for (const auto& s : l["inputs"]) shapes += (shapes.empty() ? "" : " ") + s.get<std::string>();
    shapes += " ->";
    for (const auto& s : l["outputs"]) shapes += " " + s.get<std::string>();
    // A tuned tactic is a packed algorithm (docs/engine-format.md): printed decoded below.
    const int64_t tactic = l["tactic"].get<int64_t>();
    std::printf("  %-4d %-36.36s %-18.18s %-5s %-28.28s %-6s %-9s %s\n", i++,
                l["name"].get<std::string>().c_str(), l["op"].get<std::string>().c_str(),
                l["device"].get<std::string>().c_str(), l["kernel"].get<std::string>().c_str(),
                tactic == -1 ? "-" : "tuned", l["precision"].get<std::string>().c_str(),
                shapes.c_str());
    if (tactic != -1) {
      std::printf("       tactic 0x%llx: %s\n", static_cast<unsigned long long>(tactic),
                  backend::describe_tactic(tactic).c_str());
    }
    if (l.contains("note")) std::printf("       note: %s\n", l["note"].get<std::string>().c_str());
  }
  return kExitOk;
}

}  // namespace

int inspect_command(const InspectOptions& o) {
  if (is_engine_file(o.model)) return inspect_engine(o);
  StatusOr<std::unique_ptr<ir::Model>> loaded = onnx::load_model(o.model);
  if (!loaded.ok()) return report_error(loaded.status());
  ir::Model& m = **loaded;
  ir::Graph& g = *m.graph;

  if (o.ir) {
    if (!o.no_optimize) {
      Status st = passes::PassManager::default_pipeline().run(g);
      if (st.ok()) st = passes::PassManager::fusion_pipeline().run(g);  // as the builder does
      if (!st.ok()) return report_error(st);
    }
    if (o.fp16 || o.bf16) {
      StatusOr<bool> r = passes::lower_precision(g, o.fp16 ? DType::kFloat16 : DType::kBFloat16);
      if (!r.ok()) return report_error(r.status());
    }
    if (o.cuda && !o.no_optimize) {
      StatusOr<bool> r = passes::layout_nhwc(g);
      if (!r.ok()) return report_error(r.status());
      r = passes::fuse_layout_copy(g);
      if (!r.ok()) return report_error(r.status());
    }
    std::cout << ir::print_graph(g);
    return kExitOk;
  }

  std::map<std::string, int> hist;
  count_ops(g, &hist);
  int64_t params = 0, param_tensors = 0;
  uint64_t param_bytes = 0;
  for (const auto& v : g.values()) {
    if (!v->constant) continue;
    params += v->constant->numel();
    param_bytes += v->constant->nbytes();
    ++param_tensors;
  }
  std::vector<const ir::Node*> unsupported = cpu::find_unsupported_nodes(g);

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["ir_version"] = m.ir_version;
    j["producer"] = m.producer_name + " " + m.producer_version;
    for (const auto& [d, v] : m.opsets) j["opsets"][d.empty() ? "ai.onnx" : d] = v;
    for (const ir::Value* v : g.inputs) {
      if (!v->constant) j["inputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    }
    for (const ir::Value* v : g.outputs) {
      j["outputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    }
    j["nodes"] = g.nodes().size();
    j["ops"] = hist;
    j["parameters"] = {{"tensors", param_tensors}, {"elements", params}, {"bytes", param_bytes}};
    j["unsupported"] = nlohmann::json::array();
    for (const ir::Node* n : unsupported) j["unsupported"].push_back(n->label());
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }

  std::printf("model    %s\n", o.model.c_str());
  std::printf("producer %s %s, IR version %lld\n", m.producer_name.c_str(),
              m.producer_version.c_str(), static_cast<long long>(m.ir_version));
  std::printf("opsets  ");
  for (const auto& [d, v] : m.opsets) {
    std::printf(" %s %lld", d.empty() ? "ai.onnx" : d.c_str(), static_cast<long long>(v));
  }
  std::printf("\ninputs\n");
  for (const ir::Value* v : g.inputs) {
    if (!v->constant) std::printf("  %s: %s\n", v->name.c_str(), v->type.to_string().c_str());
  }
  std::printf("outputs\n");
  for (const ir::Value* v : g.outputs) {
    std::printf("  %s: %s\n", v->name.c_str(), v->type.to_string().c_str());
  }
  std::printf("parameters %lld in %lld tensors (%.2f MB)\n", static_cast<long long>(params),
              static_cast<long long>(param_tensors), param_bytes / 1e6);
  std::printf("nodes %zu\n", g.nodes().size());
  for (const auto& [op, count] : hist) std::printf("  %-28s %d\n", op.c_str(), count);
  if (unsupported.empty()) {
    std::printf("every node is supported by the CPU backend\n");
  } else {
    std::printf("%zu node(s) no backend supports:\n", unsupported.size());
    for (const ir::Node* n : unsupported) {
      std::printf("  %s%s\n", n->label().c_str(),
                  n->domain.empty() ? "" : (" (domain " + n->domain + ")").c_str());
    }
  }
  return kExitOk;
}

}  // namespace kiln::cli
