// Test helper: deep structural comparison of two ir::Models (metadata, graphs and subgraphs,
// values, types, constants byte for byte, nodes, every attribute field, producer links).
#pragma once

#include <bit>
#include <cstring>
#include <string>
#include <unordered_map>

#include "ir/graph.h"

namespace kiln::testing {

inline std::string diff_type(const ir::TypeInfo& a, const ir::TypeInfo& b) {
  if (a.kind != b.kind || a.dtype != b.dtype || a.shape.rank_known != b.shape.rank_known ||
      a.shape.dims.size() != b.shape.dims.size() || bool(a.elem) != bool(b.elem)) {
    return "type " + a.to_string() + " vs " + b.to_string();
  }
  for (size_t i = 0; i < a.shape.dims.size(); ++i) {
    if (!(a.shape.dims[i] == b.shape.dims[i])) {
      return "dim " + std::to_string(i) + " of " + a.to_string() + " vs " + b.to_string();
    }
  }
  return a.elem ? diff_type(*a.elem, *b.elem) : "";
}

inline std::string diff_tensor(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return "tensor defined vs undefined";
  if (!a.defined()) return "";
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
    return "tensor " + a.type_string() + " vs " + b.type_string();
  }
  if (a.dtype() == DType::kString) return a.strings() == b.strings() ? "" : "string tensor values";
  if (a.nbytes() != b.nbytes()) return "tensor byte size";
  if (a.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0) {
    return "tensor " + a.type_string() + " bytes";
  }
  return "";
}

std::string diff_graph(const ir::Graph& a, const ir::Graph& b, const ir::Graph* b_parent);

inline std::string diff_attr(const ir::Attribute& a, const ir::Attribute& b, const ir::Graph& bg) {
  std::string d;
  if (a.name != b.name || a.type != b.type) return "attribute name/type";
  if (std::bit_cast<uint32_t>(a.f) != std::bit_cast<uint32_t>(b.f)) return "attribute f";
  if (a.i != b.i || a.s != b.s || a.ints != b.ints || a.strings != b.strings) {
    return "attribute i/s/ints/strings";
  }
  if (a.floats.size() != b.floats.size()) return "attribute floats size";
  for (size_t i = 0; i < a.floats.size(); ++i) {
    if (std::bit_cast<uint32_t>(a.floats[i]) != std::bit_cast<uint32_t>(b.floats[i])) {
      return "attribute floats";
    }
  }
  if (!(d = diff_tensor(a.t, b.t)).empty()) return "attribute t: " + d;
  if (a.tensors.size() != b.tensors.size()) return "attribute tensors size";
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (!(d = diff_tensor(a.tensors[i], b.tensors[i])).empty()) return "attribute tensors: " + d;
  if (!(d = diff_type(a.tp, b.tp)).empty()) return "attribute tp: " + d;
  if (a.tps.size() != b.tps.size()) return "attribute tps size";
  for (size_t i = 0; i < a.tps.size(); ++i)
    if (!(d = diff_type(a.tps[i], b.tps[i])).empty()) return "attribute tps: " + d;
  if (bool(a.g) != bool(b.g)) return "attribute g presence";
  if (a.g && !(d = diff_graph(*a.g, *b.g, &bg)).empty()) return "subgraph: " + d;
  if (a.graphs.size() != b.graphs.size()) return "attribute graphs size";
  for (size_t i = 0; i < a.graphs.size(); ++i) {
    if (bool(a.graphs[i]) != bool(b.graphs[i])) return "attribute graphs presence";
    if (a.graphs[i] && !(d = diff_graph(*a.graphs[i], *b.graphs[i], &bg)).empty()) {
      return "subgraphs: " + d;
    }
  }
  return "";
}

// `b_parent`: the graph b's parent must be (b is the decoded copy).
inline std::string diff_graph(const ir::Graph& a, const ir::Graph& b, const ir::Graph* b_parent) {
  const std::string at = "graph '" + a.name + "': ";
  if (a.name != b.name) return at + "name";
  if (b.parent != b_parent) return at + "parent link";
  if (a.opsets != b.opsets) return at + "opsets";
  if (a.values().size() != b.values().size()) return at + "value count";
  std::unordered_map<const ir::Value*, size_t> ia, ib;
  std::unordered_map<const ir::Node*, size_t> na, nb;
  for (size_t i = 0; i < a.values().size(); ++i) {
    ia[a.values()[i].get()] = i + 1;
    ib[b.values()[i].get()] = i + 1;
  }
  for (size_t i = 0; i < a.nodes().size(); ++i) na[a.nodes()[i].get()] = i + 1;
  for (size_t i = 0; i < b.nodes().size(); ++i) nb[b.nodes()[i].get()] = i + 1;
  auto idx = [](const std::unordered_map<const ir::Value*, size_t>& m, const ir::Value* v) {
    if (!v) return size_t{0};
    auto it = m.find(v);
    return it == m.end() ? size_t(-1) : it->second;
  };
  std::string d;
  for (size_t i = 0; i < a.values().size(); ++i) {
    const ir::Value& x = *a.values()[i];
    const ir::Value& y = *b.values()[i];
    const std::string vat = at + "value '" + x.name + "': ";
    if (x.name != y.name || x.is_graph_input != y.is_graph_input ||
        x.is_outer_scope != y.is_outer_scope) {
      return vat + "name/flags";
    }
    if (!(d = diff_type(x.type, y.type)).empty()) return vat + d;
    if (bool(x.constant) != bool(y.constant)) return vat + "constant presence";
    if (x.constant && !(d = diff_tensor(*x.constant, *y.constant)).empty()) return vat + d;
    const size_t pa = x.producer ? na.count(x.producer) ? na[x.producer] : size_t(-1) : 0;
    const size_t pb = y.producer ? nb.count(y.producer) ? nb[y.producer] : size_t(-1) : 0;
    if (pa != pb || (pa && x.producer_output != y.producer_output)) return vat + "producer";
  }
  if (a.inputs.size() != b.inputs.size() || a.outputs.size() != b.outputs.size()) {
    return at + "input/output count";
  }
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (idx(ia, a.inputs[i]) != idx(ib, b.inputs[i])) return at + "input " + std::to_string(i);
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (idx(ia, a.outputs[i]) != idx(ib, b.outputs[i])) return at + "output " + std::to_string(i);
  if (a.nodes().size() != b.nodes().size()) return at + "node count";
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    const ir::Node& x = *a.nodes()[i];
    const ir::Node& y = *b.nodes()[i];
    const std::string nat = at + x.label() + ": ";
    if (x.op_type != y.op_type || x.domain != y.domain || x.name != y.name || x.opset != y.opset ||
        x.index != y.index) {
      return nat + "op_type/domain/name/opset/index";
    }
    if (x.inputs.size() != y.inputs.size() || x.outputs.size() != y.outputs.size()) {
      return nat + "arity";
    }
    for (size_t k = 0; k < x.inputs.size(); ++k)
      if (idx(ia, x.inputs[k]) != idx(ib, y.inputs[k])) return nat + "input " + std::to_string(k);
    for (size_t k = 0; k < x.outputs.size(); ++k)
      if (idx(ia, x.outputs[k]) != idx(ib, y.outputs[k]))
        return nat + "output " + std::to_string(k);
    if (x.attrs.size() != y.attrs.size()) return nat + "attribute count";
    for (size_t k = 0; k < x.attrs.size(); ++k)
      if (!(d = diff_attr(x.attrs[k], y.attrs[k], b)).empty()) return nat + d;
  }
  return "";
}

inline std::string diff_models(const ir::Model& a, const ir::Model& b) {
  if (a.ir_version != b.ir_version || a.opsets != b.opsets || a.producer_name != b.producer_name ||
      a.producer_version != b.producer_version || a.doc != b.doc || a.metadata != b.metadata ||
      a.path != b.path) {
    return "model metadata";
  }
  if (bool(a.graph) != bool(b.graph)) return "graph presence";
  return a.graph ? diff_graph(*a.graph, *b.graph, nullptr) : "";
}

}  // namespace kiln::testing
