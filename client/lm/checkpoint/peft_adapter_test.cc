#include "client/lm/checkpoint/peft_adapter.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "client/lm/checkpoint/checkpoint_test_util.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/model/safetensors.h"

namespace tessera::lm {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

CausalLmConfig TinyConfig() {
  // hidden 8, 2 heads of 4, 1 kv head, intermediate 12, 2 layers.
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(
      R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
          "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1})");
  EXPECT_THAT(c, IsOk());
  return c.ok() ? *c : CausalLmConfig();
}

TEST(ValidateLoraConfigTest, AcceptsDefaultsAndRefusesByField) {
  TESSERA_EXPECT_OK(ValidateLoraConfig(LoraConfig()));
  LoraConfig c;
  c.rank = 0;
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("rank 0 is outside [1, 1024]")));
  c = LoraConfig();
  c.rank = 1025;
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("rank 1025")));
  c = LoraConfig();
  c.alpha = 0;
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("alpha")));
  c.alpha = std::numeric_limits<double>::infinity();
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("alpha")));
  c = LoraConfig();
  c.dropout = 1;
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("dropout 1 is outside [0, 1)")));
  c = LoraConfig();
  c.target_modules = {};
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("target_modules is empty")));
  c.target_modules = {"q_proj", "lm_head"};
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"lm_head\" is not one of")));
  c.target_modules = {"q_proj", "v_proj", "q_proj"};
  EXPECT_THAT(ValidateLoraConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"q_proj\" is listed twice")));
}

// By hand: v_proj maps 8 -> 1 x 4, down_proj 12 -> 8; A is [r, in], B is [out, r].
TEST(AdapterTensorsTest, ByHand) {
  LoraConfig lora;
  lora.rank = 2;
  lora.target_modules = {"down_proj", "v_proj"};
  EXPECT_THAT(Describe(AdapterTensors(TinyConfig(), lora)),
              ElementsAre("model.layers.0.self_attn.v_proj.lora_A.weight [2,8]",
                          "model.layers.0.self_attn.v_proj.lora_B.weight [4,2]",
                          "model.layers.0.mlp.down_proj.lora_A.weight [2,12]",
                          "model.layers.0.mlp.down_proj.lora_B.weight [8,2]",
                          "model.layers.1.self_attn.v_proj.lora_A.weight [2,8]",
                          "model.layers.1.self_attn.v_proj.lora_B.weight [4,2]",
                          "model.layers.1.mlp.down_proj.lora_A.weight [2,12]",
                          "model.layers.1.mlp.down_proj.lora_B.weight [8,2]"));
  lora.freeze_a = true;
  lora.target_modules = {"o_proj"};
  EXPECT_THAT(Describe(TrainableAdapterTensors(TinyConfig(), lora)),
              ElementsAre("model.layers.0.self_attn.o_proj.lora_B.weight [8,2]",
                          "model.layers.1.self_attn.o_proj.lora_B.weight [8,2]"));
  EXPECT_EQ(AdapterTensors(TinyConfig(), lora).size(), 4u);
}

// Deterministic float32 adapter values for `lora`.
ArrayRecord MakeAdapter(const CausalLmConfig& config, const LoraConfig& lora) {
  ArrayRecord record;
  float x = 0.25f;
  for (const ExpectedTensor& e : AdapterTensors(config, lora)) {
    absl::StatusOr<int64_t> n = NumElements(e.shape);
    std::vector<float> values(static_cast<size_t>(*n));
    for (float& v : values) v = (x = x * 1.7f - static_cast<float>(static_cast<int>(x * 1.7f)));
    record.tensors.push_back(*Tensor::FromFloats(e.name, e.shape, values));
  }
  return record;
}

TEST(PeftAdapterTest, WriteWritesPeftLayoutAndReadsBack) {
  const CausalLmConfig config = TinyConfig();
  LoraConfig lora;
  lora.rank = 2;
  lora.alpha = 16;
  lora.dropout = 0.05;
  lora.target_modules = {"q_proj", "up_proj"};
  lora.freeze_a = true;
  lora.init_seed = 1234567890123ull;
  const ArrayRecord adapter = MakeAdapter(config, lora);
  const std::string dir = MakeTempDir() + "/adapter";
  TESSERA_ASSERT_OK(WritePeftAdapter(dir, config, lora, adapter, "meta-llama/Llama-3.2-1B"));

  const nlohmann::json json =
      nlohmann::json::parse(*ReadFileToString(dir + "/adapter_config.json"));
  EXPECT_EQ(json["peft_type"], "LORA");
  EXPECT_EQ(json["task_type"], "CAUSAL_LM");
  EXPECT_EQ(json["r"], 2);
  EXPECT_TRUE(json["lora_alpha"].is_number_integer());
  EXPECT_EQ(json["lora_alpha"], 16);
  EXPECT_EQ(json["lora_dropout"], 0.05);
  EXPECT_EQ(json["target_modules"], nlohmann::json::array({"q_proj", "up_proj"}));
  EXPECT_EQ(json["bias"], "none");
  EXPECT_EQ(json["fan_in_fan_out"], false);
  EXPECT_EQ(json["inference_mode"], true);
  EXPECT_EQ(json["init_lora_weights"], true);
  EXPECT_TRUE(json["modules_to_save"].is_null());
  EXPECT_TRUE(json["revision"].is_null());
  EXPECT_TRUE(json["layers_to_transform"].is_null());
  EXPECT_EQ(json["use_rslora"], false);
  EXPECT_EQ(json["use_dora"], false);
  EXPECT_EQ(json["rank_pattern"], nlohmann::json::object());
  EXPECT_EQ(json["alpha_pattern"], nlohmann::json::object());
  EXPECT_EQ(json["base_model_name_or_path"], "meta-llama/Llama-3.2-1B");
  EXPECT_FALSE(json.contains("freeze_a"));
  EXPECT_FALSE(json.contains("init_seed"));

  std::map<std::string, std::string> metadata;
  absl::StatusOr<ArrayRecord> stored =
      ReadSafetensorsFile(dir + "/adapter_model.safetensors", &metadata);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(metadata["format"], "pt");
  EXPECT_EQ(metadata["tessera.lora.freeze_a"], "true");
  EXPECT_EQ(metadata["tessera.lora.init_seed"], "1234567890123");
  ASSERT_EQ(stored->tensors.size(), 8u);
  EXPECT_NE(stored->Find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            nullptr);
  EXPECT_NE(stored->Find("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"), nullptr);

  absl::StatusOr<PeftAdapter> back = ReadPeftAdapter(dir, config);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->lora.rank, 2u);
  EXPECT_EQ(back->lora.alpha, 16);
  EXPECT_EQ(back->lora.dropout, 0.05);
  EXPECT_THAT(back->lora.target_modules, ElementsAre("q_proj", "up_proj"));
  EXPECT_TRUE(back->lora.freeze_a);
  EXPECT_EQ(back->lora.init_seed, 1234567890123ull);
  TESSERA_ASSERT_OK(CheckSameLayout(back->adapter, adapter));
  for (size_t i = 0; i < adapter.tensors.size(); ++i) {
    EXPECT_EQ(back->adapter.tensors[i].data(), adapter.tensors[i].data());
  }
}

TEST(PeftAdapterTest, WriteRefusesWrongLayout) {
  const CausalLmConfig config = TinyConfig();
  LoraConfig lora;
  lora.rank = 2;
  ArrayRecord adapter = MakeAdapter(config, lora);
  lora.rank = 3;
  EXPECT_THAT(WritePeftAdapter(MakeTempDir(), config, lora, adapter, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.layers.0.self_attn.q_proj.lora_A.weight")));
}

// The adapter hf_reference.py wrote as PEFT does (target_modules in set order).
TEST(PeftAdapterTest, ReadsReferenceAdapter) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<CausalLmConfig> config = ReadHfConfig(ReferenceDir() + "/llama_lora");
  ASSERT_THAT(config, IsOk());
  const std::string dir = ReferenceDir() + "/llama_lora/adapter";
  absl::StatusOr<PeftAdapter> adapter = ReadPeftAdapter(dir, *config);
  ASSERT_THAT(adapter, IsOk());
  EXPECT_EQ(adapter->lora.rank, 4u);
  EXPECT_EQ(adapter->lora.alpha, 8);
  EXPECT_EQ(adapter->lora.dropout, 0);
  EXPECT_THAT(adapter->lora.target_modules, ElementsAre("q_proj", "v_proj", "gate_proj"));
  EXPECT_FALSE(adapter->lora.freeze_a);
  // 2 layers x 3 modules x (A, B); q: 32 -> 32, v: 32 -> 16, gate: 32 -> 48.
  EXPECT_THAT(Describe(AdapterTensors(*config, adapter->lora)),
              ElementsAre("model.layers.0.self_attn.q_proj.lora_A.weight [4,32]",
                          "model.layers.0.self_attn.q_proj.lora_B.weight [32,4]",
                          "model.layers.0.self_attn.v_proj.lora_A.weight [4,32]",
                          "model.layers.0.self_attn.v_proj.lora_B.weight [16,4]",
                          "model.layers.0.mlp.gate_proj.lora_A.weight [4,32]",
                          "model.layers.0.mlp.gate_proj.lora_B.weight [48,4]",
                          "model.layers.1.self_attn.q_proj.lora_A.weight [4,32]",
                          "model.layers.1.self_attn.q_proj.lora_B.weight [32,4]",
                          "model.layers.1.self_attn.v_proj.lora_A.weight [4,32]",
                          "model.layers.1.self_attn.v_proj.lora_B.weight [16,4]",
                          "model.layers.1.mlp.gate_proj.lora_A.weight [4,32]",
                          "model.layers.1.mlp.gate_proj.lora_B.weight [48,4]"));
  absl::StatusOr<ArrayRecord> raw = ReadSafetensorsFile(dir + "/adapter_model.safetensors");
  ASSERT_THAT(raw, IsOk());
  ASSERT_EQ(adapter->adapter.tensors.size(), 12u);
  for (const Tensor& t : adapter->adapter.tensors) {
    const Tensor* stored = raw->Find("base_model.model." + t.name());
    ASSERT_NE(stored, nullptr) << t.name();
    EXPECT_EQ(t.data(), stored->data()) << t.name();
    EXPECT_EQ(t.dtype(), DType::kFloat32);
  }
}

// PEFT saves adapters of a bf16 model in bf16; they are read as float32.
TEST(PeftAdapterTest, ReadsBf16AndF16AsFloat32) {
  const CausalLmConfig config = TinyConfig();
  LoraConfig lora;
  lora.rank = 1;
  lora.target_modules = {"k_proj"};
  const std::string dir = MakeTempDir();
  TESSERA_ASSERT_OK(WritePeftAdapter(dir, config, lora, MakeAdapter(config, lora), "x"));
  ArrayRecord stored = *ReadSafetensorsFile(dir + "/adapter_model.safetensors");
  // bf16 0x3FC0 = 1.5, 0xC000 = -2; f16 0x3C00 = 1, 0xB800 = -0.5, 0x0001 = 2^-24.
  ArrayRecord converted;
  for (const Tensor& t : stored.tensors) {
    const size_t n = static_cast<size_t>(t.numel());
    std::vector<uint16_t> v(n);
    const bool a = absl::StrContains(t.name(), "lora_A");
    for (size_t i = 0; i < n; ++i) {
      v[i] = a ? (i % 2 ? 0xC000 : 0x3FC0) : (i % 3 == 0 ? 0x3C00 : i % 3 == 1 ? 0xB800 : 0x0001);
    }
    std::string bytes(reinterpret_cast<const char*>(v.data()), n * 2);
    converted.tensors.push_back(
        *Tensor::Create(t.name(), a ? DType::kBFloat16 : DType::kFloat16, t.shape(), bytes));
  }
  TESSERA_ASSERT_OK(WriteSafetensorsFile(dir + "/adapter_model.safetensors", converted));
  absl::StatusOr<PeftAdapter> back = ReadPeftAdapter(dir, config);
  ASSERT_THAT(back, IsOk());
  const auto a0 = back->adapter.tensors[0].values<float>();
  EXPECT_EQ(a0[0], 1.5f);
  EXPECT_EQ(a0[1], -2.0f);
  const auto b0 = back->adapter.tensors[1].values<float>();
  EXPECT_EQ(b0[0], 1.0f);
  EXPECT_EQ(b0[1], -0.5f);
  EXPECT_EQ(b0[2], std::ldexp(1.0f, -24));
}

// --- Bad input ---

class PeftAdapterErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = TinyConfig();
    lora_.rank = 2;
    dir_ = MakeTempDir();
    TESSERA_ASSERT_OK(WritePeftAdapter(dir_, config_, lora_, MakeAdapter(config_, lora_), "x"));
  }
  void SetField(const std::string& key, const nlohmann::json& value) {
    nlohmann::json json = nlohmann::json::parse(*ReadFileToString(dir_ + "/adapter_config.json"));
    json[key] = value;
    TESSERA_ASSERT_OK(
        WriteFileAtomically(dir_ + "/adapter_config.json", json.dump(), 0644, true));
  }
  void ExpectInvalid(const std::string& substring) {
    EXPECT_THAT(ReadPeftAdapter(dir_, config_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(substring)));
  }
  CausalLmConfig config_;
  LoraConfig lora_;
  std::string dir_;
};

TEST_F(PeftAdapterErrorsTest, RefusesUnsupportedOptions) {
  SetField("use_dora", true);
  ExpectInvalid("adapter_config.json: use_dora true is not supported");
  SetField("use_dora", false);
  TESSERA_EXPECT_OK(ReadPeftAdapter(dir_, config_).status());
  SetField("rank_pattern", {{"q_proj", 4}});
  ExpectInvalid("rank_pattern");
  SetField("rank_pattern", nlohmann::json::object());
  SetField("modules_to_save", {"lm_head"});
  ExpectInvalid("modules_to_save");
  SetField("modules_to_save", nullptr);
  SetField("use_rslora", true);
  ExpectInvalid("use_rslora");
  SetField("use_rslora", false);
  SetField("bias", "lora_only");
  ExpectInvalid("bias \"lora_only\"");
  SetField("bias", "none");
  SetField("target_modules", "all-linear");
  ExpectInvalid("target_modules must be a list");
  SetField("target_modules", {"q_proj", "embed_tokens"});
  ExpectInvalid("\"embed_tokens\" is not one of");
  SetField("target_modules", {"q_proj", "v_proj"});
  SetField("peft_type", "PREFIX_TUNING");
  ExpectInvalid("peft_type \"PREFIX_TUNING\" is not supported");
  SetField("peft_type", "LORA");
  SetField("task_type", "SEQ_CLS");
  ExpectInvalid("task_type \"SEQ_CLS\"");
  SetField("task_type", "CAUSAL_LM");
  SetField("some_future_option", 3);
  ExpectInvalid("\"some_future_option\" is not supported");
}

TEST_F(PeftAdapterErrorsTest, RankMismatchNamesTheTensor) {
  SetField("r", 3);
  EXPECT_THAT(ReadPeftAdapter(dir_, config_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("adapter_model.safetensors"),
                             HasSubstr("\"base_model.model.model.layers.0.self_attn.q_proj."
                                       "lora_A.weight\" has shape [2, 8]"))));
}

TEST_F(PeftAdapterErrorsTest, MissingAndUnexpectedTensors) {
  SetField("target_modules", {"q_proj", "v_proj", "o_proj"});
  EXPECT_THAT(ReadPeftAdapter(dir_, config_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"base_model.model.model.layers.0.self_attn.o_proj.lora_A."
                                 "weight\" is missing")));
  SetField("target_modules", {"q_proj"});
  EXPECT_THAT(ReadPeftAdapter(dir_, config_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unexpected tensor \"base_model.model.model.layers.0."
                                 "self_attn.v_proj.lora_A.weight\"")));
}

TEST_F(PeftAdapterErrorsTest, NotFound) {
  std::filesystem::remove(dir_ + "/adapter_model.safetensors");
  EXPECT_THAT(ReadPeftAdapter(dir_, config_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("adapter_model.safetensors")));
  EXPECT_THAT(ReadPeftAdapter("/nonexistent", config_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("adapter_config.json")));
}

}  // namespace
}  // namespace tessera::lm
