#!/usr/bin/env bash
# Builds Kiln and runs its tests: unit, ops and conformance labels (cuda-labelled tests report
# themselves skipped on machines without a GPU). Then, unless KILN_SKIP_ASAN=1, builds the
# cpu-asan preset (AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer at exit) and runs
# the CPU tests again under it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset cpu-release
cmake --build build/cpu-release
ctest --test-dir build/cpu-release --output-on-failure -j "$(nproc)" "$@"

if [[ "${KILN_SKIP_ASAN:-0}" != 1 ]]; then
  # Sanitized run: every unit and ops test and the CPU conformance suites (ONNX 1.23.1 node and
  # Debian's 1.12 suites; about 35 s of the release run, some minutes under ASan). Left out: the
  # python reader-agreement checks (they run no Kiln code that the suites do not already run);
  # cuda-labelled tests skip without a GPU anyway. Failed host allocations must come back as null
  # (Kiln reports them as errors; a test checks it).
  export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  cmake --preset cpu-asan
  # Only what these tests run (not the cuda-labelled tests, which skip here, nor reader_dump).
  cmake --build build/cpu-asan --target kiln kiln_unit_tests kiln_ops_tests kiln_passes_tests \
    kiln_backend_tests
  ctest --test-dir build/cpu-asan --output-on-failure -j "$(nproc)" -L 'unit|ops'
  ctest --test-dir build/cpu-asan --output-on-failure -j "$(nproc)" -R '^conformance_cpu_'
fi
