"""Single layers of the benchmark models, Kiln against PyTorch on the same GPU: the FP16 GEMMs of
BERT-base (sequence 128) and ViT-B/16 at their large batch, with the weight stored [K, N] (as
exported MatMuls hold it) and [N, K] (as torch.nn.Linear holds it), with and without a bias and
an exact GELU. Each layer is one small ONNX model built by `kiln build` and timed by `kiln bench
--cuda-graph` (GPU compute median); PyTorch is timed with CUDA events over a CUDA graph of the
same layer. Prints one row per layer: microseconds and TFLOP/s for both.

    python3 bench/layer_probe.py --kiln BIN/kiln [--out OUT] [--only NAME] [--opt-level N]
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

# name: (M, K, N, weight layout "kn" | "nk", bias, gelu)
LAYERS = {
    "bert_qkv_768": (8192, 768, 768, "kn", True, False),
    "bert_ffn1_gelu": (8192, 768, 3072, "kn", True, True),
    "bert_ffn1_nogelu": (8192, 768, 3072, "kn", True, False),
    "bert_ffn1_nk": (8192, 768, 3072, "nk", True, False),
    "bert_ffn2": (8192, 3072, 768, "kn", True, False),
    "bert_ffn2_nk": (8192, 3072, 768, "nk", True, False),
    "vit_qkv_2304": (12608, 768, 2304, "kn", True, False),
    "vit_ffn1_gelu": (12608, 768, 3072, "kn", True, True),
    "vit_ffn2": (12608, 3072, 768, "kn", True, False),
    "gemm_4096": (4096, 4096, 4096, "kn", False, False),
}


def model(path, m, k, n, layout, bias, gelu):
    rs = np.random.RandomState(0)
    w = (rs.randn(k, n) / np.sqrt(k)).astype(np.float16)
    inits = []
    nodes = []
    b = (rs.randn(n) * 0.1).astype(np.float16)
    out = "mm" if gelu else "Y"
    if layout == "kn":
        inits.append(numpy_helper.from_array(w, "W"))
        if bias:
            inits.append(numpy_helper.from_array(b, "b"))
            nodes.append(helper.make_node("MatMul", ["X", "W"], ["xw"]))
            nodes.append(helper.make_node("Add", ["xw", "b"], [out]))
        else:
            nodes.append(helper.make_node("MatMul", ["X", "W"], [out]))
    else:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "Wt"))
        ins = ["X", "Wt"]
        if bias:
            inits.append(numpy_helper.from_array(b, "b"))
            ins.append("b")
        nodes.append(helper.make_node("Gemm", ins, [out], transB=1))
    if gelu:
        nodes.append(helper.make_node("Gelu", ["mm"], ["Y"]))
    g = helper.make_graph(nodes, "probe",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT16, [m, k])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT16, [m, n])], inits)
    mdl = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    onnx.save(mdl, path)
    return w


def kiln_time(kiln, path, work, name, opt_level=None):
    eng = os.path.join(work, name + ".kiln")
    extra = ["--opt-level", str(opt_level)] if opt_level is not None else []
    subprocess.run([kiln, "build", path, "-o", eng, "--fp16"] + extra, check=True,
                   capture_output=True)
    js = os.path.join(work, name + ".json")
    subprocess.run([kiln, "bench", eng, "--cuda-graph", "--duration", "1", "--warmup", "0.3",
                    "--json", js], check=True, capture_output=True)
    with open(js) as f:
        j = json.load(f)
    p = subprocess.run([kiln, "inspect", eng, "--json"], check=True, capture_output=True,
                       text=True)
    algos = [l.get("algorithm", l.get("kernel", "")) for l in json.loads(p.stdout)["layers"]]
    return j["compute_ms"]["median"], "; ".join(a for a in algos if a)


def torch_time(m, k, n, layout, bias, gelu, w):
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    wt = torch.from_numpy(w).cuda()
    wnk = wt.t().contiguous()
    b = torch.randn(n, device="cuda", dtype=torch.float16) if bias else None

    def fn():
        y = torch.nn.functional.linear(x, wnk, b) if layout == "nk" else (
            torch.matmul(x, wt) + b if bias else torch.matmul(x, wt))
        return torch.nn.functional.gelu(y) if gelu else y

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(10):
        g.replay()
    times = []
    for _ in range(200):
        a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        e.record()
        e.synchronize()
        times.append(a.elapsed_time(e))
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default=None)
    ap.add_argument("--opt-level", type=int, default=None, help="kiln build --opt-level")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-probe-")
    rows = []
    for name, (m, k, n, layout, bias, gelu) in LAYERS.items():
        if a.only and a.only not in name:
            continue
        path = os.path.join(work, name + ".onnx")
        w = model(path, m, k, n, layout, bias, gelu)
        kt, algo = kiln_time(a.kiln, path, work, name, a.opt_level)
        tt = torch_time(m, k, n, layout, bias, gelu, w)
        fl = 2.0 * m * k * n
        rows.append((name, m, k, n, tt * 1e3, fl / tt / 1e9, kt * 1e3, fl / kt / 1e9, kt / tt, algo))
    dev = torch.cuda.get_device_name()
    lines = [f"{dev}, torch {torch.__version__}",
             "| layer | M | K | N | torch us | torch TFLOP/s | Kiln us | Kiln TFLOP/s | Kiln/torch | Kiln kernels |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %s | %d | %d | %d | %.1f | %.0f | %.1f | %.0f | %.2f | %s |" % r)
    text = "\n".join(lines)
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "layer_probe.md"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
