#!/usr/bin/env bash
# Sets Kiln up on a fresh Debian/Ubuntu machine: installs the packages the build needs,
# configures and builds the release build (with the CUDA backend when this machine has a GPU and
# the CUDA toolkit), then runs and benchmarks the bundled example model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
preset=cpu-release
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 &&
   { command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  preset=cuda-release
fi
cmake --preset "$preset"
cmake --build "build/$preset"
echo
echo "== kiln run models/example_if.onnx =="
"build/$preset/kiln" run models/example_if.onnx
echo
echo "== kiln bench models/example_if.onnx =="
"build/$preset/kiln" bench models/example_if.onnx --shapes x:8x3x32x32 --duration 2
