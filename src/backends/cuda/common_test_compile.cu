// Compiles common.cuh on its own so a broken shared header fails the build early.
#include "backends/cuda/common.cuh"
