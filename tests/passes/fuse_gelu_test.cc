// fuse_gelu: the exported GELU forms become one Gelu; near misses stay as they are.
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::Builder;
using pattern_test::check_pass;

const passes::Pass kPass = {"fuse_gelu", passes::fuse_gelu};

// torch.onnx's erf form: x / sqrt(2) → Erf → + 1 → x * · → * 0.5.
ir::Value* erf_gelu(Builder& b, ir::Value* x, const std::string& p, float sqrt2 = 1.4142135f,
                    float half = 0.5f) {
  ir::Value* d = b.node("Div", {x, b.scalar(p + "sqrt2", sqrt2)}, p + "d");
  ir::Value* e = b.node("Erf", {d}, p + "e");
  ir::Value* a = b.node("Add", {e, b.scalar(p + "one", 1.f)}, p + "a");
  ir::Value* m = b.node("Mul", {x, a}, p + "m");
  return b.node("Mul", {m, b.scalar(p + "half", half)}, p + "y");
}

TEST(FuseGelu, ErfFormTorchExport) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 8});
  b.output(erf_gelu(b, x, ""));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* g = b.find("Gelu");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->attr_string("approximate"), "none");
  EXPECT_EQ(g->opset, 20);
  EXPECT_EQ(g->inputs[0], x);
  EXPECT_EQ(g->outputs[0]->name, "y");
}

TEST(FuseGelu, ErfFormHalfFirstAndMulByInverseSqrt2) {
  // 0.5 * x first, then * (1 + erf(x * 0.70710678)); constants on the left.
  Builder b;
  ir::Value* x = b.input("x", {4, 16});
  ir::Value* h = b.node("Mul", {b.scalar("half", 0.5f), x}, "h");
  ir::Value* d = b.node("Mul", {b.scalar("inv", 0.70710678f), x}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Add", {b.scalar("one", 1.f), e}, "a");
  b.output(b.node("Mul", {h, a}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.count("Gelu"), 1);
}

TEST(FuseGelu, ErfFormHalfTimesSumThenX) {
  Builder b;
  ir::Value* x = b.input("x", {3, 5});
  ir::Value* d = b.node("Div", {x, b.scalar("sqrt2", 1.41421356f)}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Add", {e, b.scalar("one", 1.f)}, "a");
  ir::Value* m = b.node("Mul", {a, b.scalar("half", 0.5f)}, "m");
  b.output(b.node("Mul", {m, x}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
}

TEST(FuseGelu, ErfFormDivByTwo) {
  Builder b;
  ir::Value* x = b.input("x", {6});
  ir::Value* d = b.node("Div", {x, b.scalar("sqrt2", 1.4142135f)}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Add", {e, b.scalar("one", 1.f)}, "a");
  ir::Value* m = b.node("Mul", {x, a}, "m");
  b.output(b.node("Div", {m, b.scalar("two", 2.f)}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
}

// HF NewGELU / torch tanh form: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
ir::Value* tanh_gelu(Builder& b, ir::Value* x, bool pow) {
  ir::Value* cube;
  if (pow) {
    cube = b.node("Pow", {x, b.scalar("three", 3.f)}, "cube");
  } else {
    ir::Value* sq = b.node("Mul", {x, x}, "sq");
    cube = b.node("Mul", {x, sq}, "cube");
  }
  ir::Value* k = b.node("Mul", {b.scalar("kappa", 0.044715f), cube}, "k");
  ir::Value* s = b.node("Add", {x, k}, "s");
  ir::Value* i = b.node("Mul", {b.scalar("beta", 0.7978845608f), s}, "i");
  ir::Value* t = b.node("Tanh", {i}, "t");
  ir::Value* a = b.node("Add", {b.scalar("one", 1.f), t}, "a");
  ir::Value* h = b.node("Mul", {x, b.scalar("half", 0.5f)}, "h");
  return b.node("Mul", {h, a}, "y");
}

TEST(FuseGelu, TanhFormWithPow) {
  Builder b;
  ir::Value* x = b.input("x", {2, 7});
  b.output(tanh_gelu(b, x, true));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* g = b.find("Gelu");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->attr_string("approximate"), "tanh");
}

TEST(FuseGelu, TanhFormWithMulCube) {
  Builder b;
  ir::Value* x = b.input("x", {9});
  b.output(tanh_gelu(b, x, false));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.count("Gelu"), 1);
}

TEST(FuseGelu, OnnxFunctionBodyWithSum) {
  // Gelu's ONNX function body: 0.5 * x times Sum(1, Erf(x / Sqrt(2))).
  Builder b;
  ir::Value* x = b.input("x", {2, 6});
  ir::Value* h = b.node("Mul", {b.scalar("half", 0.5f), x}, "h");
  ir::Value* d = b.node("Div", {x, b.scalar("sqrt2", 1.41421356f)}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Sum", {b.scalar("one", 1.f), e}, "a");
  b.output(b.node("Mul", {h, a}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.count("Gelu"), 1);
}

TEST(FuseGelu, TwoInARowAndAConsumer) {
  Builder b;
  ir::Value* x = b.input("x", {4, 4});
  ir::Value* y1 = erf_gelu(b, x, "a_");
  ir::Value* y2 = erf_gelu(b, y1, "b_");
  b.output(b.node("Relu", {y2}, "out"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Gelu"), 2);
  EXPECT_EQ(b.g.nodes().size(), 3u);
}

TEST(FuseGelu, WrongConstantsStay) {
  for (float sqrt2 : {1.5f, 1.4150f}) {
    Builder b;
    ir::Value* x = b.input("x", {2, 3});
    b.output(erf_gelu(b, x, "", sqrt2));
    check_pass(b, kPass);
    EXPECT_EQ(b.count("Gelu"), 0) << sqrt2;
  }
  Builder b;
  ir::Value* x = b.input("x", {2, 3});
  b.output(erf_gelu(b, x, "", 1.4142135f, 0.6f));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Gelu"), 0);
}

TEST(FuseGelu, IntermediateReadElsewhereStays) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3});
  b.output(erf_gelu(b, x, ""));
  b.output(b.g.find_value("e"));  // the Erf output is a graph output too
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Gelu"), 0);
  EXPECT_EQ(b.count("Erf"), 1);

  Builder c;
  ir::Value* cx = c.input("x", {2, 3});
  c.output(erf_gelu(c, cx, ""));
  c.output(c.node("Neg", {c.g.find_value("m")}, "other"));  // x * (1 + erf) read by another node
  check_pass(c, kPass);
  EXPECT_EQ(c.count("Gelu"), 0);
}

TEST(FuseGelu, BroadcastingConstantStays) {
  // A [1, 1, 1] constant would turn a rank-2 x into rank 3: not a Gelu of x.
  Builder b;
  ir::Value* x = b.input("x", {2, 3});
  ir::Value* d = b.node("Div", {x, b.constant("sqrt2", {1, 1, 1}, {1.4142135f})}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Add", {e, b.scalar("one", 1.f)}, "a");
  ir::Value* m = b.node("Mul", {x, a}, "m");
  b.output(b.node("Mul", {m, b.scalar("half", 0.5f)}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Gelu"), 0);
}

TEST(FuseGelu, DifferentXStays) {
  // x / sqrt(2) of one tensor, the product with another.
  Builder b;
  ir::Value* x = b.input("x", {2, 3});
  ir::Value* z = b.input("z", {2, 3});
  ir::Value* d = b.node("Div", {x, b.scalar("sqrt2", 1.4142135f)}, "d");
  ir::Value* e = b.node("Erf", {d}, "e");
  ir::Value* a = b.node("Add", {e, b.scalar("one", 1.f)}, "a");
  ir::Value* m = b.node("Mul", {z, a}, "m");
  b.output(b.node("Mul", {m, b.scalar("half", 0.5f)}, "y"));
  check_pass(b, kPass);
  EXPECT_EQ(b.count("Gelu"), 0);
}

}  // namespace
}  // namespace kiln
