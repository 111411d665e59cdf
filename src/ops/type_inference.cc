#include "ops/type_inference.h"

#include "core/tensor.h"
#include "ops/op_registry.h"
#include "ops/shape_value.h"

#include <optional>

namespace kiln::ops {
namespace {

// Merges an inferred type into a declared one: known facts of either side win; two known
// facts that disagree are a conflict.
Status merge_type(const ir::Node& node, ir::Value& v, const ir::TypeInfo& inferred) {
  ir::TypeInfo& declared = v.type;
  if (inferred.kind == ir::TypeInfo::Kind::kUnknown) return Status::Ok();
  if (declared.kind == ir::TypeInfo::Kind::kUnknown) {
    declared = inferred;
    return Status::Ok();
  }
  if (declared.kind != inferred.kind) {
    // Optional-typed outputs may be declared as their element type; keep the declaration.
    return Status::Ok();
  }
  if (declared.kind != ir::TypeInfo::Kind::kTensor) {
    if (!declared.elem && inferred.elem) declared.elem = inferred.elem;
    return Status::Ok();
  }
  if (declared.dtype == DType::kUndefined) {
    declared.dtype = inferred.dtype;
  } else if (inferred.dtype != DType::kUndefined && inferred.dtype != declared.dtype) {
    return node.error(StatusCode::kInvalidModel,
                      "output '" + v.name + "' is declared " + declared.to_string() +
                          " but the op produces " + inferred.to_string());
  }
  if (!inferred.shape.rank_known) return Status::Ok();
  if (!declared.shape.rank_known) {
    declared.shape = inferred.shape;
    return Status::Ok();
  }
  if (declared.shape.rank() != inferred.shape.rank()) {
    return node.error(StatusCode::kInvalidModel,
                      "output '" + v.name + "' is declared " + declared.to_string() +
                          " but the op produces " + inferred.to_string());
  }
  for (size_t i = 0; i < declared.shape.dims.size(); ++i) {
    ir::Dim& d = declared.shape.dims[i];
    const ir::Dim& e = inferred.shape.dims[i];
    if (d.known() && e.known() && d.value != e.value) {
      return node.error(StatusCode::kInvalidModel,
                        "output '" + v.name + "' is declared " + declared.to_string() +
                            " but the op produces " + inferred.to_string());
    }
    if (!d.known() && e.known())
      d = e;
    else if (!d.known() && d.symbol.empty())
      d = e;
  }
  return Status::Ok();
}

// Outer-scope values of a subgraph take the type of the value they name in an enclosing graph
// (the importer leaves them untyped), so the subgraph's nodes infer from known inputs.
void import_outer_types(ir::Graph& sub, const ir::Graph& enclosing) {
  for (const auto& v : sub.values()) {
    if (!v->is_outer_scope || v->type.kind != ir::TypeInfo::Kind::kUnknown) continue;
    for (const ir::Graph* g = &enclosing; g != nullptr; g = g->parent) {
      if (const ir::Value* o = g->find_value(v->name); o != nullptr && o != v.get()) {
        v->type = o->type;
        break;
      }
    }
  }
}

// The value's tensor when it is known at build time: a constant (initializer or folded), or the
// output of a Constant node with a tensor `value` (before constant folding turns it into one,
// imported models feed Unsqueeze axes, Reshape targets and the like from Constant nodes).
const Tensor* known_constant(const ir::Value& v) {
  if (v.constant) return v.constant.get();
  const ir::Node* p = v.producer;
  if (p == nullptr || p->op_type != "Constant" || !(p->domain.empty() || p->domain == "ai.onnx"))
    return nullptr;
  const ir::Attribute* a = p->attr("value");
  if (a == nullptr || a->type != ir::AttrType::kTensor || !a->t.defined()) return nullptr;
  return &a->t;
}

// A tensor output whose static shape asks for more than Kiln would ever allocate for one tensor
// (a Reshape, Expand, Tile or ConstantOfShape to 2^40 elements, say) is refused here, at build
// time, before anything tries to allocate it.
Status check_static_size(const ir::Node& node, const ir::Value& v) {
  const ir::TypeInfo& t = v.type;
  if (!t.is_tensor() || t.dtype == DType::kUndefined || !t.shape.fully_known()) return Status::Ok();
  const std::vector<int64_t> shape = t.shape.values();
  uint64_t n = 1;
  bool over = false;
  for (int64_t d : shape) {
    if (d <= 0) return Status::Ok();  // empty (negative dims are reported elsewhere)
    if (n > (uint64_t{1} << 60) / static_cast<uint64_t>(d)) over = true;
    if (!over) n *= static_cast<uint64_t>(d);
  }
  const uint64_t bytes = over ? 0 : dtype_storage_bytes(t.dtype, n);
  if (!over && bytes <= kDefaultMaxTensorBytes) return Status::Ok();
  return node.error(
      StatusCode::kOutOfRange,
      "output '" + v.name + "' is " + t.to_string() + ", " +
          (over ? std::string("more than 2^60 elements") : std::to_string(bytes) + " bytes") +
          ": over the limit of " + std::to_string(kDefaultMaxTensorBytes) +
          " bytes for one tensor");
}

}  // namespace

Status infer_graph_types(ir::Graph& graph) {
  const OpRegistry& registry = OpRegistry::global();
  ShapeValueTable shape_values;
  for (auto& np : graph.mutable_nodes()) {
    ir::Node& node = *np;
    for (ir::Attribute& a : node.attrs) {
      if (a.g) {
        import_outer_types(*a.g, graph);
        KILN_RETURN_IF_ERROR(infer_graph_types(*a.g));
      }
      for (auto& g : a.graphs) {
        if (!g) continue;
        import_outer_types(*g, graph);
        KILN_RETURN_IF_ERROR(infer_graph_types(*g));
      }
    }
    for (ir::Value* v : node.outputs) ShapeValueTable::set(v, std::nullopt);
    const OpDef* def = registry.find(node.domain, node.op_type);
    if (def == nullptr) continue;
    std::vector<const ir::TypeInfo*> types;
    std::vector<const Tensor*> constants;
    std::vector<Tensor> from_values;  // inputs whose shape value is all plain integers
    from_values.reserve(node.inputs.size());
    for (const ir::Value* v : node.inputs) {
      types.push_back(v ? &v->type : nullptr);
      const Tensor* c = v == nullptr ? nullptr : known_constant(*v);
      if (c == nullptr && v != nullptr) {
        if (std::optional<Tensor> t = shape_value_tensor(*v)) {
          from_values.push_back(std::move(*t));
          c = &from_values.back();
        }
      }
      constants.push_back(c);
    }
    InferContext ctx(node, std::move(types), std::move(constants));
    KILN_RETURN_IF_ERROR(infer_node(*def, ctx));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (ir::Value* v = node.outputs[i]) {
        KILN_RETURN_IF_ERROR(merge_type(node, *v, ctx.outputs()[i]));
        KILN_RETURN_IF_ERROR(check_static_size(node, *v));
      }
    }
    if (node.has_output(0) && !node.outputs[0]->constant) {
      ir::Value* out = node.outputs[0];
      std::optional<std::vector<SymInt>> value = infer_shape_value(ctx);
      // A 1-D value whose length inference could not tell gets it from the elements.
      ir::Shape& s = out->type.shape;
      if (value && out->type.is_tensor() && s.rank_known && s.rank() == 1 && !s.dims[0].known())
        s.dims[0] = ir::Dim::of(static_cast<int64_t>(value->size()));
      ShapeValueTable::set(out, std::move(value));
    }
  }
  return Status::Ok();
}

}  // namespace kiln::ops
