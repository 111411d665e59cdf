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

TEST(Tactic, CudnnGraphPackedRoundTrip) {
  for (bool fused : {false, true}) {
    const int64_t t =
        encode_cudnn_graph_tactic(4095, fused, {{14, 255}, {2, 0}, {62, 7}});  // unsorted in
    ASSERT_GE(t, 0);
    EXPECT_EQ(tactic_kind(t), TacticKind::kCudnnGraph);
    CudnnGraphTactic d;
    ASSERT_TRUE(decode_cudnn_graph_tactic(t, &d));
    EXPECT_EQ(d.engine, 4095);
    EXPECT_EQ(d.fused, fused);
    EXPECT_FALSE(d.hashed);
    const std::vector<CudnnGraphKnob> sorted = {{2, 0}, {14, 255}, {62, 7}};
    EXPECT_EQ(d.knobs, sorted);
    // Not a tactic of another kind.
    CudnnTactic c;
    EXPECT_FALSE(decode_cudnn_tactic(t, TacticKind::kCudnnForward, &c));
    CublasLtTactic l;
    EXPECT_FALSE(decode_cublaslt_tactic(t, &l));
    EXPECT_FALSE(
        decode_cudnn_graph_tactic(encode_cudnn_tactic(TacticKind::kCudnnForward, {1, 1}), &d));
  }
  // No knobs, and each field apart from its neighbours.
  CudnnGraphTactic d;
  ASSERT_TRUE(decode_cudnn_graph_tactic(encode_cudnn_graph_tactic(0, false, {}), &d));
  EXPECT_EQ(d.engine, 0);
  EXPECT_FALSE(d.fused);
  EXPECT_FALSE(d.hashed);
  EXPECT_TRUE(d.knobs.empty());
  ASSERT_TRUE(decode_cudnn_graph_tactic(encode_cudnn_graph_tactic(1, false, {{0, 1}}), &d));
  EXPECT_EQ(d.engine, 1);
  ASSERT_EQ(d.knobs.size(), 1u);
  EXPECT_EQ(d.knobs[0], (CudnnGraphKnob{0, 1}));
  EXPECT_EQ(encode_cudnn_graph_tactic(4096, false, {}), -1);
  EXPECT_EQ(encode_cudnn_graph_tactic(-1, false, {}), -1);
}

TEST(Tactic, CudnnGraphKnobsThatDoNotFitAreHashed) {
  const std::vector<std::vector<CudnnGraphKnob>> wide = {
      {{1, 1}, {2, 2}, {3, 3}, {4, 4}},  // 4 knobs
      {{2, 256}},                        // value beyond 8 bits
      {{63, 1}},                         // type beyond the slot
      {{5, -1}}};                        // negative value
  for (const auto& knobs : wide) {
    const int64_t t = encode_cudnn_graph_tactic(17, true, knobs);
    ASSERT_GE(t, 0);
    CudnnGraphTactic d;
    ASSERT_TRUE(decode_cudnn_graph_tactic(t, &d));
    EXPECT_EQ(d.engine, 17);
    EXPECT_TRUE(d.fused);
    EXPECT_TRUE(d.hashed);
    EXPECT_TRUE(d.knobs.empty());
    EXPECT_EQ(d.knob_hash, cudnn_graph_knob_hash(knobs));
    EXPECT_LT(d.knob_hash, uint64_t{1} << 42);
  }
  // The hash ignores order and tells choices apart.
  EXPECT_EQ(cudnn_graph_knob_hash({{1, 1}, {2, 2}, {3, 3}, {4, 4}}),
            cudnn_graph_knob_hash({{4, 4}, {3, 3}, {2, 2}, {1, 1}}));
  EXPECT_NE(cudnn_graph_knob_hash({{1, 1}, {2, 2}, {3, 3}, {4, 4}}),
            cudnn_graph_knob_hash({{1, 1}, {2, 2}, {3, 3}, {4, 5}}));
}

TEST(Tactic, CudnnGraphMalformedSlotsAreNotATactic) {
  const int64_t t = encode_cudnn_graph_tactic(3, false, {{2, 1}});
  CudnnGraphTactic d;
  ASSERT_TRUE(decode_cudnn_graph_tactic(t, &d));
  // A value in an empty slot, or a knob after an empty slot.
  EXPECT_FALSE(decode_cudnn_graph_tactic(t | (int64_t{1} << (14 + 14 + 6)), &d));
  EXPECT_FALSE(decode_cudnn_graph_tactic(t | (int64_t{1} << (14 + 28)), &d));
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
  EXPECT_EQ(describe_tactic(encode_cudnn_graph_tactic(12, true, {{14, 3}, {13, 2}})),
            "cudnn graph engine 12 +epilogue knobs TILEK=2,STAGES=3");
  EXPECT_EQ(describe_tactic(encode_cudnn_graph_tactic(5, false, {})), "cudnn graph engine 5");
  EXPECT_EQ(describe_tactic(encode_cudnn_graph_tactic(7, false, {{50, 1}})),
            "cudnn graph engine 7 knobs k50=1");
  const std::string hashed =
      describe_tactic(encode_cudnn_graph_tactic(7, false, {{1, 1}, {2, 2}, {3, 3}, {4, 4}}));
  EXPECT_EQ(hashed.rfind("cudnn graph engine 7 knobs #", 0), 0u) << hashed;
}

}  // namespace
}  // namespace kiln::backend
