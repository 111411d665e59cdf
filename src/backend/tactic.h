// Tactics: which algorithm a tunable CUDA kernel runs, as one 64-bit value stored per engine step.
//
// A tactic names the algorithm itself, not a position in a heuristic's list, so it means the same
// thing at every input shape: bits 56..62 hold the kind, the lower bits the algorithm's fields.
// -1 (and any value a kernel does not recognise) is the kernel's default: the first usable result
// of the library's heuristic at the run shape. A tactic that does not apply at a run shape (the
// library rejects it there) falls back to that default too. No CUDA types: the CPU build decodes
// tactics for `kiln inspect`, and the layout is pinned by tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::backend {

enum class TacticKind : int {
  kDefault = 0,            // -1, or a value of no known kind
  kCudnnForward = 1,       // cudnnConvolutionForward: cudnnConvolutionFwdAlgo_t + math type
  kCudnnBackwardData = 2,  // cudnnConvolutionBackwardData: cudnnConvolutionBwdDataAlgo_t + math
  kCublasLt = 3,           // a cublasLtMatmulAlgo_t configuration
  kCudnnGraph = 4,         // a cuDNN graph-API engine configuration (convolution forward)
};

// A cuDNN convolution algorithm (the library's enum values) and math type
// (cudnnMathType_t: 0 default, 1 tensor op, 2 tensor op allowing conversion, 3 FMA).
struct CudnnTactic {
  int algo = 0;
  int math = 0;
};

// The configuration fields of a cublasLtMatmulAlgo_t (cublasLtMatmulAlgoConfigAttributes_t):
// cublasLtMatmulAlgoInit(algo_id) followed by these attributes rebuilds the algorithm.
struct CublasLtTactic {
  int algo_id = 0;
  int tile = 0;         // cublasLtMatmulTile_t
  int stages = 0;       // cublasLtMatmulStages_t
  int splitk = 1;       // number of K splits (1: none)
  int reduction = 0;    // cublasLtReductionScheme_t
  int swizzle = 0;      // CTA swizzling, 0 or 1
  int custom = 0;       // algorithm-specific custom option
  int inner_shape = 0;  // cublasLtMatmulInnerShape_t
  int cluster = 0;      // cublasLtClusterShape_t
  bool operator==(const CublasLtTactic& o) const;
};

// One knob choice of a cuDNN engine configuration: cudnnBackendKnobType_t and its value.
struct CudnnGraphKnob {
  int type = 0;
  int64_t value = 0;
  bool operator==(const CudnnGraphKnob& o) const { return type == o.type && value == o.value; }
};

// A cuDNN graph-API engine configuration: the engine (CUDNN_ATTR_ENGINE_GLOBAL_INDEX, stable
// for a cuDNN version), whether the convolution's epilogue (bias, residual, activation) runs in
// the cuDNN graph or in a kernel of ours after it, and the knob choices. Up to 3 knobs of types
// 0..62 with values 0..255 are stored in the tactic (`knobs`); other choices are named by a
// 42-bit hash of them (`hashed`, `knob_hash`), which the kernel matches against the heuristic's
// configurations at the run shape.
struct CudnnGraphTactic {
  int engine = 0;
  bool fused = false;
  bool hashed = false;
  std::vector<CudnnGraphKnob> knobs;  // sorted by type (when !hashed)
  uint64_t knob_hash = 0;             // when hashed
};

TacticKind tactic_kind(int64_t tactic);

// -1 when a field does not fit its bits (the candidate is then not offered).
int64_t encode_cudnn_tactic(TacticKind kind, const CudnnTactic& t);
// False unless `tactic` is of `kind`.
bool decode_cudnn_tactic(int64_t tactic, TacticKind kind, CudnnTactic* out);
int64_t encode_cublaslt_tactic(const CublasLtTactic& t);
bool decode_cublaslt_tactic(int64_t tactic, CublasLtTactic* out);
// The 42-bit hash that names `knobs` (in any order) in a hashed cuDNN graph tactic.
uint64_t cudnn_graph_knob_hash(std::vector<CudnnGraphKnob> knobs);
// -1 when the engine index is outside 0..4095. Knobs that do not fit are hashed.
int64_t encode_cudnn_graph_tactic(int engine, bool fused, std::vector<CudnnGraphKnob> knobs);
bool decode_cudnn_graph_tactic(int64_t tactic, CudnnGraphTactic* out);

// Human-readable: "default", "cudnn fwd IMPLICIT_PRECOMP_GEMM tensor-op",
// "cublasLt algo 23 tile 128x128 stages 64x3 splitK 1 ...",
// "cudnn graph engine 12 +epilogue knobs TILEK=2,STAGES=3".
std::string describe_tactic(int64_t tactic);

}  // namespace kiln::backend
