// Tests of the tensor family (shape and data-movement ops): CPU kernels through the op harness,
// and symbolic shape inference through InferContext directly.
#include <gtest/gtest.h>

#include <cmath>

// OpRun cases are written as aggregates that leave trailing members at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "ops/op_registry.h"
#include "support/op_harness.h"

namespace kiln {
namespace {

using ::kiln::testing::attr_float;
using ::kiln::testing::attr_int;
using ::kiln::testing::attr_ints;
using ::kiln::testing::attr_string;
using ::kiln::testing::attr_tensor;
using ::kiln::testing::OpRun;
using ::kiln::testing::run_op;
using ::kiln::testing::tensor_of;
using ::kiln::testing::tensors_near;

// Exact comparison (data movement must be bit-exact).
constexpr double kExact = 0.0;
// float32 arithmetic (Resize, GridSample, AffineGrid) against hand-computed values.
constexpr double kFloat32Tol = 1e-5;

Tensor f32(std::vector<int64_t> shape, std::vector<float> v) {
  return Tensor::from_vector<float>(std::move(shape), v);
}
Tensor i64(std::vector<int64_t> shape, std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>(std::move(shape), v);
}
Tensor iota_f32(std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = static_cast<float>(i);
  return t;
}
// A packed int4 tensor holding `v` (low nibble first).
Tensor int4_of(std::vector<int64_t> shape, const std::vector<int>& v) {
  Tensor t = Tensor::zeros(DType::kInt4, std::move(shape));
  auto* p = static_cast<uint8_t*>(t.mutable_raw());
  for (size_t i = 0; i < v.size(); ++i) {
    const uint8_t nib = static_cast<uint8_t>(v[i] & 0xF);
    p[i / 2] = static_cast<uint8_t>(p[i / 2] | (i % 2 ? nib << 4 : nib));
  }
  return t;
}
std::vector<int64_t> ints_of(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get_int64(i));
  return v;
}

Tensor run1(const OpRun& r) {
  auto out = run_op(r);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok() || out->empty() || !(*out)[0].is_tensor()) return Tensor();
  return (*out)[0].tensor;
}

// Runs `r`, expects failure with `code`, and returns the message.
std::string run_error(const OpRun& r, StatusCode code) {
  auto out = run_op(r);
  EXPECT_FALSE(out.ok());
  if (out.ok()) return {};
  EXPECT_EQ(out.status().code(), code) << out.status().to_string();
  return out.status().message();
}

// ---- Reshape family ----

TEST(TensorOps, ReshapeInfersMinusOneAndZero) {
  OpRun r{"Reshape", {Datum::of(iota_f32({2, 3, 4})), Datum::of(i64({3}, {0, -1, 2}))}};
  Tensor y = run1(r);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2, 6, 2}));
  EXPECT_TRUE(tensors_near(iota_f32({2, 6, 2}), y, kExact, kExact));
  r.constant_inputs = {1};  // inference sees the shape; the harness checks it against the kernel
  EXPECT_EQ(run1(r).shape(), (std::vector<int64_t>{2, 6, 2}));
}

TEST(TensorOps, ReshapeAllowZeroKeepsZero) {
  OpRun r{"Reshape",
          {Datum::of(Tensor::zeros(DType::kFloat32, {0, 3})), Datum::of(i64({2}, {3, 0}))}};
  r.attrs = {attr_int("allowzero", 1)};
  EXPECT_EQ(run1(r).shape(), (std::vector<int64_t>{3, 0}));
  r.attrs = {};
  // Without allowzero the 0 copies dim 1 (3): 3x3 != 0 elements.
  run_error(r, StatusCode::kInvalidModel);
}

TEST(TensorOps, ReshapeToHugeShapeIsRefused) {
  OpRun r{"Reshape", {Datum::of(iota_f32({4})), Datum::of(i64({2}, {int64_t{1} << 40, 4}))}};
  const std::string msg = run_error(r, StatusCode::kInvalidModel);
  EXPECT_NE(msg.find("[Reshape 'node' #0]"), std::string::npos) << msg;
}

TEST(TensorOps, ReshapeStringsAndOpset1Attribute) {
  OpRun r{"Reshape", {Datum::of(Tensor::from_strings({2, 2}, {"a", "b", "c", "d"}))}};
  r.opset = 1;
  r.attrs = {attr_ints("shape", {4})};
  Tensor y = run1(r);
  ASSERT_EQ(y.dtype(), DType::kString);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{4}));
  EXPECT_EQ(y.strings()[3], "d");
}

TEST(TensorOps, FlattenSqueezeUnsqueeze) {
  OpRun f{"Flatten", {Datum::of(iota_f32({2, 3, 4}))}, {attr_int("axis", -1)}};
  EXPECT_EQ(run1(f).shape(), (std::vector<int64_t>{6, 4}));
  OpRun s{"Squeeze", {Datum::of(iota_f32({1, 3, 1})), Datum::of(i64({1}, {-1}))}};
  EXPECT_EQ(run1(s).shape(), (std::vector<int64_t>{1, 3}));
  OpRun s11{"Squeeze", {Datum::of(iota_f32({1, 3, 1}))}};
  s11.opset = 11;
  EXPECT_EQ(run1(s11).shape(), (std::vector<int64_t>{3}));
  OpRun u{"Unsqueeze", {Datum::of(iota_f32({3})), Datum::of(i64({2}, {0, -1}))}};
  u.constant_inputs = {1};
  EXPECT_EQ(run1(u).shape(), (std::vector<int64_t>{1, 3, 1}));
  OpRun u11{"Unsqueeze", {Datum::of(iota_f32({3}))}, {attr_ints("axes", {1})}};
  u11.opset = 11;
  EXPECT_EQ(run1(u11).shape(), (std::vector<int64_t>{3, 1}));
  OpRun bad{"Squeeze", {Datum::of(iota_f32({2, 3})), Datum::of(i64({1}, {0}))}};
  run_error(bad, StatusCode::kInvalidModel);
}

// ---- Transpose / Concat / Split / Slice ----

TEST(TensorOps, TransposeMovesInt4Elements) {
  // [[1,2,3],[-4,5,-6]] → transpose.
  OpRun r{"Transpose", {Datum::of(int4_of({2, 3}, {1, 2, 3, -4, 5, -6}))}};
  Tensor y = run1(r);
  ASSERT_EQ(y.dtype(), DType::kInt4);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(ints_of(y), (std::vector<int64_t>{1, -4, 2, 5, 3, -6}));
}

TEST(TensorOps, TransposeStringsWithPerm) {
  OpRun r{"Transpose",
          {Datum::of(Tensor::from_strings({1, 2, 3}, {"a", "b", "c", "d", "e", "f"}))},
          {attr_ints("perm", {2, 0, 1})}};
  Tensor y = run1(r);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(y.strings(), (std::vector<std::string>{"a", "d", "b", "e", "c", "f"}));
}

TEST(TensorOps, ConcatBoolAndMismatch) {
  OpRun r{
      "Concat",
      {tensor_of<bool>({1, 2}, {true, false}), tensor_of<bool>({2, 2}, {false, true, true, true})},
      {attr_int("axis", 0)}};
  Tensor y = run1(r);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(ints_of(y), (std::vector<int64_t>{1, 0, 0, 1, 1, 1}));
  OpRun bad{
      "Concat", {Datum::of(iota_f32({1, 2})), Datum::of(iota_f32({1, 3}))}, {attr_int("axis", 0)}};
  run_error(bad, StatusCode::kInvalidModel);
}

TEST(TensorOps, SplitUnevenNumOutputsAndSplitInput) {
  OpRun r{"Split", {Datum::of(iota_f32({7}))}, {attr_int("num_outputs", 3)}, 3, 18};
  auto out = run_op(r);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ((*out)[2].tensor.shape(), (std::vector<int64_t>{1}));
  EXPECT_EQ((*out)[2].tensor.get_double(0), 6.0);
  OpRun s{"Split",
          {Datum::of(iota_f32({2, 5})), Datum::of(i64({2}, {1, 4}))},
          {attr_int("axis", 1)},
          2,
          13};
  s.constant_inputs = {1};
  auto o2 = run_op(s);
  ASSERT_TRUE(o2.ok()) << o2.status().to_string();
  EXPECT_TRUE(tensors_near(f32({2, 4}, {1, 2, 3, 4, 6, 7, 8, 9}), (*o2)[1].tensor, kExact, kExact));
  OpRun old{"Split", {Datum::of(iota_f32({4}))}, {attr_ints("split", {3, 1})}, 2, 11};
  auto o3 = run_op(old);
  ASSERT_TRUE(o3.ok()) << o3.status().to_string();
  EXPECT_EQ((*o3)[0].tensor.numel(), 3);
  OpRun bad{"Split", {Datum::of(iota_f32({4})), Datum::of(i64({2}, {3, 3}))}, {}, 2, 13};
  run_error(bad, StatusCode::kInvalidModel);
}

TEST(TensorOps, SliceNegativeStepAndClamping) {
  // x = 0..9; starts=-1 (9), ends=INT64_MIN (clamps to before 0), step -3 → 9, 6, 3, 0.
  OpRun r{"Slice",
          {Datum::of(iota_f32({10})), Datum::of(i64({1}, {-1})), Datum::of(i64({1}, {INT64_MIN})),
           Datum::of(i64({1}, {0})), Datum::of(i64({1}, {-3}))}};
  EXPECT_TRUE(tensors_near(f32({4}, {9, 6, 3, 0}), run1(r), kExact, kExact));
  r.constant_inputs = {1, 2, 3, 4};
  EXPECT_EQ(run1(r).shape(), (std::vector<int64_t>{4}));
  OpRun big{"Slice",
            {Datum::of(iota_f32({3, 4})), Datum::of(i64({2}, {1, -100})),
             Datum::of(i64({2}, {1000, 3}))}};
  EXPECT_TRUE(tensors_near(f32({2, 3}, {4, 5, 6, 8, 9, 10}), run1(big), kExact, kExact));
  OpRun v1{"Slice",
           {Datum::of(iota_f32({3, 4}))},
           {attr_ints("starts", {1}), attr_ints("ends", {2}), attr_ints("axes", {1})}};
  v1.opset = 1;
  EXPECT_TRUE(tensors_near(f32({3, 1}, {1, 5, 9}), run1(v1), kExact, kExact));
  OpRun zero{"Slice",
             {Datum::of(iota_f32({3})), Datum::of(i64({1}, {0})), Datum::of(i64({1}, {3})),
              Datum::of(i64({1}, {0})), Datum::of(i64({1}, {0}))}};
  run_error(zero, StatusCode::kInvalidModel);
}

// ---- Gather / Scatter ----

TEST(TensorOps, GatherNegativeAndOutOfRangeIndices) {
  OpRun r{"Gather", {Datum::of(iota_f32({3, 2})), Datum::of(i64({2}, {-1, 0}))}};
  EXPECT_TRUE(tensors_near(f32({2, 2}, {4, 5, 0, 1}), run1(r), kExact, kExact));
  OpRun bad{"Gather", {Datum::of(iota_f32({3, 2})), Datum::of(i64({2}, {0, 7}))}};
  const std::string msg = run_error(bad, StatusCode::kOutOfRange);
  EXPECT_NE(msg.find("[Gather 'node' #0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("index 7"), std::string::npos) << msg;
}

TEST(TensorOps, GatherElementsAndGatherNDBatchDims) {
  OpRun ge{"GatherElements",
           {Datum::of(iota_f32({2, 2})), Datum::of(i64({2, 2}, {1, 0, 0, 0}))},
           {attr_int("axis", 1)}};
  EXPECT_TRUE(tensors_near(f32({2, 2}, {1, 0, 2, 2}), run1(ge), kExact, kExact));
  // data [2,2,2], indices [2,1] with batch_dims=1 → data[b, idx[b]].
  OpRun nd{"GatherND",
           {Datum::of(iota_f32({2, 2, 2})), Datum::of(i64({2, 1}, {1, 0}))},
           {attr_int("batch_dims", 1)}};
  EXPECT_TRUE(tensors_near(f32({2, 2}, {2, 3, 4, 5}), run1(nd), kExact, kExact));
  OpRun bad{"GatherND", {Datum::of(iota_f32({2, 2})), Datum::of(i64({1, 2}, {0, -3}))}};
  const std::string msg = run_error(bad, StatusCode::kOutOfRange);
  EXPECT_NE(msg.find("index -3"), std::string::npos) << msg;
}

TEST(TensorOps, ScatterNDReductions) {
  const Tensor data = f32({4}, {1, 2, 3, 4});
  const Tensor idx = i64({3, 1}, {0, 2, 0});
  const Tensor upd = f32({3}, {10, 5, 3});
  const std::vector<std::pair<std::string, std::vector<float>>> cases = {{"add", {14, 2, 8, 4}},
                                                                         {"mul", {30, 2, 15, 4}},
                                                                         {"max", {10, 2, 5, 4}},
                                                                         {"min", {1, 2, 3, 4}}};
  for (const auto& [red, want] : cases) {
    OpRun r{"ScatterND",
            {Datum::of(data), Datum::of(idx), Datum::of(upd)},
            {attr_string("reduction", red)}};
    EXPECT_TRUE(tensors_near(f32({4}, want), run1(r), kExact, kExact)) << red;
  }
  OpRun none{"ScatterND", {Datum::of(data), Datum::of(i64({1, 1}, {3})), Datum::of(f32({1}, {9}))}};
  EXPECT_TRUE(tensors_near(f32({4}, {1, 2, 3, 9}), run1(none), kExact, kExact));
  OpRun bad{"ScatterND", {Datum::of(data), Datum::of(i64({1, 1}, {4})), Datum::of(f32({1}, {9}))}};
  const std::string msg = run_error(bad, StatusCode::kOutOfRange);
  EXPECT_NE(msg.find("[ScatterND 'node' #0]"), std::string::npos) << msg;
}

TEST(TensorOps, ScatterElementsAddAndOldScatter) {
  OpRun r{"ScatterElements",
          {tensor_of<int64_t>({1, 3}, {1, 2, 3}), Datum::of(i64({1, 2}, {1, 1})),
           tensor_of<int64_t>({1, 2}, {10, 20})},
          {attr_int("axis", 1), attr_string("reduction", "add")}};
  EXPECT_EQ(ints_of(run1(r)), (std::vector<int64_t>{1, 32, 3}));
  OpRun old{"Scatter",
            {Datum::of(Tensor::from_strings({3}, {"a", "b", "c"})), Datum::of(i64({1}, {-1})),
             Datum::of(Tensor::from_strings({1}, {"z"}))}};
  old.opset = 10;
  EXPECT_EQ(run1(old).strings(), (std::vector<std::string>{"a", "b", "z"}));
  OpRun bad{"ScatterElements",
            {Datum::of(iota_f32({3})), Datum::of(i64({1}, {3})), Datum::of(f32({1}, {1}))}};
  run_error(bad, StatusCode::kOutOfRange);
}

TEST(TensorOps, TensorScatterLinearAndCircular) {
  // cache [2 batch, 3 seq, 1], update [2, 2, 1].
  const Tensor past = f32({2, 3, 1}, {0, 0, 0, 0, 0, 0});
  const Tensor upd = f32({2, 2, 1}, {1, 2, 3, 4});
  OpRun lin{"TensorScatter", {Datum::of(past), Datum::of(upd), Datum::of(i64({2}, {1, 0}))}};
  EXPECT_TRUE(tensors_near(f32({2, 3, 1}, {0, 1, 2, 3, 4, 0}), run1(lin), kExact, kExact));
  OpRun circ{"TensorScatter",
             {Datum::of(past), Datum::of(upd), Datum::of(i64({2}, {2, 0}))},
             {attr_string("mode", "circular")}};
  EXPECT_TRUE(tensors_near(f32({2, 3, 1}, {2, 0, 1, 3, 4, 0}), run1(circ), kExact, kExact));
  OpRun bad{"TensorScatter", {Datum::of(past), Datum::of(upd), Datum::of(i64({2}, {2, 0}))}};
  run_error(bad, StatusCode::kOutOfRange);
}

// ---- Pad / Tile / Expand / CenterCropPad ----

TEST(TensorOps, PadModes) {
  const Tensor x = f32({3}, {1, 2, 3});
  const Tensor pads = i64({2}, {2, 2});
  const std::vector<std::pair<std::string, std::vector<float>>> cases = {
      {"constant", {9, 9, 1, 2, 3, 9, 9}},
      {"reflect", {3, 2, 1, 2, 3, 2, 1}},
      {"edge", {1, 1, 1, 2, 3, 3, 3}},
      {"wrap", {2, 3, 1, 2, 3, 1, 2}}};
  for (const auto& [mode, want] : cases) {
    OpRun r{"Pad",
            {Datum::of(x), Datum::of(pads), Datum::of(f32({}, {9}))},
            {attr_string("mode", mode)}};
    r.constant_inputs = {1};
    EXPECT_TRUE(tensors_near(f32({7}, want), run1(r), kExact, kExact)) << mode;
  }
  // Axes input (opset 18) and negative pads (crop).
  OpRun ax{"Pad",
           {Datum::of(iota_f32({2, 3})), Datum::of(i64({2}, {1, -1})), Datum(),
            Datum::of(i64({1}, {-1}))}};
  EXPECT_TRUE(tensors_near(f32({2, 3}, {0, 0, 1, 0, 3, 4}), run1(ax), kExact, kExact));
  // Attribute form (opset 2).
  OpRun v2{"Pad", {Datum::of(x)}, {attr_ints("pads", {1, 0}), attr_float("value", 5.f)}};
  v2.opset = 2;
  EXPECT_TRUE(tensors_near(f32({4}, {5, 1, 2, 3}), run1(v2), kExact, kExact));
}

TEST(TensorOps, PadAndTileMoveInt4) {
  OpRun p{"Pad",
          {Datum::of(int4_of({3}, {-8, 7, 1})), Datum::of(i64({2}, {1, 1}))},
          {attr_string("mode", "edge")}};
  EXPECT_EQ(ints_of(run1(p)), (std::vector<int64_t>{-8, -8, 7, 1, 1}));
  OpRun t{"Tile", {Datum::of(int4_of({3}, {-1, 2, 3})), Datum::of(i64({1}, {2}))}};
  EXPECT_EQ(ints_of(run1(t)), (std::vector<int64_t>{-1, 2, 3, -1, 2, 3}));
}

TEST(TensorOps, ExpandBroadcastsAndRefusesHugeShapes) {
  OpRun r{"Expand", {Datum::of(f32({3, 1}, {1, 2, 3})), Datum::of(i64({3}, {2, 1, 2}))}};
  r.constant_inputs = {1};
  EXPECT_TRUE(
      tensors_near(f32({2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}), run1(r), kExact, kExact));
  OpRun huge{"Expand",
             {Datum::of(f32({1}, {1})), Datum::of(i64({2}, {int64_t{1} << 30, int64_t{1} << 30}))}};
  run_error(huge, StatusCode::kOutOfRange);
}

TEST(TensorOps, CenterCropPad) {
  OpRun r{"CenterCropPad", {Datum::of(iota_f32({3, 3})), Datum::of(i64({2}, {1, 5}))}};
  EXPECT_TRUE(tensors_near(f32({1, 5}, {0, 3, 4, 5, 0}), run1(r), kExact, kExact));
}

// ---- Creation ----

TEST(TensorOps, ShapeSizeAndIdentityOfSequence) {
  OpRun s{"Shape", {Datum::of(iota_f32({2, 3, 4}))}, {attr_int("start", -2), attr_int("end", 100)}};
  EXPECT_EQ(ints_of(run1(s)), (std::vector<int64_t>{3, 4}));
  OpRun z{"Size", {Datum::of(iota_f32({2, 3, 4}))}};
  EXPECT_EQ(ints_of(run1(z)), (std::vector<int64_t>{24}));
  Datum seq = Datum::make_sequence(DType::kFloat32, {Datum::of(f32({1}, {7}))});
  auto out = run_op(OpRun{"Identity", {seq}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ((*out)[0].kind, Datum::Kind::kSequence);
  EXPECT_EQ((*out)[0].sequence->at(0).tensor.get_double(0), 7.0);
}

TEST(TensorOps, ConstantAttributes) {
  EXPECT_EQ(run1(OpRun{"Constant", {}, {attr_int("value_int", 5)}}).get_int64(0), 5);
  EXPECT_EQ(run1(OpRun{"Constant", {}, {attr_ints("value_ints", {1, 2})}}).shape(),
            (std::vector<int64_t>{2}));
  EXPECT_EQ(run1(OpRun{"Constant", {}, {attr_float("value_float", 1.5f)}}).get_double(0), 1.5);
  EXPECT_EQ(run1(OpRun{"Constant", {}, {attr_string("value_string", "hi")}}).strings()[0], "hi");
  EXPECT_EQ(run1(OpRun{"Constant", {}, {attr_tensor("value", i64({2}, {3, 4}))}}).get_int64(1), 4);
  // sparse_value handed over as [values, indices] with dims.
  ir::Attribute sp;
  sp.name = "sparse_value";
  sp.type = ir::AttrType::kSparseTensor;
  sp.tensors = {f32({2}, {5, 6}), i64({2}, {1, 3})};
  sp.ints = {2, 2};
  EXPECT_TRUE(
      tensors_near(f32({2, 2}, {0, 5, 0, 6}), run1(OpRun{"Constant", {}, {sp}}), kExact, kExact));
}

TEST(TensorOps, ConstantOfShapeAndRange) {
  OpRun c{"ConstantOfShape",
          {Datum::of(i64({2}, {2, 2}))},
          {attr_tensor("value", Tensor::from_vector<int32_t>({1}, {7}))}};
  c.constant_inputs = {0};
  Tensor y = run1(c);
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_EQ(ints_of(y), (std::vector<int64_t>{7, 7, 7, 7}));
  OpRun huge{"ConstantOfShape", {Datum::of(i64({3}, {1 << 20, 1 << 20, 1 << 20}))}};
  run_error(huge, StatusCode::kOutOfRange);
  OpRun r{
      "Range",
      {tensor_of<int32_t>({}, {10}), tensor_of<int32_t>({}, {4}), tensor_of<int32_t>({}, {-3})}};
  r.constant_inputs = {0, 1, 2};
  EXPECT_EQ(ints_of(run1(r)), (std::vector<int64_t>{10, 7}));
  OpRun rf{"Range",
           {tensor_of<float>({}, {0}), tensor_of<float>({}, {1}), tensor_of<float>({}, {0.25f})}};
  EXPECT_TRUE(tensors_near(f32({4}, {0, 0.25f, 0.5f, 0.75f}), run1(rf), kExact, kExact));
  OpRun rh{"Range",
           {tensor_of<int64_t>({}, {0}), tensor_of<int64_t>({}, {INT64_MAX}),
            tensor_of<int64_t>({}, {1})}};
  run_error(rh, StatusCode::kOutOfRange);
}

TEST(TensorOps, EyeLikeOneHotNonZeroCompressTrilu) {
  OpRun e{"EyeLike", {Datum::of(iota_f32({2, 3}))}, {attr_int("k", 1), attr_int("dtype", 7)}};
  EXPECT_EQ(ints_of(run1(e)), (std::vector<int64_t>{0, 1, 0, 0, 0, 1}));
  // Indices 1, -1 (→ 2) and 5 (outside [-3, 3): an all-off row, per the spec).
  OpRun oh{
      "OneHot",
      {Datum::of(i64({3}, {1, -1, 5})), tensor_of<int64_t>({}, {3}), Datum::of(f32({2}, {0, 1}))}};
  EXPECT_TRUE(tensors_near(f32({3, 3}, {0, 1, 0, 0, 0, 1, 0, 0, 0}), run1(oh), kExact, kExact));
  OpRun nz{"NonZero", {Datum::of(f32({2, 2}, {1, 0, 0, 2}))}};
  EXPECT_EQ(ints_of(run1(nz)), (std::vector<int64_t>{0, 1, 0, 1}));
  OpRun cp{"Compress",
           {Datum::of(iota_f32({3, 2})), tensor_of<bool>({2}, {false, true})},
           {attr_int("axis", 1)}};
  EXPECT_TRUE(tensors_near(f32({3, 1}, {1, 3, 5}), run1(cp), kExact, kExact));
  OpRun tl{
      "Trilu", {Datum::of(iota_f32({2, 3})), tensor_of<int64_t>({}, {0})}, {attr_int("upper", 0)}};
  EXPECT_TRUE(tensors_near(f32({2, 3}, {0, 0, 0, 3, 4, 0}), run1(tl), kExact, kExact));
}

// ---- Resize / spatial ----

TEST(TensorOps, ResizeNearestAndLinear) {
  const Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  OpRun n{"Resize",
          {Datum::of(x), Datum(), Datum::of(f32({4}, {1, 1, 2, 2}))},
          {attr_string("mode", "nearest")}};
  n.constant_inputs = {2};
  EXPECT_TRUE(tensors_near(f32({1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}),
                           run1(n), kExact, kExact));
  // align_corners linear 2 → 3 along the last axis: midpoints.
  OpRun l{
      "Resize",
      {Datum::of(x), Datum(), Datum(), Datum::of(i64({2}, {2, 3}))},
      {attr_string("mode", "linear"),
       attr_string("coordinate_transformation_mode", "align_corners"), attr_ints("axes", {2, 3})}};
  EXPECT_TRUE(
      tensors_near(f32({1, 1, 2, 3}, {1, 1.5f, 2, 3, 3.5f, 4}), run1(l), kFloat32Tol, kFloat32Tol));
  OpRun u{"Upsample", {Datum::of(x), Datum::of(f32({4}, {1, 1, 1, 3}))}};
  u.opset = 9;
  EXPECT_TRUE(tensors_near(f32({1, 1, 2, 6}, {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4}), run1(u), kExact,
                           kExact));
}

TEST(TensorOps, DepthToSpaceAndBack) {
  const Tensor x = iota_f32({1, 8, 1, 1});
  for (const char* mode : {"DCR", "CRD"}) {
    OpRun d{"DepthToSpace", {Datum::of(x)}, {attr_int("blocksize", 2), attr_string("mode", mode)}};
    Tensor y = run1(d);
    EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 2, 2, 2}));
    OpRun s{"SpaceToDepth", {Datum::of(y)}, {attr_int("blocksize", 2), attr_string("mode", mode)}};
    EXPECT_TRUE(tensors_near(x, run1(s), kExact, kExact)) << mode;
  }
  OpRun d{"DepthToSpace", {Datum::of(x)}, {attr_int("blocksize", 2)}};
  // DCR: output channel 0 takes input channels 0, 2 (block row 0) and 4, 6 (block row 1).
  EXPECT_TRUE(tensors_near(f32({1, 2, 2, 2}, {0, 2, 4, 6, 1, 3, 5, 7}), run1(d), kExact, kExact));
}

TEST(TensorOps, GridSampleIdentityAndAffineGrid) {
  // AffineGrid with the identity theta gives the base grid; sampling X with it reproduces X.
  const Tensor theta = f32({1, 2, 3}, {1, 0, 0, 0, 1, 0});
  OpRun ag{"AffineGrid",
           {Datum::of(theta), Datum::of(i64({4}, {1, 1, 2, 3}))},
           {attr_int("align_corners", 1)}};
  ag.constant_inputs = {1};
  Tensor grid = run1(ag);
  ASSERT_EQ(grid.shape(), (std::vector<int64_t>{1, 2, 3, 2}));
  EXPECT_TRUE(tensors_near(f32({1, 2, 3, 2}, {-1, -1, 0, -1, 1, -1, -1, 1, 0, 1, 1, 1}), grid,
                           kFloat32Tol, kFloat32Tol));
  const Tensor x = iota_f32({1, 1, 2, 3});
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    OpRun gs{"GridSample",
             {Datum::of(x), Datum::of(grid)},
             {attr_int("align_corners", 1), attr_string("mode", mode)}};
    EXPECT_TRUE(tensors_near(x, run1(gs), kFloat32Tol, kFloat32Tol)) << mode;
  }
  // A point outside with zeros padding is 0; with border padding it is the edge value.
  const Tensor far = f32({1, 1, 1, 2}, {3, 0});
  OpRun z{"GridSample", {Datum::of(x), Datum::of(far)}, {attr_int("align_corners", 1)}};
  EXPECT_EQ(run1(z).get_double(0), 0.0);
  OpRun b{"GridSample",
          {Datum::of(x), Datum::of(far)},
          {attr_int("align_corners", 1), attr_string("padding_mode", "border")}};
  EXPECT_NEAR(run1(b).get_double(0), 3.5, kFloat32Tol);  // row 0.5 between 2 and 5
}

TEST(TensorOps, GridSampleOneAndThreeSpatialDims) {
  // 1-D: X = [0, 1, 2]; grid points -1 and 0.5 with align_corners → positions 0 and 1.5.
  OpRun one{"GridSample",
            {Datum::of(iota_f32({1, 1, 3})), Datum::of(f32({1, 2, 1}, {-1, 0.5f}))},
            {attr_int("align_corners", 1)}};
  EXPECT_TRUE(tensors_near(f32({1, 1, 2}, {0, 1.5f}), run1(one), kFloat32Tol, kFloat32Tol));
  // 3-D: the identity affine grid reproduces X in every mode (tricubic included).
  OpRun ag{"AffineGrid",
           {Datum::of(f32({1, 3, 4}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0})),
            Datum::of(i64({5}, {1, 1, 2, 3, 2}))},
           {attr_int("align_corners", 1)}};
  Tensor grid = run1(ag);
  ASSERT_EQ(grid.shape(), (std::vector<int64_t>{1, 2, 3, 2, 3}));
  const Tensor x = iota_f32({1, 1, 2, 3, 2});
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    OpRun gs{"GridSample",
             {Datum::of(x), Datum::of(grid)},
             {attr_int("align_corners", 1), attr_string("mode", mode)}};
    EXPECT_TRUE(tensors_near(x, run1(gs), kFloat32Tol, kFloat32Tol)) << mode;
  }
}

// ---- Sequences of indices ----

TEST(TensorOps, ReverseSequenceAndUnique) {
  OpRun rs{"ReverseSequence",
           {Datum::of(iota_f32({3, 2})), Datum::of(i64({2}, {3, 1}))},
           {attr_int("batch_axis", 1), attr_int("time_axis", 0)}};
  EXPECT_TRUE(tensors_near(f32({3, 2}, {4, 1, 2, 3, 0, 5}), run1(rs), kExact, kExact));
  OpRun bad{"ReverseSequence", {Datum::of(iota_f32({3, 2})), Datum::of(i64({2}, {4, 1}))}};
  run_error(bad, StatusCode::kOutOfRange);

  const Tensor x = f32({6}, {2, 1, 1, 3, 4, 3});
  OpRun u{"Unique", {Datum::of(x)}, {attr_int("sorted", 0)}, 4};
  auto out = run_op(u);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE(tensors_near(f32({4}, {2, 1, 3, 4}), (*out)[0].tensor, kExact, kExact));
  EXPECT_EQ(ints_of((*out)[1].tensor), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(ints_of((*out)[2].tensor), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(ints_of((*out)[3].tensor), (std::vector<int64_t>{1, 2, 2, 1}));
  u.attrs = {attr_int("sorted", 1)};
  out = run_op(u);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(tensors_near(f32({4}, {1, 2, 3, 4}), (*out)[0].tensor, kExact, kExact));
  EXPECT_EQ(ints_of((*out)[2].tensor), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
}

TEST(TensorOps, DropoutInferenceAndTraining) {
  const Tensor x = f32({4}, {1, 2, 3, 4});
  OpRun inf{"Dropout", {Datum::of(x)}, {}, 2};
  auto out = run_op(inf);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE(tensors_near(x, (*out)[0].tensor, kExact, kExact));
  EXPECT_EQ(ints_of((*out)[1].tensor), (std::vector<int64_t>{1, 1, 1, 1}));
  OpRun tr{"Dropout",
           {Datum::of(x), tensor_of<float>({}, {0.5f}), tensor_of<bool>({}, {true})},
           {attr_int("seed", 3)},
           2};
  out = run_op(tr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  for (int64_t i = 0; i < 4; ++i) {
    const double v = (*out)[0].tensor.get_double(i);
    const bool kept = (*out)[1].tensor.get_int64(i) != 0;
    EXPECT_EQ(v, kept ? 2.0 * x.get_double(i) : 0.0);
  }
  OpRun bad{"Dropout", {Datum::of(x), tensor_of<float>({}, {1.5f}), tensor_of<bool>({}, {true})}};
  run_error(bad, StatusCode::kInvalidModel);
}

TEST(TensorOps, AdversarialValuesFailCleanly) {
  // Huge slice steps select one element instead of overflowing strides.
  OpRun sl{"Slice",
           {Datum::of(iota_f32({5})), Datum::of(i64({1}, {1})), Datum::of(i64({1}, {5})),
            Datum::of(i64({1}, {0})), Datum::of(i64({1}, {INT64_MAX}))}};
  EXPECT_TRUE(tensors_near(f32({1}, {1}), run1(sl), kExact, kExact));
  // A write index near INT64_MAX is out of range, not an overflow.
  OpRun ts{"TensorScatter",
           {Datum::of(f32({1, 3, 1}, {0, 0, 0})), Datum::of(f32({1, 2, 1}, {1, 2})),
            Datum::of(i64({1}, {INT64_MAX}))}};
  run_error(ts, StatusCode::kOutOfRange);
  OpRun pad{"Pad", {Datum::of(iota_f32({2})), Datum::of(i64({2}, {INT64_MIN, INT64_MAX}))}};
  EXPECT_FALSE(run_op(pad).ok());
  OpRun tile{"Tile", {Datum::of(iota_f32({2, 0})), Datum::of(i64({2}, {1, int64_t{1} << 62}))}};
  EXPECT_EQ(run1(tile).shape(), (std::vector<int64_t>{2, 0}));  // empty: nothing is touched
  OpRun onehot{"OneHot",
               {Datum::of(i64({2}, {0, 1})), tensor_of<int64_t>({}, {int64_t{1} << 62}),
                Datum::of(f32({2}, {0, 1}))}};
  run_error(onehot, StatusCode::kOutOfRange);
  // Before opset 12 GatherND has no batch_dims: the attribute is ignored consistently.
  OpRun nd{"GatherND",
           {Datum::of(iota_f32({2, 2})), Datum::of(i64({2, 1}, {1, 0}))},
           {attr_int("batch_dims", 1)}};
  nd.opset = 11;
  EXPECT_TRUE(tensors_near(f32({2, 2}, {2, 3, 0, 1}), run1(nd), kExact, kExact));
}

// ---- Symbolic inference ----

struct Inferred {
  Status status;
  std::vector<ir::TypeInfo> outputs;
};

Inferred infer(const std::string& op, std::vector<ir::TypeInfo> inputs,
               std::vector<const Tensor*> consts, std::vector<ir::Attribute> attrs = {},
               int num_outputs = 1, int64_t opset = 23) {
  ir::Graph g;
  ir::Node* n = g.add_node(op, "", "n");
  n->opset = opset;
  n->attrs = std::move(attrs);
  for (size_t i = 0; i < inputs.size(); ++i)
    n->inputs.push_back(g.add_value("i" + std::to_string(i)));
  for (int i = 0; i < num_outputs; ++i) n->outputs.push_back(g.add_value("o" + std::to_string(i)));
  std::vector<const ir::TypeInfo*> tp;
  for (const auto& t : inputs) tp.push_back(&t);
  consts.resize(inputs.size(), nullptr);
  ops::InferContext ctx(*n, tp, consts);
  const ops::OpDef* def = ops::OpRegistry::global().find("", op);
  EXPECT_NE(def, nullptr) << op;
  Inferred r;
  if (def == nullptr) return r;
  r.status = ops::infer_node(*def, ctx);
  r.outputs = ctx.outputs();
  return r;
}

ir::TypeInfo sym(std::vector<ir::Dim> dims, DType t = DType::kFloat32) {
  ir::Shape s;
  s.rank_known = true;
  s.dims = std::move(dims);
  return ir::TypeInfo::tensor(t, s);
}

TEST(TensorInference, SymbolicDims) {
  using ir::Dim;
  const ir::TypeInfo x = sym({Dim::named("batch"), Dim::of(3), Dim::of(4)});
  const Tensor shape = i64({2}, {0, -1});
  auto r = infer("Reshape", {x, ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({2}))},
                 {nullptr, &shape});
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  // -1 is solved symbolically: batch*3*4 / batch.
  EXPECT_EQ(r.outputs[0].shape.to_string(), "[batch,12]");
  auto f = infer("Flatten", {x}, {}, {attr_int("axis", 1)});
  EXPECT_EQ(f.outputs[0].shape.to_string(), "[batch,12]");
  auto t = infer("Transpose", {x}, {});
  EXPECT_EQ(t.outputs[0].shape.to_string(), "[4,3,batch]");
  const Tensor idx = i64({}, {0});
  auto ga = infer("Gather", {x, ir::TypeInfo::tensor(DType::kInt64, ir::Shape::of({5, 2}))}, {},
                  {attr_int("axis", 1)});
  EXPECT_EQ(ga.outputs[0].shape.to_string(), "[batch,5,2,4]");
  const Tensor starts = i64({1}, {1}), ends = i64({1}, {INT64_MAX});
  auto sl = infer("Slice",
                  {x, sym({Dim::of(1)}, DType::kInt64), sym({Dim::of(1)}, DType::kInt64),
                   sym({Dim::of(1)}, DType::kInt64)},
                  {nullptr, &starts, &ends, &idx});
  EXPECT_EQ(sl.outputs[0].shape.to_string(),
            "[?,3,4]");  // a sliced symbolic dim is unknown
  const Tensor axes = i64({1}, {2});
  auto sl2 = infer("Slice",
                   {x, sym({Dim::of(1)}, DType::kInt64), sym({Dim::of(1)}, DType::kInt64),
                    sym({Dim::of(1)}, DType::kInt64)},
                   {nullptr, &starts, &ends, &axes});
  EXPECT_EQ(sl2.outputs[0].shape.to_string(), "[batch,3,3]");
  auto sh = infer("Shape", {x}, {});
  EXPECT_EQ(sh.outputs[0].to_string(), "int64[3]");
  const Tensor cshape = i64({2}, {2, 5});
  auto cos = infer("ConstantOfShape", {sym({Dim::of(2)}, DType::kInt64)}, {&cshape});
  EXPECT_EQ(cos.outputs[0].to_string(), "float32[2,5]");
  const Tensor a = i64({}, {0}), b = i64({}, {10}), c = i64({}, {3});
  auto rg = infer("Range", {sym({}, DType::kInt64), sym({}, DType::kInt64), sym({}, DType::kInt64)},
                  {&a, &b, &c});
  EXPECT_EQ(rg.outputs[0].to_string(), "int64[4]");
  auto ex = infer("Expand", {sym({Dim::named("n"), Dim::of(1)}), sym({Dim::of(2)}, DType::kInt64)},
                  {nullptr, &cshape});
  EXPECT_EQ(ex.outputs[0].shape.to_string(), "[2,5]");
  auto nz = infer("NonZero", {x}, {});
  EXPECT_EQ(nz.outputs[0].shape.to_string(), "[3,?]");
  auto bad = infer("Squeeze", {x, sym({Dim::of(1)}, DType::kInt64)}, {nullptr, &c});
  EXPECT_FALSE(bad.status.ok());
}

}  // namespace
}  // namespace kiln
