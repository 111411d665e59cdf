#include "passes/pass_manager.h"

#include "ir/verifier.h"

namespace kiln::passes {

Status PassManager::run(ir::Graph& graph, int max_rounds) const {
  for (int round = 0; round < max_rounds; ++round) {
    bool changed = false;
    for (const Pass& p : passes_) {
      StatusOr<bool> r = p.run(graph);
      if (!r.ok()) return r.take_status().with_context(std::string("pass ") + p.name);
      changed |= *r;
      if (verify_) {
        Status st = ir::verify_graph(graph);
        if (!st.ok()) return st.with_context(std::string("graph invalid after pass ") + p.name);
      }
    }
    if (!changed) break;
  }
  return Status::Ok();
}

PassManager PassManager::default_pipeline() {
  PassManager pm;
  pm.add({"fold_constants", fold_constants});
  pm.add({"remove_identities", remove_identities});
  pm.add({"eliminate_dead_nodes", eliminate_dead_nodes});
  return pm;
}

PassManager PassManager::fusion_pipeline() {
  PassManager pm;
  pm.add({"fold_batch_norm", fold_batch_norm});
  pm.add({"fold_patch_conv", fold_patch_conv});  // before the MatMul epilogues are fused
  pm.add({"fuse_layer_norm", fuse_layer_norm});
  pm.add({"fuse_skip_layer_norm", fuse_skip_layer_norm});
  pm.add({"fuse_gelu", fuse_gelu});
  pm.add({"fuse_attention", fuse_attention});
  pm.add({"fold_attention_heads", fold_attention_heads});
  pm.add({"fuse_matmul_epilogue", fuse_matmul_epilogue});
  pm.add({"fold_mha_layout", fold_mha_layout});  // after the projections become FusedMatMul
  pm.add({"fuse_packed_qkv", fuse_packed_qkv});  // after the folds make 3-D Attentions
  pm.add({"fuse_conv_activation", fuse_conv_activation});
  pm.add({"fuse_pointwise", fuse_pointwise});
  pm.add({"eliminate_dead_nodes", eliminate_dead_nodes});
  return pm;
}

}  // namespace kiln::passes
