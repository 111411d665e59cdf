// fuse_pointwise: elementwise chains become one kiln.Pointwise whose CPU results equal the
// unfused graph bit for bit (float32, and float16 after lower_precision); chains that would
// change meaning or order stay as they are.
#include <cstring>

#include "ops/fused_pointwise.h"
#include "passes/pass_manager.h"
#include "pattern_test_util.h"

namespace kiln {
namespace {

using pattern_test::attr_int;
using pattern_test::Builder;

const passes::Pass kPass = {"fuse_pointwise", passes::fuse_pointwise};

// Runs on the CPU; each output as raw bytes plus dtype.
std::vector<Tensor> run_raw(const ir::Graph& g,
                            const std::vector<std::pair<std::string, Datum>>& feeds) {
  std::vector<Tensor> out;
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.ok()) << ex.status().to_string();
  if (!ex.ok()) return out;
  auto outs = (*ex)->run(feeds);
  EXPECT_TRUE(outs.ok()) << outs.status().to_string();
  if (!outs.ok()) return out;
  for (const Datum& d : *outs) out.push_back(d.tensor);
  return out;
}

// Same dtypes, shapes and bytes (a NaN equals a NaN).
void expect_identical(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].dtype(), b[k].dtype()) << "output " << k;
    ASSERT_EQ(a[k].shape(), b[k].shape()) << "output " << k;
    if (a[k].dtype() == DType::kFloat32) {
      for (int64_t i = 0; i < a[k].numel(); ++i) {
        const float x = a[k].data<float>()[i], y = b[k].data<float>()[i];
        if (std::isnan(x) && std::isnan(y)) continue;
        ASSERT_EQ(std::memcmp(&x, &y, 4), 0)
            << "output " << k << " element " << i << ": " << x << " vs " << y;
      }
    } else {
      ASSERT_EQ(std::memcmp(a[k].raw(), b[k].raw(), a[k].nbytes()), 0) << "output " << k;
    }
  }
}

// Infers types, runs the pass (verifying), and checks bit-identical CPU outputs.
void check_fuses(Builder& b, uint32_t seed = 7) {
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  const auto feeds = pattern_test::random_feeds(b, seed);
  const auto before = run_raw(b.g, feeds);
  Status st = pattern_test::run_pass(kPass, b.g);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(ir::verify_graph(b.g).ok());
  expect_identical(run_raw(b.g, feeds), before);
}

ir::Attribute cast_to(DType t) {
  return attr_int("to", static_cast<int64_t>(t));
}

TEST(FusePointwise, BiasScaleErfResidual) {
  Builder b;
  ir::Value* x = b.input("x", {2, 3, 8});
  ir::Value* bias = b.input("bias", {8});
  ir::Value* a = b.node("Add", {x, bias}, "a");
  ir::Value* m = b.node("Mul", {a, b.scalar("s", 0.7071f)}, "m");
  ir::Value* e = b.node("Erf", {m}, "e");
  b.output(b.node("Add", {e, x}, "y"));
  check_fuses(b);
  ASSERT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* p = b.find("Pointwise");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->domain, ir::kKilnDomain);
  EXPECT_EQ(p->inputs.size(), 3u);  // x, bias, s
  ASSERT_EQ(p->outputs.size(), 1u);
  EXPECT_EQ(p->outputs[0]->name, "y");
}

TEST(FusePointwise, EveryFloatOpWithBroadcasts) {
  Builder b(20);
  ir::Value* x = b.input("x", {4, 3, 5});
  ir::Value* y = b.input("y", {3, 1});
  ir::Value* z = b.input("z", {1, 1, 5});
  ir::Value* v = b.node("Sub", {x, y}, "sub");
  v = b.node("Mul", {v, z}, "mul");
  ir::Value* pos = b.node("Add", {b.node("Abs", {v}, "abs"), b.scalar("one", 1.f)}, "pos");
  v = b.node("Div", {v, pos}, "div");
  v = b.node("Add", {v, b.node("Log", {pos}, "log")}, "addlog");
  v = b.node("Add", {v, b.node("Sqrt", {pos}, "sqrt")}, "addsqrt");
  v = b.node("Mul", {v, b.node("Reciprocal", {pos}, "rcp")}, "mulrcp");
  v = b.node("Add", {b.node("Tanh", {v}, "tanh"), b.node("Sigmoid", {v}, "sig")}, "ts");
  v = b.node("Sub", {b.node("Exp", {v}, "exp"), b.node("Neg", {v}, "neg")}, "en");
  v = b.node("Max", {b.node("Relu", {v}, "relu"), b.node("Gelu", {v}, "gelu")}, "max");
  v = b.node("Min", {v, b.node("Pow", {v, b.scalar("two", 2.f)}, "sq")}, "min");
  v = b.node("Add", {v, b.node("Pow", {pos, b.scalar("half", 0.5f)}, "pw")}, "addpw");
  ir::Attribute tanh_attr;
  tanh_attr.name = "approximate";
  tanh_attr.type = ir::AttrType::kString;
  tanh_attr.s = "tanh";
  v = b.node("Gelu", {v}, "gelut", {tanh_attr});
  b.output(b.node("Clip", {v, b.scalar("lo", -0.5f), b.scalar("hi", 1.5f)}, "out"));
  check_fuses(b);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.count("Pointwise"), 1);
}

TEST(FusePointwise, CompareCastWhereAndBools) {
  Builder b;
  ir::Value* x = b.input("x", {6, 4});
  ir::Value* y = b.input("y", {4});
  ir::Value* gt = b.node("Greater", {x, y}, "gt");
  ir::Value* lt = b.node("Less", {x, b.scalar("zero", 0.f)}, "lt");
  ir::Value* both = b.node("And", {gt, b.node("Not", {lt}, "nlt")}, "both");
  ir::Value* w = b.node("Where", {both, x, y}, "w");
  ir::Value* scaled = b.node("Mul", {w, b.scalar("k", 3.7f)}, "scaled");
  ir::Value* i64 = b.node("Cast", {scaled}, "i64", {cast_to(DType::kInt64)});
  ir::Value* isum = b.node("Add", {i64, i64}, "isum");
  ir::Value* i32 = b.node("Cast", {isum}, "i32", {cast_to(DType::kInt32)});
  ir::Value* ineg = b.node("Neg", {i32}, "ineg");
  ir::Value* eq = b.node("Equal", {ineg, b.node("Abs", {ineg}, "iabs")}, "eq");
  ir::Value* f = b.node("Cast", {ineg}, "f", {cast_to(DType::kFloat32)});
  ir::Value* h = b.node("Cast", {f}, "h", {cast_to(DType::kFloat16)});
  ir::Value* back = b.node("Cast", {h}, "back", {cast_to(DType::kFloat32)});
  ir::Value* any = b.node("Or", {eq, b.node("IsNaN", {back}, "nan")}, "any");
  ir::Value* fany = b.node("Cast", {any}, "fany", {cast_to(DType::kFloat32)});
  b.output(b.node("Add", {back, fany}, "out"));
  b.output(eq);  // a bool graph output from inside the chain
  check_fuses(b);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  const ir::Node* p = b.find("Pointwise");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->outputs.size(), 2u);
}

TEST(FusePointwise, IntermediateReadElsewhereBecomesAnOutput) {
  Builder b;
  ir::Value* x = b.input("x", {2, 8});
  ir::Value* a = b.node("Add", {x, b.scalar("one", 1.f)}, "a");
  ir::Value* m = b.node("Mul", {a, a}, "m");
  ir::Value* t = b.node("Tanh", {m}, "t");
  ir::Value* r = b.node("ReduceSum", {a, b.ints("axes", {1})}, "r");  // after the chain
  b.output(t);
  b.output(r);
  check_fuses(b);
  EXPECT_EQ(b.count("Pointwise"), 1);
  EXPECT_EQ(b.count("ReduceSum"), 1);
  EXPECT_EQ(b.find("Pointwise")->outputs.size(), 2u);  // a and t
}

TEST(FusePointwise, NoCycleThroughAnOutsideReader) {
  // a → ReduceSum → s, then Mul(a, s): fusing Add and Mul would need s before a.
  Builder b;
  ir::Value* x = b.input("x", {2, 8});
  ir::Value* a = b.node("Add", {x, x}, "a");
  ir::Value* s = b.node("ReduceSum", {a, b.ints("axes", {1})}, "s");
  b.output(b.node("Mul", {a, s}, "y"));
  check_fuses(b);
  EXPECT_EQ(b.count("Pointwise"), 0);
  EXPECT_EQ(b.g.nodes().size(), 3u);
}

TEST(FusePointwise, RefusesSingleNodesSharedSmallerValuesAndUnknownShapes) {
  {
    Builder b;
    ir::Value* x = b.input("x", {2, 8});
    b.output(b.node("Relu", {x}, "y"));
    check_fuses(b);
    EXPECT_EQ(b.count("Pointwise"), 0);
  }
  {
    // bias * 2 ([8]) is also a graph output: it cannot be recomputed inside the [4, 8] chain.
    Builder b;
    ir::Value* x = b.input("x", {4, 8});
    ir::Value* bias = b.input("bias", {8});
    ir::Value* m = b.node("Mul", {bias, b.scalar("two", 2.f)}, "m");
    b.output(b.node("Add", {x, m}, "y"));
    b.output(m);
    check_fuses(b);
    EXPECT_EQ(b.count("Pointwise"), 0);
  }
  {
    Builder b;
    ir::Value* x = b.input_dims("x", {ir::Dim::unknown(), ir::Dim::of(8)}, {3, 8});
    ir::Value* a = b.node("Add", {x, x}, "a");
    b.output(b.node("Mul", {a, a}, "y"));
    check_fuses(b);
    EXPECT_EQ(b.count("Pointwise"), 0);
  }
}

TEST(FusePointwise, SmallerIntermediatesAreRecomputedPerElement) {
  // An attention-mask style chain at [2, 1, 1, 5] feeding a [2, 3, 4, 5] Add.
  Builder b;
  ir::Value* scores = b.input("scores", {2, 3, 4, 5});
  ir::Value* mask = b.input("mask", {2, 1, 1, 5});
  ir::Value* inv = b.node("Sub", {b.scalar("one", 1.f), mask}, "inv");
  ir::Value* big = b.node("Mul", {inv, b.scalar("neg", -10000.f)}, "big");
  ir::Value* sum = b.node("Add", {scores, big}, "sum");
  b.output(b.node("Div", {sum, b.scalar("d", 8.f)}, "y"));
  check_fuses(b);
  EXPECT_EQ(b.g.nodes().size(), 1u);
  EXPECT_EQ(b.find("Pointwise")->outputs.size(), 1u);
}

TEST(FusePointwise, SymbolicBatchFuses) {
  Builder b;
  ir::Value* x = b.input_dims("x", {ir::Dim::named("batch"), ir::Dim::of(8)}, {3, 8});
  ir::Value* bias = b.input("bias", {8});
  ir::Value* a = b.node("Add", {x, bias}, "a");
  b.output(b.node("Sigmoid", {a}, "y"));
  check_fuses(b);
  EXPECT_EQ(b.count("Pointwise"), 1);
}

TEST(FusePointwise, ChainLongerThanTheInputLimitSplits) {
  Builder b;
  ir::Value* v = b.input("x", {2, 4});
  for (int i = 0; i < 20; ++i)
    v = b.node("Add", {v, b.input("b" + std::to_string(i), {4})}, "a" + std::to_string(i));
  b.output(v);
  check_fuses(b);
  EXPECT_EQ(b.count("Pointwise"), 2);
  for (const auto& n : b.g.nodes()) EXPECT_LE(n->inputs.size(), 16u);
}

// float16: lower_precision then fuse (fp16 chains fuse and stay bit-exact), and fuse then lower
// (the fused program runs in float16) within half rounding of the unfused float16 graph.
TEST(FusePointwise, Float16AfterLowerPrecision) {
  auto build = [](Builder& b) {
    ir::Value* x = b.input("x", {4, 3, 8});
    ir::Value* bias = b.input("bias", {8});
    ir::Value* a = b.node("Add", {x, bias}, "a");
    ir::Value* e = b.node("Erf", {b.node("Mul", {a, b.scalar("s", 0.7071f)}, "m")}, "e");
    ir::Value* g = b.node("Mul", {b.node("Add", {e, b.scalar("one", 1.f)}, "e1"), a}, "g");
    ir::Value* w = b.node("Where", {b.node("Greater", {g, x}, "gt"), g, x}, "w");
    b.output(b.node("Div", {w, b.scalar("d", 3.f)}, "y"));
  };
  {
    Builder b;
    build(b);
    ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
    ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
    ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
    const auto feeds = pattern_test::random_feeds(b, 3);
    const auto before = run_raw(b.g, feeds);
    ASSERT_TRUE(pattern_test::run_pass(kPass, b.g).ok());
    EXPECT_GE(b.count("Pointwise"), 1);
    bool half_program = false;
    for (const auto& n : b.g.nodes()) {
      if (n->op_type != "Pointwise") continue;
      auto prog = ops::parse_pw_program(*n);
      ASSERT_TRUE(prog.ok());
      for (const ops::PwInstr& in : prog->instrs) half_program |= in.dtype == DType::kFloat16;
    }
    EXPECT_TRUE(half_program);
    expect_identical(run_raw(b.g, feeds), before);
  }
  {
    Builder unfused, fused;
    build(unfused);
    build(fused);
    ASSERT_TRUE(ops::infer_graph_types(unfused.g).ok());
    ASSERT_TRUE(ops::infer_graph_types(fused.g).ok());
    ASSERT_TRUE(pattern_test::run_pass(kPass, fused.g).ok());
    ASSERT_EQ(fused.count("Pointwise"), 1);
    ASSERT_TRUE(passes::lower_precision(unfused.g, DType::kFloat16).ok());
    ASSERT_TRUE(passes::lower_precision(fused.g, DType::kFloat16).ok());
    ASSERT_TRUE(ir::verify_graph(fused.g).ok());
    const ir::Node* p = fused.find("Pointwise");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->inputs[0]->type.dtype, DType::kFloat16);
    const auto feeds = pattern_test::random_feeds(unfused, 3);
    pattern_test::expect_close(pattern_test::run_cpu(fused.g, feeds),
                               pattern_test::run_cpu(unfused.g, feeds), 2e-3f, 2e-3f);
  }
}

// A chain with Exp keeps float32 under --fp16, as the unfused Exp would.
TEST(FusePointwise, ChainWithExpStaysFloat32UnderLowerPrecision) {
  Builder b;
  ir::Value* x = b.input("x", {4, 8});
  ir::Value* e = b.node("Exp", {b.node("Mul", {x, b.scalar("k", 6.f)}, "m")}, "e");
  b.output(b.node("Add", {e, x}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  ASSERT_TRUE(pattern_test::run_pass(kPass, b.g).ok());
  ASSERT_EQ(b.count("Pointwise"), 1);
  ASSERT_TRUE(passes::lower_precision(b.g, DType::kFloat16).ok());
  const ir::Node* p = b.find("Pointwise");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->inputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(p->outputs[0]->type.dtype, DType::kFloat32);
}

TEST(FusePointwise, FusionPipelineRunsIt) {
  Builder b;
  ir::Value* x = b.input("x", {2, 8});
  ir::Value* a = b.node("Mul", {x, b.scalar("k", 2.f)}, "a");
  b.output(b.node("Sigmoid", {a}, "y"));
  ASSERT_TRUE(ops::infer_graph_types(b.g).ok());
  passes::PassManager pm = passes::PassManager::fusion_pipeline();
  pm.set_verify(true);
  ASSERT_TRUE(pm.run(b.g).ok());
  EXPECT_EQ(b.count("Pointwise"), 1);
}

}  // namespace
}  // namespace kiln
