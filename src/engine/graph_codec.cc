#include "engine/graph_codec.h"

#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>
#include <utility>

#include "core/dtype.h"
#include "engine/byte_io.h"
#include "ir/verifier.h"

namespace kiln::engine {
namespace {

// Value flags.
constexpr uint8_t kValueGraphInput = 1;
constexpr uint8_t kValueOuterScope = 2;
constexpr uint8_t kValueConstant = 4;
constexpr uint8_t kValueFlagsAll = 7;

// Type flags.
constexpr uint8_t kTypeRankKnown = 1;
constexpr uint8_t kTypeHasElem = 2;
constexpr uint8_t kTypeFlagsAll = 3;

// Tensor storage kinds.
constexpr uint8_t kStoreInline = 0;
constexpr uint8_t kStoreWeights = 1;
constexpr uint8_t kStoreStrings = 2;

// Attribute field mask bits (fields written in this order).
enum AttrField : uint16_t {
  kAttrF = 1 << 0,
  kAttrI = 1 << 1,
  kAttrS = 1 << 2,
  kAttrT = 1 << 3,
  kAttrG = 1 << 4,
  kAttrTp = 1 << 5,
  kAttrFloats = 1 << 6,
  kAttrInts = 1 << 7,
  kAttrStrings = 1 << 8,
  kAttrTensors = 1 << 9,
  kAttrGraphs = 1 << 10,
  kAttrTps = 1 << 11,
  kAttrAll = (1 << 12) - 1,
};

// Smallest encoded size of repeated items (for count sanity checks).
constexpr size_t kMinOpset = 12;  // str + i64
constexpr size_t kMinMeta = 8;    // 2 str
constexpr size_t kMinType = 7;    // kind, dtype, flags, u32 rank
constexpr size_t kMinValue = 4 + 1 + kMinType;
constexpr size_t kMinRef = 4;
constexpr size_t kMinNode = 12 + 8 + 12;  // 3 str, opset, 3 counts
constexpr size_t kMinAttr = 4 + 1 + 2;    // name, type, mask
constexpr size_t kMinDim = 12;            // i64 + str
constexpr size_t kMinTensor = 1;          // undefined tensor: dtype byte only

bool is_default_type(const ir::TypeInfo& t) {
  return t.kind == ir::TypeInfo::Kind::kUnknown && t.dtype == DType::kUndefined &&
         !t.shape.rank_known && t.shape.dims.empty() && !t.elem;
}

// ---------------------------------------------------------------- encoder

class Encoder {
 public:
  Status model(const ir::Model& m) {
    g_.u32(kGraphCodecVersion);
    g_.i64(m.ir_version);
    g_.str(m.producer_name);
    g_.str(m.producer_version);
    g_.str(m.doc);
    g_.str(m.path);
    opsets(m.opsets);
    g_.u32(static_cast<uint32_t>(m.metadata.size()));
    for (const auto& [k, v] : m.metadata) {
      g_.str(k);
      g_.str(v);
    }
    if (!m.graph) return invalid_model("engine file: the model has no graph");
    return graph(*m.graph, 0);
  }

  EncodedModel take() { return EncodedModel{g_.take(), std::move(w_)}; }

 private:
  void opsets(const std::map<std::string, int64_t>& o) {
    g_.u32(static_cast<uint32_t>(o.size()));
    for (const auto& [domain, version] : o) {
      g_.str(domain);
      g_.i64(version);
    }
  }

  Status write_type(const ir::TypeInfo& t, int depth) {
    if (depth > kMaxCodecDepth) return invalid_model("engine file: a type is nested too deeply");
    g_.u8(static_cast<uint8_t>(t.kind));
    g_.u8(static_cast<uint8_t>(t.dtype));
    g_.u8(static_cast<uint8_t>((t.shape.rank_known ? kTypeRankKnown : 0) |
                               (t.elem ? kTypeHasElem : 0)));
    g_.u32(static_cast<uint32_t>(t.shape.dims.size()));
    for (const ir::Dim& d : t.shape.dims) {
      g_.i64(d.value >= 0 ? d.value : -1);
      g_.str(d.symbol);
    }
    if (t.elem) return write_type(*t.elem, depth + 1);
    return Status::Ok();
  }

  Status tensor(const Tensor& t, const std::string& what) {
    if (!t.defined()) {
      g_.u8(0);
      return Status::Ok();
    }
    g_.u8(static_cast<uint8_t>(t.dtype()));
    g_.u32(static_cast<uint32_t>(t.rank()));
    for (int64_t d : t.shape()) g_.i64(d);
    if (t.dtype() == DType::kString) {
      const auto& s = t.strings();
      if (static_cast<int64_t>(s.size()) != t.numel()) {
        return internal_error("engine file: string tensor " + what + " holds " +
                              std::to_string(s.size()) + " strings for " +
                              std::to_string(t.numel()) + " elements");
      }
      g_.u8(kStoreStrings);
      for (const auto& e : s) g_.str(e);
      return Status::Ok();
    }
    const uint64_t n = t.nbytes();
    if (n < kMinWeightBytes) {
      g_.u8(kStoreInline);
      g_.u64(n);
      g_.bytes(t.raw(), static_cast<size_t>(n));
      return Status::Ok();
    }
    auto key = std::make_pair(t.raw(), n);
    auto it = stored_.find(key);
    uint64_t offset;
    if (it != stored_.end()) {
      offset = it->second;
    } else {
      while (w_.size() % kWeightAlignment) w_.push_back(0);
      offset = w_.size();
      const auto* p = static_cast<const uint8_t*>(t.raw());
      w_.insert(w_.end(), p, p + n);
      stored_.emplace(key, offset);
    }
    g_.u8(kStoreWeights);
    g_.u64(offset);
    g_.u64(n);
    return Status::Ok();
  }

  Status graph(const ir::Graph& gr, int depth) {
    if (depth > kMaxCodecDepth) return invalid_model("engine file: subgraphs nested too deeply");
    const std::string where = depth == 0 ? std::string("graph") : "subgraph '" + gr.name + "'";
    g_.str(gr.name);
    opsets(gr.opsets);
    std::unordered_map<const ir::Value*, uint32_t> index;
    const auto& values = gr.values();
    g_.u32(static_cast<uint32_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) {
      const ir::Value& v = *values[i];
      index[&v] = static_cast<uint32_t>(i + 1);
      g_.str(v.name);
      g_.u8(static_cast<uint8_t>((v.is_graph_input ? kValueGraphInput : 0) |
                                 (v.is_outer_scope ? kValueOuterScope : 0) |
                                 (v.constant ? kValueConstant : 0)));
      KILN_RETURN_IF_ERROR(write_type(v.type, 0));
      if (v.constant) KILN_RETURN_IF_ERROR(tensor(*v.constant, "'" + v.name + "'"));
    }
    auto ref = [&](const ir::Value* v, const std::string& use) -> Status {
      if (v == nullptr) {
        g_.u32(0);
        return Status::Ok();
      }
      auto it = index.find(v);
      if (it == index.end()) {
        return internal_error("engine file: " + where + ": " + use + " '" + v->name +
                              "' is not a value of this graph");
      }
      g_.u32(it->second);
      return Status::Ok();
    };
    g_.u32(static_cast<uint32_t>(gr.inputs.size()));
    for (const ir::Value* v : gr.inputs) KILN_RETURN_IF_ERROR(ref(v, "input"));
    g_.u32(static_cast<uint32_t>(gr.outputs.size()));
    for (const ir::Value* v : gr.outputs) KILN_RETURN_IF_ERROR(ref(v, "output"));
    g_.u32(static_cast<uint32_t>(gr.nodes().size()));
    for (const auto& np : gr.nodes()) {
      const ir::Node& n = *np;
      g_.str(n.op_type);
      g_.str(n.domain);
      g_.str(n.name);
      g_.i64(n.opset);
      g_.u32(static_cast<uint32_t>(n.inputs.size()));
      for (const ir::Value* v : n.inputs) KILN_RETURN_IF_ERROR(ref(v, n.label() + " input"));
      g_.u32(static_cast<uint32_t>(n.outputs.size()));
      for (const ir::Value* v : n.outputs) KILN_RETURN_IF_ERROR(ref(v, n.label() + " output"));
      g_.u32(static_cast<uint32_t>(n.attrs.size()));
      for (const ir::Attribute& a : n.attrs) {
        Status st = attribute(a, depth);
        if (!st.ok()) return st.with_context(n.label() + " attribute '" + a.name + "'");
      }
    }
    return Status::Ok();
  }

  Status attribute(const ir::Attribute& a, int depth) {
    g_.str(a.name);
    g_.u8(static_cast<uint8_t>(a.type));
    uint16_t mask = 0;
    if (std::bit_cast<uint32_t>(a.f) != 0) mask |= kAttrF;
    if (a.i != 0) mask |= kAttrI;
    if (!a.s.empty()) mask |= kAttrS;
    if (a.t.defined()) mask |= kAttrT;
    if (a.g) mask |= kAttrG;
    if (!is_default_type(a.tp)) mask |= kAttrTp;
    if (!a.floats.empty()) mask |= kAttrFloats;
    if (!a.ints.empty()) mask |= kAttrInts;
    if (!a.strings.empty()) mask |= kAttrStrings;
    if (!a.tensors.empty()) mask |= kAttrTensors;
    if (!a.graphs.empty()) mask |= kAttrGraphs;
    if (!a.tps.empty()) mask |= kAttrTps;
    g_.u16(mask);
    if (mask & kAttrF) g_.f32(a.f);
    if (mask & kAttrI) g_.i64(a.i);
    if (mask & kAttrS) g_.str(a.s);
    if (mask & kAttrT) KILN_RETURN_IF_ERROR(tensor(a.t, "'" + a.name + "'"));
    if (mask & kAttrG) KILN_RETURN_IF_ERROR(graph(*a.g, depth + 1));
    if (mask & kAttrTp) KILN_RETURN_IF_ERROR(write_type(a.tp, 0));
    if (mask & kAttrFloats) {
      g_.u32(static_cast<uint32_t>(a.floats.size()));
      for (float f : a.floats) g_.f32(f);
    }
    if (mask & kAttrInts) {
      g_.u32(static_cast<uint32_t>(a.ints.size()));
      for (int64_t i : a.ints) g_.i64(i);
    }
    if (mask & kAttrStrings) {
      g_.u32(static_cast<uint32_t>(a.strings.size()));
      for (const auto& s : a.strings) g_.str(s);
    }
    if (mask & kAttrTensors) {
      g_.u32(static_cast<uint32_t>(a.tensors.size()));
      for (const Tensor& t : a.tensors) KILN_RETURN_IF_ERROR(tensor(t, "'" + a.name + "'"));
    }
    if (mask & kAttrGraphs) {
      g_.u32(static_cast<uint32_t>(a.graphs.size()));
      for (const auto& sg : a.graphs) {
        g_.u8(sg ? 1 : 0);
        if (sg) KILN_RETURN_IF_ERROR(graph(*sg, depth + 1));
      }
    }
    if (mask & kAttrTps) {
      g_.u32(static_cast<uint32_t>(a.tps.size()));
      for (const auto& t : a.tps) KILN_RETURN_IF_ERROR(write_type(t, 0));
    }
    return Status::Ok();
  }

  ByteWriter g_;
  std::vector<uint8_t> w_;
  std::map<std::pair<const void*, uint64_t>, uint64_t> stored_;
};

// ---------------------------------------------------------------- decoder

class Decoder {
 public:
  Decoder(std::span<const uint8_t> graph, std::span<const uint8_t> weights,
          std::shared_ptr<const void> owner)
      : r_(graph), weights_(weights), owner_(std::move(owner)) {}

  StatusOr<std::unique_ptr<ir::Model>> model() {
    const uint32_t version = r_.u32("the codec version");
    KILN_RETURN_IF_ERROR(check());
    if (version != kGraphCodecVersion) {
      return fail("encoding version " + std::to_string(version) + ", expected " +
                  std::to_string(kGraphCodecVersion));
    }
    auto m = std::make_unique<ir::Model>();
    m->ir_version = r_.i64("ir_version");
    m->producer_name = r_.str("producer_name");
    m->producer_version = r_.str("producer_version");
    m->doc = r_.str("doc");
    m->path = r_.str("path");
    KILN_RETURN_IF_ERROR(opsets(&m->opsets));
    const uint32_t n_meta = r_.count(kMinMeta, "the metadata count");
    for (uint32_t i = 0; i < n_meta && r_.ok(); ++i) {
      std::string k = r_.str("a metadata key");
      std::string v = r_.str("a metadata value");
      if (!m->metadata.emplace(std::move(k), std::move(v)).second && r_.ok()) {
        return fail("metadata key listed twice");
      }
    }
    KILN_RETURN_IF_ERROR(check());
    KILN_ASSIGN_OR_RETURN(m->graph, graph(nullptr, 0));
    if (!r_.at_end()) {
      return fail(std::to_string(r_.remaining()) + " unread bytes after the model");
    }
    Status st = ir::verify_graph(*m->graph);
    if (!st.ok()) return invalid_model("engine file: graph section: " + st.message());
    return m;
  }

 private:
  Status fail(const std::string& msg) const {
    return invalid_model("engine file: graph section: " + msg + " (at byte " +
                         std::to_string(r_.pos()) + ")");
  }
  Status check() const {
    if (r_.ok()) return Status::Ok();
    return invalid_model("engine file: graph section: truncated or malformed while reading " +
                         r_.error_what() + " (at byte " + std::to_string(r_.error_pos()) + ")");
  }

  Status opsets(std::map<std::string, int64_t>* out) {
    const uint32_t n = r_.count(kMinOpset, "the opset count");
    for (uint32_t i = 0; i < n && r_.ok(); ++i) {
      std::string domain = r_.str("an opset domain");
      const int64_t version = r_.i64("an opset version");
      if (!r_.ok()) break;
      if (!out->emplace(std::move(domain), version).second) return fail("opset listed twice");
    }
    return check();
  }

  Status read_type(ir::TypeInfo* t, int depth) {
    if (depth > kMaxCodecDepth) return fail("a type is nested too deeply");
    const uint8_t kind = r_.u8("a type kind");
    const uint8_t dtype = r_.u8("a type's dtype");
    const uint8_t flags = r_.u8("a type's flags");
    KILN_RETURN_IF_ERROR(check());
    if (kind > static_cast<uint8_t>(ir::TypeInfo::Kind::kMap)) {
      return fail("unknown type kind " + std::to_string(kind));
    }
    if (!is_valid_dtype(dtype)) return fail("unknown dtype " + std::to_string(dtype));
    if (flags & ~kTypeFlagsAll) return fail("unknown type flags " + std::to_string(flags));
    t->kind = static_cast<ir::TypeInfo::Kind>(kind);
    t->dtype = static_cast<DType>(dtype);
    t->shape.rank_known = (flags & kTypeRankKnown) != 0;
    const uint32_t rank = r_.count(kMinDim, "a type's rank");
    t->shape.dims.reserve(rank);
    for (uint32_t i = 0; i < rank && r_.ok(); ++i) {
      ir::Dim d;
      d.value = r_.i64("a dim");
      d.symbol = r_.str("a dim symbol");
      if (d.value < -1) return fail("dim " + std::to_string(d.value) + " is negative");
      t->shape.dims.push_back(std::move(d));
    }
    KILN_RETURN_IF_ERROR(check());
    if (flags & kTypeHasElem) {
      auto elem = std::make_shared<ir::TypeInfo>();
      KILN_RETURN_IF_ERROR(read_type(elem.get(), depth + 1));
      t->elem = std::move(elem);
    }
    return Status::Ok();
  }

  StatusOr<Tensor> tensor() {
    const uint8_t dtype = r_.u8("a tensor dtype");
    KILN_RETURN_IF_ERROR(check());
    if (dtype == 0) return Tensor();
    if (!is_valid_dtype(dtype)) return fail("unknown tensor dtype " + std::to_string(dtype));
    const DType dt = static_cast<DType>(dtype);
    const uint32_t rank = r_.count(8, "a tensor rank");
    std::vector<int64_t> shape;
    shape.reserve(rank);
    for (uint32_t i = 0; i < rank && r_.ok(); ++i) shape.push_back(r_.i64("a tensor dim"));
    const uint8_t store = r_.u8("a tensor storage kind");
    KILN_RETURN_IF_ERROR(check());
    StatusOr<int64_t> numel_or = checked_numel(shape, "tensor");
    if (!numel_or.ok()) return fail(numel_or.status().message());
    const uint64_t numel = static_cast<uint64_t>(*numel_or);
    if (dt == DType::kString) {
      if (store != kStoreStrings)
        return fail("string tensor with storage kind " + std::to_string(store));
      // Each string takes at least its 4-byte length.
      if (numel > r_.remaining() / 4) return fail("string tensor larger than the section");
      std::vector<std::string> strings;
      strings.reserve(static_cast<size_t>(numel));
      for (uint64_t i = 0; i < numel && r_.ok(); ++i) strings.push_back(r_.str("a string element"));
      KILN_RETURN_IF_ERROR(check());
      return Tensor::from_strings(std::move(shape), std::move(strings));
    }
    const uint64_t expected = dtype_storage_bytes(dt, numel);
    if (store == kStoreInline) {
      const uint64_t n = r_.u64("a tensor byte size");
      KILN_RETURN_IF_ERROR(check());
      if (n != expected) {
        return fail("tensor " + std::string(dtype_name(dt)) + shape_to_string(shape) + " has " +
                    std::to_string(n) + " bytes, expected " + std::to_string(expected));
      }
      std::span<const uint8_t> bytes = r_.bytes(n, "tensor bytes");
      KILN_RETURN_IF_ERROR(check());
      StatusOr<Tensor> t = Tensor::create(dt, std::move(shape));
      if (!t.ok()) return fail(t.status().message());
      if (n) std::memcpy(t->mutable_raw(), bytes.data(), static_cast<size_t>(n));
      return t;
    }
    if (store == kStoreWeights) {
      const uint64_t offset = r_.u64("a weights offset");
      const uint64_t n = r_.u64("a weights byte size");
      KILN_RETURN_IF_ERROR(check());
      if (n != expected) {
        return fail("tensor " + std::string(dtype_name(dt)) + shape_to_string(shape) + " has " +
                    std::to_string(n) + " bytes, expected " + std::to_string(expected));
      }
      if (offset % kWeightAlignment != 0) {
        return fail("weights offset " + std::to_string(offset) + " is not 64-byte aligned");
      }
      if (offset > weights_.size() || n > weights_.size() - offset) {
        return fail("tensor bytes [" + std::to_string(offset) + ", +" + std::to_string(n) +
                    ") lie outside the weights section (" + std::to_string(weights_.size()) +
                    " bytes)");
      }
      if (n > kDefaultMaxTensorBytes) return fail("tensor larger than the tensor size limit");
      return Tensor::view(dt, std::move(shape), weights_.data() + offset, owner_);
    }
    return fail("unknown tensor storage kind " + std::to_string(store));
  }

  StatusOr<std::unique_ptr<ir::Graph>> graph(const ir::Graph* parent, int depth) {
    if (depth > kMaxCodecDepth) return fail("subgraphs nested too deeply");
    auto g = std::make_unique<ir::Graph>();
    g->parent = parent;
    g->name = r_.str("a graph name");
    KILN_RETURN_IF_ERROR(opsets(&g->opsets));
    const uint32_t n_values = r_.count(kMinValue, "the value count");
    std::vector<ir::Value*> values;
    values.reserve(n_values);
    for (uint32_t i = 0; i < n_values; ++i) {
      std::string name = r_.str("a value name");
      const uint8_t flags = r_.u8("value flags");
      KILN_RETURN_IF_ERROR(check());
      if (flags & ~kValueFlagsAll) return fail("unknown value flags " + std::to_string(flags));
      ir::Value* v = g->add_value(name);
      if (v == nullptr) return fail("value '" + name + "' is defined twice");
      v->is_graph_input = (flags & kValueGraphInput) != 0;
      v->is_outer_scope = (flags & kValueOuterScope) != 0;
      KILN_RETURN_IF_ERROR(read_type(&v->type, 0));
      if (flags & kValueConstant) {
        KILN_ASSIGN_OR_RETURN(Tensor t, tensor());
        v->constant = std::make_shared<const Tensor>(std::move(t));
      }
      values.push_back(v);
    }
    auto ref = [&](const char* what) -> StatusOr<ir::Value*> {
      const uint32_t k = r_.u32(what);
      KILN_RETURN_IF_ERROR(check());
      if (k == 0) return static_cast<ir::Value*>(nullptr);
      if (k > values.size()) {
        return fail(std::string(what) + " refers to value " + std::to_string(k - 1) + " of " +
                    std::to_string(values.size()));
      }
      return values[k - 1];
    };
    const uint32_t n_in = r_.count(kMinRef, "the graph input count");
    for (uint32_t i = 0; i < n_in; ++i) {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, ref("a graph input"));
      g->inputs.push_back(v);
    }
    const uint32_t n_out = r_.count(kMinRef, "the graph output count");
    for (uint32_t i = 0; i < n_out; ++i) {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, ref("a graph output"));
      g->outputs.push_back(v);
    }
    const uint32_t n_nodes = r_.count(kMinNode, "the node count");
    auto& nodes = g->mutable_nodes();
    nodes.reserve(n_nodes);
    for (uint32_t i = 0; i < n_nodes; ++i) {
      auto n = std::make_unique<ir::Node>();
      n->op_type = r_.str("an op_type");
      n->domain = r_.str("a node domain");
      n->name = r_.str("a node name");
      n->opset = r_.i64("a node opset");
      n->index = static_cast<int>(i);
      const uint32_t ni = r_.count(kMinRef, "a node input count");
      n->inputs.reserve(ni);
      for (uint32_t k = 0; k < ni; ++k) {
        KILN_ASSIGN_OR_RETURN(ir::Value * v, ref("a node input"));
        n->inputs.push_back(v);
      }
      const uint32_t no = r_.count(kMinRef, "a node output count");
      n->outputs.reserve(no);
      for (uint32_t k = 0; k < no; ++k) {
        KILN_ASSIGN_OR_RETURN(ir::Value * v, ref("a node output"));
        n->outputs.push_back(v);
      }
      const uint32_t na = r_.count(kMinAttr, "an attribute count");
      n->attrs.resize(na);
      for (uint32_t k = 0; k < na; ++k) {
        Status st = attribute(&n->attrs[k], g.get(), depth);
        if (!st.ok()) return st;
      }
      KILN_RETURN_IF_ERROR(check());
      nodes.push_back(std::move(n));
    }
    KILN_RETURN_IF_ERROR(check());
    g->relink();
    return g;
  }

  Status attribute(ir::Attribute* a, const ir::Graph* owner, int depth) {
    a->name = r_.str("an attribute name");
    const uint8_t type = r_.u8("an attribute type");
    const uint16_t mask = r_.u16("an attribute field mask");
    KILN_RETURN_IF_ERROR(check());
    if (type > static_cast<uint8_t>(ir::AttrType::kTypeProtos)) {
      return fail("attribute '" + a->name + "' has unknown type " + std::to_string(type));
    }
    if (mask & ~kAttrAll) return fail("attribute '" + a->name + "' has unknown fields");
    a->type = static_cast<ir::AttrType>(type);
    if (mask & kAttrF) a->f = r_.f32("a float attribute");
    if (mask & kAttrI) a->i = r_.i64("an int attribute");
    if (mask & kAttrS) a->s = r_.str("a string attribute");
    KILN_RETURN_IF_ERROR(check());
    if (mask & kAttrT) {
      KILN_ASSIGN_OR_RETURN(a->t, tensor());
      if (!a->t.defined()) return fail("attribute '" + a->name + "' lists an undefined tensor");
    }
    if (mask & kAttrG) {
      KILN_ASSIGN_OR_RETURN(a->g, graph(owner, depth + 1));
    }
    if (mask & kAttrTp) KILN_RETURN_IF_ERROR(read_type(&a->tp, 0));
    if (mask & kAttrFloats) {
      const uint32_t n = r_.count(4, "a float list length");
      a->floats.reserve(n);
      for (uint32_t i = 0; i < n; ++i) a->floats.push_back(r_.f32("a float"));
    }
    if (mask & kAttrInts) {
      const uint32_t n = r_.count(8, "an int list length");
      a->ints.reserve(n);
      for (uint32_t i = 0; i < n; ++i) a->ints.push_back(r_.i64("an int"));
    }
    if (mask & kAttrStrings) {
      const uint32_t n = r_.count(4, "a string list length");
      a->strings.reserve(n);
      for (uint32_t i = 0; i < n && r_.ok(); ++i) a->strings.push_back(r_.str("a string"));
    }
    KILN_RETURN_IF_ERROR(check());
    if (mask & kAttrTensors) {
      const uint32_t n = r_.count(kMinTensor, "a tensor list length");
      a->tensors.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        KILN_ASSIGN_OR_RETURN(Tensor t, tensor());
        a->tensors.push_back(std::move(t));
      }
    }
    if (mask & kAttrGraphs) {
      const uint32_t n = r_.count(1, "a graph list length");
      a->graphs.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        const uint8_t present = r_.u8("a graph presence flag");
        KILN_RETURN_IF_ERROR(check());
        if (present > 1) return fail("bad graph presence flag");
        if (present) {
          KILN_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> sg, graph(owner, depth + 1));
          a->graphs.push_back(std::move(sg));
        } else {
          a->graphs.push_back(nullptr);
        }
      }
    }
    if (mask & kAttrTps) {
      const uint32_t n = r_.count(kMinType, "a type list length");
      a->tps.resize(n);
      for (uint32_t i = 0; i < n; ++i) KILN_RETURN_IF_ERROR(read_type(&a->tps[i], 0));
    }
    return check();
  }

  ByteReader r_;
  std::span<const uint8_t> weights_;
  std::shared_ptr<const void> owner_;
};

}  // namespace

StatusOr<EncodedModel> encode_model(const ir::Model& model) {
  Encoder e;
  KILN_RETURN_IF_ERROR(e.model(model));
  return e.take();
}

StatusOr<std::unique_ptr<ir::Model>> decode_model(std::span<const uint8_t> graph,
                                                  std::span<const uint8_t> weights,
                                                  std::shared_ptr<const void> owner) {
  if (!weights.empty() && reinterpret_cast<uintptr_t>(weights.data()) % kWeightAlignment != 0) {
    return invalid_argument("engine file: the weights section is not 64-byte aligned in memory");
  }
  Decoder d(graph, weights, std::move(owner));
  return d.model();
}

}  // namespace kiln::engine
