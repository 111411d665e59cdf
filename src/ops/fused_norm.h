// kiln.SkipLayerNorm: a residual Add and the LayerNormalization after it as one op.
//   inputs:  X, Skip (same shape and float dtype), Scale [L], B [L] (optional)
//   outputs: Y = LayerNorm(X + Skip) over the last axis; Sum = X + Skip (optional, for models
//            that read the residual stream again, as pre-norm transformers do)
//   attribute: epsilon (float, default 1e-5)
// X + Skip is rounded to the dtype as Add rounds it, then normalized as LayerNormalization does
// (statistics in higher precision).
#pragma once

namespace kiln::ops {

inline constexpr const char* kSkipLayerNorm = "SkipLayerNorm";

}  // namespace kiln::ops
