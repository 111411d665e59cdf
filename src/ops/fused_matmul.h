// kiln.FusedMatMul: Y = act(A x op(B) + bias), made by the fuse_matmul_epilogue pass.
//
// Inputs: A [..., M, K] (rank >= 1; its leading dims are flattened into the GEMM's rows),
// B [K, N] (or [N, K] with trans_b = 1), optional bias [N]. All of one float dtype (float32,
// float16, bfloat16). Attributes: `activation` ("" none, "Relu", "Gelu" (erf), "GeluTanh"),
// `trans_b` (0/1). Output: A's shape with the last dim replaced by N. fp16/bf16 compute in float
// and round once, at the end.
#pragma once

#include <optional>
#include <string_view>

namespace kiln::ops {

inline constexpr const char* kFusedMatMul = "FusedMatMul";

enum class MatMulActivation { kNone, kRelu, kGelu, kGeluTanh };

// The activation named by the `activation` attribute; nullopt for an unknown name.
inline std::optional<MatMulActivation> parse_matmul_activation(std::string_view s) {
  if (s.empty()) return MatMulActivation::kNone;
  if (s == "Relu") return MatMulActivation::kRelu;
  if (s == "Gelu") return MatMulActivation::kGelu;
  if (s == "GeluTanh") return MatMulActivation::kGeluTanh;
  return std::nullopt;
}

inline const char* matmul_activation_name(MatMulActivation a) {
  switch (a) {
    case MatMulActivation::kNone:
      return "";
    case MatMulActivation::kRelu:
      return "Relu";
    case MatMulActivation::kGelu:
      return "Gelu";
    case MatMulActivation::kGeluTanh:
      return "GeluTanh";
  }
  return "";
}

}  // namespace kiln::ops
