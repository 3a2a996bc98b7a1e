#include "client/lm/checkpoint/hf_checkpoint.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/lm/checkpoint/checkpoint_test_util.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/model/safetensors.h"

namespace tessera::lm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Names(const ArrayRecord& record) {
  std::vector<std::string> out;
  for (const Tensor& t : record.tensors) out.push_back(t.name());
  return out;
}

std::vector<std::string> Names(const std::vector<ExpectedTensor>& tensors) {
  std::vector<std::string> out;
  for (const ExpectedTensor& t : tensors) out.push_back(t.name);
  return out;
}

absl::StatusOr<HfCheckpoint> ReadVariant(const std::string& name) {
  return ReadHfCheckpoint(ReferenceDir() + "/" + name);
}

void ExpectSameContent(const ArrayRecord& a, const ArrayRecord& b) {
  TESSERA_EXPECT_OK(CheckSameLayout(a, b));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].data(), b.tensors[i].data()) << a.tensors[i].name();
  }
}

// The tiny llama of hf_reference.py: hidden 32, 4 heads and 2 kv heads of 8, intermediate
// 48, vocab 61, 2 layers, untied, no biases; shapes written out from modeling_llama.py.
TEST(ReadHfCheckpointTest, Llama) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> ckpt = ReadVariant("llama");
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ(ckpt->config.model_type, "llama");
  ASSERT_TRUE(ckpt->config.rope_scaling.has_value());
  EXPECT_EQ(ckpt->config.rope_scaling->original_max_position_embeddings, 32);
  EXPECT_EQ(ckpt->weights.tensors.size(), 1 + 2 * 9 + 2u);
  EXPECT_EQ(Names(ckpt->weights), Names(ExpectedTensors(ckpt->config)));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const Tensor& t : ckpt->weights.tensors) {
    shapes[t.name()] = t.shape();
    EXPECT_EQ(t.dtype(), DType::kFloat32) << t.name();
  }
  EXPECT_THAT(shapes["model.embed_tokens.weight"], ElementsAre(61, 32));
  EXPECT_THAT(shapes["model.layers.1.self_attn.q_proj.weight"], ElementsAre(32, 32));
  EXPECT_THAT(shapes["model.layers.1.self_attn.k_proj.weight"], ElementsAre(16, 32));
  EXPECT_THAT(shapes["model.layers.1.self_attn.v_proj.weight"], ElementsAre(16, 32));
  EXPECT_THAT(shapes["model.layers.1.self_attn.o_proj.weight"], ElementsAre(32, 32));
  EXPECT_THAT(shapes["model.layers.0.mlp.gate_proj.weight"], ElementsAre(48, 32));
  EXPECT_THAT(shapes["model.layers.0.mlp.up_proj.weight"], ElementsAre(48, 32));
  EXPECT_THAT(shapes["model.layers.0.mlp.down_proj.weight"], ElementsAre(32, 48));
  EXPECT_THAT(shapes["model.norm.weight"], ElementsAre(32));
  EXPECT_THAT(shapes["lm_head.weight"], ElementsAre(61, 32));
}

TEST(ReadHfCheckpointTest, LlamaBiasTied) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> ckpt = ReadVariant("llama_bias_tied");
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_TRUE(ckpt->config.tie_word_embeddings);
  EXPECT_EQ(ckpt->config.head_dim, 16);
  EXPECT_THAT(ckpt->config.eos_token_ids, ElementsAre(2, 3));
  EXPECT_EQ(ckpt->weights.Find("lm_head.weight"), nullptr);
  const Tensor* q = ckpt->weights.Find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->shape(), ElementsAre(64, 32));  // 4 heads x 16
  const Tensor* o_bias = ckpt->weights.Find("model.layers.1.self_attn.o_proj.bias");
  ASSERT_NE(o_bias, nullptr);
  EXPECT_THAT(o_bias->shape(), ElementsAre(32));
  const Tensor* k_bias = ckpt->weights.Find("model.layers.1.self_attn.k_proj.bias");
  ASSERT_NE(k_bias, nullptr);
  EXPECT_THAT(k_bias->shape(), ElementsAre(32));  // 2 kv heads x 16
  EXPECT_NE(ckpt->weights.Find("model.layers.1.mlp.down_proj.bias"), nullptr);
  // 1 + 2 x (7 weights + 7 biases + 2 norms) + 1
  EXPECT_EQ(ckpt->weights.tensors.size(), 34u);
}

TEST(ReadHfCheckpointTest, Mistral) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> ckpt = ReadVariant("mistral");
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ(ckpt->config.model_type, "mistral");
  EXPECT_EQ(ckpt->config.sliding_window, 4096);
  EXPECT_EQ(ckpt->weights.tensors.size(), 21u);
  EXPECT_EQ(Names(ckpt->weights), Names(ExpectedTensors(ckpt->config)));
}

TEST(ReadHfCheckpointTest, Qwen2) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> ckpt = ReadVariant("qwen2");
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ(ckpt->config.model_type, "qwen2");
  EXPECT_DOUBLE_EQ(ckpt->config.rope_theta, 1e6);
  EXPECT_EQ(Names(ckpt->weights), Names(ExpectedTensors(ckpt->config)));
  EXPECT_EQ(ckpt->weights.Find("lm_head.weight"), nullptr);
  EXPECT_EQ(ckpt->weights.Find("model.layers.0.self_attn.o_proj.bias"), nullptr);
  const Tensor* v_bias = ckpt->weights.Find("model.layers.0.self_attn.v_proj.bias");
  ASSERT_NE(v_bias, nullptr);
  EXPECT_THAT(v_bias->shape(), ElementsAre(8));  // 1 kv head x 8
  // 1 + 2 x (7 weights + 3 biases + 2 norms) + 1
  EXPECT_EQ(ckpt->weights.tensors.size(), 26u);
}

// Round-to-nearest-even of a float32 to bfloat16, as torch's .to(torch.bfloat16) does.
uint16_t RoundToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  const uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

TEST(ReadHfCheckpointTest, Bf16IsTheRoundedFloat32) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> bf16 = ReadVariant("llama_bf16");
  absl::StatusOr<HfCheckpoint> f32 = ReadVariant("llama");
  ASSERT_THAT(bf16, IsOk());
  ASSERT_THAT(f32, IsOk());
  EXPECT_EQ(bf16->config.torch_dtype, "bfloat16");
  ASSERT_EQ(Names(bf16->weights), Names(f32->weights));
  for (size_t i = 0; i < f32->weights.tensors.size(); ++i) {
    const Tensor& b = bf16->weights.tensors[i];
    ASSERT_EQ(b.dtype(), DType::kBFloat16) << b.name();
    EXPECT_EQ(b.shape(), f32->weights.tensors[i].shape());
    const auto halves = b.values<uint16_t>();
    const auto floats = f32->weights.tensors[i].values<float>();
    ASSERT_EQ(halves.size(), floats.size());
    for (size_t j = 0; j < floats.size(); ++j) {
      ASSERT_EQ(halves[j], RoundToBf16(floats[j])) << b.name() << "[" << j << "]";
    }
  }
}

TEST(ReadHfCheckpointTest, ShardedEqualsUnsharded) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> sharded = ReadVariant("llama_sharded");
  absl::StatusOr<HfCheckpoint> single = ReadVariant("llama");
  ASSERT_THAT(sharded, IsOk());
  ASSERT_THAT(single, IsOk());
  ExpectSameContent(sharded->weights, single->weights);
}

TEST(ReadHfConfigTest, ReadsOnlyTheConfig) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("qwen2");
  fs::remove(dir + "/model.safetensors");
  absl::StatusOr<CausalLmConfig> config = ReadHfConfig(dir);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->num_key_value_heads, 1);
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
}

// Write -> files in transformers' layout -> read back.
TEST(WriteHfCheckpointTest, ShardedLayoutRoundTrips) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> llama = ReadVariant("llama");
  ASSERT_THAT(llama, IsOk());
  const std::string dir = MakeTempDir() + "/out";
  // 77,696 bytes of weights; the largest tensors are 7,808 bytes (embedding, lm_head).
  TESSERA_ASSERT_OK(WriteHfCheckpoint(dir, llama->config, llama->weights, 30000));
  std::string text;
  ASSERT_TRUE(ReadFileToString(dir + "/model.safetensors.index.json").ok());
  const nlohmann::json index =
      nlohmann::json::parse(*ReadFileToString(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 77696);
  std::map<std::string, std::vector<std::string>> by_file;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    by_file[file.get<std::string>()].push_back(tensor);
  }
  ASSERT_EQ(by_file.size(), 3u);
  EXPECT_EQ(by_file.begin()->first, "model-00001-of-00003.safetensors");
  EXPECT_EQ(by_file.rbegin()->first, "model-00003-of-00003.safetensors");
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  size_t total = 0;
  for (const auto& [file, tensors] : by_file) {
    std::map<std::string, std::string> metadata;
    absl::StatusOr<ArrayRecord> shard = ReadSafetensorsFile(dir + "/" + file, &metadata);
    ASSERT_THAT(shard, IsOk());
    EXPECT_EQ(metadata["format"], "pt");
    EXPECT_EQ(shard->tensors.size(), tensors.size());
    EXPECT_LE(shard->TotalBytes(), 30000u);
    total += shard->tensors.size();
  }
  EXPECT_EQ(total, llama->weights.tensors.size());

  absl::StatusOr<HfCheckpoint> back = ReadHfCheckpoint(dir);
  ASSERT_THAT(back, IsOk());
  ExpectSameContent(back->weights, llama->weights);

  // Rewriting unsharded into the same folder removes the shards and the index.
  TESSERA_ASSERT_OK(WriteHfCheckpoint(dir, llama->config, llama->weights));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir + "/model-00002-of-00003.safetensors"));
  back = ReadHfCheckpoint(dir);
  ASSERT_THAT(back, IsOk());
  ExpectSameContent(back->weights, llama->weights);
}

// hf_reference.py's own safetensors/index reading (Python, independent of core/model) reads
// what WriteHfCheckpoint wrote.
TEST(WriteHfCheckpointTest, PythonReadsTheShards) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> llama = ReadVariant("llama");
  ASSERT_THAT(llama, IsOk());
  const std::string dir = MakeTempDir() + "/out";
  TESSERA_ASSERT_OK(WriteHfCheckpoint(dir, llama->config, llama->weights, 30000));
  const std::string script = R"(
import json, struct, sys
def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    assert h.pop('__metadata__') == {'format': 'pt'}, path
    base = 8 + n
    return {k: (v['dtype'], v['shape'], b[base + v['data_offsets'][0]:base + v['data_offsets'][1]])
            for k, v in h.items()}
out, ref = sys.argv[1], sys.argv[2]
index = json.load(open(out + '/model.safetensors.index.json'))
got = {}
for f in sorted(set(index['weight_map'].values())):
    part = load(out + '/' + f)
    assert all(index['weight_map'][k] == f for k in part), f
    got.update(part)
want = load(ref + '/model.safetensors')
assert got == want
assert index['metadata']['total_size'] == sum(len(v[2]) for v in want.values())
print('ok', len(got))
)";
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/check.py", script, 0644, false));
  std::string out;
  EXPECT_EQ(RunCommand("/usr/bin/python3 " + dir + "/check.py " + dir + " " + ReferenceDir() +
                           "/llama 2>&1",
                       &out),
            0)
      << out;
  EXPECT_EQ(out, "ok 21\n");
}

TEST(WriteHfCheckpointTest, RefusesWrongLayout) {
  TESSERA_REQUIRE_REFERENCE();
  absl::StatusOr<HfCheckpoint> llama = ReadVariant("llama");
  ASSERT_THAT(llama, IsOk());
  ArrayRecord missing = llama->weights;
  missing.tensors.pop_back();
  EXPECT_THAT(WriteHfCheckpoint(MakeTempDir(), llama->config, missing),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("20 tensors")));
  ArrayRecord swapped = llama->weights;
  std::swap(swapped.tensors[1], swapped.tensors[2]);
  EXPECT_THAT(WriteHfCheckpoint(MakeTempDir(), llama->config, swapped),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"model.layers.0.self_attn.q_proj.weight\" there")));
}

// The identity is `cd DIR && sha256sum <files> | sha256sum`, run here by the shell.
TEST(CheckpointSha256Test, MatchesSha256sum) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama_sharded");
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/tokenizer.json", "{\"model\": {}}", 0644, false));
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/generation_config.json", "{}", 0644, false));
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/README.md", "not part of it", 0644, false));
  // Sorted by hand (byte order); input_ids.json, reference_logits.safetensors and README.md
  // are not model files.
  const std::string files =
      "config.json generation_config.json model-00001-of-00003.safetensors "
      "model-00002-of-00003.safetensors model-00003-of-00003.safetensors "
      "model.safetensors.index.json tokenizer.json";
  std::string expected;
  ASSERT_EQ(RunCommand("cd " + dir + " && sha256sum " + files + " | sha256sum", &expected), 0);
  ASSERT_GE(expected.size(), 64u);
  absl::StatusOr<std::string> got = CheckpointSha256(dir);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(*got, expected.substr(0, 64));

  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/README.md", "changed", 0644, true));
  EXPECT_THAT(CheckpointSha256(dir), IsOkAndHolds(expected.substr(0, 64)));
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/tokenizer.json", "{}", 0644, true));
  EXPECT_THAT(CheckpointSha256(dir), IsOkAndHolds(::testing::Ne(expected.substr(0, 64))));

  EXPECT_THAT(CheckpointSha256(MakeTempDir()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
}

// --- Bad input: each error names the file and the tensor or field. ---

// Rewrites DIR/model.safetensors through `edit`.
template <typename Edit>
void EditWeights(const std::string& dir, Edit edit) {
  std::map<std::string, std::string> metadata;
  absl::StatusOr<ArrayRecord> record = ReadSafetensorsFile(dir + "/model.safetensors", &metadata);
  ASSERT_THAT(record, IsOk());
  edit(*record);
  TESSERA_ASSERT_OK(WriteSafetensorsFile(dir + "/model.safetensors", *record, metadata));
}

void EraseTensor(ArrayRecord& r, const std::string& name) {
  std::erase_if(r.tensors, [&](const Tensor& t) { return t.name() == name; });
}

TEST(ReadHfCheckpointErrorsTest, MissingTensor) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  EditWeights(dir, [](ArrayRecord& r) { EraseTensor(r, "model.layers.1.mlp.up_proj.weight"); });
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/model.safetensors"),
                             HasSubstr("tensor \"model.layers.1.mlp.up_proj.weight\" is missing"),
                             HasSubstr("[48, 32]"))));
}

TEST(ReadHfCheckpointErrorsTest, UntiedWithoutLmHead) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("mistral");
  EditWeights(dir, [](ArrayRecord& r) { EraseTensor(r, "lm_head.weight"); });
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"lm_head.weight\"")));
}

TEST(ReadHfCheckpointErrorsTest, WrongShape) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  EditWeights(dir, [](ArrayRecord& r) {
    EraseTensor(r, "model.norm.weight");
    r.tensors.push_back(*Tensor::Zeros("model.norm.weight", DType::kFloat32, {31}));
  });
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/model.safetensors"),
                             HasSubstr("\"model.norm.weight\" has shape [31]"),
                             HasSubstr("needs [32]"))));
}

TEST(ReadHfCheckpointErrorsTest, WrongDType) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  EditWeights(dir, [](ArrayRecord& r) {
    EraseTensor(r, "model.norm.weight");
    r.tensors.push_back(*Tensor::Zeros("model.norm.weight", DType::kInt32, {32}));
  });
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"model.norm.weight\""), HasSubstr("int32"))));
}

TEST(ReadHfCheckpointErrorsTest, UnexpectedTensor) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  EditWeights(dir, [](ArrayRecord& r) {
    r.tensors.push_back(*Tensor::Zeros("model.layers.2.input_layernorm.weight",
                                       DType::kFloat32, {32}));
  });
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/model.safetensors"),
                             HasSubstr("unexpected tensor "
                                       "\"model.layers.2.input_layernorm.weight\""))));
}

// Older transformers saved rotary_emb.inv_freq buffers; a tied checkpoint may store a copy
// of the embedding as lm_head.weight. Both are dropped, as transformers does.
TEST(ReadHfCheckpointErrorsTest, IgnoresInvFreqAndTiedLmHead) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("qwen2");
  EditWeights(dir, [](ArrayRecord& r) {
    r.tensors.push_back(
        *Tensor::Zeros("model.layers.0.self_attn.rotary_emb.inv_freq", DType::kFloat32, {4}));
    r.tensors.push_back(*Tensor::Zeros("lm_head.weight", DType::kFloat32, {61, 32}));
  });
  absl::StatusOr<HfCheckpoint> ckpt = ReadHfCheckpoint(dir);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ(Names(ckpt->weights), Names(ExpectedTensors(ckpt->config)));
}

TEST(ReadHfCheckpointErrorsTest, UnknownModelType) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  nlohmann::json config = nlohmann::json::parse(*ReadFileToString(dir + "/config.json"));
  config["model_type"] = "gpt_neox";
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/config.json", config.dump(), 0644, true));
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/config.json"),
                             HasSubstr("model_type \"gpt_neox\" is not supported"))));
}

TEST(ReadHfCheckpointErrorsTest, BadRopeScalingType) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  nlohmann::json config = nlohmann::json::parse(*ReadFileToString(dir + "/config.json"));
  config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/config.json", config.dump(), 0644, true));
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/config.json"),
                             HasSubstr("rope_scaling type \"dynamic\" is not supported"))));
}

TEST(ReadHfCheckpointErrorsTest, TruncatedSafetensors) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama");
  fs::resize_file(dir + "/model.safetensors", 40000);
  EXPECT_THAT(ReadHfCheckpoint(dir), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr(dir + "/model.safetensors")));
  fs::resize_file(dir + "/model.safetensors", 5);
  EXPECT_THAT(ReadHfCheckpoint(dir), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr(dir + "/model.safetensors")));
}

TEST(ReadHfCheckpointErrorsTest, MissingShard) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama_sharded");
  fs::remove(dir + "/model-00002-of-00003.safetensors");
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/model.safetensors.index.json"),
                             HasSubstr("shard \"model-00002-of-00003.safetensors\""))));
}

TEST(ReadHfCheckpointErrorsTest, IndexAndShardDisagree) {
  TESSERA_REQUIRE_REFERENCE();
  const std::string dir = CopyOfVariant("llama_sharded");
  nlohmann::json index =
      nlohmann::json::parse(*ReadFileToString(dir + "/model.safetensors.index.json"));
  const std::string file = index["weight_map"]["model.norm.weight"];
  index["weight_map"]["model.norm.weight"] =
      file == "model-00001-of-00003.safetensors" ? "model-00002-of-00003.safetensors"
                                                 : "model-00001-of-00003.safetensors";
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/model.safetensors.index.json", index.dump(),
                                        0644, true));
  EXPECT_THAT(ReadHfCheckpoint(dir), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"model.norm.weight\"")));

  index["weight_map"]["model.norm.weight"] = "../model.safetensors";
  TESSERA_ASSERT_OK(WriteFileAtomically(dir + "/model.safetensors.index.json", index.dump(),
                                        0644, true));
  EXPECT_THAT(ReadHfCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"../model.safetensors\" is not a file name in the folder")));
}

TEST(ReadHfCheckpointErrorsTest, NotFound) {
  EXPECT_THAT(ReadHfCheckpoint("/nonexistent/ckpt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/ckpt")));
  const std::string empty = MakeTempDir();
  EXPECT_THAT(ReadHfCheckpoint(empty),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(empty + "/config.json")));
}

}  // namespace
}  // namespace tessera::lm
