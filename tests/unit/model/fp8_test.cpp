// FP8 (E4M3) weights: the codec against its definition, per-channel and input quantization, the
// compressed-tensors and fp8 checkpoint loaders (what gen-model writes, block scales, static
// inputs, KV scales, --quantization fp8), and the errors a bad checkpoint gets at load.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fp8_checkpoint_util.h"
#include "model/dtype.h"
#include "model/model.h"
#include "model_test_util.h"

namespace turbine::model {
namespace {

using testing::ref_e4m3_code;
using testing::ref_e4m3_value;
using testing::TempDir;

TEST(Fp8Codec, DecodesEveryCodeAsDefined) {
  for (int b = 0; b < 256; ++b) {
    const double want = ref_e4m3_value(static_cast<uint8_t>(b));
    const float got = e4m3_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << b;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << b;
    }
  }
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), 1.0f / 512.0f);
}

TEST(Fp8Codec, EncodesEveryValueAndEveryMidpointToTheNearestEvenCode) {
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(v)) {
      EXPECT_EQ(f32_to_e4m3(v) & 0x7f, 0x7f);
      continue;
    }
    if (v == 0.0f) continue;  // ±0 both round trip to themselves
    EXPECT_EQ(f32_to_e4m3(v), b) << v;
    // The midpoint to the next code up (exactly representable in f32) goes to the even code.
    if ((b & 0x7f) < 0x7e) {
      const float mid = (v + e4m3_to_f32(static_cast<uint8_t>(b + 1))) / 2.0f;
      EXPECT_EQ(f32_to_e4m3(mid), ref_e4m3_code(mid)) << mid;
      EXPECT_EQ(f32_to_e4m3(mid) & 1, 0) << mid;
    }
  }
  EXPECT_EQ(f32_to_e4m3(1e9f), 0x7e);  // saturates
  EXPECT_EQ(f32_to_e4m3(-460.0f), 0xfe);
  EXPECT_EQ(f32_to_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(f32_to_e4m3(1e-9f), 0x00);
}

TEST(Fp8Codec, RandomValuesRoundToTheNearestCode) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> exp(-14.0f, 10.0f), mant(1.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(mant(rng), static_cast<int>(exp(rng)));
    if (i % 2) x = -x;
    ASSERT_EQ(f32_to_e4m3(x), ref_e4m3_code(x)) << x;
  }
}

TEST(Fp8Quantize, PerChannelScalesAndValues) {
  const std::vector<float> w = {0.5f, -2.0f, 0.25f, 1.0f,  0.0f,  0.0f,
                                0.0f, 0.0f,  3.0f,  1e-3f, -7.0f, 0.1f};
  std::vector<uint8_t> q(w.size());
  std::vector<float> s(3);
  quantize_fp8_per_channel(w.data(), 3, 4, q.data(), s.data());
  EXPECT_FLOAT_EQ(s[0], 2.0f / 448.0f);
  EXPECT_FLOAT_EQ(s[1], 1.0f);  // a zero row
  EXPECT_FLOAT_EQ(s[2], 7.0f / 448.0f);
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(q[i], ref_e4m3_code(w[i] / s[i / 4])) << i;
    EXPECT_NEAR(e4m3_to_f32(q[i]) * s[i / 4], w[i], std::fabs(w[i]) / 16 + 1e-6) << i;
  }
  EXPECT_EQ(q[1] & 0x7f, 0x7e);  // the row's absolute maximum is 448
}

TEST(Fp8Quantize, InputRowsPerTokenPerGroupAndStatic) {
  std::vector<float> x = {1.0f, -3.0f, 0.3f, 0.01f};
  InputQuant q;
  q.kind = InputQuant::Kind::kDynamicPerToken;
  std::vector<float> y = x;
  quantize_input_row(q, y.data(), 4);
  const double s = 3.0 / 448.0;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], testing::ref_fp8_round(x[i], s), 1e-7) << i;
  EXPECT_FLOAT_EQ(y[1], -3.0f);

  q.kind = InputQuant::Kind::kDynamicPerGroup;
  q.group = 2;
  y = x;
  quantize_input_row(q, y.data(), 4);
  EXPECT_NEAR(y[2], testing::ref_fp8_round(0.3, 0.3 / 448.0), 1e-7);
  EXPECT_NEAR(y[3], testing::ref_fp8_round(0.01, 0.3 / 448.0), 1e-9);

  q.kind = InputQuant::Kind::kStatic;
  q.scale = 0.001f;  // 3.0 / 0.001 saturates at 448
  y = x;
  quantize_input_row(q, y.data(), 4);
  EXPECT_FLOAT_EQ(y[1], -0.448f);

  std::vector<float> zeros(8, 0.0f);
  q.kind = InputQuant::Kind::kDynamicPerToken;
  quantize_input_row(q, zeros.data(), 8);
  for (float z : zeros) EXPECT_EQ(z, 0.0f);
}

class Fp8Loader : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::filesystem::path dir_ = tmp_.path() / "m";
  Status load_status() {
    auto m = load_model(dir_);
    return m.has_value() ? Status::ok() : m.status();
  }
  // Expects loading to fail with a message (and field) naming `what`.
  void expect_error(const std::string& what) {
    const Status st = load_status();
    ASSERT_FALSE(st.is_ok()) << "loaded although " << what << " is bad";
    EXPECT_NE(st.message().find(what), std::string::npos) << st.to_string();
  }
};

TEST_F(Fp8Loader, GenModelWritesTheCompressedTensorsLayout) {
  testing::write_tiny(dir_, /*fp8=*/true);
  const nlohmann::json c = testing::read_config(dir_);
  const auto& q = c["quantization_config"];
  EXPECT_EQ(q["quant_method"], "compressed-tensors");
  EXPECT_EQ(q["format"], "float-quantized");
  EXPECT_EQ(q["ignore"], nlohmann::json::array({"lm_head"}));
  const auto& g = q["config_groups"]["group_0"];
  EXPECT_EQ(g["targets"], nlohmann::json::array({"Linear"}));
  EXPECT_EQ(g["weights"]["strategy"], "channel");
  EXPECT_EQ(g["weights"]["type"], "float");
  EXPECT_EQ(g["weights"]["num_bits"], 8);
  EXPECT_EQ(g["input_activations"]["strategy"], "token");
  EXPECT_EQ(g["input_activations"]["dynamic"], true);
  auto entries = testing::read_entries(dir_);
  const auto& w = entries.at("model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(w.dtype, "F8_E4M3");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{256, 512}));
  const auto& s = entries.at("model.layers.1.mlp.down_proj.weight_scale");
  EXPECT_EQ(s.dtype, "BF16");
  EXPECT_EQ(s.shape, (std::vector<int64_t>{256, 1}));
  EXPECT_EQ(entries.at("lm_head.weight").dtype, "BF16");
  EXPECT_EQ(entries.at("model.embed_tokens.weight").dtype, "BF16");
  EXPECT_EQ(entries.count("model.layers.0.self_attn.q_proj.input_scale"), 0u);
  // The FP8 weights are the 16-bit model's (same seed) to within FP8's precision.
  testing::write_tiny(tmp_.path() / "bf16", false);
  auto bf16 = testing::read_entries(tmp_.path() / "bf16");
  const auto wv = testing::entry_values(w), sv = testing::entry_values(s),
             ref = testing::entry_values(bf16.at("model.layers.1.mlp.down_proj.weight"));
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(wv[i] * sv[i / 512], ref[i], std::fabs(ref[i]) / 15 + 1e-4) << i;
}

TEST_F(Fp8Loader, LoadsScalesAndInputSchemeIntoTheViews) {
  testing::write_tiny(dir_, true);
  auto m = load_model(dir_);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const Weights& w = (*m)->weights();
  const TensorView& gate = w.layers[0].w_gate;
  EXPECT_EQ(gate.dtype, DType::kF8E4M3);
  ASSERT_TRUE(gate.scales.present());
  EXPECT_EQ(gate.scales.block_rows, 1);
  EXPECT_EQ(gate.scales.block_cols, 256);
  EXPECT_EQ(gate.input_quant.kind, InputQuant::Kind::kDynamicPerToken);
  EXPECT_EQ(w.output.dtype, DType::kBF16);
  EXPECT_EQ(w.output.input_quant.kind, InputQuant::Kind::kNone);
  // dequantize_row applies the row's scale.
  auto entries = testing::read_entries(dir_);
  const auto q = testing::entry_values(entries.at("model.layers.0.mlp.gate_proj.weight"));
  const auto s = testing::entry_values(entries.at("model.layers.0.mlp.gate_proj.weight_scale"));
  std::vector<float> row(256);
  dequantize_row(gate, 37, row.data());
  for (int c = 0; c < 256; ++c)
    ASSERT_FLOAT_EQ(row[c], static_cast<float>(q[37 * 256 + c] * s[37])) << c;
}

TEST_F(Fp8Loader, BlockScaledFp8Checkpoint) {
  testing::write_tiny(dir_, false);
  testing::make_block_fp8(dir_, 2);
  auto m = load_model(dir_);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const TensorView& up = (*m)->weights().layers[1].w_up;  // [512, 256]: 4 x 2 blocks
  EXPECT_EQ(up.dtype, DType::kF8E4M3);
  EXPECT_EQ(up.scales.block_rows, 128);
  EXPECT_EQ(up.scales.block_cols, 128);
  EXPECT_EQ(up.input_quant.kind, InputQuant::Kind::kDynamicPerGroup);
  EXPECT_EQ(up.input_quant.group, 128);
  auto entries = testing::read_entries(dir_);
  const auto q = testing::entry_values(entries.at("model.layers.1.mlp.up_proj.weight"));
  const auto s = testing::entry_values(entries.at("model.layers.1.mlp.up_proj.weight_scale_inv"));
  std::vector<float> row(256);
  dequantize_row(up, 300, row.data());
  for (int c = 0; c < 256; ++c)
    ASSERT_FLOAT_EQ(row[c], static_cast<float>(q[300 * 256 + c] * s[(300 / 128) * 2 + c / 128]));
}

TEST_F(Fp8Loader, StaticInputScalesAndKvCacheScales) {
  testing::write_tiny(dir_, true);
  nlohmann::json c = testing::read_config(dir_);
  auto& in = c["quantization_config"]["config_groups"]["group_0"]["input_activations"];
  in["dynamic"] = false;
  in["strategy"] = "tensor";
  c["quantization_config"]["kv_cache_scheme"] = {{"num_bits", 8},
                                                 {"type", "float"},
                                                 {"strategy", "tensor"},
                                                 {"dynamic", false},
                                                 {"symmetric", true}};
  testing::write_config(dir_, c);
  testing::edit_entries(dir_, [](auto& m) {
    for (const std::string& mod : testing::linear_modules(2))
      m[mod + ".input_scale"] = testing::f32_entry(mod + ".input_scale", {0.0125f}, {1});
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
      m[p + "k_scale"] = testing::f32_entry(p + "k_scale", {0.5f}, {});
      m[p + "v_scale"] = testing::f32_entry(p + "v_scale", {0.25f}, {});
    }
  });
  auto m = load_model(dir_);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const LayerWeights& L = (*m)->weights().layers[1];
  EXPECT_EQ(L.wo.input_quant.kind, InputQuant::Kind::kStatic);
  EXPECT_FLOAT_EQ(L.wo.input_quant.scale, 0.0125f);
  EXPECT_FLOAT_EQ(L.k_scale, 0.5f);
  EXPECT_FLOAT_EQ(L.v_scale, 0.25f);

  // Without one input_scale the load names it.
  testing::edit_entries(dir_,
                        [](auto& m) { m.erase("model.layers.1.self_attn.o_proj.input_scale"); });
  expect_error("model.layers.1.self_attn.o_proj.input_scale");
}

TEST_F(Fp8Loader, QuantizationAtLoad) {
  testing::write_tiny(dir_, false);
  auto plain = load_model(dir_);
  auto q = load_model(dir_, LoadOptions{.quantization = Quantization::kFp8});
  ASSERT_TRUE(plain.has_value() && q.has_value());
  const TensorView& a = (*plain)->weights().layers[0].wk;
  const TensorView& b = (*q)->weights().layers[0].wk;
  EXPECT_EQ(b.dtype, DType::kF8E4M3);
  EXPECT_EQ(b.input_quant.kind, InputQuant::Kind::kDynamicPerToken);
  EXPECT_EQ((*q)->weights().output.dtype, DType::kBF16);  // the LM head stays
  EXPECT_EQ((*q)->weights().layers[0].attn_norm.dtype, DType::kBF16);
  std::vector<float> ra(256), rb(256);
  for (int64_t r = 0; r < a.rows; ++r) {
    dequantize_row(a, r, ra.data());
    dequantize_row(b, r, rb.data());
    double amax = 0;
    for (float v : ra) amax = std::max(amax, std::fabs(static_cast<double>(v)));
    for (int c = 0; c < 256; ++c)
      ASSERT_NEAR(rb[c], testing::ref_fp8_round(ra[c], amax / 448.0), 1e-6 * amax) << r << " " << c;
  }
  // An FP8 checkpoint loaded with --quantization fp8 keeps its own scales.
  testing::write_tiny(tmp_.path() / "f8", true);
  auto f8 = load_model(tmp_.path() / "f8", LoadOptions{.quantization = Quantization::kFp8});
  auto f8_plain = load_model(tmp_.path() / "f8");
  ASSERT_TRUE(f8.has_value() && f8_plain.has_value());
  std::vector<float> x(256), y(256);
  dequantize_row((*f8)->weights().layers[0].wq, 3, x.data());
  dequantize_row((*f8_plain)->weights().layers[0].wq, 3, y.data());
  EXPECT_EQ(x, y);
  EXPECT_FALSE(parse_quantization("int4").has_value());
}

TEST_F(Fp8Loader, MissingScalesNameTheTensor) {
  testing::write_tiny(dir_, true);
  testing::edit_entries(dir_, [](auto& m) { m.erase("model.layers.0.mlp.up_proj.weight_scale"); });
  expect_error("model.layers.0.mlp.up_proj.weight_scale");
}

TEST_F(Fp8Loader, ScaleShapeMismatchNamesTheTensor) {
  testing::write_tiny(dir_, true);
  testing::edit_entries(dir_, [](auto& m) {
    auto& s = m["model.layers.1.self_attn.k_proj.weight_scale"];
    s.shape = {64, 2};  // 128 values, but [128, 1] expected
  });
  expect_error("model.layers.1.self_attn.k_proj.weight_scale");
  testing::edit_entries(dir_, [](auto& m) {
    auto& s = m["model.layers.1.self_attn.k_proj.weight_scale"];
    s.shape = {64, 1};
    s.bytes.resize(128);
  });
  expect_error("model.layers.1.self_attn.k_proj.weight_scale");
}

TEST_F(Fp8Loader, WeightShapeMismatchNamesTheTensor) {
  testing::write_tiny(dir_, true);
  testing::edit_entries(dir_, [](auto& m) {
    auto& w = m["model.layers.0.mlp.down_proj.weight"];
    w.shape = {128, 1024};  // same bytes, wrong shape (and its scales then do not match)
  });
  expect_error("model.layers.0.mlp.down_proj");
}

TEST_F(Fp8Loader, UnsupportedSchemesNameTheConfigKey) {
  testing::write_tiny(dir_, true);
  const nlohmann::json good = testing::read_config(dir_);
  auto with = [&](const std::function<void(nlohmann::json&)>& fn) {
    nlohmann::json c = good;
    fn(c["quantization_config"]);
    testing::write_config(dir_, c);
  };
  // INT4 weights (W4A16, pack-quantized).
  with([](nlohmann::json& q) {
    q["format"] = "pack-quantized";
    q["config_groups"]["group_0"]["weights"]["num_bits"] = 4;
    q["config_groups"]["group_0"]["weights"]["type"] = "int";
  });
  expect_error("quantization_config.format");
  with([](nlohmann::json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 4; });
  expect_error("quantization_config.config_groups.group_0.weights.num_bits");
  with([](nlohmann::json& q) { q["config_groups"]["group_0"]["weights"]["type"] = "int"; });
  expect_error("quantization_config.config_groups.group_0.weights.type");
  // FP8 with group scales along the input dimension.
  with([](nlohmann::json& q) {
    q["config_groups"]["group_0"]["weights"]["strategy"] = "group";
    q["config_groups"]["group_0"]["weights"]["group_size"] = 128;
  });
  expect_error("quantization_config.config_groups.group_0.weights.strategy");
  with([](nlohmann::json& q) {
    q["config_groups"]["group_0"]["output_activations"] = q["config_groups"]["group_0"]["weights"];
  });
  expect_error("output_activations");
  with([](nlohmann::json& q) { q["quant_method"] = "awq"; });
  expect_error("quantization_config.quant_method");
  with([](nlohmann::json& q) {
    q = {{"quant_method", "fp8"}, {"fmt", "e5m2"}, {"activation_scheme", "dynamic"}};
  });
  expect_error("quantization_config.fmt");
  with([](nlohmann::json& q) { q = {{"quant_method", "fp8"}, {"weight_block_size", {128}}}; });
  expect_error("quantization_config.weight_block_size");
}

TEST_F(Fp8Loader, DtypesMustAgreeWithTheConfig) {
  // FP8 weights without a quantization_config.
  testing::write_tiny(dir_, true);
  nlohmann::json c = testing::read_config(dir_);
  c.erase("quantization_config");
  testing::write_config(dir_, c);
  expect_error("model.layers.0.self_attn.q_proj.weight");
  // A module the config quantizes, stored in 16 bits.
  testing::write_tiny(dir_, true);
  testing::edit_entries(dir_, [](auto& m) {
    auto& w = m["model.layers.1.mlp.gate_proj.weight"];
    w.dtype = "BF16";
    w.bytes.resize(w.bytes.size() * 2);
  });
  expect_error("model.layers.1.mlp.gate_proj.weight");
  // Ignoring a module that is stored in FP8.
  testing::write_tiny(dir_, true);
  c = testing::read_config(dir_);
  c["quantization_config"]["ignore"].push_back("re:.*down_proj$");
  testing::write_config(dir_, c);
  expect_error("down_proj.weight");
  // ... and a regex ignore that matches nothing quantized loads.
  c["quantization_config"]["ignore"] = {"lm_head", "re:.*nothing_here$"};
  testing::write_config(dir_, c);
  EXPECT_TRUE(load_status().is_ok()) << load_status().to_string();
}

TEST_F(Fp8Loader, BadScalesAreRefused) {
  testing::write_tiny(dir_, true);
  testing::edit_entries(dir_, [](auto& m) {
    auto& s = m["model.layers.0.self_attn.v_proj.weight_scale"];
    s.bytes[0] = 0;
    s.bytes[1] = 0;  // a zero scale
  });
  expect_error("model.layers.0.self_attn.v_proj.weight_scale");
  testing::write_tiny(dir_, true);
  testing::edit_entries(
      dir_, [](auto& m) { m["model.layers.0.self_attn.v_proj.weight_scale"].dtype = "I16"; });
  expect_error("model.layers.0.self_attn.v_proj.weight_scale");
}

}  // namespace
}  // namespace turbine::model
