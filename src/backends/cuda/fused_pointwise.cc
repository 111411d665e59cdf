// CUDA kernel of kiln.Pointwise: the program becomes CUDA C++ (codegen/pointwise_codegen.cc),
// compiled with NVRTC for the current device's architecture and loaded with
// cudaLibraryLoadData. The build compiles each node's kernel and stores the CUBIN in the node
// (it travels in the engine); a node without one for this GPU (rank unknown at build time) is
// compiled at its first run. Loading happens once per distinct program and device, at the node's
// first run (a shape's first run is never captured), cached process-wide under a mutex; later
// runs only fill a parameter block and launch, without synchronizing or allocating device
// memory, so they can be captured in a CUDA graph.
#include <algorithm>
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

// The attributes a build leaves on a kiln.Pointwise node placed on the GPU: the CUBIN of its
// kernel and what it was compiled for ({sm, rank, input dtypes...}).
constexpr const char* kCubinAttr = "cubin";
constexpr const char* kCubinKeyAttr = "cubin_key";

std::vector<int64_t> binary_key(int sm, int rank, const std::vector<DType>& dts) {
  std::vector<int64_t> key = {sm, rank};
  for (DType t : dts) key.push_back(static_cast<int64_t>(t));
  return key;
}

// The CUBIN the build stored on `node` when it was compiled for exactly this key, else null.
const Tensor* embedded_cubin(const ir::Node& node, const std::vector<int64_t>& key) {
  const ir::Attribute* k = node.attr(kCubinKeyAttr);
  const ir::Attribute* c = node.attr(kCubinAttr);
  if (k == nullptr || c == nullptr || k->type != ir::AttrType::kInts ||
      c->type != ir::AttrType::kTensor || k->ints != key || c->t.dtype() != DType::kUInt8 ||
      c->t.rank() != 1 || c->t.numel() == 0) {
    return nullptr;
  }
  return &c->t;
}

// Process-wide cache of loaded kernels, keyed by device, rank, input dtypes and the program's
// attributes (what the generated source depends on). A kernel comes from the CUBIN the build
// stored in the node when it matches this GPU, else NVRTC compiles it here. Entries live as long
// as the process.
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
  int major = 0, minor = 0, sms = 0;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  KILN_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int sm = major * 10 + minor;
  std::vector<char> compiled;
  const void* image = nullptr;
  if (const Tensor* cubin = embedded_cubin(node, binary_key(sm, rank, dts))) {
    image = cubin->raw();
  } else {
    KILN_ASSIGN_OR_RETURN(compiled, nvrtc_compile_cubin(pointwise_cuda_source(p, dts, rank), sm));
    image = compiled.data();
  }
  auto c = std::make_unique<Compiled>();
  c->sm_count = sms;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaLibraryLoadData(&c->library, image, nullptr, nullptr, 0, nullptr, nullptr, 0));
  KILN_CUDA_RETURN_IF_ERROR(cudaLibraryGetKernel(&c->k32, c->library, kPointwiseKernel32));
  KILN_CUDA_RETURN_IF_ERROR(cudaLibraryGetKernel(&c->k64, c->library, kPointwiseKernel64));
  const Compiled* out = c.get();
  cache.emplace(std::move(key), std::move(c));
  return out;
}

// At build time: compiles the node's kernel for sm_<sm> at the rank and input dtypes type
// inference gave it, and stores the CUBIN in the node (so loading the engine runs no compiler).
// A node whose rank is unknown is left to compile at its first run.
Status pointwise_embed(ir::Node& node, int sm) {
  KILN_ASSIGN_OR_RETURN(ops::PwProgram p, ops::parse_pw_program(node));
  std::vector<DType> dts;
  for (const ir::Value* v : node.inputs) {
    if (v == nullptr || !v->type.is_tensor()) return Status::Ok();
    dts.push_back(v->type.dtype);
  }
  const ir::Value* y = node.outputs.empty() ? nullptr : node.outputs[0];
  if (y == nullptr || !y->type.is_tensor() || !y->type.shape.rank_known) return Status::Ok();
  const int rank = y->type.shape.rank();
  if (rank > kMaxRank) return Status::Ok();
  // Identical programs (every layer of a transformer) compile once per process.
  static std::mutex mu;
  static std::map<std::pair<int, std::string>, std::vector<char>> built;
  std::vector<char> cubin;
  {
    std::string source = pointwise_cuda_source(p, dts, rank);
    std::lock_guard<std::mutex> lock(mu);
    auto key = std::make_pair(sm, std::move(source));
    auto it = built.find(key);
    if (it == built.end()) {
      KILN_ASSIGN_OR_RETURN(std::vector<char> fresh, nvrtc_compile_cubin(key.second, sm));
      if (built.size() >= 1024) built.clear();
      it = built.emplace(std::move(key), std::move(fresh)).first;
    }
    cubin = it->second;
  }
  KILN_ASSIGN_OR_RETURN(Tensor t,
                        Tensor::create(DType::kUInt8, {static_cast<int64_t>(cubin.size())}));
  std::copy(cubin.begin(), cubin.end(), static_cast<char*>(t.mutable_raw()));
  std::erase_if(node.attrs, [](const ir::Attribute& a) {
    return a.name == kCubinAttr || a.name == kCubinKeyAttr;
  });
  ir::Attribute key;
  key.name = kCubinKeyAttr;
  key.type = ir::AttrType::kInts;
  key.ints = binary_key(sm, rank, dts);
  node.attrs.push_back(std::move(key));
  ir::Attribute bin;
  bin.name = kCubinAttr;
  bin.type = ir::AttrType::kTensor;
  bin.t = std::move(t);
  node.attrs.push_back(std::move(bin));
  return Status::Ok();
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
  KernelDef def{ir::kKilnDomain, ops::kPointwise, pointwise_supports, pointwise_run};
  def.embed = pointwise_embed;
  r.add(def);
}

}  // namespace kiln::cuda
