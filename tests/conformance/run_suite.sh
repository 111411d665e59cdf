#!/usr/bin/env bash
# run_suite.sh KILN SUITE DIR EXPECTATIONS BACKEND: runs one conformance suite; exit 77 (skipped)
# when its data, or for BACKEND cuda / cuda-strict a GPU, is not on this machine.
set -u
kiln=$1 suite=$2 dir=$3 expectations=$4 backend=$5
if [ ! -d "$dir" ]; then
  echo "SKIPPED: suite $suite not found at $dir"
  exit 77
fi
flags=(--backend "$backend")
if [ "$backend" = cuda ] || [ "$backend" = cuda-strict ]; then
  if ! "$kiln" --version | grep -q cuda; then
    echo "SKIPPED: this kiln was built without CUDA"
    exit 77
  fi
  if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "SKIPPED: no GPU on this machine"
    exit 77
  fi
  flags=(--backend cuda)
  [ "$backend" = cuda-strict ] && flags+=(--strict)
fi
exec "$kiln" conformance "${flags[@]}" --suite "$suite" --expectations "$expectations" \
  -j "$(nproc)" "$dir"
