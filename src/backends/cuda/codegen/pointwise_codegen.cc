// Code generation for kiln.Pointwise (see pointwise_codegen.h).
#include "backends/cuda/codegen/pointwise_codegen.h"

#include <nvrtc.h>

#include <sstream>

namespace kiln::cuda {
namespace {

using ops::PwInstr;
using ops::PwOp;

bool is_float_class(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// Helpers every generated kernel starts with.
constexpr const char* kPrelude = R"(
typedef long long i64;
typedef unsigned long long u64;
__device__ __forceinline__ float kiln_h2f(unsigned short h) {
  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f;
}
__device__ __forceinline__ unsigned short kiln_f2h(float f) {
  unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h;
}
__device__ __forceinline__ float kiln_bf2f(unsigned short b) {
  return __int_as_float(((int)b) << 16);
}
__device__ __forceinline__ unsigned short kiln_f2bf(float f) {
  // Round to nearest even; NaN stays a quiet NaN.
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
__device__ __forceinline__ float kiln_round_h(float f) { return kiln_h2f(kiln_f2h(f)); }
__device__ __forceinline__ float kiln_round_bf(float f) { return kiln_bf2f(kiln_f2bf(f)); }
__device__ __forceinline__ i64 kiln_f2i(float f) {
  if (f != f) return 0;
  const double t = trunc((double)f);
  if (t <= -9223372036854775808.0) return (i64)0x8000000000000000ull;
  if (t >= 9223372036854775808.0) return (i64)0x7fffffffffffffffll;
  return (i64)t;
}
__device__ __forceinline__ i64 kiln_wrap32(u64 v) { return (i64)(int)(unsigned int)v; }
__device__ __forceinline__ float kiln_tanh(float x) { return tanhf(x); }
)";

std::string reg(int32_t r) {
  return "v" + std::to_string(r);
}

// Wraps an expression of the instruction's class to its dtype (rounding / width).
std::string finish(const std::string& e, DType d) {
  switch (d) {
    case DType::kFloat16:
      return "kiln_round_h(" + e + ")";
    case DType::kBFloat16:
      return "kiln_round_bf(" + e + ")";
    case DType::kInt32:
      return "kiln_wrap32((u64)(" + e + "))";
    case DType::kBool:
      return "(i64)((" + e + ") != 0)";
    default:
      return e;
  }
}

std::string instr_expr(const PwInstr& in, const std::vector<DType>& slot_dt) {
  auto a = [&](size_t k) { return reg(in.args[k]); };
  const bool f = is_float_class(in.dtype);
  const DType d = in.dtype;
  auto wrap = [&](const std::string& e) { return finish(e, d); };
  switch (in.op) {
    case PwOp::kAdd:
      return f ? wrap(a(0) + " + " + a(1)) : wrap("(u64)" + a(0) + " + (u64)" + a(1));
    case PwOp::kSub:
      return f ? wrap(a(0) + " - " + a(1)) : wrap("(u64)" + a(0) + " - (u64)" + a(1));
    case PwOp::kMul:
      return f ? wrap(a(0) + " * " + a(1)) : wrap("(u64)" + a(0) + " * (u64)" + a(1));
    case PwOp::kDiv:
      return wrap(a(0) + " / " + a(1));
    case PwOp::kNeg:
      return f ? wrap("-" + a(0)) : wrap("(u64)0 - (u64)" + a(0));
    case PwOp::kAbs:
      return f ? wrap("fabsf(" + a(0) + ")")
               : wrap("(" + a(0) + " < 0 ? (u64)0 - (u64)" + a(0) + " : (u64)" + a(0) + ")");
    case PwOp::kMax:
      return f ? wrap("((" + a(0) + " > " + a(1) + " || " + a(0) + " != " + a(0) + ") ? " + a(0) +
                      " : " + a(1) + ")")
               : "(" + a(0) + " > " + a(1) + " ? " + a(0) + " : " + a(1) + ")";
    case PwOp::kMin:
      return f ? wrap("((" + a(0) + " < " + a(1) + " || " + a(0) + " != " + a(0) + ") ? " + a(0) +
                      " : " + a(1) + ")")
               : "(" + a(0) + " < " + a(1) + " ? " + a(0) + " : " + a(1) + ")";
    case PwOp::kPow:
      return wrap("(" + a(1) + " == 2.f ? " + a(0) + " * " + a(0) + " : powf(" + a(0) + ", " +
                  a(1) + "))");
    case PwOp::kRelu:
      return wrap("(" + a(0) + " < 0.f ? 0.f : " + a(0) + ")");
    case PwOp::kSigmoid:
      return wrap("(1.f / (1.f + expf(-" + a(0) + ")))");
    case PwOp::kTanh:
      return wrap("kiln_tanh(" + a(0) + ")");
    case PwOp::kErf:
      return wrap("erff(" + a(0) + ")");
    case PwOp::kExp:
      return wrap("expf(" + a(0) + ")");
    case PwOp::kLog:
      return wrap("logf(" + a(0) + ")");
    case PwOp::kSqrt:
      return wrap("sqrtf(" + a(0) + ")");
    case PwOp::kReciprocal:
      return wrap("(1.f / " + a(0) + ")");
    case PwOp::kGelu:
      return wrap("(0.5f * " + a(0) + " * (1.f + erff(" + a(0) + " * 0.7071067811865476f)))");
    case PwOp::kGeluTanh:
      return wrap("(0.5f * " + a(0) + " * (1.f + kiln_tanh(0.7978845608028654f * (" + a(0) +
                  " + 0.044715f * " + a(0) + " * " + a(0) + " * " + a(0) + "))))");
    case PwOp::kClip: {
      std::string e = a(0);
      if (in.args[1] >= 0) e = "(" + e + " < " + a(1) + " ? " + a(1) + " : " + e + ")";
      if (in.args[2] >= 0) {
        e = "kiln_clip_hi(" + e + ", " + a(2) + ")";
      }
      return wrap(e);
    }
    case PwOp::kWhere:
      return "(" + a(0) + " ? " + a(1) + " : " + a(2) + ")";
    case PwOp::kCast: {
      const bool from_f = is_float_class(slot_dt[static_cast<size_t>(in.args[0])]);
      if (f) return wrap(from_f ? a(0) : "(float)" + a(0));
      if (from_f) {
        if (d == DType::kBool) return "(i64)(" + a(0) + " != 0.f)";
        return finish("kiln_f2i(" + a(0) + ")", d);
      }
      return finish("(u64)" + a(0), d);
    }
    case PwOp::kEqual:
      return "(i64)(" + a(0) + " == " + a(1) + ")";
    case PwOp::kLess:
      return "(i64)(" + a(0) + " < " + a(1) + ")";
    case PwOp::kGreater:
      return "(i64)(" + a(0) + " > " + a(1) + ")";
    case PwOp::kNot:
      return "(i64)(" + a(0) + " == 0)";
    case PwOp::kAnd:
      return "(i64)(" + a(0) + " != 0 && " + a(1) + " != 0)";
    case PwOp::kOr:
      return "(i64)(" + a(0) + " != 0 || " + a(1) + " != 0)";
    case PwOp::kIsNaN:
      return "(i64)(" + a(0) + " != " + a(0) + ")";
  }
  return "0";
}

std::string load_expr(DType t, const std::string& ptr, const std::string& off) {
  switch (t) {
    case DType::kFloat32:
      return "((const float*)" + ptr + ")[" + off + "]";
    case DType::kFloat16:
      return "kiln_h2f(((const unsigned short*)" + ptr + ")[" + off + "])";
    case DType::kBFloat16:
      return "kiln_bf2f(((const unsigned short*)" + ptr + ")[" + off + "])";
    case DType::kInt32:
      return "(i64)((const int*)" + ptr + ")[" + off + "]";
    case DType::kInt64:
      return "((const i64*)" + ptr + ")[" + off + "]";
    case DType::kBool:
      return "(i64)(((const unsigned char*)" + ptr + ")[" + off + "] != 0)";
    default:
      return "0";
  }
}

std::string store_stmt(DType t, const std::string& ptr, const std::string& v) {
  switch (t) {
    case DType::kFloat32:
      return "((float*)" + ptr + ")[i] = " + v + ";";
    case DType::kFloat16:
      return "((unsigned short*)" + ptr + ")[i] = kiln_f2h(" + v + ");";
    case DType::kBFloat16:
      return "((unsigned short*)" + ptr + ")[i] = kiln_f2bf(" + v + ");";
    case DType::kInt32:
      return "((int*)" + ptr + ")[i] = (int)" + v + ";";
    case DType::kInt64:
      return "((i64*)" + ptr + ")[i] = " + v + ";";
    case DType::kBool:
      return "((unsigned char*)" + ptr + ")[i] = (unsigned char)(" + v + " != 0);";
    default:
      return ";";
  }
}

}  // namespace

std::string pointwise_cuda_source(const ops::PwProgram& p, const std::vector<DType>& input_dtypes,
                                  int rank) {
  const int ni = p.num_inputs;
  const int no = static_cast<int>(p.outputs.size());
  std::ostringstream s;
  s << kPrelude;
  s << "__device__ __forceinline__ float kiln_clip_hi(float x, float h) { return x > h ? h : x; "
       "}\n";
  s << "struct KilnParams {\n  i64 numel;\n";
  if (rank > 0) s << "  i64 dims[" << rank << "];\n";
  if (rank > 0 && ni > 0) s << "  i64 strides[" << ni * rank << "];\n";
  if (ni > 0) s << "  const void* in[" << ni << "];\n";
  s << "  void* out[" << no << "];\n};\n";
  s << "template <typename I>\n__device__ __forceinline__ void kiln_body(const KilnParams& p) {\n";
  s << "  const I n = (I)p.numel;\n";
  s << "  for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < n;\n"
       "       i += (I)gridDim.x * (I)blockDim.x) {\n";
  // Broadcast offsets.
  for (int k = 0; k < ni; ++k) s << "    I o" << k << " = 0;\n";
  if (rank > 0) {
    s << "    I rem = i;\n";
    for (int d = rank - 1; d >= 0; --d) {
      s << "    { const I c = rem % (I)p.dims[" << d << "]; rem /= (I)p.dims[" << d << "];";
      for (int k = 0; k < ni; ++k)
        s << " o" << k << " += c * (I)p.strides[" << k * rank + d << "];";
      s << " }\n";
    }
  }
  std::vector<DType> slot_dt = input_dtypes;
  for (const PwInstr& in : p.instrs) slot_dt.push_back(in.dtype);
  for (int k = 0; k < ni; ++k) {
    const DType t = input_dtypes[static_cast<size_t>(k)];
    if (t == DType::kUndefined) continue;
    s << "    const " << (is_float_class(t) ? "float" : "i64") << " " << reg(k) << " = "
      << load_expr(t, "p.in[" + std::to_string(k) + "]", "o" + std::to_string(k)) << ";\n";
  }
  for (size_t k = 0; k < p.instrs.size(); ++k) {
    const PwInstr& in = p.instrs[k];
    s << "    const " << (is_float_class(in.dtype) ? "float" : "i64") << " "
      << reg(ni + static_cast<int32_t>(k)) << " = " << instr_expr(in, slot_dt) << ";\n";
  }
  for (int o = 0; o < no; ++o) {
    const int32_t k = p.outputs[static_cast<size_t>(o)];
    s << "    "
      << store_stmt(p.instrs[static_cast<size_t>(k)].dtype, "p.out[" + std::to_string(o) + "]",
                    reg(ni + k))
      << "\n";
  }
  s << "  }\n}\n";
  s << "extern \"C\" __global__ void " << kPointwiseKernel32
    << "(const KilnParams p) { kiln_body<unsigned int>(p); }\n";
  s << "extern \"C\" __global__ void " << kPointwiseKernel64
    << "(const KilnParams p) { kiln_body<i64>(p); }\n";
  return s.str();
}

StatusOr<std::vector<char>> nvrtc_compile_cubin(const std::string& source, int arch) {
  nvrtcProgram prog = nullptr;
  nvrtcResult r =
      nvrtcCreateProgram(&prog, source.c_str(), "kiln_pointwise.cu", 0, nullptr, nullptr);
  if (r != NVRTC_SUCCESS) {
    return Status(StatusCode::kInternal,
                  std::string("nvrtcCreateProgram: ") + nvrtcGetErrorString(r));
  }
  const std::string arch_opt = "--gpu-architecture=sm_" + std::to_string(arch);
  const char* opts[] = {arch_opt.c_str(), "-default-device", "--std=c++17"};
  r = nvrtcCompileProgram(prog, 3, opts);
  if (r != NVRTC_SUCCESS) {
    size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    if (n > 0) nvrtcGetProgramLog(prog, log.data());
    nvrtcDestroyProgram(&prog);
    return Status(StatusCode::kInternal,
                  std::string("NVRTC failed to compile a Pointwise kernel: ") + log);
  }
  size_t size = 0;
  r = nvrtcGetCUBINSize(prog, &size);
  std::vector<char> cubin(size);
  if (r == NVRTC_SUCCESS) r = nvrtcGetCUBIN(prog, cubin.data());
  nvrtcDestroyProgram(&prog);
  if (r != NVRTC_SUCCESS) {
    return Status(StatusCode::kInternal, std::string("nvrtcGetCUBIN: ") + nvrtcGetErrorString(r));
  }
  return cubin;
}

}  // namespace kiln::cuda
