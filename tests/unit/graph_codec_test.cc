// The engine file's graph codec: every ONNX 1.23.1 node-suite model encodes, decodes to the same
// IR (deep comparison), re-encodes to identical bytes and runs like the original; every attribute
// kind survives; corrupted or truncated sections are refused with an error, never a crash.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "backends/cpu/executor.h"
#include "engine/byte_io.h"
#include "engine/graph_codec.h"
#include "ir/verifier.h"
#include "onnx/importer.h"
#include "runtime/compare.h"
#include "unit/model_compare.h"

namespace fs = std::filesystem;

namespace kiln::engine {
namespace {

fs::path node_suite() {
  const fs::path built = fs::path(KILN_BINARY_DIR) / "onnx-1.23.1" / "node";
  if (fs::is_directory(built)) return built;
  return "/work/data/node";
}

std::vector<fs::path> suite_cases() {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(node_suite(), ec)) {
    if (fs::exists(e.path() / "model.onnx")) v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

struct Decoded {
  std::shared_ptr<const void> owner;  // the aligned copy of the weights
  const uint8_t* weights = nullptr;
  std::unique_ptr<ir::Model> model;
};

// Decodes from an aligned copy of the weights, as an mmapped engine file would hold them.
StatusOr<Decoded> decode_copy(const EncodedModel& e) {
  Decoded d;
  d.owner = aligned_copy(e.weights, 64, &d.weights);
  KILN_ASSIGN_OR_RETURN(d.model,
                        decode_model(e.graph, std::span(d.weights, e.weights.size()), d.owner));
  return d;
}

// Encode → decode → compare → re-encode; returns "" or what went wrong.
std::string round_trip(const ir::Model& m, Decoded* out = nullptr) {
  StatusOr<EncodedModel> e = encode_model(m);
  if (!e.ok()) return "encode: " + e.status().to_string();
  StatusOr<Decoded> d = decode_copy(*e);
  if (!d.ok()) return "decode: " + d.status().to_string();
  Status v = ir::verify_graph(*d->model->graph);
  if (!v.ok()) return "verify: " + v.to_string();
  std::string diff = testing::diff_models(m, *d->model);
  if (!diff.empty()) return "decoded model differs: " + diff;
  StatusOr<EncodedModel> e2 = encode_model(*d->model);
  if (!e2.ok()) return "re-encode: " + e2.status().to_string();
  if (e2->graph != e->graph) return "re-encoded graph section differs";
  if (e2->weights != e->weights) return "re-encoded weights section differs";
  if (out) *out = std::move(d).value();
  return "";
}

// Inputs of test_data_set_0 for the graph's non-constant inputs; false when unreadable.
bool read_feeds(const ir::Graph& g, const fs::path& dir,
                std::vector<std::pair<std::string, Datum>>* feeds) {
  size_t k = 0;
  for (const ir::Value* v : g.inputs) {
    if (v->constant) continue;
    fs::path f = dir / "test_data_set_0" / ("input_" + std::to_string(k++) + ".pb");
    if (!fs::exists(f)) return false;
    auto d = onnx::read_value_file(f.string(), v->type);
    if (!d.ok()) return false;
    feeds->emplace_back(v->name, std::move(d).value());
  }
  return true;
}

StatusOr<std::vector<Datum>> run(const ir::Graph& g,
                                 const std::vector<std::pair<std::string, Datum>>& feeds) {
  KILN_ASSIGN_OR_RETURN(auto ex, cpu::Executor::create(g));
  return ex->run(feeds);
}

// Exact comparison (NaN matches NaN): the decoded model runs the same kernels on the same bytes.
std::string diff_outputs(const std::vector<Datum>& a, const std::vector<Datum>& b) {
  if (a.size() != b.size()) return "output count";
  for (size_t i = 0; i < a.size(); ++i) {
    std::string d = compare_datum(a[i], b[i], 0.0);
    if (!d.empty()) return "output " + std::to_string(i) + ": " + d;
  }
  return "";
}

TEST(GraphCodec, EveryNodeSuiteModelRoundTrips) {
  const auto cases = suite_cases();
  if (cases.empty()) GTEST_SKIP() << "node suite not found at " << node_suite();
  const auto t0 = std::chrono::steady_clock::now();
  size_t loaded = 0, with_weights = 0, with_subgraphs = 0;
  uint64_t graph_bytes = 0, weight_bytes = 0;
  for (const fs::path& dir : cases) {
    auto m = onnx::load_model((dir / "model.onnx").string());
    if (!m.ok()) continue;  // a few suite models are refused by the importer on purpose
    ++loaded;
    StatusOr<EncodedModel> e = encode_model(**m);
    ASSERT_TRUE(e.ok()) << dir.filename() << ": " << e.status().to_string();
    graph_bytes += e->graph.size();
    weight_bytes += e->weights.size();
    if (!e->weights.empty()) ++with_weights;
    for (const auto& n : (*m)->graph->nodes())
      for (const auto& a : n->attrs)
        if (a.g || !a.graphs.empty()) {
          ++with_subgraphs;
          goto counted;
        }
  counted:
    std::string r = round_trip(**m);
    ASSERT_EQ(r, "") << dir.filename();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[ graph codec ] %zu of %zu models round-tripped in %.2f s (import included); "
      "%zu with weights, %zu with subgraphs; %.1f KiB graph, %.1f KiB weights\n",
      loaded, cases.size(), s, with_weights, with_subgraphs, graph_bytes / 1024.0,
      weight_bytes / 1024.0);
  EXPECT_GE(loaded, cases.size() * 99 / 100);
  EXPECT_GE(with_weights, 1u);  // suite models take their data as inputs: see the next test
  EXPECT_GT(with_subgraphs, 20u);
}

// Every case runs from its decoded copy as it does from the original, once as is and once with its
// test inputs baked into the model as constants (so that large ones run as views of the weights).
// Ops whose outputs are drawn at random (unseeded ones differ per run; two runs can still agree by
// chance on a small tensor, so comparing two runs alone does not find them).
bool has_random_op(const ir::Graph& g) {
  for (const auto& n : g.nodes()) {
    for (const char* op : {"Bernoulli", "RandomUniform", "RandomUniformLike", "RandomNormal",
                           "RandomNormalLike", "Multinomial", "Dropout"}) {
      if (n->op_type == op) return true;
    }
  }
  return false;
}

TEST(GraphCodec, DecodedModelsRunLikeTheOriginals) {
  const auto cases = suite_cases();
  if (cases.empty()) GTEST_SKIP() << "node suite not found at " << node_suite();
  const auto t0 = std::chrono::steady_clock::now();
  int compared = 0, skipped = 0, baked_with_weights = 0;
  for (const fs::path& dir : cases) {
    auto m = onnx::load_model((dir / "model.onnx").string());
    if (!m.ok() || has_random_op(*(*m)->graph)) {
      ++skipped;
      continue;
    }
    std::vector<std::pair<std::string, Datum>> feeds;
    if (!read_feeds(*(*m)->graph, dir, &feeds)) {
      ++skipped;
      continue;
    }
    auto expected = run(*(*m)->graph, feeds);
    auto again = run(*(*m)->graph, feeds);
    // Random ops give different outputs per run: nothing to compare.
    if (!expected.ok() || !again.ok() || !diff_outputs(*expected, *again).empty()) {
      ++skipped;
      continue;
    }
    Decoded d;
    ASSERT_EQ(round_trip(**m, &d), "") << dir.filename();
    auto actual = run(*d.model->graph, feeds);
    ASSERT_TRUE(actual.ok()) << dir.filename() << ": " << actual.status().to_string();
    EXPECT_EQ(diff_outputs(*expected, *actual), "") << dir.filename();

    // Inputs baked in as constants.
    std::vector<std::pair<std::string, Datum>> rest;
    for (auto& [name, datum] : feeds) {
      ir::Value* v = (*m)->graph->find_value(name);
      if (datum.is_tensor() && v) {
        v->constant = std::make_shared<const Tensor>(datum.tensor);
      } else {
        rest.emplace_back(name, datum);
      }
    }
    Decoded baked;
    ASSERT_EQ(round_trip(**m, &baked), "") << dir.filename() << " (baked)";
    auto e = encode_model(**m);
    if (!e->weights.empty()) ++baked_with_weights;
    auto baked_out = run(*baked.model->graph, rest);
    ASSERT_TRUE(baked_out.ok()) << dir.filename() << ": " << baked_out.status().to_string();
    EXPECT_EQ(diff_outputs(*expected, *baked_out), "") << dir.filename() << " (baked)";
    ++compared;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[ graph codec ] %d decoded models ran like their originals, %d of them with "
      "baked inputs in the weights section (%d skipped: random or unreadable) in %.2f s\n",
      compared, baked_with_weights, skipped, s);
  EXPECT_GE(compared, 1700);
  EXPECT_GE(baked_with_weights, 900);
}

TEST(GraphCodec, BundledIfModelRoundTripsAndRuns) {
  auto m = onnx::load_model(std::string(KILN_SOURCE_DIR) + "/models/example_if.onnx");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  Decoded d;
  ASSERT_EQ(round_trip(**m, &d), "");
  for (int seed : {0, 1}) {
    Tensor x = Tensor::zeros(DType::kFloat32, {2, 3, 32, 32});
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    if (seed) {
      for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = nd(rng);
    }
    std::vector<std::pair<std::string, Datum>> feeds = {{"x", Datum::of(x)}};
    auto a = run(*(*m)->graph, feeds);
    auto b = run(*d.model->graph, feeds);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(diff_outputs(*a, *b), "");
  }
}

// ---------------------------------------------------------------- hand-built models

ir::TypeInfo map_type() {
  ir::TypeInfo m;
  m.kind = ir::TypeInfo::Kind::kMap;
  m.dtype = DType::kInt64;
  ir::Shape s;
  s.rank_known = true;
  s.dims = {ir::Dim::named("batch"), ir::Dim::unknown(), ir::Dim::of(7)};
  m.elem = std::make_shared<ir::TypeInfo>(ir::TypeInfo::tensor(DType::kFloat16, s));
  return m;
}

// A subgraph reading outer-scope `outer_name` and returning it through Identity.
std::shared_ptr<ir::Graph> identity_body(const ir::Graph* parent, const std::string& outer_name,
                                         const std::string& name) {
  auto g = std::make_shared<ir::Graph>();
  g->name = name;
  g->parent = parent;
  g->opsets = {{"", 21}};
  ir::Value* x = g->add_value(outer_name);
  x->is_outer_scope = true;
  ir::Value* y = g->add_value(name + "_out");
  y->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of_rank(2));
  ir::Node* n = g->add_node("Identity", "", name + "_id");
  n->inputs = {x};
  n->outputs = {y};
  g->outputs = {y};
  g->relink();
  return g;
}

// A model exercising every encodable feature of the IR.
std::unique_ptr<ir::Model> kitchen_sink() {
  auto m = std::make_unique<ir::Model>();
  m->ir_version = 10;
  m->opsets = {{"", 21}, {"com.example", 3}};
  m->producer_name = "kiln-test";
  m->producer_version = "1.2.3";
  m->doc = "every feature";
  m->metadata = {{"author", "me"}, {"binary", std::string("a\0b", 3)}};
  m->path = "/nowhere/model.onnx";
  m->graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *m->graph;
  g.name = "main";
  g.opsets = m->opsets;

  ir::Value* x = g.add_value("x");
  x->is_graph_input = true;
  ir::Shape xs;
  xs.rank_known = true;
  xs.dims = {ir::Dim::named("N"), ir::Dim::of(16)};
  x->type = ir::TypeInfo::tensor(DType::kFloat32, xs);
  g.inputs.push_back(x);

  auto add_const = [&](const std::string& name, Tensor t) {
    ir::Value* v = g.add_value(name);
    v->type = ir::TypeInfo::tensor(t.dtype(), ir::Shape::of(t.shape()));
    v->constant = std::make_shared<const Tensor>(std::move(t));
    return v;
  };
  std::vector<float> f15(15), f16(16);
  for (int i = 0; i < 16; ++i) f16[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i) - 3;
  std::copy(f16.begin(), f16.begin() + 15, f15.begin());
  ir::Value* small = add_const("small", Tensor::from_vector<float>({15}, f15));    // 60 bytes
  ir::Value* large = add_const("large", Tensor::from_vector<float>({4, 4}, f16));  // 64 bytes
  Tensor shared = Tensor::from_vector<int64_t>({3, 5}, std::vector<int64_t>(15, -7));
  add_const("shared_a", shared);
  add_const("shared_b", shared.reshaped({15}));
  add_const("strings", Tensor::from_strings({2, 2}, {"", "a", std::string("\0\xff", 2),
                                                     "long "
                                                     "string"}));
  Tensor i4 = Tensor::zeros(DType::kInt4, {201});  // 101 bytes, packed
  for (int i = 0; i < 101; ++i) i4.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(i * 37);
  add_const("int4", i4);
  add_const("empty", Tensor::zeros(DType::kFloat32, {0, 3}));
  add_const("scalar_bool", Tensor::scalar<bool>(true));
  ir::Value* in_default = g.add_value("with_default");  // an input with an initializer
  in_default->is_graph_input = true;
  in_default->constant = std::make_shared<const Tensor>(Tensor::scalar<float>(2.f));
  in_default->type = ir::TypeInfo::tensor(DType::kFloat32, ir::Shape::of({}));
  g.inputs.push_back(in_default);

  ir::Value* seq = g.add_value("seq");
  seq->type = ir::TypeInfo::sequence_of(ir::TypeInfo::optional_of(map_type()));
  ir::Value* y = g.add_value("y");
  ir::Value* unnamed = g.add_value("");  // values may be nameless
  (void)unnamed;

  ir::Node* n = g.add_node("Custom", "com.example", "custom0");
  n->inputs = {x, nullptr, small, large, in_default};
  n->outputs = {y, nullptr, seq};
  auto attr = [&](std::string name, ir::AttrType t) -> ir::Attribute& {
    n->attrs.emplace_back();
    n->attrs.back().name = std::move(name);
    n->attrs.back().type = t;
    return n->attrs.back();
  };
  attr("f", ir::AttrType::kFloat).f = -0.0f;
  attr("f_nan", ir::AttrType::kFloat).f = std::bit_cast<float>(0x7fc01234u);
  attr("i", ir::AttrType::kInt).i = -(int64_t{1} << 40);
  attr("s", ir::AttrType::kString).s = std::string("bytes\0here", 10);
  attr("t_small", ir::AttrType::kTensor).t = Tensor::from_vector<int32_t>({2}, {1, -1});
  attr("t_large", ir::AttrType::kTensor).t =
      Tensor::from_vector<double>({9}, std::vector<double>(9, 1.5));
  attr("t_shared", ir::AttrType::kTensor).t = shared;
  attr("g", ir::AttrType::kGraph).g = identity_body(&g, "x", "then");
  {
    auto& a = attr("sparse", ir::AttrType::kSparseTensor);
    a.t = Tensor::from_vector<float>({2, 3}, {0, 0, 1, 0, 2, 0});
    a.tensors = {Tensor::from_vector<float>({2}, {1, 2}),
                 Tensor::from_vector<int64_t>({2}, {2, 4})};
    a.ints = {2, 3};
  }
  attr("tp", ir::AttrType::kTypeProto).tp = map_type();
  attr("floats", ir::AttrType::kFloats).floats = {1.f, -INFINITY, 3.25f};
  attr("ints", ir::AttrType::kInts).ints = {0, -1, INT64_MAX};
  attr("strings", ir::AttrType::kStrings).strings = {"", "x", std::string(300, 'z')};
  attr("tensors", ir::AttrType::kTensors).tensors = {
      Tensor::from_strings({1}, {"s"}), Tensor(),
      Tensor::from_vector<uint8_t>({70}, std::vector<uint8_t>(70, 9))};
  {
    auto& a = attr("graphs", ir::AttrType::kGraphs);
    a.graphs = {identity_body(&g, "small", "b0"), nullptr, identity_body(&g, "x", "b1")};
  }
  attr("tps", ir::AttrType::kTypeProtos).tps = {ir::TypeInfo(), map_type(),
                                                ir::TypeInfo::tensor(DType::kString)};
  attr("empty_ints", ir::AttrType::kInts);  // an empty list keeps its type
  attr("undefined", ir::AttrType::kUndefined);
  ir::Value* z = g.add_value("z");
  ir::Node* n2 = g.add_node("Add", "", "");
  n2->inputs = {y, large};
  n2->outputs = {z};
  g.outputs = {z, seq};
  g.relink();
  return m;
}

TEST(GraphCodec, EveryAttributeAndValueKindRoundTrips) {
  auto m = kitchen_sink();
  ASSERT_TRUE(ir::verify_graph(*m->graph).ok());
  Decoded d;
  ASSERT_EQ(round_trip(*m, &d), "");
  StatusOr<EncodedModel> e = encode_model(*m);
  ASSERT_TRUE(e.ok());
  // Large tensors (>= 64 bytes) are in the weights section, each 64-byte aligned, shared bytes
  // once: large (64) at 0, shared (120) at 64, int4 (101) at 192, t_large (72) at 320,
  // tensors[2] (70) at 448.
  EXPECT_EQ(e->weights.size(), 64u * 7 + 70);
  const ir::Graph& g = *d.model->graph;
  auto in_weights = [&](const void* p) {
    const auto* b = static_cast<const uint8_t*>(p);
    return b >= d.weights && b < d.weights + e->weights.size();
  };
  const ir::Value* large = g.find_value("large");
  EXPECT_TRUE(in_weights(large->constant->raw()));
  EXPECT_FALSE(large->constant->writable());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large->constant->raw()) % 64, 0u);
  EXPECT_FALSE(in_weights(g.find_value("small")->constant->raw()));
  EXPECT_EQ(g.find_value("shared_a")->constant->raw(), g.find_value("shared_b")->constant->raw());
  EXPECT_EQ(g.nodes()[0]->attr("t_shared")->t.raw(), g.find_value("shared_a")->constant->raw());
  // Subgraphs point at their decoded parent; outer-scope values stay by name.
  const ir::Graph* then = g.nodes()[0]->attr("g")->g.get();
  EXPECT_EQ(then->parent, &g);
  EXPECT_TRUE(then->find_value("x")->is_outer_scope);
  // The decoded model outlives the encoded bytes and the Decoded's own owner handle.
  std::unique_ptr<ir::Model> model = std::move(d.model);
  d.owner.reset();
  EXPECT_EQ(model->graph->find_value("large")->constant->data<float>()[15], 4.5f);
}

TEST(GraphCodec, EncodeRefusesValuesOfAnotherGraph) {
  auto m = kitchen_sink();
  ir::Graph other;
  ir::Value* stray = other.add_value("stray");
  m->graph->mutable_nodes()[1]->inputs[0] = stray;
  StatusOr<EncodedModel> e = encode_model(*m);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'stray'"), std::string::npos) << e.status().message();
}

// ---------------------------------------------------------------- corrupted sections

void expect_graph_section_error(const Status& s, const std::string& context) {
  EXPECT_NE(s.message().find("engine file: graph section"), std::string::npos)
      << context << ": " << s.to_string();
}

TEST(GraphCodec, TruncatedGraphSectionsAreRefused) {
  auto m = kitchen_sink();
  StatusOr<EncodedModel> e = encode_model(*m);
  ASSERT_TRUE(e.ok());
  const uint8_t* w = nullptr;
  auto owner = aligned_copy(e->weights, 64, &w);
  const std::span<const uint8_t> weights(w, e->weights.size());
  for (size_t len = 0; len < e->graph.size(); ++len) {
    auto d = decode_model(std::span(e->graph.data(), len), weights, owner);
    ASSERT_FALSE(d.ok()) << len;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidModel);
    expect_graph_section_error(d.status(), "length " + std::to_string(len));
  }
  // Extra bytes after the model.
  std::vector<uint8_t> longer = e->graph;
  longer.push_back(0);
  auto d = decode_model(longer, weights, owner);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("unread bytes"), std::string::npos);
  // Weights shorter than the tensors need.
  d = decode_model(e->graph, weights.first(weights.size() - 1), owner);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("outside the weights section"), std::string::npos)
      << d.status().message();
  // Weights not 64-byte aligned in memory.
  std::vector<uint8_t> buf(e->weights.size() + 64);
  const uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64 + 1;
  d = decode_model(e->graph, std::span(base, e->weights.size()), nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("aligned"), std::string::npos) << d.status().message();
}

// Flips bytes of the graph section: each decode returns a verified model or an error.
void flip_everywhere(const EncodedModel& e, size_t max_flips, uint32_t seed, int* refused,
                     int* accepted) {
  const uint8_t* w = nullptr;
  auto owner = aligned_copy(e.weights, 64, &w);
  const std::span<const uint8_t> weights(w, e.weights.size());
  std::vector<size_t> positions;
  if (e.graph.size() <= max_flips) {
    for (size_t i = 0; i < e.graph.size(); ++i) positions.push_back(i);
  } else {
    std::mt19937 rng(seed);
    for (size_t k = 0; k < max_flips; ++k) positions.push_back(rng() % e.graph.size());
  }
  std::vector<uint8_t> g = e.graph;
  for (size_t pos : positions) {
    for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}, uint8_t{0x80}}) {
      g[pos] ^= mask;
      auto d = decode_model(g, weights, owner);
      if (d.ok()) {
        ++*accepted;
        ASSERT_TRUE(ir::verify_graph(*(*d)->graph).ok());
        ASSERT_TRUE(encode_model(**d).ok());
      } else {
        ++*refused;
        expect_graph_section_error(d.status(), "flip at " + std::to_string(pos));
      }
      g[pos] ^= mask;
    }
  }
}

TEST(GraphCodec, ByteFlipsNeverCrash) {
  int refused = 0, accepted = 0;
  auto m = kitchen_sink();
  StatusOr<EncodedModel> e = encode_model(*m);
  ASSERT_TRUE(e.ok());
  flip_everywhere(*e, 100000, 1, &refused, &accepted);
  for (const char* name : {"test_if_seq", "test_loop16_seq_none", "test_scan9_sum", "test_constant",
                           "test_gru_batchwise", "test_range_float_type_positive_delta_expanded"}) {
    const fs::path p = node_suite() / name / "model.onnx";
    if (!fs::exists(p)) continue;
    auto mm = onnx::load_model(p.string());
    ASSERT_TRUE(mm.ok()) << name;
    auto em = encode_model(**mm);
    ASSERT_TRUE(em.ok());
    flip_everywhere(*em, 600, 7, &refused, &accepted);
  }
  std::printf("[ graph codec ] byte flips: %d refused, %d decoded to a valid graph\n", refused,
              accepted);
  EXPECT_GT(refused, 1000);
}

TEST(GraphCodec, HugeCountsAreRefusedBeforeAllocating) {
  // version, ir_version, 4 empty strings, no opsets, no metadata, then the main graph: an empty
  // name, no opsets and 0xFFFFFFFF values.
  ByteWriter w;
  w.u32(kGraphCodecVersion);
  w.i64(8);
  for (int i = 0; i < 4; ++i) w.str("");
  w.u32(0);
  w.u32(0);
  w.str("g");
  w.u32(0);
  w.u32(0xFFFFFFFFu);
  auto d = decode_model(w.buffer(), {}, nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("value count"), std::string::npos) << d.status().message();

  // A constant whose shape claims 2^40 floats inline.
  ByteWriter t;
  t.u32(kGraphCodecVersion);
  t.i64(8);
  for (int i = 0; i < 4; ++i) t.str("");
  t.u32(0);
  t.u32(0);
  t.str("g");
  t.u32(0);
  t.u32(1);    // one value
  t.str("c");  // name
  t.u8(4);     // constant
  t.u8(0);     // type: unknown kind
  t.u8(0);
  t.u8(0);
  t.u32(0);
  t.u8(1);   // tensor: float32
  t.u32(2);  // rank 2
  t.i64(1 << 20);
  t.i64(1 << 20);
  t.u8(0);  // inline
  t.u64(uint64_t{4} << 40);
  d = decode_model(t.buffer(), {}, nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("graph section"), std::string::npos) << d.status().message();
}

}  // namespace
}  // namespace kiln::engine
