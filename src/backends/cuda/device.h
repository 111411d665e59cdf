// The GPU Kiln runs on, and the library versions it was built and runs with.
#pragma once

#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

struct DeviceInfo {
  int ordinal = 0;
  int sm = 0;            // major*10 + minor, e.g. 90
  std::string name;      // "NVIDIA H100 80GB HBM3"
  int cuda_runtime = 0;  // cudaRuntimeGetVersion, e.g. 13000
  int cuda_driver = 0;   // cudaDriverGetVersion
  int cudnn = 0;         // cudnnGetVersion, e.g. 91400
  int cublaslt = 0;      // cublasLtGetVersion
  int multiprocessors = 0;
  uint64_t total_memory = 0;
};

// Queries the current device; an error when there is no usable GPU (the message says why).
StatusOr<DeviceInfo> query_device();

}  // namespace kiln::cuda
