// Tactic encoding (backend/tactic.h): round trips, field limits, kinds kept apart, descriptions.
#include "backend/tactic.h"

#include <gtest/gtest.h>

namespace kiln::backend {
namespace {

TEST(Tactic, DefaultIsMinusOneAndUnknownValues) {
  EXPECT_EQ(tactic_kind(-1), TacticKind::kDefault);
  EXPECT_EQ(tactic_kind(0), TacticKind::kDefault);  // an old heuristic index: no kind
  EXPECT_EQ(tactic_kind(5), TacticKind::kDefault);
  EXPECT_EQ(tactic_kind(int64_t{0x7f} << 56), TacticKind::kDefault);
  EXPECT_EQ(describe_tactic(-1), "default");
  CudnnTactic c;
  EXPECT_FALSE(decode_cudnn_tactic(-1, TacticKind::kCudnnForward, &c));
  EXPECT_FALSE(decode_cudnn_tactic(3, TacticKind::kCudnnForward, &c));
  CublasLtTactic l;
  EXPECT_FALSE(decode_cublaslt_tactic(-1, &l));
  EXPECT_FALSE(decode_cublaslt_tactic(7, &l));
}

TEST(Tactic, CudnnRoundTrip) {
  for (TacticKind k : {TacticKind::kCudnnForward, TacticKind::kCudnnBackwardData}) {
    for (int algo = 0; algo < 8; ++algo) {
      for (int math = 0; math < 4; ++math) {
        const int64_t t = encode_cudnn_tactic(k, {algo, math});
        ASSERT_GE(t, 0);
        EXPECT_EQ(tactic_kind(t), k);
        CudnnTactic d;
        ASSERT_TRUE(decode_cudnn_tactic(t, k, &d));
        EXPECT_EQ(d.algo, algo);
        EXPECT_EQ(d.math, math);
        // A forward tactic is not a backward-data one, nor a cuBLASLt one.
        const TacticKind other = k == TacticKind::kCudnnForward ? TacticKind::kCudnnBackwardData
                                                                : TacticKind::kCudnnForward;
        EXPECT_FALSE(decode_cudnn_tactic(t, other, &d));
        CublasLtTactic l;
        EXPECT_FALSE(decode_cublaslt_tactic(t, &l));
      }
    }
  }
  EXPECT_EQ(encode_cudnn_tactic(TacticKind::kCublasLt, {1, 1}), -1);
  EXPECT_EQ(encode_cudnn_tactic(TacticKind::kCudnnForward, {256, 0}), -1);
  EXPECT_EQ(encode_cudnn_tactic(TacticKind::kCudnnForward, {-1, 0}), -1);
  EXPECT_EQ(encode_cudnn_tactic(TacticKind::kCudnnForward, {0, 16}), -1);
}

TEST(Tactic, CudnnStrayBitsAreNotACudnnTactic) {
  const int64_t t = encode_cudnn_tactic(TacticKind::kCudnnForward, {1, 1});
  CudnnTactic d;
  EXPECT_FALSE(decode_cudnn_tactic(t | (int64_t{1} << 30), TacticKind::kCudnnForward, &d));
}

TEST(Tactic, CublasLtRoundTripAndLimits) {
  CublasLtTactic l;
  l.algo_id = 66;
  l.tile = 634;
  l.stages = 38;
  l.splitk = 255;
  l.reduction = 7;
  l.swizzle = 1;
  l.custom = 127;
  l.inner_shape = 15;
  l.cluster = 51;
  const int64_t t = encode_cublaslt_tactic(l);
  ASSERT_GE(t, 0);
  EXPECT_EQ(tactic_kind(t), TacticKind::kCublasLt);
  CublasLtTactic d;
  ASSERT_TRUE(decode_cublaslt_tactic(t, &d));
  EXPECT_TRUE(d == l);
  // Every field is kept apart from its neighbours.
  CublasLtTactic zero;
  zero.splitk = 0;
  for (int f = 0; f < 9; ++f) {
    CublasLtTactic one = zero;
    int* fields[] = {&one.algo_id, &one.tile,   &one.stages,      &one.splitk, &one.reduction,
                     &one.swizzle, &one.custom, &one.inner_shape, &one.cluster};
    *fields[f] = 1;
    CublasLtTactic back;
    ASSERT_TRUE(decode_cublaslt_tactic(encode_cublaslt_tactic(one), &back));
    EXPECT_TRUE(back == one) << "field " << f;
  }
  for (int f = 0; f < 9; ++f) {  // out of range: not encodable
    CublasLtTactic big = l;
    int* fields[] = {&big.algo_id, &big.tile,   &big.stages,      &big.splitk, &big.reduction,
                     &big.swizzle, &big.custom, &big.inner_shape, &big.cluster};
    *fields[f] = 1 << 12;
    EXPECT_EQ(encode_cublaslt_tactic(big), -1) << "field " << f;
    *fields[f] = -1;
    EXPECT_EQ(encode_cublaslt_tactic(big), -1) << "field " << f;
  }
}

TEST(Tactic, Describe) {
  EXPECT_EQ(describe_tactic(encode_cudnn_tactic(TacticKind::kCudnnForward, {1, 1})),
            "cudnn fwd IMPLICIT_PRECOMP_GEMM tensor-op");
  EXPECT_EQ(describe_tactic(encode_cudnn_tactic(TacticKind::kCudnnBackwardData, {1, 3})),
            "cudnn bwd-data ALGO_1 fma");
  CublasLtTactic l;
  l.algo_id = 23;
  l.tile = 20;
  l.stages = 15;
  EXPECT_EQ(describe_tactic(encode_cublaslt_tactic(l)),
            "cublasLt algo 23 tile 128x128 stages 64x3");
  l.splitk = 4;
  l.reduction = 2;
  l.tile = 600;
  l.stages = 35;
  l.cluster = 3;
  EXPECT_EQ(describe_tactic(encode_cublaslt_tactic(l)),
            "cublasLt algo 23 tile #600 stages #35 splitK 4 red 2 cluster 3");
}

}  // namespace
}  // namespace kiln::backend
