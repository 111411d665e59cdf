// `kiln conformance`: runs ONNX backend test cases. Each case runs in a child process (when
// forking is on), so a crash or a hang in one case is reported as that case's failure.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "backend/builder.h"
#include "backend/cuda_backend.h"
#include "cli.h"
#include "commands.h"
#include "engine/engine_file.h"
#include "onnx/importer.h"
#include "runtime/compare.h"
#include "runtime/cpu_model.h"
#include "runtime/engine_io.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

enum class Outcome : char { kPass = 'P', kFail = 'F', kSkip = 'S' };

struct CaseResult {
  Outcome outcome = Outcome::kFail;
  std::string message;
};

struct Case {
  std::string name;
  fs::path dir;
};

std::vector<fs::path> sorted_dirs(const fs::path& dir) {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory()) v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

// ONNX 1.12's test data stores bfloat16 tensors as uint16 TensorProtos holding the bit patterns,
// while the models declare bfloat16: read such data as the bfloat16 it encodes.
Datum fix_bfloat16_bits(Datum d, const ir::TypeInfo& declared) {
  if (!d.is_tensor() || !declared.is_tensor() || declared.dtype != DType::kBFloat16 ||
      d.tensor.dtype() != DType::kUInt16) {
    return d;
  }
  Tensor bits = d.tensor;
  Tensor t =
      Tensor::view(DType::kBFloat16, bits.shape(), bits.raw(), std::make_shared<Tensor>(bits));
  return Datum::of(std::move(t));
}

// How a case runs: the CPU reference executor, or a CUDA engine built for the case (strict:
// every node on the GPU), serialized and loaded back as `kiln build` + `kiln run` would.
struct Runner {
  std::string backend = "cpu";
  bool strict = false;
  std::unique_ptr<ir::Model> cpu_model;
  std::unique_ptr<cpu::Executor> cpu;
  std::shared_ptr<runtime::EngineData> engine;

  Status load(const std::string& path) {
    if (backend == "cpu") {
      KILN_ASSIGN_OR_RETURN(CpuModel m, load_cpu_model(path));
      cpu_model = std::move(m.model);
      cpu = std::move(m.executor);
      return Status::Ok();
    }
    BuilderConfig c;
    c.device = Device::kCuda;
    c.tf32 = false;  // the suite's tolerances are FP32's
    c.strict = strict;
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<runtime::EngineData> built,
                          backend::build_engine_data(path, c));
    KILN_ASSIGN_OR_RETURN(engine::TargetInfo target, runtime::current_target(Device::kCuda));
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, runtime::serialize_engine(*built, target));
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<engine::EngineFile> f,
                          engine::EngineFile::from_bytes(bytes, path));
    KILN_ASSIGN_OR_RETURN(engine, runtime::load_engine_data(std::move(f)));
    return Status::Ok();
  }
  const ir::Graph& graph() const { return cpu ? *cpu_model->graph : *engine->model->graph; }
  StatusOr<std::vector<Datum>> run(const std::vector<std::pair<std::string, Datum>>& feeds) {
    if (cpu) return cpu->run(feeds);
    return backend::cuda_run_values(engine, feeds);
  }
};

CaseResult run_case(const Case& c, const ConformanceOptions& o) {
  Runner m;
  m.backend = o.backend;
  m.strict = o.strict;
  Status loaded = m.load((c.dir / "model.onnx").string());
  if (!loaded.ok()) return {Outcome::kFail, loaded.to_string()};
  const ir::Graph& g = m.graph();
  std::vector<const ir::Value*> inputs;
  for (const ir::Value* v : g.inputs) {
    if (!v->constant) inputs.push_back(v);
  }
  int sets = 0;
  for (const fs::path& set : sorted_dirs(c.dir)) {
    if (set.filename().string().rfind("test_data_set_", 0) != 0) continue;
    ++sets;
    std::vector<std::pair<std::string, Datum>> feeds;
    for (size_t k = 0;; ++k) {
      fs::path f = set / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(f)) break;
      if (k >= inputs.size()) {
        return {Outcome::kFail,
                "test data has more inputs than the model (" + std::to_string(inputs.size()) + ")"};
      }
      StatusOr<Datum> d = onnx::read_value_file(f.string(), inputs[k]->type);
      if (!d.ok()) return {Outcome::kFail, d.status().to_string()};
      feeds.emplace_back(inputs[k]->name, fix_bfloat16_bits(std::move(d).value(), inputs[k]->type));
    }
    StatusOr<std::vector<Datum>> outs = m.run(feeds);
    if (!outs.ok()) return {Outcome::kFail, outs.status().to_string()};
    for (size_t k = 0;; ++k) {
      fs::path f = set / ("output_" + std::to_string(k) + ".pb");
      if (!fs::exists(f)) break;
      if (k >= outs->size()) return {Outcome::kFail, "model has fewer outputs than the test data"};
      StatusOr<Datum> expected = onnx::read_value_file(f.string(), g.outputs[k]->type);
      if (!expected.ok()) return {Outcome::kFail, expected.status().to_string()};
      std::string diff = compare_datum(
          fix_bfloat16_bits(std::move(expected).value(), g.outputs[k]->type), (*outs)[k]);
      if (!diff.empty()) {
        return {Outcome::kFail, set.filename().string() + " output " + std::to_string(k) + " ('" +
                                    g.outputs[k]->name + "'): " + diff};
      }
    }
  }
  if (sets == 0) return {Outcome::kSkip, "no test_data_set_* folders"};
  return {Outcome::kPass, ""};
}

std::string describe_exit(int status, int timeout_s) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGALRM || sig == SIGKILL)
      return "timed out after " + std::to_string(timeout_s) + " s";
    return std::string("crashed with signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status)) + " without a result";
}

// Runs cases in child processes, `jobs` at a time. Each child runs a chunk of cases one after
// the other (so a CUDA context is set up once per chunk, not once per case) and reports each
// result as it finishes; when a child dies (crash, or a case over its time limit), the case it
// was running fails with the reason and the rest of its chunk goes back to the queue.
std::vector<CaseResult> run_forked(const std::vector<Case>& cases, const ConformanceOptions& o) {
  const int jobs = o.jobs, timeout_s = o.timeout_s;
  const size_t chunk = o.backend == "cpu" ? 1 : 24;
  std::vector<CaseResult> results(cases.size());
  std::vector<bool> done(cases.size(), false);
  std::deque<size_t> queue;
  for (size_t i = 0; i < cases.size(); ++i) queue.push_back(i);
  struct Worker {
    pid_t pid;
    int fd;
    std::vector<size_t> chunk;
    std::string buffer;
  };
  std::vector<Worker> running;
  std::fflush(stdout);
  std::fflush(stderr);
  // Records: "<index> <outcome><message>\0".
  auto parse = [&](Worker& w) {
    size_t z;
    while ((z = w.buffer.find('\0')) != std::string::npos) {
      std::string rec = w.buffer.substr(0, z);
      w.buffer.erase(0, z + 1);
      size_t sp = rec.find(' ');
      if (sp == std::string::npos || sp + 1 >= rec.size()) continue;
      size_t idx = std::stoul(rec.substr(0, sp));
      if (idx >= cases.size()) continue;
      results[idx] = {static_cast<Outcome>(rec[sp + 1]), rec.substr(sp + 2)};
      done[idx] = true;
    }
  };
  while (!queue.empty() || !running.empty()) {
    while (!queue.empty() && static_cast<int>(running.size()) < jobs) {
      std::vector<size_t> mine;
      while (!queue.empty() && mine.size() < chunk) {
        mine.push_back(queue.front());
        queue.pop_front();
      }
      int fds[2];
      if (pipe(fds) != 0) {
        for (size_t i : mine) results[i] = {Outcome::kFail, "pipe() failed"}, done[i] = true;
        continue;
      }
      pid_t pid = fork();
      if (pid == 0) {
        close(fds[0]);
        for (size_t i : mine) {
          alarm(static_cast<unsigned>(timeout_s));
          CaseResult r = run_case(cases[i], o);
          std::string out = std::to_string(i) + " " + static_cast<char>(r.outcome);
          for (char c : r.message) out += c == '\0' ? ' ' : c;
          out += '\0';
          const char* p = out.data();
          size_t left = out.size();
          while (left > 0) {
            ssize_t w = write(fds[1], p, left);
            if (w <= 0) break;
            p += w;
            left -= static_cast<size_t>(w);
          }
        }
        _exit(0);
      }
      close(fds[1]);
      if (pid < 0) {
        close(fds[0]);
        for (size_t i : mine) results[i] = {Outcome::kFail, "fork() failed"}, done[i] = true;
        continue;
      }
      running.push_back({pid, fds[0], std::move(mine), {}});
    }
    std::vector<pollfd> pfds;
    for (const Worker& w : running) pfds.push_back({w.fd, POLLIN, 0});
    poll(pfds.data(), pfds.size(), 1000);
    for (size_t i = 0; i < running.size();) {
      Worker& w = running[i];
      if (pfds[i].revents == 0) {
        ++i;
        continue;
      }
      char buf[65536];
      ssize_t n = read(w.fd, buf, sizeof(buf));
      if (n > 0) {
        w.buffer.append(buf, static_cast<size_t>(n));
        parse(w);
        ++i;
        continue;
      }
      close(w.fd);
      int status = 0;
      waitpid(w.pid, &status, 0);
      bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      bool blamed = false;
      std::vector<size_t> requeue;
      for (size_t idx : w.chunk) {
        if (done[idx]) continue;
        if (!blamed) {
          results[idx] = {Outcome::kFail,
                          clean ? "exited without a result" : describe_exit(status, timeout_s)};
          done[idx] = true;
          blamed = true;
        } else {
          requeue.push_back(idx);
        }
      }
      for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) queue.push_front(*it);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      pfds.erase(pfds.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  return results;
}

// Expectations file: "<backend> <suite> <case> <reason...>" per line; '#' starts a comment.
StatusOr<std::map<std::string, std::string>> read_expectations(const std::string& path,
                                                               const std::string& backend,
                                                               const std::string& suite) {
  std::ifstream f(path);
  if (!f) return io_error("cannot read expectations file " + path);
  std::map<std::string, std::string> out;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string b, s, c;
    if (!(ss >> b >> s >> c)) {
      return invalid_argument(path + ":" + std::to_string(lineno) +
                              ": expected '<backend> <suite> <case> <reason>'");
    }
    std::string reason;
    std::getline(ss, reason);
    if (b == backend && s == suite) out[c] = reason;
  }
  return out;
}

}  // namespace

int conformance_command(const ConformanceOptions& o) {
  std::vector<Case> cases;
  for (const std::string& d : o.dirs) {
    fs::path p(d);
    if (!fs::is_directory(p)) {
      return report_error(invalid_argument(d + " is not a folder"));
    }
    if (fs::exists(p / "model.onnx")) {
      cases.push_back({p.filename().string(), p});
      continue;
    }
    size_t before = cases.size();
    for (const fs::path& sub : sorted_dirs(p)) {
      if (fs::exists(sub / "model.onnx")) cases.push_back({sub.filename().string(), sub});
    }
    if (cases.size() == before) {
      return report_error(invalid_argument(d + " holds no test case (no model.onnx in it or in "
                                               "its subfolders)"));
    }
  }
  const std::string label = o.backend + (o.backend == "cuda" && o.strict ? "-strict" : "");
  std::map<std::string, std::string> expected_failures;
  if (!o.expectations.empty()) {
    if (o.suite.empty()) {
      return report_error(invalid_argument("--expectations needs --suite NAME"));
    }
    auto e = read_expectations(o.expectations, label, o.suite);
    if (!e.ok()) return report_error(e.status());
    expected_failures = *e;
  }

  std::vector<CaseResult> results;
  if (o.no_fork) {
    for (const Case& c : cases) results.push_back(run_case(c, o));
  } else {
    results = run_forked(cases, o);
  }

  int passed = 0, failed = 0, skipped = 0, unexpected = 0, fixed = 0;
  std::ostringstream expectations_out;
  for (size_t i = 0; i < cases.size(); ++i) {
    const CaseResult& r = results[i];
    const std::string& name = cases[i].name;
    const bool listed = expected_failures.count(name) > 0;
    switch (r.outcome) {
      case Outcome::kPass:
        ++passed;
        if (listed) {
          ++fixed;
          std::printf("PASS %s (listed as an expected failure: remove it from %s)\n", name.c_str(),
                      o.expectations.c_str());
        } else if (o.verbose) {
          std::printf("PASS %s\n", name.c_str());
        }
        break;
      case Outcome::kSkip:
        ++skipped;
        std::printf("SKIP %s: %s\n", name.c_str(), r.message.c_str());
        break;
      case Outcome::kFail: {
        ++failed;
        std::string msg = r.message;
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        if (listed) {
          if (o.verbose) std::printf("XFAIL %s: %s\n", name.c_str(), msg.c_str());
        } else {
          ++unexpected;
          std::printf("FAIL %s: %s\n", name.c_str(), msg.c_str());
        }
        expectations_out << label << " " << (o.suite.empty() ? "-" : o.suite) << " " << name << " "
                         << msg.substr(0, 200) << "\n";
        break;
      }
    }
  }
  if (!o.write_expectations.empty()) {
    std::ofstream f(o.write_expectations);
    f << expectations_out.str();
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (!o.expectations.empty()) {
    std::printf("(%d failure(s) expected by %s, %d unexpected; %d listed case(s) now pass)\n",
                failed - unexpected, o.expectations.c_str(), unexpected, fixed);
    return unexpected > 0 ? kExitCheckFailed : kExitOk;
  }
  return failed > 0 ? kExitCheckFailed : kExitOk;
}

}  // namespace kiln::cli
