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

namespace kiln::backend {

enum class TacticKind : int {
  kDefault = 0,            // -1, or a value of no known kind
  kCudnnForward = 1,       // cudnnConvolutionForward: cudnnConvolutionFwdAlgo_t + math type
  kCudnnBackwardData = 2,  // cudnnConvolutionBackwardData: cudnnConvolutionBwdDataAlgo_t + math
  kCublasLt = 3,           // a cublasLtMatmulAlgo_t configuration
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

TacticKind tactic_kind(int64_t tactic);

// -1 when a field does not fit its bits (the candidate is then not offered).
int64_t encode_cudnn_tactic(TacticKind kind, const CudnnTactic& t);
// False unless `tactic` is of `kind`.
bool decode_cudnn_tactic(int64_t tactic, TacticKind kind, CudnnTactic* out);
int64_t encode_cublaslt_tactic(const CublasLtTactic& t);
bool decode_cublaslt_tactic(int64_t tactic, CublasLtTactic* out);

// Human-readable: "default", "cudnn fwd IMPLICIT_PRECOMP_GEMM tensor-op",
// "cublasLt algo 23 tile 128x128 stages 64x3 splitK 1 ...".
std::string describe_tactic(int64_t tactic);

}  // namespace kiln::backend
