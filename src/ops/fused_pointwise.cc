// kiln.Pointwise: a chain of elementwise ops as one node (made by passes/fuse_pointwise.cc).
//
// Encoding (attributes):
//  - ints `code`: the instructions in order, each as [opcode, dtype, n, ref_1 .. ref_n]. opcode
//    is a PwOp (ops/fused_pointwise.h), dtype the DType of the result, n the operand count
//    (pw_arity). A ref r < num_inputs names node input r; otherwise instruction r - num_inputs,
//    which must come earlier. Clip's min/max refs may be -1 (absent).
//  - ints `outputs`: for each node output, the instruction whose value it is.
// Constants (Pow's exponent, Clip's bounds, scalar operands) are plain node inputs, usually
// one-element tensors; inputs broadcast numpy-style. Each instruction's shape is the broadcast
// of its operands' shapes; an output's shape is its instruction's.
//
// Semantics: each instruction is the ONNX op of the same name on values of its operands' types
// (Cast converts to `dtype`; Gelu/GeluTanh are Gelu with approximate none/tanh; Max/Min take two
// operands). float16/bfloat16 values compute in float and are rounded to their type after every
// instruction, exactly where the unfused graph stores each intermediate, so the CPU kernel
// (backends/cpu/fused_pointwise.cc) gives the unfused CPU results bit for bit.
#include "ops/fused_pointwise.h"

#include "ops/op_registry.h"
#include "ops/shape_util.h"

namespace kiln::ops {

const char* pw_op_name(PwOp op) {
  switch (op) {
    case PwOp::kAdd:
      return "Add";
    case PwOp::kSub:
      return "Sub";
    case PwOp::kMul:
      return "Mul";
    case PwOp::kDiv:
      return "Div";
    case PwOp::kNeg:
      return "Neg";
    case PwOp::kAbs:
      return "Abs";
    case PwOp::kRelu:
      return "Relu";
    case PwOp::kSigmoid:
      return "Sigmoid";
    case PwOp::kTanh:
      return "Tanh";
    case PwOp::kErf:
      return "Erf";
    case PwOp::kExp:
      return "Exp";
    case PwOp::kLog:
      return "Log";
    case PwOp::kSqrt:
      return "Sqrt";
    case PwOp::kReciprocal:
      return "Reciprocal";
    case PwOp::kPow:
      return "Pow";
    case PwOp::kCast:
      return "Cast";
    case PwOp::kWhere:
      return "Where";
    case PwOp::kEqual:
      return "Equal";
    case PwOp::kLess:
      return "Less";
    case PwOp::kGreater:
      return "Greater";
    case PwOp::kNot:
      return "Not";
    case PwOp::kAnd:
      return "And";
    case PwOp::kOr:
      return "Or";
    case PwOp::kIsNaN:
      return "IsNaN";
    case PwOp::kClip:
      return "Clip";
    case PwOp::kGelu:
      return "Gelu";
    case PwOp::kGeluTanh:
      return "GeluTanh";
    case PwOp::kMax:
      return "Max";
    case PwOp::kMin:
      return "Min";
  }
  return "?";
}

int pw_arity(PwOp op) {
  switch (op) {
    case PwOp::kNeg:
    case PwOp::kAbs:
    case PwOp::kRelu:
    case PwOp::kSigmoid:
    case PwOp::kTanh:
    case PwOp::kErf:
    case PwOp::kExp:
    case PwOp::kLog:
    case PwOp::kSqrt:
    case PwOp::kReciprocal:
    case PwOp::kCast:
    case PwOp::kNot:
    case PwOp::kIsNaN:
    case PwOp::kGelu:
    case PwOp::kGeluTanh:
      return 1;
    case PwOp::kAdd:
    case PwOp::kSub:
    case PwOp::kMul:
    case PwOp::kDiv:
    case PwOp::kPow:
    case PwOp::kEqual:
    case PwOp::kLess:
    case PwOp::kGreater:
    case PwOp::kAnd:
    case PwOp::kOr:
    case PwOp::kMax:
    case PwOp::kMin:
      return 2;
    case PwOp::kWhere:
    case PwOp::kClip:
      return 3;
  }
  return 0;
}

bool pw_dtype_supported(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kInt32 || t == DType::kInt64 || t == DType::kBool;
}

StatusOr<PwProgram> parse_pw_program(const ir::Node& node) {
  Status err;
  const std::vector<int64_t> code = node.attr_ints("code", {}, &err);
  const std::vector<int64_t> outs = node.attr_ints("outputs", {}, &err);
  KILN_RETURN_IF_ERROR(err);
  PwProgram p;
  p.num_inputs = node.num_inputs();
  auto bad = [&](const std::string& m) { return node.error(StatusCode::kInvalidModel, m); };
  size_t pos = 0;
  while (pos < code.size()) {
    if (code.size() - pos < 3) return bad("truncated instruction in 'code'");
    const int64_t op = code[pos], dt = code[pos + 1], n = code[pos + 2];
    if (op < 0 || op >= kNumPwOps) return bad("unknown opcode " + std::to_string(op));
    PwInstr in;
    in.op = static_cast<PwOp>(op);
    if (dt < 0 || dt > kMaxDType || !pw_dtype_supported(static_cast<DType>(dt))) {
      return bad("unsupported dtype code " + std::to_string(dt));
    }
    in.dtype = static_cast<DType>(dt);
    if (n != pw_arity(in.op) || static_cast<int64_t>(code.size() - pos - 3) < n) {
      return bad(std::string(pw_op_name(in.op)) + " has a wrong operand count");
    }
    const int64_t limit = p.num_inputs + static_cast<int64_t>(p.instrs.size());
    for (int64_t k = 0; k < n; ++k) {
      const int64_t r = code[pos + 3 + static_cast<size_t>(k)];
      const bool optional = in.op == PwOp::kClip && k > 0 && r == -1;
      if (!optional && (r < 0 || r >= limit)) return bad("operand ref out of range");
      if (!optional && r < p.num_inputs && !node.has_input(static_cast<int>(r))) {
        return bad("operand ref names a missing input");
      }
      in.args.push_back(static_cast<int32_t>(r));
    }
    pos += 3 + static_cast<size_t>(n);
    p.instrs.push_back(std::move(in));
    if (p.instrs.size() > 4096) return bad("program too long");
  }
  if (p.instrs.empty()) return bad("empty program");
  if (outs.size() != node.outputs.size())
    return bad("'outputs' must name one instruction per output");
  for (int64_t o : outs) {
    if (o < 0 || o >= static_cast<int64_t>(p.instrs.size())) return bad("output ref out of range");
    p.outputs.push_back(static_cast<int32_t>(o));
  }
  return p;
}

void encode_pw_program(const PwProgram& p, ir::Node* node) {
  ir::Attribute code, outs;
  code.name = "code";
  code.type = ir::AttrType::kInts;
  for (const PwInstr& in : p.instrs) {
    code.ints.push_back(static_cast<int64_t>(in.op));
    code.ints.push_back(static_cast<int64_t>(in.dtype));
    code.ints.push_back(static_cast<int64_t>(in.args.size()));
    for (int32_t a : in.args) code.ints.push_back(a);
  }
  outs.name = "outputs";
  outs.type = ir::AttrType::kInts;
  for (int32_t o : p.outputs) outs.ints.push_back(o);
  std::erase_if(node->attrs,
                [](const ir::Attribute& a) { return a.name == "code" || a.name == "outputs"; });
  node->attrs.push_back(std::move(code));
  node->attrs.push_back(std::move(outs));
}

namespace {

bool is_float16ish_or_32(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}
bool is_int(DType t) {
  return t == DType::kInt32 || t == DType::kInt64;
}

}  // namespace

Status check_pw_types(const PwProgram& p, const std::vector<DType>& input_dtypes) {
  std::vector<DType> t = input_dtypes;
  for (const PwInstr& in : p.instrs) t.push_back(in.dtype);
  for (size_t i = 0; i < p.instrs.size(); ++i) {
    const PwInstr& in = p.instrs[i];
    auto arg = [&](size_t k) {
      const int32_t r = in.args[k];
      return r < 0 ? DType::kUndefined : t[static_cast<size_t>(r)];
    };
    const DType d = in.dtype;
    bool ok = true;
    switch (in.op) {
      case PwOp::kAdd:
      case PwOp::kSub:
      case PwOp::kMul:
      case PwOp::kMax:
      case PwOp::kMin:
        ok = (is_float16ish_or_32(d) || is_int(d)) && arg(0) == d && arg(1) == d;
        break;
      case PwOp::kNeg:
      case PwOp::kAbs:
        ok = (is_float16ish_or_32(d) || is_int(d)) && arg(0) == d;
        break;
      case PwOp::kDiv:
        ok = is_float16ish_or_32(d) && arg(0) == d && arg(1) == d;
        break;
      case PwOp::kRelu:
      case PwOp::kSigmoid:
      case PwOp::kTanh:
      case PwOp::kErf:
      case PwOp::kExp:
      case PwOp::kLog:
      case PwOp::kSqrt:
      case PwOp::kReciprocal:
      case PwOp::kGelu:
      case PwOp::kGeluTanh:
        ok = is_float16ish_or_32(d) && arg(0) == d;
        break;
      case PwOp::kPow:
        ok = is_float16ish_or_32(d) && arg(0) == d && is_float16ish_or_32(arg(1));
        break;
      case PwOp::kCast:
        ok = pw_dtype_supported(arg(0));
        break;
      case PwOp::kWhere:
        ok = arg(0) == DType::kBool && arg(1) == d && arg(2) == d;
        break;
      case PwOp::kEqual:
      case PwOp::kLess:
      case PwOp::kGreater:
        ok = d == DType::kBool && arg(0) == arg(1) && pw_dtype_supported(arg(0)) &&
             (in.op == PwOp::kEqual || arg(0) != DType::kBool);
        break;
      case PwOp::kNot:
        ok = d == DType::kBool && arg(0) == DType::kBool;
        break;
      case PwOp::kAnd:
      case PwOp::kOr:
        ok = d == DType::kBool && arg(0) == DType::kBool && arg(1) == DType::kBool;
        break;
      case PwOp::kIsNaN:
        ok = d == DType::kBool && is_float16ish_or_32(arg(0));
        break;
      case PwOp::kClip:
        ok = is_float16ish_or_32(d) && arg(0) == d && (in.args[1] < 0 || arg(1) == d) &&
             (in.args[2] < 0 || arg(2) == d);
        break;
    }
    if (!ok) {
      std::string msg = std::string("Pointwise instruction ") + std::to_string(i) + " (" +
                        pw_op_name(in.op) + " -> " + dtype_name(d) + ") has operand dtypes";
      for (size_t k = 0; k < in.args.size(); ++k) msg += std::string(" ") + dtype_name(arg(k));
      return invalid_argument(msg);
    }
  }
  return Status::Ok();
}

namespace {

Status infer_pointwise(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(PwProgram p, parse_pw_program(ctx.node()));
  std::vector<DType> dts;
  std::vector<ir::Shape> shapes;
  bool dtypes_known = true;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const ir::TypeInfo& t = ctx.input_type(i);
    if (ctx.has_input(i) && t.kind != ir::TypeInfo::Kind::kUnknown && !t.is_tensor()) {
      return ctx.fail("inputs must be tensors");
    }
    dts.push_back(t.is_tensor() ? t.dtype : DType::kUndefined);
    if (dts.back() == DType::kUndefined) dtypes_known = false;
    shapes.push_back(t.is_tensor() ? t.shape : ir::Shape::unknown_rank());
  }
  if (dtypes_known) {
    Status s = check_pw_types(p, dts);
    if (!s.ok()) return ctx.fail(s.message());
  }
  for (const PwInstr& in : p.instrs) {
    ir::Shape s = ir::Shape::of({});
    for (int32_t r : in.args) {
      if (r < 0) continue;
      StatusOr<ir::Shape> b = broadcast_shapes(s, shapes[static_cast<size_t>(r)]);
      if (!b.ok()) return ctx.fail(b.status().message());
      s = std::move(b).value();
    }
    shapes.push_back(std::move(s));
  }
  for (size_t o = 0; o < p.outputs.size(); ++o) {
    const size_t k = static_cast<size_t>(p.outputs[o]);
    ctx.set_output(static_cast<int>(o),
                   ir::TypeInfo::tensor(p.instrs[k].dtype, shapes[p.num_inputs + k]));
  }
  return Status::Ok();
}

}  // namespace

void register_fused_pointwise_ops(OpRegistry& r) {
  r.add(make_op_def(ir::kKilnDomain, std::string(kPointwise), 1, 64, 1, 64, infer_pointwise));
}

}  // namespace kiln::ops
