#include "backend/timing_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/checksum.h"

namespace kiln::backend {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "kiln-timing-cache";
constexpr int kVersion = 1;

json device_json(const TimingDevice& d) {
  return json{{"gpu", d.gpu_name},
              {"sm", d.sm},
              {"cuda_runtime", d.cuda_runtime},
              {"cudnn", d.cudnn},
              {"cublaslt", d.cublaslt}};
}

bool device_from_json(const json& j, TimingDevice* d) {
  if (!j.is_object()) return false;
  auto str = [&](const char* k, std::string* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* k, int* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer()) return false;
    *out = it->get<int>();
    return true;
  };
  return str("gpu", &d->gpu_name) && num("sm", &d->sm) && num("cuda_runtime", &d->cuda_runtime) &&
         num("cudnn", &d->cudnn) && num("cublaslt", &d->cublaslt);
}

uint32_t entries_checksum(const json& entries) {
  const std::string text = entries.dump(-1, ' ', false, json::error_handler_t::replace);
  return engine::crc32c(text.data(), text.size());
}

void append_float(std::string* s, float f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(f));
  *s += buf;
}

void append_ints(std::string* s, const std::vector<int64_t>& v) {
  *s += '[';
  for (size_t i = 0; i < v.size(); ++i) *s += (i ? "," : "") + std::to_string(v[i]);
  *s += ']';
}

void append_tensor(std::string* s, const Tensor& t) {
  *s += dtype_name(t.dtype());
  append_ints(s, t.shape());
  if (t.dtype() != DType::kString && t.raw() != nullptr) {
    *s += "#" + std::to_string(engine::crc32c(t.raw(), t.nbytes()));
  }
}

void append_attr(std::string* s, const ir::Attribute& a) {
  *s += a.name + "=";
  switch (a.type) {
    case ir::AttrType::kFloat:
      append_float(s, a.f);
      break;
    case ir::AttrType::kInt:
      *s += std::to_string(a.i);
      break;
    case ir::AttrType::kString:
      *s += '"' + a.s + '"';
      break;
    case ir::AttrType::kTensor:
      append_tensor(s, a.t);
      break;
    case ir::AttrType::kFloats:
      *s += '[';
      for (size_t i = 0; i < a.floats.size(); ++i) {
        if (i) *s += ',';
        append_float(s, a.floats[i]);
      }
      *s += ']';
      break;
    case ir::AttrType::kInts:
      append_ints(s, a.ints);
      break;
    case ir::AttrType::kStrings:
      *s += '[';
      for (size_t i = 0; i < a.strings.size(); ++i) *s += (i ? ",\"" : "\"") + a.strings[i] + '"';
      *s += ']';
      break;
    case ir::AttrType::kTensors:
      *s += '[';
      for (size_t i = 0; i < a.tensors.size(); ++i) {
        if (i) *s += ',';
        append_tensor(s, a.tensors[i]);
      }
      *s += ']';
      break;
    case ir::AttrType::kUndefined:
    case ir::AttrType::kGraph:
    case ir::AttrType::kSparseTensor:
    case ir::AttrType::kTypeProto:
    case ir::AttrType::kGraphs:
    case ir::AttrType::kSparseTensors:
    case ir::AttrType::kTypeProtos:
      *s += attr_type_name(a.type);  // no tunable kernel takes these
      break;
  }
}

void append_sigs(std::string* s, const std::vector<TensorSig>& sigs) {
  for (size_t i = 0; i < sigs.size(); ++i) {
    if (i) *s += ',';
    if (!sigs[i].present) {
      *s += '-';
      continue;
    }
    *s += dtype_name(sigs[i].dtype);
    append_ints(s, sigs[i].shape);
  }
}

}  // namespace

bool TimingDevice::operator==(const TimingDevice& o) const {
  return gpu_name == o.gpu_name && sm == o.sm && cuda_runtime == o.cuda_runtime &&
         cudnn == o.cudnn && cublaslt == o.cublaslt;
}

std::string TimingDevice::describe() const {
  return gpu_name + " (sm " + std::to_string(sm) + ", CUDA runtime " +
         std::to_string(cuda_runtime) + ", cuDNN " + std::to_string(cudnn) + ", cuBLASLt " +
         std::to_string(cublaslt) + ")";
}

std::string tuning_key(const ir::Node& node, const std::vector<TensorSig>& inputs,
                       const std::vector<TensorSig>& outputs, bool allow_tf32,
                       uint64_t workspace_bytes) {
  std::string s =
      (node.domain.empty() ? std::string("ai.onnx") : node.domain) + "::" + node.op_type + "|";
  std::vector<const ir::Attribute*> attrs;
  for (const ir::Attribute& a : node.attrs) attrs.push_back(&a);
  std::sort(attrs.begin(), attrs.end(),
            [](const ir::Attribute* a, const ir::Attribute* b) { return a->name < b->name; });
  for (size_t i = 0; i < attrs.size(); ++i) {
    if (i) s += ';';
    append_attr(&s, *attrs[i]);
  }
  s += "|in:";
  append_sigs(&s, inputs);
  s += "|out:";
  append_sigs(&s, outputs);
  s += std::string("|tf32:") + (allow_tf32 ? "1" : "0") + "|ws:" + std::to_string(workspace_bytes);
  return s;
}

TimingCache TimingCache::parse(const std::string& text, const TimingDevice& device,
                               std::string* warning) {
  TimingCache cache(device);
  auto fail = [&](const std::string& why) {
    if (warning) *warning = why + ": ignored (it will be rewritten)";
    return TimingCache(device);
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object (damaged?)");
  auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_string() || fmt->get<std::string>() != kFormat) {
    return fail("not a Kiln timing cache");
  }
  auto ver = j.find("version");
  if (ver == j.end() || !ver->is_number_integer() || ver->get<int64_t>() != kVersion) {
    return fail("timing cache format version is not " + std::to_string(kVersion));
  }
  TimingDevice theirs;
  auto dev = j.find("device");
  if (dev == j.end() || !device_from_json(*dev, &theirs)) return fail("no valid device record");
  auto entries = j.find("entries");
  auto sum = j.find("checksum");
  if (entries == j.end() || !entries->is_object() || sum == j.end() || !sum->is_number_unsigned()) {
    return fail("no entries or checksum");
  }
  if (sum->get<uint64_t>() != entries_checksum(*entries))
    return fail("checksum mismatch (damaged)");
  if (!(theirs == device)) {
    if (warning) {
      *warning = "written for " + theirs.describe() + ", this is " + device.describe() +
                 ": its timings do not apply here and are ignored";
    }
    return cache;
  }
  for (const auto& [key, e] : entries->items()) {
    if (!e.is_object()) return fail("entry '" + key + "' is not an object");
    TimingEntry te;
    auto t = e.find("tactic");
    auto ms = e.find("ms");
    auto timed = e.find("timed");
    auto of = e.find("of");
    if (t == e.end() || !t->is_number_integer() || ms == e.end() || !ms->is_number() ||
        timed == e.end() || !timed->is_number_integer() || of == e.end() ||
        !of->is_number_integer()) {
      return fail("entry '" + key + "' is incomplete");
    }
    te.tactic = t->get<int64_t>();
    te.ms = ms->get<double>();
    te.timed = timed->get<int>();
    te.available = of->get<int>();
    cache.entries_[key] = te;
  }
  return cache;
}

TimingCache TimingCache::load(const std::string& path, const TimingDevice& device,
                              std::string* warning) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (errno != ENOENT && warning) {
      *warning = "cannot read timing cache " + path + ": " + std::strerror(errno);
    }
    return TimingCache(device);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string w;
  TimingCache c = parse(ss.str(), device, &w);
  if (!w.empty() && warning) *warning = "timing cache " + path + ": " + w;
  return c;
}

std::string TimingCache::serialize() const {
  json entries = json::object();
  for (const auto& [key, e] : entries_) {
    entries[key] =
        json{{"tactic", e.tactic}, {"ms", e.ms}, {"timed", e.timed}, {"of", e.available}};
  }
  json j = {{"format", kFormat},
            {"version", kVersion},
            {"device", device_json(device_)},
            {"checksum", entries_checksum(entries)},
            {"entries", entries}};
  return j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

Status TimingCache::save(const std::string& path) const {
  // Another build may have added entries since we read the file: keep them under ours.
  TimingCache merged = load(path, device_, nullptr);
  for (const auto& [key, e] : entries_) merged.entries_[key] = e;
  const std::string text = merged.serialize();
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return invalid_argument("cannot write timing cache '" + tmp + "'");
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      return invalid_argument("writing timing cache '" + tmp + "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return invalid_argument("cannot replace timing cache '" + path + "': " + std::strerror(errno));
  }
  return Status::Ok();
}

const TimingEntry* TimingCache::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

void TimingCache::put(const std::string& key, const TimingEntry& e) {
  entries_[key] = e;
}

}  // namespace kiln::backend
