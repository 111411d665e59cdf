// libFuzzer target: bytes → .pb value reader (TensorProto, SequenceProto, OptionalProto, MapProto
// as in the ONNX test layout). The first byte picks the expected message; the rest is the file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "onnx/importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using kiln::ir::TypeInfo;
  TypeInfo expected;
  switch (data[0] % 5) {
    case 0:
      break;
    case 1:
      expected = TypeInfo::tensor(kiln::DType::kFloat32);
      break;
    case 2:
      expected = TypeInfo::sequence_of(TypeInfo::tensor(kiln::DType::kFloat32));
      break;
    case 3:
      expected = TypeInfo::optional_of(TypeInfo::tensor(kiln::DType::kFloat32));
      break;
    default:
      expected.kind = TypeInfo::Kind::kMap;
      expected.dtype = kiln::DType::kInt64;
      expected.elem = std::make_shared<TypeInfo>(TypeInfo::tensor(kiln::DType::kFloat32));
      break;
  }
  auto v = kiln::onnx::read_value_bytes(std::span<const uint8_t>(data + 1, size - 1), "fuzz.pb",
                                        /*base_dir=*/{}, nullptr, expected);
  (void)v;
  return 0;
}
