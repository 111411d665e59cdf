#!/usr/bin/env bash
# Builds Kiln and runs its tests: unit, ops and conformance labels (cuda-labelled tests report
# themselves skipped on machines without a GPU). Then, unless KILN_SKIP_ASAN=1, builds the
# cpu-asan preset (AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer at exit) and runs
# the whole suite again under it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset cpu-release
cmake --build build/cpu-release
ctest --test-dir build/cpu-release --output-on-failure -j "$(nproc)" "$@"

if [[ "${KILN_SKIP_ASAN:-0}" != 1 ]]; then
  # The whole CPU suite under ASan/UBSan/LSan: unit, passes, backend, ops, CLI and the
  # conformance suites (checked clean 2026-12-03). Failed host allocations must come back as
  # null (Kiln reports them as errors; a test checks it).
  export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  cmake --preset cpu-asan
  cmake --build build/cpu-asan
  ctest --test-dir build/cpu-asan --output-on-failure -j "$(nproc)" "$@"
fi
