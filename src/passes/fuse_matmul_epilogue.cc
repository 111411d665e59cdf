// MatMul/Gemm + bias + activation into kiln.FusedMatMul.
#include "passes/pass_manager.h"

namespace kiln::passes {

StatusOr<bool> fuse_matmul_epilogue(ir::Graph&) {
  return false;
}

}  // namespace kiln::passes
