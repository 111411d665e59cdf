#include "backends/cuda/device.h"

#include <cublasLt.h>
#include <cudnn.h>

#include "backends/cuda/cuda_util.h"

namespace kiln::cuda {

StatusOr<DeviceInfo> query_device() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    return Status(StatusCode::kDeviceMismatch,
                  std::string("no CUDA GPU is usable here (") +
                      (e != cudaSuccess ? cudaGetErrorString(e) : "no devices") + ")");
  }
  DeviceInfo info;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&info.ordinal));
  cudaDeviceProp prop{};
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, info.ordinal));
  info.sm = prop.major * 10 + prop.minor;
  info.name = prop.name;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  KILN_CUDA_RETURN_IF_ERROR(cudaRuntimeGetVersion(&info.cuda_runtime));
  KILN_CUDA_RETURN_IF_ERROR(cudaDriverGetVersion(&info.cuda_driver));
  info.cudnn = static_cast<int>(cudnnGetVersion());
  info.cublaslt = static_cast<int>(cublasLtGetVersion());
  return info;
}

}  // namespace kiln::cuda
