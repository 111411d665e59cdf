// The .pb value files of the ONNX test layout: TensorProto, SequenceProto, OptionalProto and
// MapProto to Datum, and tensors back to TensorProto.
#include <cstdio>
#include <cstring>

#include "onnx/importer.h"
#include "onnx/reader.h"

namespace kiln::onnx {
namespace {

StatusOr<Datum> sequence_datum(const proto::SequenceProto& s, TensorDecoder& dec,
                               const ir::TypeInfo* expected);
StatusOr<Datum> map_datum(const proto::MapProto& m, TensorDecoder& dec);
StatusOr<Datum> optional_datum(const proto::OptionalProto& o, TensorDecoder& dec,
                               const ir::TypeInfo* expected);

DType elem_dtype_hint(const ir::TypeInfo* t) {
  // Element dtype of a sequence type (seq(tensor)).
  if (t && t->kind == ir::TypeInfo::Kind::kSequence && t->elem && t->elem->is_tensor()) {
    return t->elem->dtype;
  }
  return DType::kUndefined;
}

StatusOr<Datum> sequence_datum(const proto::SequenceProto& s, TensorDecoder& dec,
                               const ir::TypeInfo* expected) {
  std::vector<Datum> items;
  DType elem = elem_dtype_hint(expected);
  const ir::TypeInfo* inner = expected && expected->elem ? expected->elem.get() : nullptr;
  switch (s.elem_type) {
    case proto::kValueTensor:
    case proto::kValueUndefined:
      for (const auto& t : s.tensor_values) {
        KILN_ASSIGN_OR_RETURN(Tensor x, dec.decode(t));
        if (elem == DType::kUndefined) elem = x.dtype();
        items.push_back(Datum::of(std::move(x)));
      }
      if (s.elem_type == proto::kValueTensor || !s.tensor_values.empty()) break;
      [[fallthrough]];
    case proto::kValueSparseTensor:
      for (const auto& t : s.sparse_tensor_values) {
        KILN_ASSIGN_OR_RETURN(Tensor x, dec.decode_sparse(t));
        if (elem == DType::kUndefined) elem = x.dtype();
        items.push_back(Datum::of(std::move(x)));
      }
      if (s.elem_type == proto::kValueSparseTensor || !s.sparse_tensor_values.empty()) break;
      [[fallthrough]];
    case proto::kValueSequence:
      for (const auto& x : s.sequence_values) {
        KILN_ASSIGN_OR_RETURN(Datum d, sequence_datum(x, dec, inner));
        items.push_back(std::move(d));
      }
      if (s.elem_type == proto::kValueSequence || !s.sequence_values.empty()) break;
      [[fallthrough]];
    case proto::kValueMap:
      for (const auto& x : s.map_values) {
        KILN_ASSIGN_OR_RETURN(Datum d, map_datum(x, dec));
        items.push_back(std::move(d));
      }
      if (s.elem_type == proto::kValueMap || !s.map_values.empty()) break;
      [[fallthrough]];
    case proto::kValueOptional:
      for (const auto& x : s.optional_values) {
        KILN_ASSIGN_OR_RETURN(Datum d, optional_datum(x, dec, inner));
        items.push_back(std::move(d));
      }
      break;
    default:
      return invalid_model("SequenceProto '" + s.name + "': unknown elem_type " +
                           std::to_string(s.elem_type));
  }
  return Datum::make_sequence(elem, std::move(items));
}

StatusOr<Datum> map_datum(const proto::MapProto& m, TensorDecoder& dec) {
  const std::string what = "MapProto '" + m.name + "'";
  KILN_ASSIGN_OR_RETURN(DType key_type, dtype_from_onnx(m.key_type, what));
  Tensor keys;
  size_t n = 0;
  if (key_type == DType::kString) {
    n = m.string_keys.size();
    keys = Tensor::from_strings({static_cast<int64_t>(n)}, m.string_keys);
  } else if (is_integer(key_type)) {
    n = m.keys.size();
    keys = Tensor::from_vector<int64_t>({static_cast<int64_t>(n)}, m.keys);
    if (key_type != DType::kInt64) {
      KILN_ASSIGN_OR_RETURN(keys, convert_tensor(keys, key_type));
    }
  } else {
    return invalid_model(what + ": key type " + dtype_name(key_type) + " is not allowed");
  }
  if (!m.values) return invalid_model(what + ": no values");
  KILN_ASSIGN_OR_RETURN(Datum vals, sequence_datum(*m.values, dec, nullptr));
  if (vals.sequence->size() != n) {
    return invalid_model(what + ": " + std::to_string(n) + " keys but " +
                         std::to_string(vals.sequence->size()) + " values");
  }
  // Values must be scalars (or one-element tensors) of one dtype to form a 1-D tensor.
  DType vt = vals.sequence_dtype;
  if (vt == DType::kUndefined) vt = DType::kFloat32;
  KILN_ASSIGN_OR_RETURN(Tensor values, Tensor::create(vt, {static_cast<int64_t>(n)}));
  for (size_t i = 0; i < n; ++i) {
    const Datum& d = (*vals.sequence)[i];
    if (!d.is_tensor() || d.tensor.numel() != 1 || d.tensor.dtype() != vt) {
      return unsupported_dtype(what +
                               ": map values other than scalars of one dtype are not supported");
    }
    if (vt == DType::kString) {
      values.mutable_strings()[i] = d.tensor.strings()[0];
    } else {
      const uint64_t es = dtype_storage_bytes(vt, 1);
      if (is_sub_byte(vt))
        return unsupported_dtype(what + ": sub-byte map values are not supported");
      std::memcpy(static_cast<uint8_t*>(values.mutable_raw()) + i * es, d.tensor.raw(), es);
    }
  }
  return Datum::make_map(std::move(keys), std::move(values));
}

StatusOr<Datum> optional_datum(const proto::OptionalProto& o, TensorDecoder& dec,
                               const ir::TypeInfo* expected) {
  const ir::TypeInfo* inner = expected && expected->elem ? expected->elem.get() : nullptr;
  switch (o.elem_type) {
    case proto::kValueUndefined:
      break;
    case proto::kValueTensor:
      if (o.tensor_value) {
        KILN_ASSIGN_OR_RETURN(Tensor t, dec.decode(*o.tensor_value));
        return Datum::of(std::move(t));
      }
      break;
    case proto::kValueSparseTensor:
      if (o.sparse_tensor_value) {
        KILN_ASSIGN_OR_RETURN(Tensor t, dec.decode_sparse(*o.sparse_tensor_value));
        return Datum::of(std::move(t));
      }
      break;
    case proto::kValueSequence:
      if (o.sequence_value) return sequence_datum(*o.sequence_value, dec, inner);
      break;
    case proto::kValueMap:
      if (o.map_value) return map_datum(*o.map_value, dec);
      break;
    case proto::kValueOptional:
      if (o.optional_value) return optional_datum(*o.optional_value, dec, inner);
      break;
    default:
      return invalid_model("OptionalProto '" + o.name + "': unknown elem_type " +
                           std::to_string(o.elem_type));
  }
  return Datum::none();
}

}  // namespace

StatusOr<Datum> read_value_file(const std::string& path, const ir::TypeInfo& expected) {
  KILN_ASSIGN_OR_RETURN(MappedFile mf, map_file(path));
  std::string dir = ".";
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  return read_value_bytes(mf.bytes, path, dir, mf.owner, expected);
}

StatusOr<Datum> read_value_bytes(std::span<const uint8_t> bytes, const std::string& path,
                                 const std::string& base_dir, std::shared_ptr<const void> owner,
                                 const ir::TypeInfo& expected) {
  TensorDecoder dec(path, base_dir, std::move(owner));
  StatusOr<Datum> out = Status(StatusCode::kInternal, "unset");
  switch (expected.kind) {
    case ir::TypeInfo::Kind::kUnknown:
    case ir::TypeInfo::Kind::kTensor: {
      proto::TensorProto t;
      Status s = proto::parse_tensor(bytes, &t);
      if (!s.ok()) return s.with_context(path);
      StatusOr<Tensor> x = dec.decode(t);
      if (!x.ok()) return x.take_status().with_context(path);
      return Datum::of(std::move(x).value());
    }
    case ir::TypeInfo::Kind::kSequence: {
      proto::SequenceProto sp;
      Status s = proto::parse_sequence(bytes, &sp);
      if (!s.ok()) return s.with_context(path);
      out = sequence_datum(sp, dec, &expected);
      break;
    }
    case ir::TypeInfo::Kind::kOptional: {
      proto::OptionalProto op;
      Status s = proto::parse_optional(bytes, &op);
      if (!s.ok()) return s.with_context(path);
      out = optional_datum(op, dec, &expected);
      break;
    }
    case ir::TypeInfo::Kind::kMap: {
      proto::MapProto mp;
      Status s = proto::parse_map(bytes, &mp);
      if (!s.ok()) return s.with_context(path);
      out = map_datum(mp, dec);
      break;
    }
  }
  if (!out.ok()) return out.take_status().with_context(path);
  return out;
}

Status write_tensor_file(const std::string& path, const Tensor& tensor, const std::string& name) {
  if (!tensor.defined()) return invalid_argument(path + ": cannot write an undefined tensor");
  proto::TensorProto t;
  t.dims = tensor.shape();
  t.data_type = static_cast<int32_t>(tensor.dtype());
  t.name = name;
  if (tensor.dtype() == DType::kString) {
    t.string_data = tensor.strings();
  } else {
    t.has_raw_data = true;
    t.raw_data = std::span<const uint8_t>(static_cast<const uint8_t*>(tensor.raw()),
                                          static_cast<size_t>(tensor.nbytes()));
  }
  const std::string bytes = proto::serialize_tensor(t);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return io_error(path + ": cannot open for writing: " + std::strerror(errno));
  const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
  const bool ok = std::fclose(f) == 0 && written == bytes.size();
  if (!ok) return io_error(path + ": write failed");
  return Status::Ok();
}

}  // namespace kiln::onnx
