#!/usr/bin/env bash
# Runs one libFuzzer target for a number of seconds:
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
# TARGET: fuzz_onnx | fuzz_engine | fuzz_npy | fuzz_pb (the "fuzz_" prefix may be left out).
# Builds the `fuzz` preset (clang, ASan+UBSan) when needed, seeds build/fuzz-corpus/TARGET when it
# is empty (scripts/fuzz_seeds.py), runs, and prints executions, coverage and crashes at the end.
# Crashing inputs land in build/fuzz-artifacts/TARGET/; keep each one fixed as a regression case
# under tests/data/fuzz_regressions/TARGET/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [[ $# -lt 2 ]]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
TARGET="$1"
SECONDS_TO_RUN="$2"
shift 2
[[ "$TARGET" == fuzz_* ]] || TARGET="fuzz_$TARGET"
case "$TARGET" in
  fuzz_onnx) MAX_LEN=65536 ;;
  fuzz_pb) MAX_LEN=65536 ;;
  fuzz_npy) MAX_LEN=16384 ;;
  fuzz_engine) MAX_LEN=262144 ;;
  *)
    echo "unknown target $TARGET (fuzz_onnx, fuzz_engine, fuzz_npy, fuzz_pb)" >&2
    exit 2
    ;;
esac
JOBS="${KILN_FUZZ_BUILD_JOBS:-2}"
if [[ ! -f build/fuzz/build.ninja ]]; then
  CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}" cmake --preset fuzz >/dev/null
fi
cmake --build build/fuzz -j"$JOBS" --target "$TARGET"

CORPUS="build/fuzz-corpus/$TARGET"
ARTIFACTS="build/fuzz-artifacts/$TARGET"
mkdir -p "$CORPUS" "$ARTIFACTS"
if [[ -z "$(ls -A "$CORPUS")" ]]; then
  /usr/bin/python3 scripts/fuzz_seeds.py "$TARGET" "$CORPUS" --max-len "$MAX_LEN"
fi
LOG="build/fuzz-artifacts/$TARGET.log"
before=$(ls "$ARTIFACTS" | wc -l)
set +e
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
OMP_NUM_THREADS=1 \
  "build/fuzz/fuzz/$TARGET" "$CORPUS" \
  -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" "$@" 2>&1 | tee "$LOG" |
  grep -E --line-buffered "^#[0-9]+.*(pulse|REDUCE|NEW)" | awk 'NR % 50 == 1'
rc=${PIPESTATUS[0]}
set -e
after=$(ls "$ARTIFACTS" | wc -l)
echo "---- $TARGET: ${SECONDS_TO_RUN}s, exit $rc"
grep -E "^#[0-9]+" "$LOG" | tail -1 || true
grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$LOG" || true
grep -E "ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error:|SUMMARY:" "$LOG" | head -5 || true
echo "crash/timeout/oom files: $((after - before)) new, $after in $ARTIFACTS"
echo "corpus: $(ls "$CORPUS" | wc -l) files in $CORPUS; full log: $LOG"
exit "$rc"
