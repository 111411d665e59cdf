#!/usr/bin/env python3
"""Collects seed inputs for one libFuzzer target (see scripts/fuzz.sh) into a corpus folder.

Sources: the ONNX node suite archive (model.onnx, input_*.pb / output_*.pb), the Debian
libonnx-testdata folder, models/*.onnx, CPU engines built with `kiln build` from some of those
models, and .npy files written with numpy. Files larger than --max-len are skipped.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_TGZ = "/work/shared/conformance/onnx-1.23.1-node-tests.tgz"
DEBIAN_DATA = "/usr/share/libonnx-testdata"


def add(out, data, max_len, prefix=b""):
    data = prefix + data
    if len(data) == 0 or len(data) > max_len:
        return False
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(out, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
    return True


def tgz_members(suffix_test):
    if not os.path.exists(NODE_TGZ):
        return
    with tarfile.open(NODE_TGZ) as tf:
        for m in tf:
            if m.isfile() and suffix_test(m.name):
                yield m.name, tf.extractfile(m).read()


def debian_files(suffix):
    for dirpath, _, files in os.walk(DEBIAN_DATA):
        for f in sorted(files):
            if f.endswith(suffix):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    yield os.path.join(dirpath, f), fh.read()


def local_models():
    d = os.path.join(ROOT, "models")
    for f in sorted(os.listdir(d)):
        if f.endswith(".onnx"):
            with open(os.path.join(d, f), "rb") as fh:
                yield os.path.join(d, f), fh.read()


def seeds_onnx(out, max_len):
    n = 0
    for _, b in tgz_members(lambda p: p.endswith("model.onnx")):
        n += add(out, b, max_len)
    for _, b in debian_files(".onnx"):
        n += add(out, b, max_len)
    for _, b in local_models():
        n += add(out, b, max_len)
    return n


def seeds_pb(out, max_len):
    # The target's first byte picks the expected message: 0 = tensor, 2 = sequence,
    # 3 = optional, 4 = map. Node-suite files whose test has seq/opt/map types are tried as each.
    n = 0
    for name, b in tgz_members(lambda p: p.endswith(".pb")):
        kinds = [0]
        if "seq" in name or "split_to_sequence" in name:
            kinds = [2, 0]
        elif "optional" in name:
            kinds = [3, 2, 0]
        for k in kinds:
            n += add(out, b, max_len, bytes([k]))
    for _, b in debian_files(".pb"):
        n += add(out, b, max_len, b"\x00")
    return n


def seeds_npy(out, max_len):
    script = r'''
import io, sys, os
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
arrays = []
for dt in ["float32", "float64", "float16", "int8", "uint8", "int16", "uint16", "int32",
           "uint32", "int64", "uint64", "bool"]:
    for shape in [(), (0,), (3,), (2, 3), (1, 2, 2, 2)]:
        arrays.append((rng.random(shape) * 10).astype(dt))
arrays.append(np.zeros((2, 3), dtype="float32", order="F"))
arrays.append(np.arange(6, dtype=">f4").reshape(2, 3))
arrays.append(np.array(["ab", "c"]))
for i, a in enumerate(arrays):
    for version in [(1, 0), (2, 0), (3, 0)]:
        buf = io.BytesIO()
        try:
            np.lib.format.write_array(buf, a, version=version)
        except Exception:
            continue
        with open(os.path.join(out, "a%03d_v%d.npy" % (i, version[0])), "wb") as f:
            f.write(buf.getvalue())
'''
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["/usr/bin/python3", "-c", script, tmp], check=True)
        n = 0
        for f in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, f), "rb") as fh:
                n += add(out, fh.read(), max_len)
    return n


def find_kiln():
    for p in [os.path.join(ROOT, "build/cpu-release/kiln"), os.path.join(ROOT, "build/cpu-debug/kiln"),
              shutil.which("kiln") or ""]:
        if p and os.access(p, os.X_OK):
            return p
    return None


def seeds_engine(out, max_len, kiln):
    if not kiln:
        print("fuzz_seeds: no kiln binary (build the cpu-release preset); no engine seeds",
              file=sys.stderr)
        return 0
    picks = ["test_add/", "test_relu/", "test_conv_with_strides_padding/", "test_matmul_2d/",
             "test_gemm_default_matrix_bias/", "test_softmax_axis_1/", "test_reshape_reordered_all_dims/",
             "test_gather_0/", "test_if/", "test_loop11/", "test_maxpool_2d_default/",
             "test_layer_normalization_2d_axis0/", "test_cast_FLOAT_to_FLOAT16/",
             "test_concat_2d_axis_0/", "test_transpose_default/", "test_reduce_mean_default_axes_keepdims_example/",
             "test_sequence_insert_at_back/", "test_where_example/", "test_einsum_batch_matmul/",
             "test_lstm_defaults/", "test_resize_upsample_scales_nearest/"]
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for name, b in tgz_members(lambda p: p.endswith("model.onnx") and
                                   any("/" + k in p for k in picks)):
            path = os.path.join(tmp, "m%d.onnx" % len(models))
            with open(path, "wb") as f:
                f.write(b)
            models.append(path)
        models += [os.path.join(ROOT, "models", f) for f in sorted(os.listdir(os.path.join(ROOT, "models")))
                   if f.endswith(".onnx")]
        for i, m in enumerate(models):
            for level in ["0", "3"]:
                eng = os.path.join(tmp, "e%d_%s.kiln" % (i, level))
                r = subprocess.run([kiln, "build", m, "-o", eng, "--device", "cpu", "--opt-level", level],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if r.returncode == 0 and os.path.exists(eng):
                    with open(eng, "rb") as fh:
                        n += add(out, fh.read(), max_len)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["fuzz_onnx", "fuzz_engine", "fuzz_npy", "fuzz_pb"])
    ap.add_argument("out")
    ap.add_argument("--max-len", type=int, required=True)
    ap.add_argument("--kiln", default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.target == "fuzz_onnx":
        n = seeds_onnx(a.out, a.max_len)
    elif a.target == "fuzz_pb":
        n = seeds_pb(a.out, a.max_len)
    elif a.target == "fuzz_npy":
        n = seeds_npy(a.out, a.max_len)
    else:
        n = seeds_engine(a.out, a.max_len, a.kiln or find_kiln())
    print("fuzz_seeds: %d seeds for %s in %s" % (n, a.target, a.out))


if __name__ == "__main__":
    main()
