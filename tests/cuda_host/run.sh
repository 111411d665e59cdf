#!/bin/bash
# Host-side checks of the CUDA elementwise/reduction kernels' element functions and index
# planning, for machines without a GPU: each check includes a kernel .cu file, calls its
# __host__ __device__ helpers on the host, and compares with the ONNX node suite's expected
# outputs or with the CPU reference (convert_tensor, a naive reduction, a stable sort).
# Not part of ctest (tests/CMakeLists.txt globs .cc only). Needs build/cuda-release/libkiln.a.
#   usage: tests/cuda_host/run.sh [node-suite-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
suite=${1:-$root/build/cuda-release/onnx-1.23.1/node}
[ -d "$suite" ] || suite=/work/data/node
out=$(mktemp -d)
for f in "$root"/tests/cuda_host/*_check.cu; do
  name=$(basename "$f" .cu)
  /usr/local/cuda/bin/nvcc -std=c++20 -arch=sm_90 --expt-relaxed-constexpr -w -I"$root/src" -I"$root/include" \
    -DKILN_NODE_SUITE="\"$suite\"" "$f" -o "$out/$name" -L"$root/build/cuda-release" -lkiln \
    -L/usr/local/cuda/lib -lnvrtc -lcublasLt -lcudnn -ljpeg -lpng -lz -lcuda \
    -Xlinker -rpath=/usr/local/cuda/lib -Xcompiler -fopenmp
  echo "== $name: $("$out/$name" | tail -1)"
done
rm -rf "$out"
