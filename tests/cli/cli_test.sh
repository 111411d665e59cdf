#!/usr/bin/env bash
# Command-line behaviour: exit codes (0 ok, 1 check failed, 2 bad input or usage) and messages.
# Usage: cli_test.sh KILN_BINARY SOURCE_DIR
set -u
kiln=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export KILN_CACHE_DIR=$tmp/cache
failures=0

# expect CODE PATTERN -- command...: runs it, checks the exit code and that the output matches.
expect() {
  local code=$1 pattern=$2
  shift 3
  local out
  out=$("$@" 2>&1)
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL: '$*' exited $rc, expected $code"; echo "$out" | tail -5; failures=$((failures + 1))
  elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: '$*' output lacks /$pattern/"; echo "$out" | tail -5; failures=$((failures + 1))
  else
    echo "ok: $*"
  fi
}

model=$src/models/example_if.onnx
expect 0 "run" -- "$kiln" --help
expect 0 "--input" -- "$kiln" run --help
expect 0 "--ir" -- "$kiln" inspect --help
expect 0 "--expectations" -- "$kiln" conformance --help
expect 2 "" -- "$kiln"
expect 2 "" -- "$kiln" frobnicate
expect 2 "" -- "$kiln" run
expect 2 "missing.onnx" -- "$kiln" run "$tmp/missing.onnx"

# The bundled example runs, with random inputs announced and outputs written.
expect 0 "y: float32\[1,3200\]" -- "$kiln" run "$model" --output-dir "$tmp/out"
expect 0 "not given: using float32\[1,3,32,32\]" -- "$kiln" run "$model"
expect 0 "float32\[4,3200\]" -- "$kiln" run "$model" --shapes x:4x3x32x32
[ -f "$tmp/out/y.npy" ] || { echo "FAIL: y.npy not written"; failures=$((failures + 1)); }
# Feeding the written output back as an input of the wrong shape is refused, naming the input.
expect 2 "'x'" -- "$kiln" run "$model" --input "x=$tmp/out/y.npy"
expect 2 "no input named 'nope'" -- "$kiln" run "$model" --input "nope=$tmp/out/y.npy"
expect 2 "rank 2" -- "$kiln" run "$model" --shapes "x:4x3"
expect 2 "" -- "$kiln" run "$model" --shapes "bogus"

expect 0 "Conv +4" -- "$kiln" inspect "$model"
expect 0 "every node is supported" -- "$kiln" inspect "$model"
expect 0 "\"Conv\": 4" -- "$kiln" inspect --json "$model"
expect 0 "= If\(" -- "$kiln" inspect --ir "$model"

# Malformed models: truncated and garbage files are refused with exit 2, naming the file.
head -c 1000 "$model" > "$tmp/truncated.onnx"
expect 2 "truncated.onnx" -- "$kiln" run "$tmp/truncated.onnx"
expect 2 "truncated.onnx" -- "$kiln" inspect "$tmp/truncated.onnx"
printf 'not a model at all' > "$tmp/garbage.onnx"
expect 2 "garbage.onnx" -- "$kiln" run "$tmp/garbage.onnx"
: > "$tmp/empty.onnx"
expect 2 "empty.onnx" -- "$kiln" run "$tmp/empty.onnx"

# build / run / inspect / bench on a CPU engine.
expect 0 "wrote $tmp/ex.kiln" -- "$kiln" build "$model" -o "$tmp/ex.kiln" --device cpu
expect 0 "cpu:Conv" -- "$kiln" inspect "$tmp/ex.kiln"
expect 0 '"peak_activation_bytes"' -- "$kiln" inspect "$tmp/ex.kiln" --json
expect 0 "y: float32\[1,3200\]" -- "$kiln" run "$tmp/ex.kiln"
expect 0 "Throughput: .* qps" -- "$kiln" bench "$tmp/ex.kiln" --duration 0.2 --warmup 0.05
expect 0 "percentile\(99%\)" -- "$kiln" bench "$model" --device cpu --duration 0.2 --warmup 0
expect 0 "cached engine" -- "$kiln" run "$model" --device cpu
expect 0 "built a cpu engine" -- "$kiln" run "$model" --device cpu --no-cache
expect 2 "already an engine" -- "$kiln" build "$tmp/ex.kiln" -o "$tmp/ex2.kiln" --device cpu
expect 0 "wrote" -- "$kiln" build "$model" -o "$tmp/p.kiln" --device cpu \
  --min-shapes x:1x3x32x32 --opt-shapes x:2x3x32x32 --max-shapes x:4x3x32x32
expect 2 "dimension 0 is 8, allowed \[1, 4\]" -- "$kiln" run "$tmp/p.kiln" --shapes x:8x3x32x32
expect 2 "no input named 'nope'" -- "$kiln" build "$model" -o "$tmp/p.kiln" --device cpu \
  --min-shapes nope:1 --opt-shapes nope:1 --max-shapes nope:1
# The timing cache is for CUDA engines: a CPU build says it does not use it, and writes none.
expect 0 "timing-cache .*not used" -- "$kiln" build "$model" -o "$tmp/tc.kiln" --device cpu \
  --timing-cache "$tmp/timing.json"
if [ -e "$tmp/timing.json" ]; then
  echo "FAIL: a CPU build wrote a timing cache"; failures=$((failures + 1))
fi
expect 0 "tactic" -- "$kiln" inspect "$tmp/tc.kiln"
head -c 300 "$tmp/ex.kiln" > "$tmp/trunc.kiln"
expect 2 "trunc.kiln" -- "$kiln" run "$tmp/trunc.kiln"
expect 2 "truncated engine file" -- "$kiln" inspect "$tmp/trunc.kiln"

# Conformance: a folder without cases is bad input; a passing case exits 0.
mkdir -p "$tmp/nocases"
expect 2 "no test case" -- "$kiln" conformance "$tmp/nocases"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
