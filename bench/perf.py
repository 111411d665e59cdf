"""Kiln against PyTorch on one GPU, in one run: exports the models (random weights, seed 0), times
PyTorch eager FP16, torch.compile FP16 and Kiln FP16 and TF32 engines at batch 1 and a large
batch, checks every output against an FP32 reference (TF32 off), and times Kiln's build cold and
with a warm timing cache. Prints a table (and writes it as Markdown and JSON to OUT).

    python3 bench/perf.py --kiln BIN/kiln --out OUT [--models resnet50 bert vit]
        [--compile reduce-overhead,max-autotune] [--iters 200] [--compile-timeout 300]

Latency is the median over single runs timed with CUDA events, inputs already on the GPU:
PyTorch's time per call, Kiln's GPU compute time per run from `kiln bench --cuda-graph`
(CUDA-graph replay; host-to-device and device-to-host copies are reported apart by kiln bench).
"""
import argparse
import copy
import json
import shutil
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_models  # noqa: E402

LARGE = {"resnet50": 128, "bert": 64, "vit": 64}


def make_inputs(name, batch, seed=1):
    rs = np.random.RandomState(seed)
    if name == "bert":
        ids = rs.randint(0, 30522, size=(batch, 128)).astype(np.int64)
        mask = np.ones((batch, 128), dtype=np.int64)
        mask[batch // 2:, 100:] = 0
        return {"input_ids": ids, "attention_mask": mask}
    return {"input": rs.randn(batch, 3, 224, 224).astype(np.float32)}


def shapes_arg(inputs, batch):
    return ",".join(f"{n}:" + "x".join(str(d) for d in (batch,) + a.shape[1:])
                    for n, a in inputs.items())


def to_torch(inputs, dtype):
    out = []
    for a in inputs.values():
        t = torch.from_numpy(a).cuda()
        out.append(t.to(dtype) if t.is_floating_point() else t)
    return out


def time_torch(fn, args, iters, warmup=20):
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn(*args)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
    return float(np.median(times))


def errors(out, ref):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    l2 = np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30)
    mx = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30)
    return float(l2), float(mx)


def run(cmd, timeout=900):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return time.time() - t0, p


def kiln_engine(a, name, onnx, work, prec, large, example, opt):
    """An engine for batches 1..large tuned at batch `opt` (as trtexec users build one engine
    per measured batch); built twice, cold and with the warm timing cache."""
    eng = os.path.join(work, f"{name}.{prec}.opt{opt}.kiln")
    cache = os.path.join(work, f"{name}.{prec}.opt{opt}.timing")
    if os.path.exists(cache):
        os.remove(cache)
    prof = ["--min-shapes", shapes_arg(example, 1), "--opt-shapes", shapes_arg(example, opt),
            "--max-shapes", shapes_arg(example, large), "--timing-cache", cache]
    flags = ["--fp16"] if prec == "fp16" else []
    cold, _ = run([a.kiln, "build", onnx, "-o", eng] + flags + prof)
    warm, _ = run([a.kiln, "build", onnx, "-o", eng] + flags + prof)
    return eng, cold, warm


def kiln_bench(a, eng, inputs, batch, work, tag):
    js = os.path.join(work, f"{tag}.bench.json")
    run([a.kiln, "bench", eng, "--shapes", shapes_arg(inputs, batch), "--cuda-graph",
         "--duration", str(a.duration), "--warmup", "0.5", "--json", js])
    with open(js) as f:
        j = json.load(f)
    return j["compute_ms"]["median"], j["latency_ms"]["median"], j.get("notes", "")


def kiln_profile(a, eng, inputs, batch, work, tag):
    """Time per op type and the slowest layers (GPU ms per run, each layer timed alone with its
    launches held back, plus the total host enqueue time) from
    `kiln bench --profile`; the per-layer times and `kiln inspect --json` of the engine (kernels,
    tactics, shapes) are kept in the output folder."""
    js = os.path.join(work, f"{tag}.profile.json")
    run([a.kiln, "bench", eng, "--shapes", shapes_arg(inputs, batch), "--profile",
         "--iterations", "20", "--warmup", "0.2", "--json", js])
    with open(js) as f:
        layers = json.load(f).get("layers", [])
    shutil.copy(js, os.path.join(a.out, f"{tag}.profile.json"))
    _, p = run([a.kiln, "inspect", eng, "--json"])
    with open(os.path.join(a.out, f"{tag}.inspect.json"), "w") as f:
        f.write(p.stdout)
    by_op = {}
    for l in layers:
        by_op[l["op"]] = by_op.get(l["op"], 0.0) + l["ms"]
    top = sorted(((l["ms"], l["name"], l["op"]) for l in layers), reverse=True)[:10]
    by_op["(sum of layers)"] = sum(l["ms"] for l in layers)
    by_op["(host enqueue, all layers)"] = sum(l.get("host_ms", 0.0) for l in layers)
    return sorted(by_op.items(), key=lambda kv: -kv[1]), top


def kiln_output(a, eng, inputs, work, tag):
    d = os.path.join(work, f"{tag}.out")
    args = [a.kiln, "run", eng, "--output-dir", d]
    for k, (n, arr) in enumerate(inputs.items()):
        p = os.path.join(work, f"{tag}.in{k}.npy")
        np.save(p, arr)
        args += ["--input", f"{n}={p}"]
    run(args)
    f = sorted(x for x in os.listdir(d) if x.endswith(".npy"))[0]
    return np.load(os.path.join(d, f))


def bench_model(a, name, work):
    rows = []
    m, ex_inputs, out_names, dyn = export_models.MODELS[name]()
    onnx = os.path.join(work, name + ".onnx")
    torch.onnx.export(m, tuple(ex_inputs.values()), onnx, input_names=list(ex_inputs),
                      output_names=out_names, dynamic_axes=dyn, opset_version=17, dynamo=False)
    large = LARGE[name]
    example = {n: t.numpy() for n, t in ex_inputs.items()}

    # FP32 reference with TF32 off, on the accuracy input (batch 2).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    acc_in = make_inputs(name, 2, seed=7)
    m32 = m.cuda().eval()
    with torch.no_grad():
        ref = m32(*to_torch(acc_in, torch.float32)).float().cpu().numpy()
    m16 = copy.deepcopy(m32).half().eval()
    with torch.no_grad():
        eager_err = errors(m16(*to_torch(acc_in, torch.float16)).float().cpu().numpy(), ref)

    kiln = {}
    for prec in ("fp16", "tf32"):
        eng, cold, warm = kiln_engine(a, name, onnx, work, prec, large, example, large)
        eng1, _, _ = kiln_engine(a, name, onnx, work, prec, large, example, 1)
        err = errors(kiln_output(a, eng, acc_in, work, f"{name}.{prec}.acc"), ref)
        kiln[prec] = {"engine": {1: eng1, large: eng}, "build_cold_s": cold,
                      "build_warm_s": warm, "err": err}

    for batch in (1, large):
        inputs = make_inputs(name, batch)
        targs = to_torch(inputs, torch.float16)
        row = {"model": name, "batch": batch,
               "eager_fp16_ms": time_torch(m16, targs, a.iters), "eager_err": eager_err}
        for mode in a.compile:
            torch._dynamo.reset()
            t0 = time.time()
            try:
                cm = torch.compile(m16, mode=mode)
                ms = time_torch(cm, targs, a.iters, warmup=5)
                with torch.no_grad():
                    cerr = errors(cm(*to_torch(acc_in, torch.float16)).float().cpu().numpy(), ref)
                row[f"compile_{mode}_ms"] = ms
                row[f"compile_{mode}_err"] = cerr
            except Exception as e:  # a failed compile is reported, not fatal
                row[f"compile_{mode}_ms"] = None
                row[f"compile_{mode}_error"] = str(e)[:200]
            row[f"compile_{mode}_s"] = time.time() - t0
        for prec in ("fp16", "tf32"):
            comp, lat, notes = kiln_bench(a, kiln[prec]["engine"][batch], inputs, batch, work,
                                          f"{name}.{prec}.b{batch}")
            row[f"kiln_{prec}_ms"] = comp
            row[f"kiln_{prec}_latency_ms"] = lat
            row[f"kiln_{prec}_notes"] = notes
            row[f"kiln_{prec}_err"] = kiln[prec]["err"]
            row[f"kiln_{prec}_build_s"] = (kiln[prec]["build_cold_s"], kiln[prec]["build_warm_s"])
        if a.profile:
            row["kiln_fp16_profile"], row["kiln_fp16_top_layers"] = kiln_profile(
                a, kiln["fp16"]["engine"][batch], inputs, batch, work, f"{name}.fp16.b{batch}")
        rows.append(row)
        print(json.dumps(row), flush=True)
    del m16, m32
    torch.cuda.empty_cache()
    return rows


def table(rows, modes):
    head = ["model", "batch", "eager fp16 ms"] + [f"compile {m} ms" for m in modes] + [
        "Kiln fp16 ms", "Kiln tf32 ms", "Kiln fp16 items/s", "Kiln/best torch",
        "fp16 L2 err (eager, Kiln)", "Kiln fp16 build s (cold, warm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        torch_ms = [r["eager_fp16_ms"]] + [r.get(f"compile_{m}_ms") for m in modes]
        best = min(t for t in torch_ms if t)
        cells = [r["model"], str(r["batch"]), f"{r['eager_fp16_ms']:.3f}"]
        cells += [f"{r[f'compile_{m}_ms']:.3f}" if r.get(f"compile_{m}_ms") else "failed"
                  for m in modes]
        k = r["kiln_fp16_ms"]
        cells += [f"{k:.3f}", f"{r['kiln_tf32_ms']:.3f}", f"{r['batch'] / k * 1e3:,.0f}",
                  f"{k / best:.2f}x time",
                  f"{r['eager_err'][0]:.1e}, {r['kiln_fp16_err'][0]:.1e}",
                  "{:.1f}, {:.1f}".format(*r["kiln_fp16_build_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kiln", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--models", nargs="*", default=["resnet50", "bert", "vit"])
    p.add_argument("--compile", default="reduce-overhead")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--profile", action="store_true", help="Kiln FP16 time per op type")
    a = p.parse_args()
    a.compile = [m for m in a.compile.split(",") if m]
    os.makedirs(a.out, exist_ok=True)
    work = os.environ.get("WORK", "/tmp/kiln-perf")
    os.makedirs(work, exist_ok=True)
    rows = []
    for name in a.models:
        rows += bench_model(a, name, work)
    md = table(rows, a.compile)
    dev = torch.cuda.get_device_name()
    head = f"{dev}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    with open(os.path.join(a.out, "perf.md"), "w") as f:
        f.write(head + "\n\n" + md + "\n")
    with open(os.path.join(a.out, "perf.json"), "w") as f:
        json.dump({"device": dev, "torch": torch.__version__, "rows": rows}, f, indent=1)
    print(head)
    print(md)
    for r in rows:
        if "kiln_fp16_profile" in r:
            top = ", ".join(f"{op} {ms:.2f}" for op, ms in r["kiln_fp16_profile"][:10])
            print(f"profile {r['model']} b{r['batch']} (GPU ms, each layer alone): {top}")
            slow = ", ".join(f"{n} ({op}) {ms:.3f}" for ms, n, op in r["kiln_fp16_top_layers"][:5])
            print(f"  slowest layers: {slow}")


if __name__ == "__main__":
    main()
