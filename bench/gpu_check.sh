#!/usr/bin/env bash
# On the device (GPU) machine: runs the cuda-labelled tests, the GPU conformance runs (strict and
# with CPU fallback) over the ONNX 1.23.1 node suite, the bundled example, and the benchmark
# models (built in FP32 and FP16, compared with PyTorch's FP32 output, benchmarked).
#
#   bench/gpu_check.sh BIN_DIR OUT_DIR [env] [tests] [conformance] [example] [models]
#
# BIN_DIR holds kiln, kiln_cuda_tests (built here with the cuda-release preset) and lib/ with
# host libraries the device lacks; SUITE_TGZ (env) points at the node suite archive.
set -u
bin=$(cd "$1" && pwd)
out=$2
shift 2
steps=${*:-env tests conformance example models}
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
pylibs=$(python3 - <<'PY'
import glob, os, site
paths = set()
for sp in site.getsitepackages():
    paths.update(glob.glob(os.path.join(sp, "nvidia", "*", "lib")))
print(":".join(sorted(paths)))
PY
)
export LD_LIBRARY_PATH=$bin/lib:/usr/local/cuda/lib64:$pylibs:${LD_LIBRARY_PATH:-}
export KILN_CACHE_DIR=$out/cache
kiln=$bin/kiln
work=${WORK:-/tmp/kiln-gpu}
mkdir -p "$work"

has() { [[ " $steps " == *" $1 "* ]]; }

if has env; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/env.txt"
  ldd "$kiln" | grep -E "not found|cudnn|cublas|nvrtc|cudart" | tee -a "$out/env.txt"
fi
if has tests || has conformance; then
  suite=$work/onnx-1.23.1
  if [ ! -d "$suite/node" ]; then
    mkdir -p "$suite" && tar -xzf "${SUITE_TGZ}" -C "$suite" --strip-components=1
  fi
  node=$(dirname "$(find "$suite" -maxdepth 3 -name 'test_abs' -type d | head -1)")
fi
if has tests; then
  KILN_NODE_DIR=$node "$bin/kiln_cuda_tests" > "$out/cuda_tests_full.txt" 2>&1
  tail -25 "$out/cuda_tests_full.txt" | tee "$out/cuda_tests.txt"
fi
if has conformance; then
  for mode in ${CONF_MODES:-strict fallback}; do
    flag=""; label=cuda
    [ "$mode" = strict ] && flag="--strict" && label=cuda-strict
    timeout 280 "$kiln" conformance --backend cuda $flag -j 12 --timeout 60 "$node" \
      --suite onnx-1.23.1-node --write-expectations "$out/expect_$label.txt" \
      > "$out/conformance_$mode.txt" 2>&1
    echo "conformance $mode: $(tail -1 "$out/conformance_$mode.txt")"
  done
fi
if has example; then
  for m in example_if example_traced; do
    "$kiln" build "$root/models/$m.onnx" -o "$work/$m.kiln" --strict 2>&1 | tail -3
    "$kiln" run "$work/$m.kiln" --shapes x:8x3x32x32 2>&1 | tail -2
    "$kiln" bench "$work/$m.kiln" --shapes x:8x3x32x32 --duration 1 --cuda-graph 2>&1 |
      grep -E "Throughput|^Latency|GPU Compute|notes" | tee -a "$out/example_bench.txt"
  done
fi
if has models; then
  python3 "$root/bench/export_models.py" "$work/models" ${MODELS:-resnet50 bert vit} \
    2>&1 | grep -v Warning | tail -5
  for m in ${MODELS:-resnet50 bert vit}; do
    onnx=$work/models/$m.onnx
    [ -f "$onnx" ] || continue
    if [ "$m" = bert ]; then
      prof="--min-shapes input_ids:1x128,attention_mask:1x128 --opt-shapes input_ids:8x128,attention_mask:8x128 --max-shapes input_ids:64x128,attention_mask:64x128"
      ins="--input input_ids=$work/models/$m.input_0.npy --input attention_mask=$work/models/$m.input_1.npy"
      shapes="input_ids:8x128,attention_mask:8x128"
    else
      prof="--min-shapes input:1x3x224x224 --opt-shapes input:8x3x224x224 --max-shapes input:128x3x224x224"
      ins="--input input=$work/models/$m.input_0.npy"
      shapes="input:8x3x224x224"
    fi
    for prec in fp32 fp16; do
      pflag=""; [ $prec = fp16 ] && pflag=--fp16
      eng=$work/$m.$prec.kiln
      /usr/bin/time -f "$m $prec build wall %e s" "$kiln" build "$onnx" -o "$eng" $pflag $prof \
        2>&1 | grep -vE "^\s*$" | tail -4 | tee -a "$out/models.txt"
      rm -rf "$work/out_$m"
      "$kiln" run "$eng" $ins --output-dir "$work/out_$m" > /dev/null 2>&1 ||
        echo "$m $prec: run failed" | tee -a "$out/models.txt"
      f=$(ls "$work/out_$m"/*.npy 2>/dev/null | head -1)
      [ -n "$f" ] && python3 "$root/bench/compare_outputs.py" "$work/models/$m.ref.npy" "$f" \
        "$m $prec" | tee -a "$out/models.txt"
      "$kiln" bench "$eng" --shapes "$shapes" --duration 2 --cuda-graph 2>&1 |
        grep -E "Throughput|^Latency|GPU Compute|notes" | sed "s/^/$m $prec /" |
        tee -a "$out/models.txt"
    done
  done
fi
