// kiln.CastTransposePad: the layout conversion at the edge of a channels-last region as one copy.
//   input:  X (float32, float16 or bfloat16)
//   output: Y = Pad(Transpose(Cast(X, to), perm)) where the Pad appends `pad_last` zeros at the
//           end of the last axis
//   attributes: perm (ints, a permutation of X's axes), to (int, an ONNX dtype: float32,
//           float16 or bfloat16; absent: X's dtype), pad_last (int >= 0, default 0)
// The Cast rounds as Cast does (round to nearest even).
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

inline constexpr const char* kCastTransposePad = "CastTransposePad";

struct CastTransposePad {
  std::vector<int64_t> perm;
  DType to = DType::kUndefined;  // kUndefined: X's dtype
  int64_t pad_last = 0;
};

// The node's attributes, checked against X's rank (`rank` < 0: not known yet).
StatusOr<CastTransposePad> parse_cast_transpose_pad(const ir::Node& node, int rank);

}  // namespace kiln::ops
