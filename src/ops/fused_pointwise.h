// kiln.Pointwise: a chain of elementwise ops run as one node. See ops/fused_pointwise.cc for the
// program encoding.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

inline constexpr std::string_view kPointwise = "Pointwise";

// Instruction opcodes (values are part of the engine format: append only).
enum class PwOp : int32_t {
  kAdd = 0,
  kSub = 1,
  kMul = 2,
  kDiv = 3,
  kNeg = 4,
  kAbs = 5,
  kRelu = 6,
  kSigmoid = 7,
  kTanh = 8,
  kErf = 9,
  kExp = 10,
  kLog = 11,
  kSqrt = 12,
  kReciprocal = 13,
  kPow = 14,
  kCast = 15,
  kWhere = 16,
  kEqual = 17,
  kLess = 18,
  kGreater = 19,
  kNot = 20,
  kAnd = 21,
  kOr = 22,
  kIsNaN = 23,
  kClip = 24,  // x, min, max (-1: absent)
  kGelu = 25,
  kGeluTanh = 26,
  kMax = 27,
  kMin = 28,
};
inline constexpr int32_t kNumPwOps = 29;

struct PwInstr {
  PwOp op = PwOp::kAdd;
  DType dtype = DType::kUndefined;  // the result's type
  std::vector<int32_t> args;        // < num_inputs: node input; else instruction + num_inputs
};

struct PwProgram {
  int num_inputs = 0;
  std::vector<PwInstr> instrs;
  std::vector<int32_t> outputs;  // instruction index of each node output
};

const char* pw_op_name(PwOp op);
// Operand count of an opcode.
int pw_arity(PwOp op);
// The dtypes the program handles: float32, float16, bfloat16, int32, int64, bool.
bool pw_dtype_supported(DType t);

// Decodes and checks the node's `code` / `outputs` attributes against its input count.
StatusOr<PwProgram> parse_pw_program(const ir::Node& node);
// Writes `code` and `outputs` attributes on the node (replacing earlier ones).
void encode_pw_program(const PwProgram& p, ir::Node* node);
// Checks every instruction's operand dtypes (input_dtypes: one per node input). Errors name the
// instruction.
Status check_pw_types(const PwProgram& p, const std::vector<DType>& input_dtypes);

}  // namespace kiln::ops
