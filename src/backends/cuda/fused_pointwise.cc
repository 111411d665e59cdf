// CUDA kernel of kiln.Pointwise: the program becomes CUDA C++ (codegen/pointwise_codegen.cc),
// compiled with NVRTC for the current device's architecture and loaded with
// cudaLibraryLoadData. Compilation happens once per distinct program source and device, at the
// node's first run (a shape's first run is never captured), and is cached process-wide under a
// mutex; later runs only fill a parameter block and launch, without
// synchronizing or allocating device memory, so they can be captured in a CUDA graph.
#include <map>
#include <memory>
#include <mutex>

#include "backends/cuda/codegen/pointwise_codegen.h"
#include "backends/cuda/cuda_util.h"
#include "backends/cuda/kernel.h"
#include "ops/fused_pointwise.h"
#include "ops/shape_util.h"

namespace kiln::cuda {
namespace {

constexpr int kMaxRank = 8;
constexpr int kThreads = 256;
constexpr size_t kMaxParamBytes = 4096;  // kernel parameters, every architecture

struct Compiled {
  cudaLibrary_t library = nullptr;
  cudaKernel_t k32 = nullptr;
  cudaKernel_t k64 = nullptr;
  int sm_count = 0;
};

// Process-wide cache of loaded kernels, keyed by device, rank, input dtypes and the program's
// attributes (what the generated source depends on). Entries live as long as the process.
StatusOr<const Compiled*> compiled_kernel(const ops::PwProgram& p, const std::vector<DType>& dts,
                                          int rank, const ir::Node& node) {
  static std::mutex mu;
  static std::map<std::vector<int64_t>, std::unique_ptr<Compiled>> cache;
  int device = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  std::vector<int64_t> key = {device, rank};
  for (DType t : dts) key.push_back(static_cast<int64_t>(t));
  key.push_back(-1);
  for (int64_t v : node.attr_ints("code")) key.push_back(v);
  key.push_back(-1);
  for (int64_t v : node.attr_ints("outputs")) key.push_back(v);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.get();
  const std::string source = pointwise_cuda_source(p, dts, rank);
  int major = 0, minor = 0, sms = 0;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  KILN_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  KILN_ASSIGN_OR_RETURN(std::vector<char> cubin, nvrtc_compile_cubin(source, major * 10 + minor));
  auto c = std::make_unique<Compiled>();
  c->sm_count = sms;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaLibraryLoadData(&c->library, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  KILN_CUDA_RETURN_IF_ERROR(cudaLibraryGetKernel(&c->k32, c->library, kPointwiseKernel32));
  KILN_CUDA_RETURN_IF_ERROR(cudaLibraryGetKernel(&c->k64, c->library, kPointwiseKernel64));
  const Compiled* out = c.get();
  cache.emplace(std::move(key), std::move(c));
  return out;
}

std::string pointwise_supports(const ir::Node& node) {
  StatusOr<ops::PwProgram> p = ops::parse_pw_program(node);
  if (!p.ok()) return p.status().message();
  std::vector<DType> dts;
  for (int i = 0; i < node.num_inputs(); ++i) {
    const ir::Value* v = node.inputs[static_cast<size_t>(i)];
    if (v == nullptr || !v->type.is_tensor() || !ops::pw_dtype_supported(v->type.dtype)) {
      return "input " + std::to_string(i) +
             " must be a float32/float16/bfloat16/int32/int64/bool "
             "tensor";
    }
    if (v->type.shape.rank_known && v->type.shape.rank() > kMaxRank) return "rank above 8";
    dts.push_back(v->type.dtype);
  }
  Status s = ops::check_pw_types(*p, dts);
  if (!s.ok()) return s.message();
  if (pointwise_param_words(kMaxRank, p->num_inputs, static_cast<int>(node.outputs.size())) * 8 >
      kMaxParamBytes) {
    return "too many inputs and outputs for one kernel's parameters";
  }
  for (const ir::Value* v : node.outputs) {
    if (v == nullptr) return "every output must be used";
    if (v->type.is_tensor() && v->type.shape.rank_known && v->type.shape.rank() > kMaxRank) {
      return "rank above 8";
    }
  }
  return "";
}

Status pointwise_run(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ops::PwProgram p, ops::parse_pw_program(ctx.node()));
  std::vector<DType> dts;
  std::vector<int64_t> full;
  for (int i = 0; i < p.num_inputs; ++i) {
    const DeviceTensor& t = ctx.input(i);
    if (!ops::pw_dtype_supported(t.dtype)) return ctx.unsupported_type(t.dtype);
    dts.push_back(t.dtype);
    StatusOr<std::vector<int64_t>> b = broadcast_shapes(full, t.shape);
    if (!b.ok()) return ctx.invalid(b.status().message());
    full = std::move(b).value();
  }
  {
    Status s = ops::check_pw_types(p, dts);
    if (!s.ok()) return ctx.invalid(s.message());
  }
  const int rank = static_cast<int>(full.size());
  if (rank > kMaxRank) return ctx.unsupported("rank above 8");
  int64_t numel = 1;
  for (int64_t d : full) numel *= d;
  // Each output spans the broadcast of all inputs (as the pass builds them).
  {
    std::vector<std::vector<int64_t>> shapes;
    for (int i = 0; i < p.num_inputs; ++i) shapes.push_back(ctx.input(i).shape);
    for (const ops::PwInstr& in : p.instrs) {
      std::vector<int64_t> s;
      for (int32_t a : in.args) {
        if (a < 0) continue;
        StatusOr<std::vector<int64_t>> b = broadcast_shapes(s, shapes[static_cast<size_t>(a)]);
        if (!b.ok()) return ctx.invalid(b.status().message());
        s = std::move(b).value();
      }
      shapes.push_back(std::move(s));
    }
    for (int32_t o : p.outputs) {
      if (shapes[static_cast<size_t>(p.num_inputs + o)] != full) {
        return ctx.unsupported("an output does not span the broadcast of all inputs");
      }
    }
  }
  std::vector<DeviceTensor*> outs;
  for (size_t o = 0; o < p.outputs.size(); ++o) {
    KILN_ASSIGN_OR_RETURN(
        DeviceTensor * y,
        ctx.allocate(static_cast<int>(o), p.instrs[static_cast<size_t>(p.outputs[o])].dtype, full));
    outs.push_back(y);
  }
  if (numel == 0) return Status::Ok();

  if (pointwise_param_words(rank, p.num_inputs, static_cast<int>(outs.size())) * 8 >
      kMaxParamBytes) {
    return ctx.unsupported("too many inputs and outputs for one kernel's parameters");
  }
  KILN_ASSIGN_OR_RETURN(const Compiled* k, compiled_kernel(p, dts, rank, ctx.node()));

  // The parameter block (layout in pointwise_codegen.h).
  std::vector<uint64_t> params;
  params.reserve(pointwise_param_words(rank, p.num_inputs, static_cast<int>(outs.size())));
  params.push_back(static_cast<uint64_t>(numel));
  for (int64_t d : full) params.push_back(static_cast<uint64_t>(d));
  for (int i = 0; i < p.num_inputs; ++i) {
    const std::vector<int64_t>& s = ctx.input(i).shape;
    std::vector<uint64_t> st(static_cast<size_t>(rank), 0);
    int64_t acc = 1;
    for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
      const int fd = rank - static_cast<int>(s.size()) + d;
      st[static_cast<size_t>(fd)] = s[static_cast<size_t>(d)] == 1 ? 0 : static_cast<uint64_t>(acc);
      acc *= s[static_cast<size_t>(d)];
    }
    params.insert(params.end(), st.begin(), st.end());
  }
  for (int i = 0; i < p.num_inputs; ++i) {
    params.push_back(reinterpret_cast<uint64_t>(ctx.input(i).data));
  }
  for (DeviceTensor* y : outs) params.push_back(reinterpret_cast<uint64_t>(y->data));

  const bool small = numel < (int64_t{1} << 31);
  const int64_t want = (numel + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(std::max(k->sm_count, 1)) * 32;
  const unsigned blocks = static_cast<unsigned>(std::min(want, cap));
  void* args[] = {params.data()};
  KILN_CUDA_RETURN_IF_ERROR(cudaLaunchKernel(reinterpret_cast<const void*>(small ? k->k32 : k->k64),
                                             dim3(blocks), dim3(kThreads), args, 0, ctx.stream()));
  return ctx.check_launch("Pointwise");
}

}  // namespace

void register_fused_pointwise_kernels(KernelRegistry& r) {
  r.add({ir::kKilnDomain, ops::kPointwise, pointwise_supports, pointwise_run});
}

}  // namespace kiln::cuda
