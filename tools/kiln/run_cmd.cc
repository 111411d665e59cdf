#include <algorithm>
#include <chrono>
#include <filesystem>

#include "cli.h"
#include "commands.h"
#include "core/npy.h"
#include "engine_cache.h"
#include "onnx/importer.h"
#include "runtime/engine_data.h"

namespace kiln::cli {
namespace {

std::string file_safe(const std::string& name) {
  std::string s;
  for (char c : name)
    s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return s.empty() ? "output" : s;
}

std::string input_names(const Engine& e) {
  std::string s;
  for (const TensorInfo& t : e.inputs()) s += (s.empty() ? "" : ", ") + t.name;
  return s.empty() ? "(none)" : s;
}

// The IR value an input file or random data is checked against / made for.
ir::Value value_of(const TensorInfo& t) {
  ir::Value v;
  v.name = t.name;
  if (t.is_tensor) {
    ir::Shape s;
    s.rank_known = true;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      s.dims.push_back(t.shape[i] >= 0          ? ir::Dim::of(t.shape[i])
                       : t.dim_names[i].empty() ? ir::Dim::unknown()
                                                : ir::Dim::named(t.dim_names[i]));
    }
    v.type = ir::TypeInfo::tensor(t.dtype, s);
  }
  v.is_graph_input = true;
  return v;
}

HostTensor host_of(const Tensor& t) {
  return runtime::host_from_tensor(t);
}

}  // namespace

int run_command(const RunOptions& o) {
  EngineOptions eo = o.engine;
  if (o.no_optimize) eo.opt_level = 0;
  StatusOr<std::shared_ptr<Engine>> loaded = open_engine(o.model, eo);
  if (!loaded.ok()) return report_error(loaded.status());
  const Engine& engine = **loaded;

  std::map<std::string, std::vector<int64_t>> shapes;
  if (!o.shapes.empty()) {
    auto s = parse_shape_list(o.shapes);
    if (!s.ok()) return report_error(s.status());
    shapes = *s;
    for (const auto& [name, dims] : shapes) {
      bool known = false;
      for (const TensorInfo& t : engine.inputs()) known |= t.name == name;
      if (!known) {
        return report_error(invalid_argument(
            "--shapes names '" + name +
            "', which is not an input of the model; inputs: " + input_names(engine)));
      }
    }
  }
  StatusOr<std::unique_ptr<ExecutionContext>> ctx = engine.create_context();
  if (!ctx.ok()) return report_error(ctx.status());
  std::vector<std::string> given;
  for (const std::string& spec : o.inputs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return report_error(invalid_argument("--input '" + spec + "' is not NAME=FILE"));
    }
    const std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
    const TensorInfo* info = nullptr;
    for (const TensorInfo& t : engine.inputs())
      if (t.name == name) info = &t;
    if (info == nullptr) {
      return report_error(invalid_argument("the model has no input named '" + name +
                                           "'; its inputs are: " + input_names(engine)));
    }
    ir::Value v = value_of(*info);
    StatusOr<Datum> d = read_input_file(path, v.type);
    if (!d.ok()) return report_error(d.take_status().with_context("--input " + name));
    if (!d->is_tensor()) {
      return report_error(invalid_argument("--input " + name + ": " + d->describe() +
                                           " is not a tensor; engines take tensor inputs"));
    }
    Status st = (*ctx)->set_input(name, host_of(d->tensor));
    if (!st.ok()) return report_error(st.with_context("--input " + name));
    given.push_back(name);
  }
  size_t k = 0;
  for (const TensorInfo& t : engine.inputs()) {
    ++k;
    if (std::find(given.begin(), given.end(), t.name) != given.end()) continue;
    auto it = shapes.find(t.name);
    std::string note;
    ir::Value v = value_of(t);
    StatusOr<Datum> d =
        random_input(v, it == shapes.end() ? nullptr : &it->second, o.seed + k - 1, &note);
    if (!d.ok()) return report_error(d.status());
    std::fprintf(stderr, "kiln: %s\n", note.c_str());
    Status st = (*ctx)->set_input(t.name, host_of(d->tensor));
    if (!st.ok()) return report_error(st);
  }

  const auto t0 = std::chrono::steady_clock::now();
  Status st = (*ctx)->execute();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) return report_error(st.with_context(o.model));

  std::printf("%s: %zu output(s), ran in %.2f ms on the %s\n", o.model.c_str(),
              engine.outputs().size(), ms, engine.device() == Device::kCuda ? "GPU" : "CPU");
  std::vector<std::pair<std::string, Tensor>> outs;
  for (const TensorInfo& t : engine.outputs()) {
    const HostTensor* h = (*ctx)->output(t.name);
    if (h == nullptr) {
      std::printf("  %s: (not a tensor: not shown)\n", t.name.c_str());
      continue;
    }
    StatusOr<Tensor> tt = runtime::tensor_from_host(t.name, *h);
    if (!tt.ok()) return report_error(tt.status());
    std::printf("  %s: %s\n", t.name.c_str(), summarize(Datum::of(*tt)).c_str());
    outs.emplace_back(t.name, std::move(tt).value());
  }
  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec) return report_error(io_error("cannot create " + o.output_dir + ": " + ec.message()));
    for (const auto& [name, t] : outs) {
      const std::string base = o.output_dir + "/" + file_safe(name);
      const bool npy = !is_sub_byte(t.dtype()) && t.dtype() != DType::kBFloat16 &&
                       dtype_bits(t.dtype()) >= 8 && !is_complex(t.dtype()) &&
                       !(is_floating(t.dtype()) && dtype_bits(t.dtype()) == 8);
      Status ws =
          npy ? write_npy(base + ".npy", t) : onnx::write_tensor_file(base + ".pb", t, name);
      if (!ws.ok()) return report_error(ws);
      std::printf("  wrote %s\n", (base + (npy ? ".npy" : ".pb")).c_str());
    }
  }
  return kExitOk;
}

}  // namespace kiln::cli
