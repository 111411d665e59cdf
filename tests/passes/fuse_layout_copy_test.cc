// fuse_layout_copy: Cast → Transpose → Pad (zeros at the end of the last axis) at the edge of a
// channels-last region becomes one kiln.CastTransposePad with the same output.
#include "ops/layout_copy.h"
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::attr_ints;
using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fuse_layout_copy", passes::fuse_layout_copy};

const ir::Node* fused(const Builder& b) {
  for (const auto& n : b.g.nodes())
    if (n->domain == ir::kKilnDomain && n->op_type == ops::kCastTransposePad) return n.get();
  return nullptr;
}

ir::Value* to_nhwc(Builder& b, ir::Value* x) {
  return b.node("Transpose", {x}, "nhwc", {attr_ints("perm", {0, 2, 3, 1})});
}

// ResNet's input under --fp16: Cast to float16, NHWC, 3 → 8 channels (the test casts back to
// float32 at the end, which stays its own node).
TEST(FuseLayoutCopy, CastTransposePad) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 4, 5});
  ir::Value* h = b.node("Cast", {x}, "h", {attr_int("to", static_cast<int64_t>(DType::kFloat16))});
  ir::Value* t = to_nhwc(b, h);
  ir::Value* p = b.node("Pad", {t, b.ints("pads", {0, 0, 0, 0, 0, 0, 0, 5})}, "p");
  b.output(b.node("Cast", {p}, "y", {attr_int("to", static_cast<int64_t>(DType::kFloat32))}));
  check_pass(b, kPass);
  const ir::Node* n = fused(b);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->inputs[0], x);
  EXPECT_EQ(n->attr_ints("perm"), (std::vector<int64_t>{0, 2, 3, 1}));
  EXPECT_EQ(n->attr_int("to", 0), static_cast<int64_t>(DType::kFloat16));
  EXPECT_EQ(n->attr_int("pad_last", 0), 5);
  EXPECT_EQ(n->outputs[0]->type.shape.to_string(), "[2,4,5,8]");
  EXPECT_EQ(b.g.nodes().size(), 2u);  // and the final Cast
}

TEST(FuseLayoutCopy, TransposeAndPadWithoutCast) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 4, 5});
  b.output(b.node("Pad", {to_nhwc(b, x), b.ints("pads", {0, 0, 0, 0, 0, 0, 0, 1})}, "y"));
  check_pass(b, kPass);
  ASSERT_NE(fused(b), nullptr);
  EXPECT_EQ(b.g.nodes().size(), 1u);
}

TEST(FuseLayoutCopy, TransposeAloneStays) {
  Builder b;
  b.output(to_nhwc(b, b.input("x", {2, 3, 4, 5})));
  check_pass(b, kPass);
  EXPECT_EQ(fused(b), nullptr);
}

TEST(FuseLayoutCopy, OtherPadsStay) {
  // Padding another axis, or with a value other than zero: the Pad is not the channel padding.
  for (int k = 0; k < 2; ++k) {
    Builder b;
    ir::Value* x = b.input("x", {2, 3, 4, 5});
    ir::Value* t = to_nhwc(b, x);
    std::vector<ir::Value*> ins = {t, k == 0 ? b.ints("pads", {0, 0, 1, 0, 0, 0, 0, 5})
                                             : b.ints("pads", {0, 0, 0, 0, 0, 0, 0, 5})};
    if (k == 1) ins.push_back(b.scalar("one", 1.f));
    b.output(b.node("Pad", ins, "y"));
    check_pass(b, kPass);
    EXPECT_EQ(fused(b), nullptr) << k;
  }
}

TEST(FuseLayoutCopy, CastReadElsewhereStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 4, 5});
  ir::Value* h = b.node("Relu", {x}, "h");
  ir::Value* t = to_nhwc(b, h);
  b.output(b.node("Pad", {t, b.ints("pads", {0, 0, 0, 0, 0, 0, 0, 3})}, "y"));
  b.output(h);
  check_pass(b, kPass);
  const ir::Node* n = fused(b);
  ASSERT_NE(n, nullptr);  // Transpose + Pad still fuse; the Relu is not a Cast
  EXPECT_EQ(n->inputs[0], h);
  EXPECT_FALSE(n->has_attr("to"));
}

}  // namespace
}  // namespace kiln
