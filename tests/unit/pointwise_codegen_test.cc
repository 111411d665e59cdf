// The CUDA code generator of kiln.Pointwise (src/backends/cuda/codegen/): sources for a few
// programs compile with NVRTC for sm_90. NVRTC needs no GPU, so this runs in every CUDA build.
#include <gtest/gtest.h>

#if defined(KILN_HAVE_CUDA) && KILN_HAVE_CUDA
#include "backend/cuda_backend.h"
#include "backends/cuda/codegen/pointwise_codegen.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using ops::PwInstr;
using ops::PwOp;
using ops::PwProgram;

PwInstr ins(PwOp op, DType dt, std::vector<int32_t> args) {
  PwInstr i;
  i.op = op;
  i.dtype = dt;
  i.args = std::move(args);
  return i;
}

void expect_compiles(const PwProgram& p, const std::vector<DType>& in, int rank) {
  // Outputs name instructions (not values): an index past the list would read out of bounds.
  for (int32_t o : p.outputs) ASSERT_LT(static_cast<size_t>(o), p.instrs.size());
  const std::string src = cuda::pointwise_cuda_source(p, in, rank);
  auto cubin = cuda::nvrtc_compile_cubin(src, 90);
  ASSERT_TRUE(cubin.ok()) << cubin.status().to_string() << "\n" << src;
  EXPECT_GT(cubin->size(), 0u);
}

TEST(PointwiseCodegen, EveryFloatOpCompiles) {
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    PwProgram p;
    p.num_inputs = 3;  // x, y, scalar
    const DType f = dt;
    p.instrs = {
        ins(PwOp::kAdd, f, {0, 1}),       ins(PwOp::kSub, f, {3, 2}),
        ins(PwOp::kMul, f, {4, 0}),       ins(PwOp::kDiv, f, {5, 1}),
        ins(PwOp::kNeg, f, {6}),          ins(PwOp::kAbs, f, {7}),
        ins(PwOp::kRelu, f, {8}),         ins(PwOp::kSigmoid, f, {9}),
        ins(PwOp::kTanh, f, {10}),        ins(PwOp::kErf, f, {11}),
        ins(PwOp::kExp, f, {12}),         ins(PwOp::kLog, f, {13}),
        ins(PwOp::kSqrt, f, {14}),        ins(PwOp::kReciprocal, f, {15}),
        ins(PwOp::kPow, f, {16, 2}),      ins(PwOp::kGelu, f, {17}),
        ins(PwOp::kGeluTanh, f, {18}),    ins(PwOp::kMax, f, {19, 0}),
        ins(PwOp::kMin, f, {20, 1}),      ins(PwOp::kClip, f, {21, 2, -1}),
        ins(PwOp::kClip, f, {22, -1, 2}), ins(PwOp::kCast, DType::kFloat32, {23}),
    };
    p.outputs = {20, 21};  // instruction indices: the last Clip (value 23) and the Cast (24)
    expect_compiles(p, {f, f, f}, 3);
    expect_compiles(p, {f, f, f}, 1);
  }
}

TEST(PointwiseCodegen, IntBoolCastWhereCompile) {
  PwProgram p;
  p.num_inputs = 3;  // x float32, i int64, j int32
  const DType b = DType::kBool, f = DType::kFloat32, i64 = DType::kInt64, i32 = DType::kInt32;
  p.instrs = {
      ins(PwOp::kCast, i64, {0}),              // 3
      ins(PwOp::kAdd, i64, {3, 1}),            // 4
      ins(PwOp::kCast, i32, {4}),              // 5
      ins(PwOp::kMul, i32, {5, 2}),            // 6
      ins(PwOp::kNeg, i32, {6}),               // 7
      ins(PwOp::kAbs, i32, {7}),               // 8
      ins(PwOp::kEqual, b, {7, 8}),            // 9
      ins(PwOp::kLess, b, {0, 0}),             // 10
      ins(PwOp::kGreater, b, {4, 1}),          // 11
      ins(PwOp::kNot, b, {9}),                 // 12
      ins(PwOp::kAnd, b, {12, 10}),            // 13
      ins(PwOp::kOr, b, {13, 11}),             // 14
      ins(PwOp::kIsNaN, b, {0}),               // 15
      ins(PwOp::kWhere, f, {14, 0, 0}),        // 16
      ins(PwOp::kCast, DType::kFloat16, {8}),  // 17
      ins(PwOp::kCast, b, {0}),                // 18
      ins(PwOp::kMax, i64, {4, 1}),            // 19
      ins(PwOp::kWhere, i64, {15, 19, 1}),     // 20
  };
  p.outputs = {10, 11, 12, 13, 14, 15, 17};  // instruction indices of values 13-18 and 20
  expect_compiles(p, {f, i64, i32}, 4);
  expect_compiles(p, {f, i64, i32}, 0);
}

// The build stores each Pointwise node's CUBIN (and what it was compiled for) in the node, so an
// engine carries its kernels; a node whose rank is unknown keeps none.
TEST(PointwiseCodegen, BuildEmbedsTheCubinInTheNode) {
  ir::Graph g;
  ir::Value* x = g.add_value("x");
  ir::Value* y = g.add_value("y");
  x->type = ir::TypeInfo::tensor(DType::kFloat16, ir::Shape::of({2, 3}));
  ir::Node* n = g.add_node(std::string(ops::kPointwise), ir::kKilnDomain, "pw");
  n->opset = 1;
  n->inputs = {x};
  n->outputs = {y};
  PwProgram p;
  p.num_inputs = 1;
  p.instrs = {ins(PwOp::kRelu, DType::kFloat16, {0})};
  p.outputs = {0};
  ops::encode_pw_program(p, n);

  y->type = ir::TypeInfo::tensor(DType::kFloat16, ir::Shape::unknown_rank());
  ASSERT_TRUE(backend::cuda_embed(*n, 90).ok());
  EXPECT_FALSE(n->has_attr("cubin"));

  y->type = ir::TypeInfo::tensor(DType::kFloat16, ir::Shape::of({2, 3}));
  Status s = backend::cuda_embed(*n, 90);
  ASSERT_TRUE(s.ok()) << s.to_string();
  const Tensor* cubin = n->attr_tensor("cubin");
  ASSERT_NE(cubin, nullptr);
  EXPECT_EQ(cubin->dtype(), DType::kUInt8);
  ASSERT_GT(cubin->numel(), 4);
  EXPECT_EQ(std::string(static_cast<const char*>(cubin->raw()), 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(n->attr_ints("cubin_key"),
            (std::vector<int64_t>{90, 2, static_cast<int64_t>(DType::kFloat16)}));
  // Embedding again replaces the attributes rather than adding more.
  ASSERT_TRUE(backend::cuda_embed(*n, 90).ok());
  int count = 0;
  for (const ir::Attribute& a : n->attrs) count += a.name == "cubin" || a.name == "cubin_key";
  EXPECT_EQ(count, 2);
}

}  // namespace
}  // namespace kiln
#endif
