#include "engine_cache.h"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backend/cuda_backend.h"
#include "engine/checksum.h"
#include "engine/engine_file.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

std::string cache_dir() {
  if (const char* d = std::getenv("KILN_CACHE_DIR"); d && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return std::string(d) + "/kiln";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/kiln";
  return "/tmp/kiln-cache";
}

StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return io_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The cache key: the model's bytes (and the sizes and times of the files beside it, which
// external weights live in), every build option, the device and this Kiln's version.
StatusOr<std::string> cache_key(const std::string& model, const BuilderConfig& c) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(model));
  std::string desc = std::string("kiln ") + KILN_VERSION + ";" + device_name(c.device) +
                     ";tf32=" + std::to_string(c.tf32) + ";fp16=" + std::to_string(c.fp16) +
                     ";bf16=" + std::to_string(c.bf16) +
                     ";ws=" + std::to_string(c.workspace_bytes) +
                     ";opt=" + std::to_string(c.opt_level) + ";strict=" + std::to_string(c.strict);
  for (const OptimizationProfile& p : c.profiles) {
    for (const auto& [n, r] : p.inputs) {
      desc += ";" + n + shape_to_string(r.min) + shape_to_string(r.opt) + shape_to_string(r.max);
    }
  }
  if (c.device == Device::kCuda) {
    StatusOr<backend::GpuInfo> g = backend::cuda_device();
    if (g.ok()) {
      desc += ";sm" + std::to_string(g->sm) + ";" + g->name + ";" + std::to_string(g->cudnn) + ";" +
              std::to_string(g->cublaslt) + ";" + std::to_string(g->cuda_runtime);
    }
  }
  std::error_code ec;
  fs::path dir = fs::path(model).parent_path();
  if (dir.empty()) dir = ".";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec) || e.path() == fs::path(model)) continue;
    if (e.path().extension() == ".kiln") continue;
    desc += ";" + e.path().filename().string() + ":" + std::to_string(e.file_size(ec)) + ":" +
            std::to_string(e.last_write_time(ec).time_since_epoch().count());
  }
  uint64_t h1 = engine::crc32c(bytes.data(), bytes.size(), 0x1234567u);
  uint64_t h2 = engine::crc32c(bytes.data(), bytes.size(), 0x9e3779b9u);
  uint64_t h3 = engine::crc32c(desc.data(), desc.size(), 0x5bd1e995u);
  return fs::path(model).stem().string() + "-" + hex64((h1 << 32) | h2) + "-" +
         hex64(h3 ^ (static_cast<uint64_t>(bytes.size()) << 32));
}

}  // namespace

bool is_engine_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, sizeof magic);
  return f.gcount() == 8 && std::memcmp(magic, engine::kMagic, 8) == 0;
}

StatusOr<BuilderConfig> builder_config(const EngineOptions& o) {
  BuilderConfig c;
  if (o.device == "cpu") {
    c.device = Device::kCpu;
  } else if (o.device == "cuda") {
    c.device = Device::kCuda;
  } else if (o.device.empty()) {
    c.device = backend::cuda_device().ok() ? Device::kCuda : Device::kCpu;
  } else {
    return invalid_argument("--device must be cpu or cuda, got '" + o.device + "'");
  }
  c.tf32 = !o.no_tf32;
  c.fp16 = o.fp16;
  c.bf16 = o.bf16;
  c.workspace_bytes = o.workspace_mb << 20;
  c.timing_cache_path = o.timing_cache;
  c.opt_level = o.opt_level;
  c.strict = o.strict;
  c.progress = o.progress;
  bool any = !o.min_shapes.empty() || !o.opt_shapes.empty() || !o.max_shapes.empty();
  if (any) {
    if (o.opt_shapes.empty()) {
      return invalid_argument("--opt-shapes is needed with --min-shapes/--max-shapes");
    }
    KILN_ASSIGN_OR_RETURN(auto opt, parse_shape_list(o.opt_shapes));
    std::map<std::string, std::vector<int64_t>> mins = opt, maxs = opt;
    if (!o.min_shapes.empty()) {
      KILN_ASSIGN_OR_RETURN(mins, parse_shape_list(o.min_shapes));
    }
    if (!o.max_shapes.empty()) {
      KILN_ASSIGN_OR_RETURN(maxs, parse_shape_list(o.max_shapes));
    }
    OptimizationProfile p;
    for (const auto& [name, s] : opt) {
      ShapeRange r;
      r.opt = s;
      auto mi = mins.find(name), ma = maxs.find(name);
      if (mi == mins.end() || ma == maxs.end()) {
        return invalid_argument("input '" + name +
                                "' needs a shape in each of --min-shapes, --opt-shapes and "
                                "--max-shapes");
      }
      r.min = mi->second;
      r.max = ma->second;
      p.inputs[name] = r;
    }
    for (const auto& [name, s] : mins)
      if (!opt.count(name)) return invalid_argument("input '" + name + "' has no --opt-shapes");
    for (const auto& [name, s] : maxs)
      if (!opt.count(name)) return invalid_argument("input '" + name + "' has no --opt-shapes");
    c.profiles.push_back(std::move(p));
  }
  return c;
}

void print_build_report(const BuildReport& r, const BuilderConfig& c) {
  std::fprintf(stderr, "kiln: built a %s engine in %.2f s: %d of %d nodes on the %s",
               device_name(c.device), r.seconds, r.nodes_on_device, r.nodes,
               c.device == Device::kCuda ? "GPU" : "CPU");
  std::fprintf(stderr, ", weights %.1f MB", static_cast<double>(r.weight_bytes) / 1e6);
  if (r.peak_activation_bytes) {
    std::fprintf(stderr, ", peak activations %.1f MB",
                 static_cast<double>(r.peak_activation_bytes) / 1e6);
  }
  std::fprintf(stderr, "\n");
  if (r.tuned) {
    std::fprintf(stderr,
                 "kiln: tuning: %d node(s) tuned, %d candidate(s) timed, %d timing-cache hit(s), "
                 "%.2f s\n",
                 r.tuned_nodes, r.timed_candidates, r.cache_hits, r.tuning_seconds);
  }
  // Fallbacks name their node ("[Op 'name' #i]: why"); the other entries are build warnings.
  for (const std::string& f : r.fallbacks) {
    std::fprintf(stderr, "kiln: %s%s\n", f.rfind("[", 0) == 0 ? "on the CPU: " : "", f.c_str());
  }
}

StatusOr<std::shared_ptr<Engine>> open_engine(const std::string& path, const EngineOptions& o) {
  if (is_engine_file(path)) return Engine::load(path);
  KILN_ASSIGN_OR_RETURN(BuilderConfig c, builder_config(o));
  std::string cached;
  if (!o.no_cache) {
    KILN_ASSIGN_OR_RETURN(std::string key, cache_key(path, c));
    cached = cache_dir() + "/" + key + ".kiln";
    std::error_code ec;
    if (fs::exists(cached, ec)) {
      StatusOr<std::shared_ptr<Engine>> e = Engine::load(cached);
      if (e.ok()) {
        std::fprintf(stderr, "kiln: using the cached engine %s\n", cached.c_str());
        return e;
      }
      std::fprintf(stderr, "kiln: rebuilding: the cached engine is unusable (%s)\n",
                   e.status().to_string().c_str());
    }
  }
  BuildReport report;
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_engine(path, c, &report));
  print_build_report(report, c);
  if (!cached.empty()) {
    std::error_code ec;
    fs::create_directories(fs::path(cached).parent_path(), ec);
    std::string tmp = cached + ".tmp" + std::to_string(::getpid());
    std::ofstream f(tmp, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (f && !ec) {
      fs::rename(tmp, cached, ec);
      if (!ec) std::fprintf(stderr, "kiln: cached the engine as %s\n", cached.c_str());
    } else {
      fs::remove(tmp, ec);
    }
  }
  return Engine::deserialize(bytes);
}

}  // namespace kiln::cli
