#include "client/lm/tokenizer/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/tokenizer_test_util.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using ::tessera::lm::testing::ParseIds;
using ::tessera::lm::testing::ReadFile;
using ::tessera::lm::testing::RunReference;
using ::tessera::lm::testing::ScratchDir;
using ::tessera::lm::testing::WriteFile;
using ::testing::HasSubstr;

// The reference's tokenizers (gpt2, llama3, qwen2 and sp layouts), built once.
class ReferenceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("tokenizer_fixtures");
    int status = 0;
    const std::string out = RunReference(absl::StrCat("fixtures ", dir_->path()), &status);
    ASSERT_EQ(status, 0) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path(const std::string& name) { return *dir_ / name; }
  static std::string Text() { return ReadFile(Path("text.txt")); }

  // Checks Encode against the reference's expected ids, with and without
  // special tokens, and that Decode gives the text back.
  static void ExpectMatchesReference(const std::string& layout, const std::string& text) {
    SCOPED_TRACE(layout);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path(layout));
    ASSERT_THAT(tok, IsOk());
    const std::vector<int32_t> expected = ParseIds(ReadFile(Path(layout + "/expected.txt")));
    const std::vector<int32_t> expected_special =
        ParseIds(ReadFile(Path(layout + "/expected_special.txt")));
    ASSERT_FALSE(expected.empty());
    EXPECT_THAT((*tok)->Encode(text), IsOkAndHolds(expected));
    EXPECT_THAT((*tok)->Encode(text, {.add_special_tokens = true}), IsOkAndHolds(expected_special));
    EXPECT_THAT((*tok)->Decode(expected), IsOkAndHolds(text));
  }

  static ScratchDir* dir_;
};

ScratchDir* ReferenceTokenizerTest::dir_ = nullptr;

TEST_F(ReferenceTokenizerTest, Gpt2LayoutMatchesReference) {
  ExpectMatchesReference("gpt2", Text());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("gpt2"));
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->kind(), "bpe");
  EXPECT_EQ((*tok)->bos_id(),
            std::nullopt);  // no tokenizer_config.json, no template
}

TEST_F(ReferenceTokenizerTest, Llama3LayoutMatchesReference) {
  ExpectMatchesReference("llama3", Text());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("llama3"));
  ASSERT_THAT(tok, IsOk());
  const std::vector<int32_t> special = ParseIds(ReadFile(Path("llama3/expected_special.txt")));
  EXPECT_EQ((*tok)->bos_id(), special[0]);
  ASSERT_TRUE((*tok)->eos_id().has_value());
  EXPECT_THAT((*tok)->Decode({*(*tok)->eos_id()}), IsOkAndHolds("<|eot_id|>"));
  EXPECT_EQ((*tok)->pad_id(), std::nullopt);
  // Added ids sit after a gap of unused ids; vocab_size covers them.
  EXPECT_EQ((*tok)->vocab_size(), special[0] + 3);
}

TEST_F(ReferenceTokenizerTest, Qwen2LayoutWithNfcMatchesReference) {
  const std::string text = ReadFile(Path("qwen2/text.txt"));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("qwen2"));
  ASSERT_THAT(tok, IsOk());
  const std::vector<int32_t> expected = ParseIds(ReadFile(Path("qwen2/expected.txt")));
  EXPECT_THAT((*tok)->Encode(text), IsOkAndHolds(expected));
  // No template: nothing is added (Qwen2 adds no BOS).
  EXPECT_THAT((*tok)->Encode(text, {.add_special_tokens = true}), IsOkAndHolds(expected));
  // Decoding gives the NFC text: "e" + U+0301 came back as U+00E9.
  absl::StatusOr<std::string> decoded = (*tok)->Decode(expected);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_THAT(*decoded, HasSubstr("caf\xC3\xA9 \xC3\x85ngstr\xC3\xB6m"));
  EXPECT_EQ((*tok)->bos_id(), std::nullopt);
  EXPECT_TRUE((*tok)->pad_id().has_value());
}

TEST_F(ReferenceTokenizerTest, SentencePieceMatchesReference) {
  ExpectMatchesReference("sp", ReadFile(Path("sp/text.txt")));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("sp"));
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->kind(), "sentencepiece");
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_id(), 2);
  EXPECT_EQ((*tok)->vocab_size(), 420);
  EXPECT_THAT((*tok)->Encode("Hello</s> world"),
              IsOkAndHolds(ParseIds(ReadFile(Path("sp/expected_eos_inside.txt")))));
  EXPECT_THAT((*tok)->Decode({1, 2}, /*skip_special_tokens=*/false), IsOkAndHolds("<s></s>"));
  EXPECT_THAT((*tok)->Decode({1, 2}, /*skip_special_tokens=*/true), IsOkAndHolds(""));
  EXPECT_THAT((*tok)->Decode({420}), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(ReferenceTokenizerTest, SkipsSpecialTokensWhenDecoding) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("llama3"));
  ASSERT_THAT(tok, IsOk());
  absl::StatusOr<std::vector<int32_t>> ids =
      (*tok)->Encode("Hello<|eot_id|>", {.add_special_tokens = true});
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT((*tok)->Decode(*ids), IsOkAndHolds("<|begin_of_text|>Hello<|eot_id|>"));
  EXPECT_THAT((*tok)->Decode(*ids, /*skip_special_tokens=*/true), IsOkAndHolds("Hello"));
}

TEST_F(ReferenceTokenizerTest, RefusesInvalidUtf8AndOutOfRangeIds) {
  for (const std::string layout : {"gpt2", "sp"}) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path(layout));
    ASSERT_THAT(tok, IsOk());
    EXPECT_THAT((*tok)->Encode("ok \xC3\x28 bad"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid UTF-8")));
    EXPECT_THAT((*tok)->Decode({0, (*tok)->vocab_size()}),
                StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("outside")));
    EXPECT_THAT((*tok)->Decode({-1}), StatusIs(absl::StatusCode::kOutOfRange));
  }
}

TEST_F(ReferenceTokenizerTest, DecodesPartialCharactersAsReplacement) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Path("gpt2"));
  ASSERT_THAT(tok, IsOk());
  // The byte token 0xF0 ("ð" in GPT-2's byte characters) alone is not UTF-8.
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("\xF0\x9F\x98\x80");
  ASSERT_THAT(ids, IsOk());
  ASSERT_GT(ids->size(), 1u);
  EXPECT_THAT((*tok)->Decode({(*ids)[0]}), IsOkAndHolds("\xEF\xBF\xBD"));
}

// Loading malformed or unsupported tokenizer files.
class LoadErrorTest : public ::testing::Test {
 protected:
  LoadErrorTest() : dir_("tokenizer_errors") {}

  absl::Status LoadJson(const std::string& tokenizer_json) {
    WriteFile(dir_ / "tokenizer.json", tokenizer_json);
    return LoadTokenizer(dir_.path()).status();
  }

  // A valid byte-level tokenizer.json with `model` as its model.
  static std::string WithModel(const std::string& model) {
    return absl::StrCat(
        R"({"added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
            "post_processor": null, "model": )",
        model, "}");
  }

  ScratchDir dir_;
};

TEST_F(LoadErrorTest, NoTokenizerFilesIsNotFound) {
  EXPECT_THAT(LoadTokenizer(dir_.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no tokenizer.json")));
}

TEST_F(LoadErrorTest, MissingVocab) {
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "merges": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer.json: model.vocab is missing")));
}

TEST_F(LoadErrorTest, UnknownModelType) {
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "WordPiece", "vocab": {"a": 0}})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer.json: model.type \"WordPiece\" is not supported")));
}

TEST_F(LoadErrorTest, BadMergesEntries) {
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                     "merges": ["a b", "ab"]})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.merges[1] \"ab\" is not two tokens")));
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                     "merges": [[1, 2]]})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.merges[0]")));
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": 0, "b": 1},
                                     "merges": [["a", "b"]]})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.merges[0] names token \"ab\", which is not in")));
}

TEST_F(LoadErrorTest, MalformedJsonAndFields) {
  EXPECT_THAT(LoadJson("{not json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tokenizer.json")));
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.vocab[\"a\"]")));
  EXPECT_THAT(LoadJson(R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                             {"type": "Split", "pattern": {"Regex": "(?<=a)b"},
                              "behavior": "Isolated"},
                             {"type": "ByteLevel", "use_regex": false}]}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pre_tokenizer.pretokenizers[0].pattern")));
  EXPECT_THAT(LoadJson(R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                           "normalizer": {"type": "NFKC"},
                           "pre_tokenizer": {"type": "ByteLevel"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("normalizer.type \"NFKC\" is not supported")));
  // SentencePiece-style BPE (Llama 2's tokenizer.json) without tokenizer.model.
  EXPECT_THAT(LoadJson(R"({"model": {"type": "BPE", "vocab": {}, "merges": [],
                                     "byte_fallback": true},
                           "pre_tokenizer": null})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.byte_fallback true is not supported")));
}

TEST_F(LoadErrorTest, BadTokenizerConfig) {
  WriteFile(dir_ / "tokenizer_config.json", R"({"bos_token": 5})");
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: bos_token is not a string")));
  WriteFile(dir_ / "tokenizer_config.json", R"({"eos_token": {"content": "</s>"}})");
  EXPECT_THAT(LoadJson(WithModel(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: eos_token \"</s>\" is not a token")));
}

TEST_F(LoadErrorTest, ReadsTheChatTemplate) {
  WriteFile(dir_ / "tokenizer.json", WithModel(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})"));
  // No tokenizer_config.json: no template.
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(dir_.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), std::nullopt);
  // A string (JSON escapes decoded: the Jinja source has a backslash-n inside its literal).
  WriteFile(dir_ / "tokenizer_config.json",
            R"({"chat_template": "{{ '<|im_start|>' + message['role'] + '\\n' }}"})");
  tok = LoadTokenizer(dir_.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), "{{ '<|im_start|>' + message['role'] + '\\n' }}");
  // A list of named templates: the one named "default".
  WriteFile(dir_ / "tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                  {"name": "default", "template": "D"}]})");
  tok = LoadTokenizer(dir_.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), "D");
  // A list without "default", and null: no template.
  WriteFile(dir_ / "tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  tok = LoadTokenizer(dir_.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), std::nullopt);
  WriteFile(dir_ / "tokenizer_config.json", R"({"chat_template": null})");
  tok = LoadTokenizer(dir_.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), std::nullopt);
  // Malformed.
  WriteFile(dir_ / "tokenizer_config.json", R"({"chat_template": 3})");
  EXPECT_THAT(LoadTokenizer(dir_.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: chat_template is not a string")));
  WriteFile(dir_ / "tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
  EXPECT_THAT(LoadTokenizer(dir_.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: chat_template entries")));
}

TEST_F(ReferenceTokenizerTest, SentencePieceReadsTheChatTemplate) {
  // The sp layout has no template; a copy with a tokenizer_config.json has one.
  ScratchDir copy("tokenizer_sp_chat");
  WriteFile(copy / "tokenizer.model", ReadFile(Path("sp/tokenizer.model")));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(copy.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->chat_template(), std::nullopt);
  WriteFile(copy / "tokenizer_config.json", R"({"chat_template": "{{ bos_token }}[INST]"})");
  tok = LoadTokenizer(copy.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->kind(), "sentencepiece");
  EXPECT_EQ((*tok)->chat_template(), "{{ bos_token }}[INST]");
}

TEST_F(LoadErrorTest, BadSentencePieceModel) {
  WriteFile(dir_ / "tokenizer.model", "not a protobuf");
  EXPECT_THAT(LoadTokenizer(dir_.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tokenizer.model")));
}

}  // namespace
}  // namespace tessera::lm
