#include "ops/shape_value.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

using Values = std::vector<SymInt>;

bool is_symbol_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (c == '*' || std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

SymInt sym_add(const SymInt& a, const SymInt& b, bool subtract) {
  if (!a.known || !b.known) return SymInt::unknown();
  if (b.is_int() && b.coeff == 0) return a;
  if (!subtract && a.is_int() && a.coeff == 0) return b;
  if (a.syms != b.syms) return SymInt::unknown();
  SymInt r = a;
  const bool overflow = subtract ? __builtin_sub_overflow(a.coeff, b.coeff, &r.coeff)
                                 : __builtin_add_overflow(a.coeff, b.coeff, &r.coeff);
  if (overflow) return SymInt::unknown();
  if (r.coeff == 0) r.syms.clear();
  return r;
}

SymInt sym_div(const SymInt& a, const SymInt& b) {
  if (a.is_int() && b.is_int()) {
    if (b.coeff == 0 || (a.coeff == INT64_MIN && b.coeff == -1)) return SymInt::unknown();
    // Truncating and flooring division agree here.
    if ((a.coeff >= 0 && b.coeff > 0) || a.coeff % b.coeff == 0)
      return SymInt::of(a.coeff / b.coeff);
    return SymInt::unknown();
  }
  return sym_div_exact(a, b);
}

// 1 when a == b certainly, 0 when a != b certainly, else unknown. Symbolic elements with a
// positive coefficient are sizes: never negative.
SymInt sym_equal(const SymInt& a, const SymInt& b) {
  if (!a.known || !b.known) return SymInt::unknown();
  if (a == b) return SymInt::of(1);
  if (a.is_int() && b.is_int()) return SymInt::of(0);
  const SymInt& s = a.is_int() ? b : a;
  const SymInt& i = a.is_int() ? a : b;
  if (i.is_int() && i.coeff < 0 && s.coeff > 0) return SymInt::of(0);
  return SymInt::unknown();
}

// Numpy broadcast of 1-D (or 0-D) value lists: equal lengths or length 1.
bool broadcast_len(const std::vector<size_t>& lens, size_t* out) {
  size_t n = 1;
  for (size_t l : lens) {
    if (l != 1) {
      if (n != 1 && n != l) return false;
      n = l;
    }
  }
  *out = n;
  return true;
}

std::optional<Values> elementwise(const InferContext& ctx, int arity,
                                  SymInt (*fn)(const Values& args)) {
  std::vector<Values> in;
  std::vector<size_t> lens;
  for (int i = 0; i < arity; ++i) {
    auto v = input_shape_value(ctx, i);
    if (!v) return std::nullopt;
    lens.push_back(v->size());
    in.push_back(std::move(*v));
  }
  size_t n = 0;
  if (!broadcast_len(lens, &n)) return std::nullopt;
  Values out;
  for (size_t k = 0; k < n; ++k) {
    Values args;
    for (const Values& v : in) args.push_back(v.size() == 1 ? v[0] : v[k]);
    out.push_back(fn(args));
  }
  return out;
}

std::optional<std::vector<int64_t>> ints_of(const InferContext& ctx, int i) {
  auto v = input_shape_value(ctx, i);
  if (!v) return std::nullopt;
  std::vector<int64_t> r;
  for (const SymInt& s : *v) {
    if (!s.is_int()) return std::nullopt;
    r.push_back(s.coeff);
  }
  return r;
}

std::optional<Values> shape_of(const InferContext& ctx) {
  const ir::TypeInfo& t = ctx.input_type(0);
  if (!t.is_tensor() || !t.shape.rank_known) return std::nullopt;
  const int64_t r = t.shape.rank();
  int64_t start = ctx.opset() >= 15 ? ctx.node().attr_int("start", 0) : 0;
  int64_t end = ctx.opset() >= 15 ? ctx.node().attr_int("end", r) : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  Values out;
  for (int64_t i = start; i < end; ++i) out.push_back(sym_of_dim(t.shape.dims[size_t(i)]));
  return out;
}

std::optional<Values> gather(const InferContext& ctx) {
  auto data = input_shape_value(ctx, 0);
  auto idx = ints_of(ctx, 1);
  const int64_t axis = ctx.node().attr_int("axis", 0);
  if (!data || !idx || (axis != 0 && axis != -1)) return std::nullopt;
  const ir::TypeInfo& dt = ctx.input_type(0);
  if (dt.is_tensor() && dt.shape.rank_known && dt.shape.rank() != 1) return std::nullopt;
  const int64_t n = static_cast<int64_t>(data->size());
  Values out;
  for (int64_t i : *idx) {
    if (i < 0) i += n;
    if (i < 0 || i >= n) return std::nullopt;
    out.push_back((*data)[static_cast<size_t>(i)]);
  }
  return out;
}

std::optional<Values> concat(const InferContext& ctx) {
  const int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis != 0 && axis != -1) return std::nullopt;
  Values out;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    auto v = input_shape_value(ctx, i);
    if (!v) return std::nullopt;
    out.insert(out.end(), v->begin(), v->end());
  }
  return out;
}

std::optional<Values> slice(const InferContext& ctx) {
  auto data = input_shape_value(ctx, 0);
  if (!data) return std::nullopt;
  std::optional<std::vector<int64_t>> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.node().attr_ints("starts");
    ends = ctx.node().attr_ints("ends");
    axes = ctx.node().attr_ints("axes", {0});
    steps = std::vector<int64_t>{1};
  } else {
    starts = ints_of(ctx, 1);
    ends = ints_of(ctx, 2);
    axes = ctx.has_input(3) ? ints_of(ctx, 3) : std::vector<int64_t>{0};
    steps = ctx.has_input(4) ? ints_of(ctx, 4) : std::vector<int64_t>{1};
  }
  if (!starts || !ends || !axes || !steps || starts->size() != 1 || ends->size() != 1 ||
      axes->size() != 1 || steps->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1) ||
      (*steps)[0] == 0)
    return std::nullopt;
  const int64_t n = static_cast<int64_t>(data->size());
  const int64_t step = (*steps)[0];
  int64_t first = 0;
  const int64_t count = tensor_detail::slice_extent((*starts)[0], (*ends)[0], step, n, &first);
  Values out;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = first + k * step;
    if (i < 0 || i >= n) return std::nullopt;
    out.push_back((*data)[static_cast<size_t>(i)]);
  }
  return out;
}

std::optional<Values> constant_of_shape(const InferContext& ctx) {
  auto shape = ints_of(ctx, 0);
  const Tensor* value = ctx.node().attr_tensor("value");
  if (!shape || value == nullptr || !value->defined() || value->numel() != 1 ||
      !is_integer(value->dtype()) || shape->size() > 1)
    return std::nullopt;
  const int64_t n = shape->empty() ? 1 : (*shape)[0];
  if (n < 0 || n > kMaxShapeValue) return std::nullopt;
  return Values(static_cast<size_t>(n), SymInt::of(value->get_int64(0)));
}

// Same elements as input 0 (Identity, Cast between integer types, Squeeze/Unsqueeze of 0-D and
// 1-D values: the element count check in infer_shape_value rejects the rest).
std::optional<Values> same(const InferContext& ctx) {
  return input_shape_value(ctx, 0);
}

std::optional<Values> compute(const InferContext& ctx) {
  const ir::Node& n = ctx.node();
  const std::string& op = n.op_type;
  if (!n.domain.empty() && n.domain != "ai.onnx") return std::nullopt;
  if (op == "Shape") return shape_of(ctx);
  if (op == "Size") {
    const ir::TypeInfo& t = ctx.input_type(0);
    if (!t.is_tensor() || !t.shape.rank_known) return std::nullopt;
    return Values{sym_product(t.shape.dims)};
  }
  if (op == "Gather") return gather(ctx);
  if (op == "Concat") return concat(ctx);
  if (op == "Slice") return slice(ctx);
  if (op == "Identity" || op == "Squeeze" || op == "Unsqueeze" || op == "Reshape") return same(ctx);
  if (op == "Cast") {
    const DType from = tensor_detail::input_dtype(ctx, 0);
    if (!(is_integer(from) || from == DType::kBool) || ctx.outputs()[0].dtype == DType::kBool)
      return std::nullopt;
    return same(ctx);
  }
  if (op == "ConstantOfShape") return constant_of_shape(ctx);
  if (op == "Add")
    return elementwise(ctx, 2, [](const Values& a) { return sym_add(a[0], a[1], false); });
  if (op == "Sub")
    return elementwise(ctx, 2, [](const Values& a) { return sym_add(a[0], a[1], true); });
  if (op == "Mul") return elementwise(ctx, 2, [](const Values& a) { return sym_mul(a[0], a[1]); });
  if (op == "Div") return elementwise(ctx, 2, [](const Values& a) { return sym_div(a[0], a[1]); });
  if (op == "Equal")
    return elementwise(ctx, 2, [](const Values& a) { return sym_equal(a[0], a[1]); });
  if (op == "Where") {
    return elementwise(ctx, 3, [](const Values& a) {
      if (!a[0].is_int()) return a[1] == a[2] ? a[1] : SymInt::unknown();
      return a[0].coeff != 0 ? a[1] : a[2];
    });
  }
  return std::nullopt;
}

thread_local std::unordered_map<const ir::Value*, std::vector<SymInt>>* g_table = nullptr;

}  // namespace

ShapeValueTable::ShapeValueTable() {
  if (g_table == nullptr) {
    g_table = new std::unordered_map<const ir::Value*, std::vector<SymInt>>();
    owner_ = true;
  }
}

ShapeValueTable::~ShapeValueTable() {
  if (owner_) {
    delete g_table;
    g_table = nullptr;
  }
}

void ShapeValueTable::set(const ir::Value* v, std::optional<std::vector<SymInt>> value) {
  if (g_table == nullptr) return;
  if (value)
    (*g_table)[v] = std::move(*value);
  else
    g_table->erase(v);
}

const std::vector<SymInt>* ShapeValueTable::get(const ir::Value* v) {
  if (g_table == nullptr) return nullptr;
  auto it = g_table->find(v);
  return it == g_table->end() ? nullptr : &it->second;
}

std::optional<std::vector<SymInt>> input_shape_value(const InferContext& ctx, int i) {
  if (!ctx.has_input(i)) return std::nullopt;
  if (const Tensor* c = ctx.input_constant(i)) {
    if (!(is_integer(c->dtype()) || c->dtype() == DType::kBool) || c->shape().size() > 1 ||
        c->numel() > kMaxShapeValue)
      return std::nullopt;
    std::vector<SymInt> v;
    for (int64_t k = 0; k < c->numel(); ++k) v.push_back(SymInt::of(c->get_int64(k)));
    return v;
  }
  const std::vector<SymInt>* v = ShapeValueTable::get(ctx.node().inputs[static_cast<size_t>(i)]);
  if (v == nullptr) return std::nullopt;
  return *v;
}

SymInt sym_of_dim(const ir::Dim& d) {
  if (d.known()) return SymInt::of(d.value);
  if (d.symbol.empty()) return SymInt::unknown();
  SymInt r = SymInt::of(1);
  size_t pos = 0;
  while (pos <= d.symbol.size()) {
    size_t star = d.symbol.find('*', pos);
    if (star == std::string::npos) star = d.symbol.size();
    const std::string factor = d.symbol.substr(pos, star - pos);
    int64_t v = 0;
    if (parse_int(factor, &v)) {
      if (__builtin_mul_overflow(r.coeff, v, &r.coeff)) return SymInt::unknown();
    } else if (is_symbol_name(factor)) {
      r.syms.push_back(factor);
    } else {
      // Not a product form: the whole symbol is one factor.
      return SymInt{true, 1, {d.symbol}};
    }
    pos = star + 1;
  }
  std::sort(r.syms.begin(), r.syms.end());
  if (r.coeff == 0) r.syms.clear();
  return r;
}

ir::Dim dim_of_sym(const SymInt& s) {
  if (!s.known || s.coeff < 0) return ir::Dim::unknown();
  if (s.syms.empty() || s.coeff == 0) return ir::Dim::of(s.coeff);
  std::string name = s.coeff == 1 ? std::string() : std::to_string(s.coeff);
  for (const std::string& f : s.syms) {
    if (!name.empty()) name += '*';
    name += f;
  }
  return ir::Dim::named(std::move(name));
}

SymInt sym_mul(const SymInt& a, const SymInt& b) {
  if ((a.is_int() && a.coeff == 0) || (b.is_int() && b.coeff == 0)) return SymInt::of(0);
  if (!a.known || !b.known) return SymInt::unknown();
  SymInt r;
  r.known = true;
  if (__builtin_mul_overflow(a.coeff, b.coeff, &r.coeff)) return SymInt::unknown();
  r.syms = a.syms;
  r.syms.insert(r.syms.end(), b.syms.begin(), b.syms.end());
  std::sort(r.syms.begin(), r.syms.end());
  if (r.coeff == 0) r.syms.clear();
  return r;
}

SymInt sym_div_exact(const SymInt& a, const SymInt& b) {
  if (!a.known || !b.known || b.coeff == 0) return SymInt::unknown();
  if (b.coeff == -1 && a.coeff == INT64_MIN) return SymInt::unknown();
  if (a.coeff % b.coeff != 0) return SymInt::unknown();
  SymInt r;
  r.known = true;
  r.coeff = a.coeff / b.coeff;
  // a.syms minus b.syms as multisets (both sorted).
  size_t j = 0;
  for (const std::string& s : a.syms) {
    if (j < b.syms.size() && b.syms[j] == s) {
      ++j;
    } else {
      r.syms.push_back(s);
    }
  }
  if (j != b.syms.size()) return SymInt::unknown();
  if (r.coeff == 0) r.syms.clear();
  return r;
}

SymInt sym_product(const std::vector<ir::Dim>& dims) {
  SymInt p = SymInt::of(1);
  for (const ir::Dim& d : dims) p = sym_mul(p, sym_of_dim(d));
  return p;
}

std::optional<Tensor> shape_value_tensor(const ir::Value& v) {
  const std::vector<SymInt>* value = ShapeValueTable::get(&v);
  const ir::TypeInfo& t = v.type;
  if (value == nullptr || !t.is_tensor() || !t.shape.rank_known || t.shape.rank() > 1) {
    return std::nullopt;
  }
  if (t.shape.rank() == 0 && value->size() != 1) return std::nullopt;
  std::vector<int64_t> ints;
  for (const SymInt& s : *value) {
    if (!s.is_int()) return std::nullopt;
    ints.push_back(s.coeff);
  }
  std::vector<int64_t> shape;
  if (t.shape.rank() == 1) shape.push_back(static_cast<int64_t>(ints.size()));
  if (t.dtype == DType::kInt64) return Tensor::from_vector<int64_t>(shape, ints);
  if (t.dtype == DType::kInt32) {
    std::vector<int32_t> narrow;
    for (int64_t x : ints) {
      if (x < INT32_MIN || x > INT32_MAX) return std::nullopt;
      narrow.push_back(static_cast<int32_t>(x));
    }
    return Tensor::from_vector<int32_t>(shape, narrow);
  }
  if (t.dtype == DType::kBool) {
    std::vector<bool> bits;
    for (int64_t x : ints) bits.push_back(x != 0);
    return Tensor::from_vector<bool>(shape, bits);
  }
  return std::nullopt;
}

std::optional<std::vector<SymInt>> infer_shape_value(const InferContext& ctx) {
  if (ctx.num_outputs() < 1) return std::nullopt;
  const ir::TypeInfo& t = ctx.outputs()[0];
  if (!t.is_tensor() ||
      !(t.dtype == DType::kInt64 || t.dtype == DType::kInt32 || t.dtype == DType::kBool))
    return std::nullopt;
  if (!t.shape.rank_known || t.shape.rank() > 1) return std::nullopt;
  std::optional<Values> v = compute(ctx);
  if (!v || static_cast<int64_t>(v->size()) > kMaxShapeValue) return std::nullopt;
  const size_t expect = t.shape.rank() == 0       ? 1
                        : t.shape.dims[0].known() ? static_cast<size_t>(t.shape.dims[0].value)
                                                  : v->size();
  if (v->size() != expect) return std::nullopt;
  if (t.dtype == DType::kInt32) {
    // Elements past int32 wrap when the model runs: not followed.
    for (const SymInt& e : *v) {
      if (e.is_int() && (e.coeff > INT32_MAX || e.coeff < INT32_MIN)) return std::nullopt;
    }
  }
  return v;
}

}  // namespace kiln::ops
