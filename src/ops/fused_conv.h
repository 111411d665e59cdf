// kiln.FusedConv: y = act(conv(X, W) + B + Z), the op the conv fusion pass
// (src/passes/fuse_conv_activation.cc) makes. Inputs X, W, optional B ([M]), optional Z (the
// residual, shaped as the output); Conv's attributes plus `activation` and `channels_last`
// (src/ops/layout.h).
#pragma once

#include <string_view>

namespace kiln::ops {

inline constexpr const char* kFusedConvOp = "FusedConv";

enum class ConvActivation { kNone, kRelu };

// FusedConv's `activation` attribute: "" (none) or "Relu". False for any other name.
inline bool parse_conv_activation(std::string_view name, ConvActivation* out) {
  if (name.empty()) {
    *out = ConvActivation::kNone;
    return true;
  }
  if (name == "Relu") {
    *out = ConvActivation::kRelu;
    return true;
  }
  return false;
}

}  // namespace kiln::ops
