// libFuzzer target: bytes → ONNX model reader → importer → type inference.
#include <cstddef>
#include <cstdint>
#include <span>

#include "onnx/importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::onnx::LoadOptions options;
  options.infer_types = true;
  // Small enough that a hostile size is refused quickly, large enough for the seed models.
  options.max_tensor_bytes = uint64_t{64} << 20;
  auto model = kiln::onnx::load_model_from_bytes(std::span<const uint8_t>(data, size), "fuzz.onnx",
                                                 /*base_dir=*/{}, options);
  (void)model;
  return 0;
}
