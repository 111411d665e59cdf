// check_target and the version pretty-printers of engine_file.h.
#include <string>

#include "engine/engine_file.h"

namespace kiln::engine {
namespace {

struct MajorMinor {
  int major = 0, minor = 0, patch = 0;
  bool same_minor(const MajorMinor& o) const { return major == o.major && minor == o.minor; }
};

MajorMinor cudnn_parts(int v) {
  // cuDNN 9+: major*10000 + minor*100 + patch; cuDNN <= 8: major*1000 + minor*100 + patch.
  if (v >= 10000) return {v / 10000, (v / 100) % 100, v % 100};
  return {v / 1000, (v / 100) % 10, v % 100};
}
MajorMinor cuda_parts(int v) {
  return {v / 1000, (v % 1000) / 10, 0};
}
MajorMinor cublaslt_parts(int v) {
  return {v / 10000, (v / 100) % 100, v % 100};
}

std::string mm(const MajorMinor& p) {
  return std::to_string(p.major) + "." + std::to_string(p.minor);
}

// x86-64 levels: 1..4, 0 for anything else.
int x86_level(const std::string& isa) {
  if (isa == "x86-64" || isa == "x86-64-v1") return 1;
  if (isa == "x86-64-v2") return 2;
  if (isa == "x86-64-v3") return 3;
  if (isa == "x86-64-v4") return 4;
  return 0;
}

// "sm_90 (NVIDIA H100 80GB HBM3)"
std::string gpu_desc(const TargetInfo& t) {
  std::string s = "sm_" + std::to_string(t.sm);
  if (!t.gpu_name.empty()) s += " (" + t.gpu_name + ")";
  return s;
}

// " with CUDA 13.0, cuDNN 9.14, cuBLASLt 13.1"; each library only when known.
std::string libs_desc(const TargetInfo& t, bool cudnn, bool cublaslt) {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? " with " : ", ") + part; };
  if (t.cuda_runtime > 0) add("CUDA " + cuda_version_string(t.cuda_runtime));
  if (cudnn) add(t.cudnn > 0 ? "cuDNN " + mm(cudnn_parts(t.cudnn)) : "no cuDNN");
  if (cublaslt) add(t.cublaslt > 0 ? "cuBLASLt " + mm(cublaslt_parts(t.cublaslt)) : "no cuBLASLt");
  return s;
}

constexpr const char* kRemedy = ": rebuild it with `kiln build`";

}  // namespace

std::string cudnn_version_string(int v) {
  MajorMinor p = cudnn_parts(v);
  return std::to_string(p.major) + "." + std::to_string(p.minor) + "." + std::to_string(p.patch);
}

std::string cuda_version_string(int v) {
  return mm(cuda_parts(v));
}

std::string cublaslt_version_string(int v) {
  MajorMinor p = cublaslt_parts(v);
  return std::to_string(p.major) + "." + std::to_string(p.minor) + "." + std::to_string(p.patch);
}

Status check_target(const TargetInfo& engine, const TargetInfo& here, std::string* warning) {
  if (warning) warning->clear();
  auto device_name = [](const TargetInfo& t) {
    return t.device.empty() ? std::string("?") : t.device;
  };
  if (engine.device != here.device) {
    std::string e = "engine built for device '" + device_name(engine) + "'";
    if (engine.device == "cuda") e += " (" + gpu_desc(engine) + ")";
    std::string h = "this machine runs device '" + device_name(here) + "'";
    if (here.device == "cuda") h += " (" + gpu_desc(here) + ")";
    return device_mismatch(e + "; " + h + kRemedy + " for this device");
  }
  if (engine.device == "cuda") {
    const bool sm_differs = engine.sm != here.sm;
    const bool cuda_differs = engine.cuda_runtime > 0 && cuda_parts(engine.cuda_runtime).major !=
                                                             cuda_parts(here.cuda_runtime).major;
    const bool cudnn_differs =
        engine.cudnn > 0 && !cudnn_parts(engine.cudnn).same_minor(cudnn_parts(here.cudnn));
    const bool cublaslt_differs =
        engine.cublaslt > 0 &&
        !cublaslt_parts(engine.cublaslt).same_minor(cublaslt_parts(here.cublaslt));
    if (sm_differs || cuda_differs || cudnn_differs || cublaslt_differs) {
      const bool libs = cuda_differs || cudnn_differs || cublaslt_differs;
      std::string msg = "engine built for " + gpu_desc(engine) +
                        libs_desc(engine, engine.cudnn > 0, cublaslt_differs) + "; this GPU is " +
                        gpu_desc(here);
      if (libs) msg += libs_desc(here, cudnn_differs, cublaslt_differs);
      return device_mismatch(msg + kRemedy);
    }
    if (engine.gpu_name != here.gpu_name && warning) {
      *warning = "engine built on " +
                 (engine.gpu_name.empty() ? std::string("an unnamed GPU") : engine.gpu_name) +
                 ", this GPU is " +
                 (here.gpu_name.empty() ? std::string("unnamed") : here.gpu_name) + " (both sm_" +
                 std::to_string(here.sm) +
                 "): it runs, but its kernels were timed on the other GPU; rebuild it with "
                 "`kiln build` for the best speed";
    }
  }
  if (!engine.cpu_isa.empty() && engine.cpu_isa != here.cpu_isa) {
    const int e = x86_level(engine.cpu_isa), h = x86_level(here.cpu_isa);
    if (e == 0 || h == 0 || e > h) {
      return device_mismatch("engine built for CPU " + engine.cpu_isa + "; this CPU is " +
                             (here.cpu_isa.empty() ? std::string("unknown") : here.cpu_isa) +
                             kRemedy + " on this machine");
    }
  }
  return Status::Ok();
}

std::string host_cpu_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
#if defined(__clang__)
  // Clang (14) knows no level names here: the levels' main features instead.
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
                  __builtin_cpu_supports("ssse3");
  const bool v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
#else
  const bool v2 = __builtin_cpu_supports("x86-64-v2");
  const bool v3 = __builtin_cpu_supports("x86-64-v3");
  const bool v4 = __builtin_cpu_supports("x86-64-v4");
#endif
  return v4 ? "x86-64-v4" : v3 ? "x86-64-v3" : v2 ? "x86-64-v2" : "x86-64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

std::string build_cpu_isa() {
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && \
    defined(__AVX512DQ__) && defined(__AVX512VL__)
  return "x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
  return "x86-64-v3";
#elif defined(__SSE4_2__) && defined(__POPCNT__)
  return "x86-64-v2";
#else
  return "x86-64";
#endif
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

}  // namespace kiln::engine
