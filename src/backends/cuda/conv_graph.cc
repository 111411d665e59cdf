// Forward convolution through cuDNN's graph (backend) API.
//
// cuDNN 9's legacy convolution calls rebuild an execution plan on the host at every call
// (hundreds of microseconds each). Here the plan is built once per case and kept:
//   operation graph: CONVOLUTION_FORWARD (float32 compute, cross-correlation) into a virtual
//     float32 tensor, then pointwise ADD z, ADD bias ([1, M, 1, 1], broadcast), RELU_FWD, the last
//     op writing y; or the convolution alone into y ("conv-only").
//   engines: heuristic mode A (FALLBACK when A gives nothing usable); a configuration is usable
//     when it is deterministic, does not down-convert inputs or reduce in lower precision, is
//     not runtime-compiled (NVRTC at finalize; KILN_CONV_GRAPH=rtc allows those) and its plan
//     finalizes within the workspace limit. The epilogue graph is tried first; when no engine
//     takes it, the conv-only graph runs and our epilogue kernel follows.
//   cache: key = handle, dtype, TF32, layout, shapes, pads/strides/dilations, epilogue form,
//     pointer alignments, tactic, workspace limit → the plan (or "not taken"). Plans are tied to
//     the cuDNN handle they were finalized with and are not shared between threads (each
//     execution context has its own handle); release_conv_graph_plans drops a handle's plans.
//     A hit costs a variant pack (kept while the pointers stay the same) and cudnnBackendExecute.
// A configuration is named by a tactic (backend/tactic.h, kCudnnGraph): the engine's global
// index, whether the epilogue is in the graph, and its knob choices.
// KILN_CONV_GRAPH=0 turns the path off (the legacy path then runs every convolution).
#include "backends/cuda/conv_graph.h"

#include <cudnn.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>

#include "backend/tactic.h"
#include "backends/cuda/cuda_util.h"

namespace kiln::cuda {
namespace {

// The enum values the tactic encoding and describe_tactic name (backend/tactic.cc).
static_assert(CUDNN_KNOB_TYPE_TILEK == 13 && CUDNN_KNOB_TYPE_STAGES == 14 &&
                  CUDNN_KNOB_TYPE_KERNEL_CFG == 24 && CUDNN_KNOB_TYPE_TILE_CGA_M == 27,
              "cuDNN knob types changed: update backend/tactic.cc");

enum class Mode { kOff, kOn, kRuntimeCompiled };

Mode graph_mode() {
  static const Mode m = [] {
    const char* v = std::getenv("KILN_CONV_GRAPH");
    if (v != nullptr && std::strcmp(v, "0") == 0) return Mode::kOff;
    if (v != nullptr && std::strcmp(v, "rtc") == 0) return Mode::kRuntimeCompiled;
    return Mode::kOn;
  }();
  return m;
}

// ---- backend descriptors ----

// Owns one backend descriptor.
class Desc {
 public:
  Desc() = default;
  explicit Desc(cudnnBackendDescriptor_t d) : d_(d) {}
  ~Desc() {
    if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(Desc&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  Desc& operator=(Desc&& o) noexcept {
    if (this != &o) {
      if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
      d_ = o.d_;
      o.d_ = nullptr;
    }
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }
  // The descriptor as a one-element array (attributes of type CUDNN_TYPE_BACKEND_DESCRIPTOR).
  const cudnnBackendDescriptor_t* addr() const { return &d_; }
  explicit operator bool() const { return d_ != nullptr; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

std::string last_error_text(cudnnStatus_t s) {
  char buf[512] = {0};
  cudnnGetLastErrorString(buf, sizeof(buf));
  std::string r = cudnnGetErrorString(s);
  if (buf[0] != '\0') r += std::string(": ") + buf;
  return r;
}

// The calls that build a graph or a configuration. An attribute cuDNN does not accept (a wrong
// type or count) is a mistake of ours and becomes `error`; a descriptor cuDNN does not finalize
// means the case is not supported and becomes `refusal`. After either, calls do nothing.
struct Calls {
  Status error;
  std::string refusal;

  bool ok() const { return error.ok() && refusal.empty(); }

  Desc make(cudnnBackendDescriptorType_t type) {
    if (!ok()) return Desc();
    cudnnBackendDescriptor_t d = nullptr;
    const cudnnStatus_t s = cudnnBackendCreateDescriptor(type, &d);
    if (s != CUDNN_STATUS_SUCCESS) {
      error = Status(StatusCode::kInternal, "cudnnBackendCreateDescriptor(" + std::to_string(type) +
                                                ") failed: " + cudnnGetErrorString(s));
      return Desc();
    }
    return Desc(d);
  }
  void set(const Desc& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
           int64_t count, const void* values) {
    if (!ok()) return;
    const cudnnStatus_t s = cudnnBackendSetAttribute(d.get(), name, type, count, values);
    if (s != CUDNN_STATUS_SUCCESS) {
      error = Status(StatusCode::kInternal, "cudnnBackendSetAttribute(attribute " +
                                                std::to_string(name) +
                                                ") failed: " + last_error_text(s));
    }
  }
  void link(const Desc& d, cudnnBackendAttributeName_t name, const Desc& value) {
    set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, value.addr());
  }
  // The handle attributes are deprecated in cuDNN 9 (still read): a cuDNN that only reports the
  // deprecation is not an error.
  void set_handle(const Desc& d, cudnnBackendAttributeName_t name, cudnnHandle_t h) {
    if (!ok()) return;
    const cudnnStatus_t s = cudnnBackendSetAttribute(d.get(), name, CUDNN_TYPE_HANDLE, 1, &h);
    if (s != CUDNN_STATUS_SUCCESS && s != CUDNN_STATUS_DEPRECATED) {
      error = Status(StatusCode::kInternal,
                     "cudnnBackendSetAttribute(handle) failed: " + last_error_text(s));
    }
  }
  void finalize(const Desc& d, const char* what) {
    if (!ok()) return;
    const cudnnStatus_t s = cudnnBackendFinalize(d.get());
    if (s != CUDNN_STATUS_SUCCESS) refusal = std::string(what) + ": " + last_error_text(s);
  }
};

// ---- the case ----

constexpr int64_t kUidX = 1, kUidW = 2, kUidY = 3, kUidB = 4, kUidZ = 5, kUidVirtual = 10;

// Strides of channels-first `dims` [N, C, s...]: packed, or stored channels-last.
std::vector<int64_t> layout_strides(const std::vector<int64_t>& dims, bool channels_last) {
  std::vector<int64_t> s(dims.size(), 1);
  if (!channels_last) {
    for (size_t i = dims.size() - 1; i-- > 0;) s[i] = s[i + 1] * dims[i + 1];
    return s;
  }
  int64_t run = dims[1];  // C innermost
  for (size_t i = dims.size(); i-- > 2;) {
    s[i] = run;
    run *= dims[i];
  }
  s[0] = run;
  return s;
}

// Largest power of two (up to 16) that divides the address.
int64_t alignment_of(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int64_t a = 1;
  while (a < 16 && (v & static_cast<uintptr_t>(a)) == 0) a *= 2;
  return a;
}

// The case as cuDNN sees it: 1-D lifted to 2-D (H = 1), strides from the layout.
struct Case {
  cudnnDataType_t io = CUDNN_DATA_HALF;
  std::vector<int64_t> x, w, y, b;  // dims
  std::vector<int64_t> xs, ws, ys, bs;
  std::vector<int64_t> pads, strides, dilations;
  bool bias = false, z = false, relu = false;
  int64_t align[5] = {16, 16, 16, 16, 16};  // x, w, y, b, z
  bool tail() const { return bias || z || relu; }
};

bool make_case(const ConvGraphArgs& a, Case* c) {
  const size_t rank = a.x_shape.size();
  if (rank < 3 || rank > 5 || a.w_shape.size() != rank || a.y_shape.size() != rank) return false;
  if (a.channels_last && rank != 4) return false;
  const size_t n = rank - 2;
  if (a.pads.size() != n || a.strides.size() != n || a.dilations.size() != n) return false;
  c->x = a.x_shape;
  c->w = a.w_shape;
  c->y = a.y_shape;
  c->pads = a.pads;
  c->strides = a.strides;
  c->dilations = a.dilations;
  if (rank == 3) {
    c->x.insert(c->x.begin() + 2, 1);
    c->w.insert(c->w.begin() + 2, 1);
    c->y.insert(c->y.begin() + 2, 1);
    c->pads.insert(c->pads.begin(), 0);
    c->strides.insert(c->strides.begin(), 1);
    c->dilations.insert(c->dilations.begin(), 1);
  }
  c->xs = layout_strides(c->x, a.channels_last);
  c->ws = layout_strides(c->w, a.channels_last);
  c->ys = layout_strides(c->y, a.channels_last);
  c->b.assign(c->y.size(), 1);
  c->b[1] = c->y[1];
  c->bs = layout_strides(c->b, a.channels_last);
  c->io = a.dtype == DType::kFloat16    ? CUDNN_DATA_HALF
          : a.dtype == DType::kBFloat16 ? CUDNN_DATA_BFLOAT16
                                        : CUDNN_DATA_FLOAT;
  c->bias = a.bias != nullptr;
  c->z = a.ep.z != nullptr;
  c->relu = a.ep.act == ops::ConvActivation::kRelu;
  const void* ptrs[5] = {a.x, a.w, a.y, a.bias, a.ep.z};
  const int64_t elem = static_cast<int64_t>(dtype_storage_bytes(a.dtype, 1));
  for (int i = 0; i < 5; ++i) {
    if (ptrs[i] == nullptr) continue;
    c->align[i] = alignment_of(ptrs[i]);
    if (c->align[i] < elem) return false;
  }
  return true;
}

// ---- operation graphs ----

// An operation graph and every descriptor it was made of (kept while plans use it).
struct OpGraph {
  std::vector<Desc> parts;
  Desc graph;  // destroyed first
  bool fused = false;
};

Desc make_tensor(Calls& c, int64_t uid, cudnnDataType_t type, const std::vector<int64_t>& dims,
                 const std::vector<int64_t>& strides, int64_t align, bool is_virtual) {
  Desc d = c.make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t n = static_cast<int64_t>(dims.size());
  c.set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  c.set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, n, dims.data());
  c.set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, n, strides.data());
  c.set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  c.set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  c.set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  c.finalize(d, "tensor");
  return d;
}

// y = x + b (b given) or relu(x), computed in float32.
Desc make_pointwise(Calls& c, std::vector<Desc>* parts, cudnnPointwiseMode_t mode, const Desc& x,
                    const Desc* b, const Desc& y) {
  Desc pw = c.make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
  c.set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  c.set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
  c.finalize(pw, "pointwise descriptor");
  Desc op = c.make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  const float one = 1.f;
  c.link(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
  c.link(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
  if (b != nullptr) c.link(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
  c.link(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
  c.set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one);
  if (b != nullptr) c.set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one);
  c.finalize(op, "pointwise operation");
  parts->push_back(std::move(pw));
  return op;
}

// The convolution, followed (fused) by ADD z, ADD bias, RELU as the case has them.
std::shared_ptr<OpGraph> make_graph(Calls& c, cudnnHandle_t h, const Case& k, bool fused) {
  auto g = std::make_shared<OpGraph>();
  g->fused = fused;
  std::vector<Desc>& parts = g->parts;
  enum Step { kAddZ, kAddBias, kRelu };
  std::vector<Step> steps;
  if (fused) {
    if (k.z) steps.push_back(kAddZ);
    if (k.bias) steps.push_back(kAddBias);
    if (k.relu) steps.push_back(kRelu);
  }
  int64_t next_virtual = kUidVirtual;
  // The output of the op at `i` of the chain: y for the last, else a virtual float32 tensor.
  auto output = [&](size_t i) {
    if (i == steps.size()) return make_tensor(c, kUidY, k.io, k.y, k.ys, k.align[2], false);
    return make_tensor(c, next_virtual++, CUDNN_DATA_FLOAT, k.y, k.ys, 16, true);
  };
  Desc x = make_tensor(c, kUidX, k.io, k.x, k.xs, k.align[0], false);
  Desc w = make_tensor(c, kUidW, k.io, k.w, k.ws, k.align[1], false);
  Desc cur = output(0);
  Desc conv = c.make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t spatial = static_cast<int64_t>(k.pads.size());
  c.set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  c.set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  c.set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
  c.set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, spatial, k.pads.data());
  c.set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, spatial, k.pads.data());
  c.set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, spatial, k.dilations.data());
  c.set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, spatial, k.strides.data());
  c.finalize(conv, "convolution descriptor");
  Desc op = c.make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const float alpha = 1.f, beta = 0.f;
  c.link(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
  c.link(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
  c.link(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, cur);
  c.link(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv);
  c.set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
  c.set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
  c.finalize(op, "convolution operation");
  std::vector<cudnnBackendDescriptor_t> ops = {op.get()};
  parts.push_back(std::move(x));
  parts.push_back(std::move(w));
  parts.push_back(std::move(conv));
  parts.push_back(std::move(op));
  for (size_t i = 0; i < steps.size(); ++i) {
    Desc out = output(i + 1);
    Desc operand;
    if (steps[i] == kAddZ) operand = make_tensor(c, kUidZ, k.io, k.y, k.ys, k.align[4], false);
    if (steps[i] == kAddBias) operand = make_tensor(c, kUidB, k.io, k.b, k.bs, k.align[3], false);
    Desc pop = make_pointwise(c, &parts,
                              steps[i] == kRelu ? CUDNN_POINTWISE_RELU_FWD : CUDNN_POINTWISE_ADD,
                              cur, steps[i] == kRelu ? nullptr : &operand, out);
    ops.push_back(pop.get());
    parts.push_back(std::move(cur));
    if (operand) parts.push_back(std::move(operand));
    parts.push_back(std::move(pop));
    cur = std::move(out);
  }
  parts.push_back(std::move(cur));
  g->graph = c.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  c.set(g->graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
        static_cast<int64_t>(ops.size()), ops.data());
  c.set_handle(g->graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, h);
  c.finalize(g->graph, fused ? "operation graph (with epilogue)" : "operation graph");
  return c.ok() ? g : nullptr;
}

// ---- engine configurations and plans ----

// A finalized execution plan and what it was made of.
struct Plan {
  std::shared_ptr<OpGraph> graph;
  std::vector<Desc> parts;  // engine, knob choices, engine configuration
  Desc plan;
  int64_t workspace = 0;
  bool fused = false;
  int64_t tactic = -1;  // -1 where the configuration cannot be encoded
  // The variant pack of the last run, kept while the pointers stay the same. A plan belongs to
  // one handle, which one thread uses at a time.
  Desc pack;
  std::array<void*, 6> pack_ptrs{};
};

struct Policy {
  bool runtime_compiled = false;
  uint64_t workspace_limit = 0;
};

// Whether the engine's notes allow it: deterministic, inputs not down-converted, no reduction in
// lower precision, not runtime-compiled unless allowed. Notes cuDNN cannot report are taken as
// none (the filter is a preference; the tuner and the tests check the numbers).
bool engine_allowed(cudnnBackendDescriptor_t engine, const Policy& p) {
  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
  int64_t n = 0;
  if (cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                               static_cast<int64_t>(notes.size()), &n,
                               notes.data()) != CUDNN_STATUS_SUCCESS) {
    n = 0;
  }
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(notes.size()); ++i) {
    switch (notes[static_cast<size_t>(i)]) {
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        return false;
      default:
        break;
    }
  }
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
  n = 0;
  if (cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                               static_cast<int64_t>(behavior.size()), &n,
                               behavior.data()) != CUDNN_STATUS_SUCCESS) {
    n = 0;
  }
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(behavior.size()); ++i) {
    if (behavior[static_cast<size_t>(i)] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION &&
        !p.runtime_compiled) {
      return false;
    }
  }
  return true;
}

// What a heuristic's configuration is: its engine and knob choices (engine -1: cuDNN could not
// describe it, so no tactic names it), and whether the policy allows it.
struct ConfigInfo {
  int engine = -1;
  std::vector<backend::CudnnGraphKnob> knobs;
  bool allowed = true;
};

// Requested array sizes are the header's counts, as cuDNN's own frontend asks.
constexpr int64_t kMaxKnobs = CUDNN_KNOB_TYPE_COUNTS;

ConfigInfo inspect(Calls& c, const Desc& cfg, const Policy& p) {
  ConfigInfo info;
  Desc engine = c.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  if (!c.ok()) return info;
  cudnnBackendDescriptor_t raw = engine.get();
  int64_t n = 0, index = -1;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                               &raw) != CUDNN_STATUS_SUCCESS) {
    return info;
  }
  info.allowed = engine_allowed(engine.get(), p);
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1,
                               &n, &index) != CUDNN_STATUS_SUCCESS ||
      index < 0 || index > INT32_MAX) {
    return info;
  }
  std::vector<Desc> choices;
  std::vector<cudnnBackendDescriptor_t> raws;
  for (int64_t i = 0; i < kMaxKnobs; ++i) {
    choices.push_back(c.make(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    raws.push_back(choices.back().get());
  }
  if (!c.ok()) return info;
  int64_t count = 0;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, kMaxKnobs, &count,
                               raws.data()) != CUDNN_STATUS_SUCCESS) {
    return info;
  }
  std::vector<backend::CudnnGraphKnob> knobs;
  for (int64_t i = 0; i < count && i < kMaxKnobs; ++i) {
    cudnnBackendKnobType_t type = CUDNN_KNOB_TYPE_COUNTS;
    int64_t value = 0;
    if (cudnnBackendGetAttribute(raws[static_cast<size_t>(i)], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE,
                                 CUDNN_TYPE_KNOB_TYPE, 1, &n, &type) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(raws[static_cast<size_t>(i)], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE,
                                 CUDNN_TYPE_INT64, 1, &n, &value) != CUDNN_STATUS_SUCCESS) {
      return info;
    }
    knobs.push_back({static_cast<int>(type), value});
  }
  info.engine = static_cast<int>(index);
  info.knobs = std::move(knobs);
  return info;
}

// The plan of `cfg`, or null when cuDNN does not finalize it or it needs more workspace than
// allowed.
std::shared_ptr<Plan> make_plan(Calls& c, cudnnHandle_t h, const std::shared_ptr<OpGraph>& g,
                                Desc cfg, std::vector<Desc> cfg_parts, const ConfigInfo& info,
                                const Policy& p) {
  auto plan = std::make_shared<Plan>();
  plan->plan = c.make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  c.set_handle(plan->plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, h);
  c.link(plan->plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
  if (!c.ok()) return nullptr;
  if (cudnnBackendFinalize(plan->plan.get()) != CUDNN_STATUS_SUCCESS) return nullptr;
  int64_t n = 0, ws = -1;
  if (cudnnBackendGetAttribute(plan->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                               CUDNN_TYPE_INT64, 1, &n, &ws) != CUDNN_STATUS_SUCCESS ||
      ws < 0 || static_cast<uint64_t>(ws) > p.workspace_limit) {
    return nullptr;
  }
  plan->graph = g;
  plan->parts = std::move(cfg_parts);
  plan->parts.push_back(std::move(cfg));
  plan->workspace = ws;
  plan->fused = g->fused;
  plan->tactic = backend::encode_cudnn_graph_tactic(info.engine, g->fused, info.knobs);
  return plan;
}

// Offers the usable plans of graph `g` (of the configurations `accept` takes, when given) to
// `take`, best first by heuristic mode A (FALLBACK when A gave none), until `take` returns false.
void each_plan(Calls& c, cudnnHandle_t h, const std::shared_ptr<OpGraph>& g, const Policy& p,
               const std::function<bool(std::shared_ptr<Plan>)>& take,
               const std::function<bool(const ConfigInfo&)>& accept = nullptr) {
  bool any = false;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    if (any || !c.ok()) return;
    Desc heur = c.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    c.link(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g->graph);
    c.set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (!c.ok()) return;
    if (cudnnBackendFinalize(heur.get()) != CUDNN_STATUS_SUCCESS) continue;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS ||
        count <= 0) {
      continue;
    }
    std::vector<Desc> cfgs;
    std::vector<cudnnBackendDescriptor_t> raws;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.push_back(c.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raws.push_back(cfgs.back().get());
    }
    if (!c.ok()) return;
    if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                 raws.data()) != CUDNN_STATUS_SUCCESS) {
      continue;
    }
    for (int64_t i = 0; i < count && i < static_cast<int64_t>(cfgs.size()); ++i) {
      const ConfigInfo info = inspect(c, cfgs[static_cast<size_t>(i)], p);
      if (!c.ok()) return;
      if (!info.allowed || (accept && !accept(info))) continue;
      std::shared_ptr<Plan> plan =
          make_plan(c, h, g, std::move(cfgs[static_cast<size_t>(i)]), {}, info, p);
      if (!c.ok()) return;
      if (plan == nullptr) continue;
      any = true;
      if (!take(std::move(plan))) return;
    }
  }
}

// The plan a tactic names, or null where it does not apply (another graph form, an engine or
// knob choice cuDNN does not take at this case, a configuration the policy excludes).
std::shared_ptr<Plan> plan_for_tactic(Calls& c, cudnnHandle_t h, const Case& k,
                                      const backend::CudnnGraphTactic& t, const Policy& p) {
  if (t.fused && !k.tail()) return nullptr;
  std::shared_ptr<OpGraph> g = make_graph(c, h, k, t.fused);
  if (g == nullptr) return nullptr;
  if (t.hashed) {  // find the configuration among the heuristic's
    std::shared_ptr<Plan> found;
    each_plan(
        c, h, g, p,
        [&](std::shared_ptr<Plan> plan) {
          found = std::move(plan);
          return false;
        },
        [&](const ConfigInfo& info) {
          return info.engine == t.engine &&
                 backend::cudnn_graph_knob_hash(info.knobs) == t.knob_hash;
        });
    return found;
  }
  // The engine index and knob values come from the engine file: values this cuDNN rejects
  // (another version's engine list) mean the tactic does not apply, not an error.
  auto set_value = [](const Desc& d, cudnnBackendAttributeName_t name,
                      cudnnBackendAttributeType_t type, const void* v) {
    return cudnnBackendSetAttribute(d.get(), name, type, 1, v) == CUDNN_STATUS_SUCCESS;
  };
  std::vector<Desc> parts;
  Desc engine = c.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  const int64_t index = t.engine;
  c.link(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, g->graph);
  if (!c.ok() || !set_value(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, &index) ||
      cudnnBackendFinalize(engine.get()) != CUDNN_STATUS_SUCCESS) {
    return nullptr;
  }
  if (!engine_allowed(engine.get(), p)) return nullptr;
  std::vector<cudnnBackendDescriptor_t> raws;
  for (const backend::CudnnGraphKnob& kn : t.knobs) {
    Desc choice = c.make(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    const auto type = static_cast<cudnnBackendKnobType_t>(kn.type);
    const int64_t value = kn.value;
    if (!c.ok() ||
        !set_value(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, &type) ||
        !set_value(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, &value) ||
        cudnnBackendFinalize(choice.get()) != CUDNN_STATUS_SUCCESS) {
      return nullptr;
    }
    raws.push_back(choice.get());
    parts.push_back(std::move(choice));
  }
  Desc cfg = c.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  c.link(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, engine);
  if (!raws.empty()) {
    c.set(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
          static_cast<int64_t>(raws.size()), raws.data());
  }
  if (!c.ok() || cudnnBackendFinalize(cfg.get()) != CUDNN_STATUS_SUCCESS) return nullptr;
  parts.push_back(std::move(engine));
  ConfigInfo info;
  info.engine = t.engine;
  info.knobs = t.knobs;
  return make_plan(c, h, g, std::move(cfg), std::move(parts), info, p);
}

// ---- the plan cache ----

// What the cache holds for a key: the plan to run (null: the graph path does not take the
// case), and the candidate tactics when they were listed (tuning).
struct Entry {
  std::shared_ptr<Plan> plan;
  std::vector<int64_t> candidates;
  bool listed = false;
};

constexpr size_t kMaxEntriesPerHandle = 1024;
constexpr size_t kMaxCandidates = 8;
constexpr size_t kMaxFusedCandidates = 5;  // the rest of the list goes to conv-only plans

using Cache = std::map<std::vector<int64_t>, std::shared_ptr<const Entry>>;
std::mutex g_cache_mu;
std::string g_last_refusal;

Cache& cache() {
  static auto* m = new Cache();
  return *m;
}

// Entries of `handle` (the key's first element) as a range of the map.
std::pair<Cache::iterator, Cache::iterator> handle_range(int64_t handle) {
  return {cache().lower_bound({handle}), cache().lower_bound({handle + 1})};
}

std::shared_ptr<const Entry> cache_get(const std::vector<int64_t>& key) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = cache().find(key);
  return it == cache().end() ? nullptr : it->second;
}

void cache_put(const std::vector<int64_t>& key, std::shared_ptr<const Entry> e) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto [first, last] = handle_range(key[0]);
  // Bounded per handle: a handle's own entries go (its plans are destroyed by its own thread).
  if (static_cast<size_t>(std::distance(first, last)) >= kMaxEntriesPerHandle) {
    cache().erase(first, last);
  }
  cache()[key] = std::move(e);
}

std::vector<int64_t> make_key(cudnnHandle_t h, const ConvGraphArgs& a, const Case& k, bool tf32,
                              const Policy& p, int64_t tactic) {
  std::vector<int64_t> key = {static_cast<int64_t>(reinterpret_cast<intptr_t>(h)),
                              static_cast<int64_t>(a.dtype),
                              tf32,
                              a.channels_last,
                              p.runtime_compiled,
                              k.bias,
                              k.z,
                              k.relu,
                              tactic,
                              static_cast<int64_t>(p.workspace_limit)};
  for (int64_t al : k.align) key.push_back(al);
  for (const auto* v : {&k.x, &k.w, &k.y, &k.pads, &k.strides, &k.dilations}) {
    key.push_back(static_cast<int64_t>(v->size()));
    key.insert(key.end(), v->begin(), v->end());
  }
  return key;
}

// Builds the entry of a cache miss: the plan of the tactic where it applies, else the default
// (the first usable plan, the epilogue graph first), and with `list` the candidate tactics.
StatusOr<std::shared_ptr<const Entry>> build_entry(KernelContext& ctx, cudnnHandle_t h,
                                                   const ConvGraphArgs& a, const Case& k,
                                                   const Policy& p, bool list) {
  auto e = std::make_shared<Entry>();
  Calls c;
  const int64_t tactic = ctx.tactic();
  backend::CudnnGraphTactic t;
  if (backend::decode_cudnn_graph_tactic(tactic, &t)) {
    e->plan = plan_for_tactic(c, h, k, t, p);
    if (!c.error.ok()) return ctx.node().error(StatusCode::kInternal, c.error.message());
    count_tactic(e->plan != nullptr);
    c.refusal.clear();
  }
  if (e->plan == nullptr || list) {
    const size_t want = list ? kMaxCandidates : 1;
    std::vector<std::shared_ptr<Plan>> found;
    std::string why;
    for (bool fused : {true, false}) {
      if (fused && !k.tail()) continue;
      if (found.size() >= want) break;
      Calls gc;
      std::shared_ptr<OpGraph> g = make_graph(gc, h, k, fused);
      if (!gc.error.ok()) return ctx.node().error(StatusCode::kInternal, gc.error.message());
      if (g == nullptr) {
        why += (why.empty() ? "" : "; ") + gc.refusal;
        continue;
      }
      const size_t cap = fused && list ? kMaxFusedCandidates : want;
      size_t taken = 0;
      each_plan(gc, h, g, p, [&](std::shared_ptr<Plan> plan) {
        if (list && plan->tactic < 0 && !found.empty()) return true;  // not nameable
        found.push_back(std::move(plan));
        return ++taken < cap && found.size() < want;
      });
      if (!gc.error.ok()) return ctx.node().error(StatusCode::kInternal, gc.error.message());
      if (taken == 0) {
        why += std::string(why.empty() ? "" : "; ") +
               (fused ? "no usable engine for the graph with epilogue"
                      : "no usable engine for the convolution");
      }
    }
    if (e->plan == nullptr && !found.empty()) e->plan = found.front();
    if (list) {
      e->listed = true;
      for (const auto& plan : found) {
        if (plan->tactic >= 0) e->candidates.push_back(plan->tactic);
      }
    }
    if (found.empty()) {
      std::lock_guard<std::mutex> lock(g_cache_mu);
      g_last_refusal = why;
    }
    // The listed candidates' plans serve the tuner's runs of them.
    for (size_t i = 0; i < found.size(); ++i) {
      if (found[i]->tactic < 0) continue;
      auto ce = std::make_shared<Entry>();
      ce->plan = found[i];
      cache_put(make_key(h, a, k, ctx.allow_tf32(), p, found[i]->tactic), std::move(ce));
    }
  }
  return std::shared_ptr<const Entry>(std::move(e));
}

// Runs `plan` on the case's pointers.
Status execute(KernelContext& ctx, cudnnHandle_t h, Plan& plan, const ConvGraphArgs& a,
               const Case& k) {
  void* ws = nullptr;
  if (plan.workspace > 0) {
    KILN_ASSIGN_OR_RETURN(ws, ctx.workspace(static_cast<uint64_t>(plan.workspace)));
  }
  std::array<void*, 6> ptrs{};
  std::array<int64_t, 5> uids{};
  int64_t n = 0;
  auto add = [&](int64_t uid, const void* p) {
    uids[static_cast<size_t>(n)] = uid;
    ptrs[static_cast<size_t>(n++)] = const_cast<void*>(p);
  };
  add(kUidX, a.x);
  add(kUidW, a.w);
  add(kUidY, a.y);
  if (plan.fused && k.bias) add(kUidB, a.bias);
  if (plan.fused && k.z) add(kUidZ, a.ep.z);
  ptrs[5] = ws;
  if (!plan.pack || ptrs != plan.pack_ptrs) {
    plan.pack = Desc();
    Calls c;
    Desc pack = c.make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    c.set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs.data());
    c.set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data());
    c.set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    c.finalize(pack, "variant pack");
    if (!c.error.ok()) return ctx.node().error(StatusCode::kInternal, c.error.message());
    if (!c.refusal.empty()) return ctx.node().error(StatusCode::kInternal, c.refusal);
    plan.pack = std::move(pack);
    plan.pack_ptrs = ptrs;
  }
  cudnnStatus_t s = cudnnSetStream(h, ctx.stream());
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(h, plan.plan.get(), plan.pack.get());
  if (s != CUDNN_STATUS_SUCCESS) {
    return ctx.node().error(StatusCode::kInternal,
                            "cudnnBackendExecute failed: " + last_error_text(s));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ConvGraphRun> conv_graph_forward(KernelContext& ctx, const ConvGraphArgs& a) {
  const Mode mode = graph_mode();
  if (mode == Mode::kOff) return ConvGraphRun::kNotTaken;
  const bool fp32 = a.dtype == DType::kFloat32;
  if (!(a.dtype == DType::kFloat16 || a.dtype == DType::kBFloat16 || (fp32 && ctx.allow_tf32()))) {
    return ConvGraphRun::kNotTaken;  // exact float32 and float64 stay on the legacy path
  }
  Case k;
  if (!make_case(a, &k)) return ConvGraphRun::kNotTaken;
  Policy p;
  p.runtime_compiled = mode == Mode::kRuntimeCompiled;
  p.workspace_limit = ctx.workspace_limit();
  cudnnHandle_t h = ctx.cudnn();
  std::vector<int64_t>* candidates = ctx.tactic_candidates();
  const std::vector<int64_t> key = make_key(h, a, k, ctx.allow_tf32(), p, ctx.tactic());
  std::shared_ptr<const Entry> e = cache_get(key);
  if (e == nullptr || (candidates != nullptr && !e->listed)) {
    // Plans are made outside CUDA-graph capture (the first run at a shape is never captured).
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(ctx.stream(), &capture));
    if (capture != cudaStreamCaptureStatusNone) return ConvGraphRun::kNotTaken;
    KILN_ASSIGN_OR_RETURN(e, build_entry(ctx, h, a, k, p, candidates != nullptr));
    cache_put(key, e);
  }
  if (e->plan == nullptr) return ConvGraphRun::kNotTaken;
  if (candidates != nullptr && candidates->empty()) *candidates = e->candidates;
  Plan& plan = *e->plan;
  KILN_RETURN_IF_ERROR(execute(ctx, h, plan, a, k));
  if (plan.fused || !k.tail()) return ConvGraphRun::kFused;
  // Conv-only plan: the bias, residual and activation in our kernels (y viewed as
  // [outer, M, inner]; channels-last has the channel innermost).
  int64_t numel = 1;
  for (int64_t d : a.y_shape) numel *= d;
  const int64_t n = a.y_shape[0], m = a.y_shape[1];
  const int64_t inner = a.channels_last ? 1 : numel / (n * m);
  const int64_t outer = a.channels_last ? numel / m : n;
  if (k.z || k.relu) {
    KILN_RETURN_IF_ERROR(launch_conv_epilogue(ctx, a.dtype, a.y, a.bias, a.ep, outer, m, inner));
  } else {
    KILN_RETURN_IF_ERROR(add_channel_bias(ctx, a.dtype, a.y, a.bias, outer, m, inner));
  }
  return ConvGraphRun::kEpilogueKernel;
}

void release_conv_graph_plans(cudnnHandle_t handle) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto [first, last] = handle_range(static_cast<int64_t>(reinterpret_cast<intptr_t>(handle)));
  cache().erase(first, last);
}

std::string conv_graph_last_refusal() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return g_last_refusal;
}

}  // namespace kiln::cuda
