// Sliding-window geometry shared by the nn family's inference and CPU kernels: Conv, pooling,
// ConvTranspose. Reads and checks kernel_shape / strides / dilations / pads / auto_pad /
// ceil_mode, and computes output sizes and the pads auto_pad implies.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

class InferContext;

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

struct Window {
  int n = 0;                     // number of spatial dims
  std::vector<int64_t> kernel;   // n
  std::vector<int64_t> strides;  // n
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;            // 2n: begins then ends
  std::vector<int64_t> output_padding;  // ConvTranspose only
  AutoPad auto_pad = AutoPad::kNotSet;
  bool ceil_mode = false;

  int64_t extent(int i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

struct WindowOptions {
  // Kernel sizes taken from a weight's shape; when empty, kernel_shape is required.
  // Entries of -1 are unknown (inference with a symbolic weight).
  std::vector<int64_t> kernel_from_weight;
  bool allow_ceil_mode = false;
  bool allow_dilations = true;
  bool allow_auto_pad = true;
  bool allow_output_padding = false;
};

// Reads and validates the window attributes of `node` for `nspatial` spatial dims.
StatusOr<Window> read_window(const ir::Node& node, int nspatial, const WindowOptions& opts);

// Output size of spatial dim i (Conv/pool rule) for input size `in`; with auto_pad SAME_* or
// VALID also writes the implied pads into w.pads. Fails when the window does not fit.
StatusOr<int64_t> window_output(const ir::Node& node, Window& w, int i, int64_t in);

// ConvTranspose: output size of spatial dim i for input size `in`; when output_shape (the
// requested size, -1 when absent) is given, resolves the pads it implies.
StatusOr<int64_t> conv_transpose_output(const ir::Node& node, Window& w, int i, int64_t in,
                                        int64_t requested);

// Conv's type/shape inference (X input 0, W input 1; Conv's attributes), shared with the fused
// convolution (kiln.FusedConv).
Status infer_conv(InferContext& ctx);
// MaxPool/AveragePool/LpPool's inference (X input 0), shared with the channels-last pools.
Status infer_pool(InferContext& ctx);

}  // namespace kiln::ops
