// The kiln command line: build, run, bench, inspect, conformance.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli.h"
#include "commands.h"

int main(int argc, char** argv) {
  using namespace kiln::cli;
  CLI::App app{"kiln: ONNX inference optimizer and runtime"};
  app.require_subcommand(1);
#ifdef KILN_HAVE_CUDA
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION + " (cpu, cuda)");
#else
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION + " (cpu)");
#endif

  auto add_engine_options = [](CLI::App* cmd, EngineOptions& e, bool for_build) {
    cmd->add_option("--device", e.device,
                    "cpu or cuda (default: cuda when a GPU is usable, else cpu)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->add_flag("--fp16", e.fp16, "Allow FP16 kernels (weights converted at build time)");
    cmd->add_flag("--bf16", e.bf16, "Allow BF16 kernels");
    cmd->add_flag("--no-tf32", e.no_tf32, "FP32 math without TF32 tensor cores");
    cmd->add_option("--workspace", e.workspace_mb, "Scratch memory limit per kernel, MB")
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("--min-shapes", e.min_shapes, "Profile minimum shapes: name:1x3x224x224,...");
    cmd->add_option("--opt-shapes", e.opt_shapes, "Profile shapes kernels are tuned for");
    cmd->add_option("--max-shapes", e.max_shapes, "Profile maximum shapes");
    cmd->add_option("--timing-cache", e.timing_cache,
                    "Timing cache file (read and updated): a rebuild with it times nothing");
    cmd->add_option("--opt-level", e.opt_level,
                    "Optimization level 0..5 (default 3): 0 runs the graph as written; 1..5 fuse "
                    "and, on CUDA, time up to 2/4/8/16/all candidate tactics per tunable node")
        ->check(CLI::Range(0, 5));
    cmd->add_flag("--strict", e.strict, "Fail when a node cannot run on the device");
    if (!for_build) {
      cmd->add_flag("--no-cache", e.no_cache,
                    "Build the engine afresh instead of reusing the cached one");
    }
  };

  BuildOptions build;
  CLI::App* build_cmd = app.add_subcommand(
      "build", "Build an engine file from an ONNX model for the CPU or this machine's GPU");
  build_cmd->add_option("model", build.model, "ONNX model file")->required();
  build_cmd->add_option("-o,--output", build.output, "Engine file to write")->required();
  add_engine_options(build_cmd, build.engine, true);

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "Run an engine or an ONNX model (through a cached engine) and print each output's "
      "name, shape, dtype and a summary");
  run_cmd->add_option("model", run.model, "Engine file or ONNX model file")->required();
  add_engine_options(run_cmd, run.engine, false);
  run_cmd->add_option("--input", run.inputs,
                      "NAME=FILE: an input as .npy or TensorProto .pb (repeatable); inputs not "
                      "given are filled with seeded random data");
  run_cmd->add_option("--output-dir", run.output_dir,
                      "Write each output there (.npy for numeric tensors, .pb otherwise)");
  run_cmd->add_option("--shapes", run.shapes,
                      "Shapes for random inputs with dynamic dims, e.g. x:4x3x32x32,y:4");
  run_cmd->add_option("--seed", run.seed, "Seed of the random inputs (default 0)");
  run_cmd->add_flag("--no-optimize", run.no_optimize, "Skip graph optimizations");

  BenchOptions bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench",
      "Measure throughput and latency (min/mean/median/p90/p95/p99, with host-to-device, "
      "compute and device-to-host split out, and enqueue time)");
  bench_cmd->add_option("model", bench.model, "Engine file or ONNX model file")->required();
  add_engine_options(bench_cmd, bench.engine, false);
  bench_cmd->add_option("--shapes", bench.shapes,
                        "Input shapes: name:8x3x224x224,... (default: "
                        "the profile's opt shapes or the static ones)");
  bench_cmd->add_option("--iterations", bench.iterations, "At least this many timed runs")
      ->check(CLI::Range(0, 100000000));
  bench_cmd->add_option("--duration", bench.duration_s, "At least this many seconds of timed runs")
      ->check(CLI::Range(0.0, 36000.0));
  bench_cmd->add_option("--warmup", bench.warmup_s, "Seconds of warm-up runs")
      ->check(CLI::Range(0.0, 3600.0));
  bench_cmd->add_flag("--cuda-graph", bench.cuda_graph, "Capture runs in CUDA graphs and replay");
  bench_cmd->add_option("--streams", bench.streams, "Contexts run at once, each on its own stream")
      ->check(CLI::Range(1, 64));
  bench_cmd->add_flag("--profile", bench.profile, "Also print the time of every layer");
  bench_cmd->add_option("--json", bench.json, "Write the results as JSON to this file");
  bench_cmd->add_option("--seed", bench.seed, "Seed of the random inputs");

  InspectOptions inspect;
  CLI::App* inspect_cmd = app.add_subcommand(
      "inspect",
      "Print a model's inputs, outputs, op histogram, parameters, opsets and the nodes no "
      "backend supports; or an engine's layers with kernel, tactic, precision and shapes, "
      "and its memory use");
  inspect_cmd->add_option("model", inspect.model, "ONNX model or engine file")->required();
  inspect_cmd->add_flag("--ir", inspect.ir, "Print the graph IR (after optimization)");
  inspect_cmd->add_flag("--json", inspect.json, "Print JSON");
  inspect_cmd->add_flag("--no-optimize", inspect.no_optimize, "With --ir: before optimization");
  inspect_cmd->add_flag("--fp16", inspect.fp16, "With --ir: after --fp16's precision pass");
  inspect_cmd->add_flag("--bf16", inspect.bf16, "With --ir: after --bf16's precision pass");
  inspect_cmd->add_flag("--cuda", inspect.cuda,
                        "With --ir: also the passes of CUDA builds (channels-last convolutions)");

  ConformanceOptions conf;
  CLI::App* conf_cmd = app.add_subcommand(
      "conformance", "Run ONNX backend test cases (model.onnx + test_data_set_N) and compare");
  conf_cmd->add_option("dirs", conf.dirs, "Case folders, or folders of case folders")->required();
  conf_cmd
      ->add_option("--backend", conf.backend,
                   "Backend to test: cpu, or cuda (engines built "
                   "for this GPU, CPU fallback allowed)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  conf_cmd->add_flag("--strict", conf.strict,
                     "With --backend cuda: every node must run on the GPU (no CPU fallback)");
  conf_cmd->add_option("--suite", conf.suite, "Suite name used in the expectations file");
  conf_cmd->add_option("--expectations", conf.expectations,
                       "File listing the cases expected to fail, per backend and suite");
  conf_cmd->add_option("--write-expectations", conf.write_expectations,
                       "Write the failing cases in expectations-file form to this file");
  conf_cmd->add_option("-j,--jobs", conf.jobs, "Cases run at once")->check(CLI::Range(1, 256));
  conf_cmd->add_option("--timeout", conf.timeout_s, "Seconds per case")->check(CLI::Range(1, 3600));
  conf_cmd->add_flag("-v,--verbose", conf.verbose, "Print passing cases too");
  conf_cmd->add_flag("--no-fork", conf.no_fork, "Run cases in this process (for debugging)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  if (*build_cmd) return build_command(build);
  if (*run_cmd) return run_command(run);
  if (*bench_cmd) return bench_command(bench);
  if (*inspect_cmd) return inspect_command(inspect);
  if (*conf_cmd) return conformance_command(conf);
  return kExitBadInput;
}
