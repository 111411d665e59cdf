#include "backend/tactic.h"

#include <algorithm>
#include <cstdio>

namespace kiln::backend {
namespace {

constexpr int kKindShift = 56;
constexpr int64_t kKindMask = 0x7f;

// One field of a packed tactic: `bits` wide at `shift`.
struct Field {
  int shift;
  int bits;
};
// cuDNN: algorithm, math type.
constexpr Field kDnnAlgo{0, 8}, kDnnMath{8, 4};
// cuBLASLt: the configuration attributes, 56 bits in all.
constexpr Field kLtAlgo{0, 10}, kLtTile{10, 10}, kLtStages{20, 7}, kLtSplitK{27, 8},
    kLtReduction{35, 3}, kLtSwizzle{38, 1}, kLtCustom{39, 7}, kLtInner{46, 4}, kLtCluster{50, 6};
// cuDNN graph: engine index, epilogue in the graph, knobs hashed, then 3 knob slots (type + 1,
// 0 = empty; value) or the 42-bit knob hash.
constexpr Field kGraphEngine{0, 12}, kGraphFused{12, 1}, kGraphHashed{13, 1};
constexpr int kGraphKnobShift = 14, kGraphKnobSlots = 3;
constexpr int kGraphKnobTypeBits = 6, kGraphKnobValueBits = 8;
constexpr int kGraphSlotBits = kGraphKnobTypeBits + kGraphKnobValueBits;
constexpr int kGraphHashBits = 42;
static_assert(kGraphKnobShift + kGraphKnobSlots * kGraphSlotBits == 56, "cuDNN graph layout");
static_assert(kGraphKnobShift + kGraphHashBits == 56, "cuDNN graph layout");

bool put(int64_t* t, Field f, int v) {
  if (v < 0 || v >= (1 << f.bits)) return false;
  *t |= static_cast<int64_t>(v) << f.shift;
  return true;
}
int get(int64_t t, Field f) {
  return static_cast<int>((t >> f.shift) & ((int64_t{1} << f.bits) - 1));
}

int64_t with_kind(TacticKind k) {
  return static_cast<int64_t>(k) << kKindShift;
}

const char* fwd_algo_name(int a) {
  switch (a) {
    case 0:
      return "IMPLICIT_GEMM";
    case 1:
      return "IMPLICIT_PRECOMP_GEMM";
    case 2:
      return "GEMM";
    case 3:
      return "DIRECT";
    case 4:
      return "FFT";
    case 5:
      return "FFT_TILING";
    case 6:
      return "WINOGRAD";
    case 7:
      return "WINOGRAD_NONFUSED";
  }
  return nullptr;
}

const char* bwd_data_algo_name(int a) {
  switch (a) {
    case 0:
      return "ALGO_0";
    case 1:
      return "ALGO_1";
    case 2:
      return "FFT";
    case 3:
      return "FFT_TILING";
    case 4:
      return "WINOGRAD";
    case 5:
      return "WINOGRAD_NONFUSED";
  }
  return nullptr;
}

const char* math_name(int m) {
  switch (m) {
    case 0:
      return "default-math";
    case 1:
      return "tensor-op";
    case 2:
      return "tensor-op-conversion";
    case 3:
      return "fma";
  }
  return "math?";
}

// Tile sizes (rows x columns) of the first cublasLtMatmulTile_t values; later ones print by id.
constexpr int kTiles[][2] = {{0, 0},     {8, 8},     {8, 16},    {16, 8},   {8, 32},   {16, 16},
                             {32, 8},    {8, 64},    {16, 32},   {32, 16},  {64, 8},   {32, 32},
                             {32, 64},   {64, 32},   {32, 128},  {64, 64},  {128, 32}, {64, 128},
                             {128, 64},  {64, 256},  {128, 128}, {256, 64}, {64, 512}, {128, 256},
                             {256, 128}, {512, 64},  {64, 96},   {96, 64},  {96, 128}, {128, 160},
                             {160, 128}, {192, 128}, {128, 192}, {128, 96}, {32, 256}, {256, 32}};

std::string tile_name(int id) {
  constexpr int n = static_cast<int>(sizeof(kTiles) / sizeof(kTiles[0]));
  if (id == 0) return "auto";
  if (id > 0 && id < n) return std::to_string(kTiles[id][0]) + "x" + std::to_string(kTiles[id][1]);
  return "#" + std::to_string(id);
}

// cublasLtMatmulStages_t 1..24 are 16, 32, 64, 128 wide with 1..6 stages each.
std::string stages_name(int id) {
  if (id == 0) return "auto";
  if (id >= 1 && id <= 24) {
    return std::to_string(16 << ((id - 1) / 6)) + "x" + std::to_string((id - 1) % 6 + 1);
  }
  return "#" + std::to_string(id);
}

// cudnnBackendKnobType_t names (cudnn_graph.h); later ones print by number.
// clang-format off
constexpr const char* kKnobNames[] = {
    "SPLIT_K", "SWIZZLE", "TILE_SIZE", "USE_TEX", "EDGE",  // 0..
    "KBLOCK", "LDGA", "LDGB", "CHUNK_K", "SPLIT_H",  // 5..
    "WINO_TILE", "MULTIPLY", "SPLIT_K_BUF", "TILEK", "STAGES",  // 10..
    "REDUCTION_MODE", "CTA_SPLIT_K_MODE", "SPLIT_K_SLC", "IDX_MODE", "SLICED",  // 15..
    "SPLIT_RS", "SINGLEBUFFER", "LDGC", "SPECFILT", "KERNEL_CFG",  // 20..
    "WORKSPACE", "TILE_CGA", "TILE_CGA_M", "TILE_CGA_N", "BLOCK_SIZE",  // 25..
    "OCCUPANCY", "ARRAY_SIZE_PER_THREAD", "NUM_C_PER_BLOCK", "SPLIT_COLS", "TILE_ROWS",  // 30..
    "TILE_COLS", "LOAD_SIZE", "CTA_COUNT", "STREAM_K", "SPLIT_P_SLC",  // 35..
    "TILE_M", "TILE_N", "WARP_SPEC_CFG", "SWAP_AB",  // 40..
};
// clang-format on

std::string knob_name(int type) {
  constexpr int n = static_cast<int>(sizeof(kKnobNames) / sizeof(kKnobNames[0]));
  if (type >= 0 && type < n) return kKnobNames[type];
  return "k" + std::to_string(type);
}

void sort_knobs(std::vector<CudnnGraphKnob>* knobs) {
  std::sort(knobs->begin(), knobs->end(), [](const CudnnGraphKnob& a, const CudnnGraphKnob& b) {
    return a.type != b.type ? a.type < b.type : a.value < b.value;
  });
}

}  // namespace

bool CublasLtTactic::operator==(const CublasLtTactic& o) const {
  return algo_id == o.algo_id && tile == o.tile && stages == o.stages && splitk == o.splitk &&
         reduction == o.reduction && swizzle == o.swizzle && custom == o.custom &&
         inner_shape == o.inner_shape && cluster == o.cluster;
}

TacticKind tactic_kind(int64_t tactic) {
  if (tactic < 0) return TacticKind::kDefault;
  switch ((tactic >> kKindShift) & kKindMask) {
    case 1:
      return TacticKind::kCudnnForward;
    case 2:
      return TacticKind::kCudnnBackwardData;
    case 3:
      return TacticKind::kCublasLt;
    case 4:
      return TacticKind::kCudnnGraph;
    default:
      return TacticKind::kDefault;
  }
}

int64_t encode_cudnn_tactic(TacticKind kind, const CudnnTactic& t) {
  if (kind != TacticKind::kCudnnForward && kind != TacticKind::kCudnnBackwardData) return -1;
  int64_t v = with_kind(kind);
  if (!put(&v, kDnnAlgo, t.algo) || !put(&v, kDnnMath, t.math)) return -1;
  return v;
}

bool decode_cudnn_tactic(int64_t tactic, TacticKind kind, CudnnTactic* out) {
  if (tactic_kind(tactic) != kind || kind == TacticKind::kDefault) return false;
  if ((tactic & ((int64_t{1} << kKindShift) - 1)) >> (kDnnMath.shift + kDnnMath.bits)) {
    return false;  // bits no cuDNN tactic sets
  }
  out->algo = get(tactic, kDnnAlgo);
  out->math = get(tactic, kDnnMath);
  return true;
}

int64_t encode_cublaslt_tactic(const CublasLtTactic& t) {
  int64_t v = with_kind(TacticKind::kCublasLt);
  const bool ok = put(&v, kLtAlgo, t.algo_id) && put(&v, kLtTile, t.tile) &&
                  put(&v, kLtStages, t.stages) && put(&v, kLtSplitK, t.splitk) &&
                  put(&v, kLtReduction, t.reduction) && put(&v, kLtSwizzle, t.swizzle) &&
                  put(&v, kLtCustom, t.custom) && put(&v, kLtInner, t.inner_shape) &&
                  put(&v, kLtCluster, t.cluster);
  return ok ? v : -1;
}

bool decode_cublaslt_tactic(int64_t tactic, CublasLtTactic* out) {
  if (tactic_kind(tactic) != TacticKind::kCublasLt) return false;
  out->algo_id = get(tactic, kLtAlgo);
  out->tile = get(tactic, kLtTile);
  out->stages = get(tactic, kLtStages);
  out->splitk = get(tactic, kLtSplitK);
  out->reduction = get(tactic, kLtReduction);
  out->swizzle = get(tactic, kLtSwizzle);
  out->custom = get(tactic, kLtCustom);
  out->inner_shape = get(tactic, kLtInner);
  out->cluster = get(tactic, kLtCluster);
  return true;
}

uint64_t cudnn_graph_knob_hash(std::vector<CudnnGraphKnob> knobs) {
  sort_knobs(&knobs);
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the (type, value) pairs
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(knobs.size());
  for (const CudnnGraphKnob& k : knobs) {
    mix(static_cast<uint64_t>(k.type));
    mix(static_cast<uint64_t>(k.value));
  }
  return (h ^ (h >> kGraphHashBits)) & ((uint64_t{1} << kGraphHashBits) - 1);
}

int64_t encode_cudnn_graph_tactic(int engine, bool fused, std::vector<CudnnGraphKnob> knobs) {
  int64_t v = with_kind(TacticKind::kCudnnGraph);
  if (!put(&v, kGraphEngine, engine) || !put(&v, kGraphFused, fused ? 1 : 0)) return -1;
  sort_knobs(&knobs);
  bool packed = knobs.size() <= static_cast<size_t>(kGraphKnobSlots);
  for (const CudnnGraphKnob& k : knobs) {
    if (k.type < 0 || k.type + 1 >= (1 << kGraphKnobTypeBits) || k.value < 0 ||
        k.value >= (1 << kGraphKnobValueBits)) {
      packed = false;
    }
  }
  if (!packed) {
    put(&v, kGraphHashed, 1);
    return v | static_cast<int64_t>(cudnn_graph_knob_hash(knobs) << kGraphKnobShift);
  }
  for (size_t i = 0; i < knobs.size(); ++i) {
    const int shift = kGraphKnobShift + static_cast<int>(i) * kGraphSlotBits;
    put(&v, {shift, kGraphKnobTypeBits}, knobs[i].type + 1);
    put(&v, {shift + kGraphKnobTypeBits, kGraphKnobValueBits}, static_cast<int>(knobs[i].value));
  }
  return v;
}

bool decode_cudnn_graph_tactic(int64_t tactic, CudnnGraphTactic* out) {
  if (tactic_kind(tactic) != TacticKind::kCudnnGraph) return false;
  CudnnGraphTactic t;
  t.engine = get(tactic, kGraphEngine);
  t.fused = get(tactic, kGraphFused) != 0;
  t.hashed = get(tactic, kGraphHashed) != 0;
  if (t.hashed) {
    t.knob_hash =
        static_cast<uint64_t>(tactic >> kGraphKnobShift) & ((uint64_t{1} << kGraphHashBits) - 1);
  } else {
    bool ended = false;
    for (int i = 0; i < kGraphKnobSlots; ++i) {
      const int shift = kGraphKnobShift + i * kGraphSlotBits;
      const int type1 = get(tactic, {shift, kGraphKnobTypeBits});
      const int value = get(tactic, {shift + kGraphKnobTypeBits, kGraphKnobValueBits});
      if (type1 == 0) {
        if (value != 0) return false;  // an empty slot holds nothing
        ended = true;
        continue;
      }
      if (ended) return false;  // slots fill from the first
      if (!t.knobs.empty() && type1 - 1 < t.knobs.back().type) return false;  // sorted
      t.knobs.push_back({type1 - 1, value});
    }
  }
  *out = std::move(t);
  return true;
}

std::string describe_tactic(int64_t tactic) {
  CudnnTactic d;
  if (decode_cudnn_tactic(tactic, TacticKind::kCudnnForward, &d)) {
    const char* a = fwd_algo_name(d.algo);
    return std::string("cudnn fwd ") + (a ? a : "algo " + std::to_string(d.algo)) + " " +
           math_name(d.math);
  }
  if (decode_cudnn_tactic(tactic, TacticKind::kCudnnBackwardData, &d)) {
    const char* a = bwd_data_algo_name(d.algo);
    return std::string("cudnn bwd-data ") + (a ? a : "algo " + std::to_string(d.algo)) + " " +
           math_name(d.math);
  }
  CublasLtTactic l;
  if (decode_cublaslt_tactic(tactic, &l)) {
    std::string s = "cublasLt algo " + std::to_string(l.algo_id) + " tile " + tile_name(l.tile) +
                    " stages " + stages_name(l.stages);
    if (l.splitk != 1)
      s += " splitK " + std::to_string(l.splitk) + " red " + std::to_string(l.reduction);
    if (l.swizzle) s += " swizzle";
    if (l.custom) s += " custom " + std::to_string(l.custom);
    if (l.inner_shape) s += " inner " + std::to_string(l.inner_shape);
    if (l.cluster) s += " cluster " + std::to_string(l.cluster);
    return s;
  }
  CudnnGraphTactic g;
  if (decode_cudnn_graph_tactic(tactic, &g)) {
    std::string s = "cudnn graph engine " + std::to_string(g.engine);
    if (g.fused) s += " +epilogue";
    if (g.hashed) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), " knobs #%011llx",
                    static_cast<unsigned long long>(g.knob_hash));
      s += buf;
    } else if (!g.knobs.empty()) {
      s += " knobs ";
      for (size_t i = 0; i < g.knobs.size(); ++i) {
        if (i) s += ",";
        s += knob_name(g.knobs[i].type) + "=" + std::to_string(g.knobs[i].value);
      }
    }
    return s;
  }
  if (tactic == -1) return "default";
  return "default (tactic " + std::to_string(tactic) + " unknown)";
}

}  // namespace kiln::backend
