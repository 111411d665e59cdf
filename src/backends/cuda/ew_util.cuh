// Helpers shared by the CUDA elementwise and reduction kernels (internal to those families):
// dtype dispatch over every plain dtype, the compute type of each element type, loads and stores
// in that compute type, and host-side checks for supports().
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/cuda/common.cuh"
#include "ops/shape_util.h"

namespace kiln::cuda::ew {

// The type an element is computed in: float for float16/bfloat16/float32, double for double,
// the type itself for integers and bool.
template <typename T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<__half> {
  using type = float;
};
template <>
struct ComputeOf<__nv_bfloat16> {
  using type = float;
};
template <typename T>
using Compute = typename ComputeOf<T>::type;

template <typename T>
inline constexpr bool kFloatLike =
    std::is_floating_point_v<T> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

template <typename T>
__device__ __forceinline__ Compute<T> load_c(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) {
    return load_f(p, i);
  } else {
    return p[i];
  }
}
template <typename T>
__device__ __forceinline__ T to_t(Compute<T> v) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) {
    return from_f<T>(v);
  } else {
    return v;
  }
}

// x < 0 without a pointless-comparison warning for unsigned types.
template <typename T>
__host__ __device__ __forceinline__ bool is_negative(T x) {
  if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) {
    return false;
  } else {
    return x < T(0);
  }
}

// Orders of ArgMax/ArgMin/TopK (NaN ranks above every number).
// a ranks strictly above b when looking for the largest value (NaN above everything).
template <typename K>
__host__ __device__ __forceinline__ bool greater_key(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (isnan(a)) return !isnan(b);
    if (isnan(b)) return false;
  }
  return a > b;
}
template <typename K>
__host__ __device__ __forceinline__ bool less_key(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (isnan(a)) return false;
    if (isnan(b)) return true;
  }
  return a < b;
}

// Integer arithmetic that wraps (two's complement) instead of overflowing.
template <typename T>
__host__ __device__ __forceinline__ T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <typename T>
__host__ __device__ __forceinline__ T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <typename T>
__host__ __device__ __forceinline__ T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  // uint8/uint16 promote to int: multiply in uint32 so the product cannot overflow int.
  using W = std::conditional_t<(sizeof(U) < 4), uint32_t, U>;
  return static_cast<T>(
      static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
}

// Host-side dispatch over the float types, the integer types and (with kBool) bool:
//   dispatch_all<true>(dt, [&](auto tag) { using T = decltype(tag); ... });
// Returns false for other dtypes.
template <bool kWithBool, bool kWithInts = true, typename F>
bool dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat32:
      f(float{});
      return true;
    case DType::kFloat16:
      f(__half{});
      return true;
    case DType::kBFloat16:
      f(__nv_bfloat16{});
      return true;
    case DType::kFloat64:
      f(double{});
      return true;
    default:
      break;
  }
  if constexpr (kWithInts) {
    switch (dt) {
      case DType::kInt8:
        f(int8_t{});
        return true;
      case DType::kInt16:
        f(int16_t{});
        return true;
      case DType::kInt32:
        f(int32_t{});
        return true;
      case DType::kInt64:
        f(int64_t{});
        return true;
      case DType::kUInt8:
        f(uint8_t{});
        return true;
      case DType::kUInt16:
        f(uint16_t{});
        return true;
      case DType::kUInt32:
        f(uint32_t{});
        return true;
      case DType::kUInt64:
        f(uint64_t{});
        return true;
      default:
        break;
    }
  }
  if constexpr (kWithBool) {
    if (dt == DType::kBool) {
      f(bool{});
      return true;
    }
  }
  return false;
}

inline bool is_float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}
inline bool is_int_dtype(DType t) {
  switch (t) {
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64:
      return true;
    default:
      return false;
  }
}

// "" when every input and output of known rank has rank <= kMaxRank.
inline std::string check_ranks(const ir::Node& node) {
  auto bad = [](const ir::Value* v) {
    return v != nullptr && v->type.is_tensor() && v->type.shape.rank_known &&
           v->type.shape.rank() > kMaxRank;
  };
  for (const ir::Value* v : node.inputs) {
    if (bad(v)) return "rank > 8";
  }
  for (const ir::Value* v : node.outputs) {
    if (bad(v)) return "rank > 8";
  }
  return {};
}

// dst = s (an expression statement `st = f();` makes nvcc warn about the discarded Status&).
inline void set_status(Status& dst, Status s) {
  static_cast<void>(dst = std::move(s));
}

inline int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Simplifies a broadcast for index math: pads every input shape to the output's rank, drops the
// output's size-1 dims and merges neighbouring dims that every input treats alike (all present,
// or all broadcast). `ins` and `out` are rewritten in place; element order is unchanged.
// Requires every output dim > 0 and the inputs to broadcast to `out`.
inline void collapse_broadcast(std::vector<std::vector<int64_t>*> ins, std::vector<int64_t>* out) {
  const size_t r = out->size();
  std::vector<std::vector<int64_t>> pad(ins.size());
  for (size_t k = 0; k < ins.size(); ++k) {
    pad[k].assign(r - ins[k]->size(), 1);
    pad[k].insert(pad[k].end(), ins[k]->begin(), ins[k]->end());
  }
  std::vector<int64_t> o;
  std::vector<std::vector<int64_t>> in(ins.size());
  for (size_t d = 0; d < r; ++d) {
    if ((*out)[d] == 1) continue;
    bool merge = !o.empty();
    for (size_t k = 0; k < ins.size() && merge; ++k) {
      const bool full_d = pad[k][d] != 1;
      const bool full_prev = in[k].back() != 1 || o.back() == 1;
      merge = full_d == full_prev;
    }
    if (merge) {
      o.back() *= (*out)[d];
      for (size_t k = 0; k < ins.size(); ++k) in[k].back() *= pad[k][d];
    } else {
      o.push_back((*out)[d]);
      for (size_t k = 0; k < ins.size(); ++k) in[k].push_back(pad[k][d]);
    }
  }
  *out = std::move(o);
  for (size_t k = 0; k < ins.size(); ++k) *ins[k] = std::move(in[k]);
}

// make_broadcast_map on the collapsed shapes of one input (out's dims all > 0).
inline BroadcastMap collapsed_map(std::vector<int64_t> in, std::vector<int64_t> out) {
  collapse_broadcast({&in}, &out);
  return make_broadcast_map(in, out);
}

// Known rank of input i, or -1.
inline int known_rank(const ir::Node& node, int i) {
  if (!node.has_input(i)) return -1;
  const ir::TypeInfo& t = node.inputs[static_cast<size_t>(i)]->type;
  return t.is_tensor() && t.shape.rank_known ? t.shape.rank() : -1;
}

}  // namespace kiln::cuda::ew
