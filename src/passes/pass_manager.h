// Graph passes: one per file, each a function that rewrites a graph and says whether it changed
// anything. The PassManager runs a list of them to a fixed point, verifying after each when asked.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

using PassFn = StatusOr<bool> (*)(ir::Graph& graph);

struct Pass {
  const char* name;
  PassFn run;
};

// The passes (src/passes/<name>.cc).
StatusOr<bool> eliminate_dead_nodes(ir::Graph& graph);
StatusOr<bool> remove_identities(ir::Graph& graph);
StatusOr<bool> fold_constants(ir::Graph& graph);
// Fusions (src/passes/fuse_*.cc, fold_batch_norm.cc): the fusion pipeline, before precision.
StatusOr<bool> fold_batch_norm(ir::Graph& graph);       // BatchNormalization into Conv/Gemm
StatusOr<bool> fold_patch_conv(ir::Graph& graph);       // patch-embedding Conv as a MatMul
StatusOr<bool> fuse_conv_activation(ir::Graph& graph);  // Conv + bias + residual + act
StatusOr<bool> fuse_matmul_epilogue(ir::Graph& graph);  // MatMul/Gemm + bias + act
StatusOr<bool> fuse_layer_norm(ir::Graph& graph);       // primitive LayerNorm/RMSNorm
StatusOr<bool> fuse_skip_layer_norm(ir::Graph& graph);  // residual Add + LayerNorm
StatusOr<bool> fuse_gelu(ir::Graph& graph);             // primitive GELU (erf, tanh forms)
StatusOr<bool> fuse_attention(ir::Graph& graph);        // MatMul-scale-mask-Softmax-MatMul
StatusOr<bool> fold_attention_heads(ir::Graph& graph);  // head split/merge into 3-D Attention
StatusOr<bool> fold_mha_layout(ir::Graph& graph);       // [S, B, E] MHA into 3-D Attention
StatusOr<bool> fuse_packed_qkv(ir::Graph& graph);       // Q/K/V of one packed tensor
StatusOr<bool> fuse_pointwise(ir::Graph& graph);        // elementwise chains (kiln.Pointwise)
// --fp16 / --bf16: listed compute ops run in `target` (float16 or bfloat16), weights converted.
StatusOr<bool> lower_precision(ir::Graph& graph, DType target);
// CUDA engines, after lower_precision: 2-D convolutions in channels-last (NHWC) layout,
// transposes only where the NHWC region begins and ends (src/passes/layout_nhwc.cc).
struct LayoutOptions {
  bool float32 = false;  // also float32 convolutions (TF32 tensor cores); float16/bfloat16 always
  int64_t pad_channels = 8;  // float16/bfloat16 ungrouped convs: C padded to a multiple (0: off)
};
StatusOr<bool> layout_nhwc_with(ir::Graph& graph, const LayoutOptions& opts);
StatusOr<bool> layout_nhwc(ir::Graph& graph);  // default options
// After layout_nhwc: Cast → Transpose → Pad at a region's edge as one kiln.CastTransposePad.
StatusOr<bool> fuse_layout_copy(ir::Graph& graph);

class PassManager {
 public:
  void add(Pass pass) { passes_.push_back(pass); }
  // Verify the graph after every pass (tests do; builds may skip it).
  void set_verify(bool verify) { verify_ = verify; }
  // Runs the passes in order, repeating the list while any changes the graph (at most
  // max_rounds times). Errors name the pass.
  Status run(ir::Graph& graph, int max_rounds = 4) const;
  // The default pipeline: constant folding, identity removal, dead-node elimination.
  static PassManager default_pipeline();
  // The fusions, run after the default pipeline when the optimization level is above 0. Each
  // pattern pass runs before the fusions that would consume its pieces.
  static PassManager fusion_pipeline();

 private:
  std::vector<Pass> passes_;
  bool verify_ = false;
};

}  // namespace kiln::passes
