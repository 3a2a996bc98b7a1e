#include "client/lm/text/text_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/lm/text/text_data_test_support.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using text_test::ByteTokenizer;
using text_test::Bytes;
using text_test::kBos;
using text_test::kEos;
using text_test::kI;
using text_test::TextDataTest;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// PROMPT_DICT["prompt_no_input"] of tatsu-lab/stanford_alpaca train.py with instruction "Hi".
constexpr char kHiPrompt[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\nHi\n\n### Response:";

TEST_F(TextDataTest, InstructionRecordMasksThePrompt) {
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(1024));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  // BOS + prompt bytes, then "Yo" and EOS; the prompt's 1 + |prompt| labels are ignored.
  const std::string prompt = kHiPrompt;
  std::vector<int32_t> ids = {kBos};
  std::vector<int32_t> labels = {kI};
  for (int32_t id : Bytes(prompt)) {
    ids.push_back(id);
    labels.push_back(kI);
  }
  for (int32_t id : {'Y' + 3, 'o' + 3, kEos}) {
    ids.push_back(id);
    labels.push_back(id);
  }
  EXPECT_THAT(d->train[0].input_ids, ElementsAreArray(ids));
  EXPECT_THAT(d->train[0].labels, ElementsAreArray(labels));
  EXPECT_EQ(ids.size(), prompt.size() + 4);
  EXPECT_THAT(std::vector<int32_t>(d->train[0].labels.end() - 4, d->train[0].labels.end()),
              ElementsAre(kI, 92, 114, 2));
  EXPECT_EQ(d->train_records, 1u);
  EXPECT_EQ(d->train_target_tokens, 3u);
  EXPECT_THAT(d->heldout, IsEmpty());
}

TEST_F(TextDataTest, InstructionWithInputUsesPromptInput) {
  const std::string path = Write(
      "{\"instruction\": \"Hi\", \"input\": \"x\", \"output\": \"\"}\n"
      "{\"instruction\": \"Hi\", \"input\": \"\", \"output\": \"Z\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(1024));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 2u);
  const std::string with_input =
      "Below is an instruction that describes a task, paired with an input that provides "
      "further context. Write a response that appropriately completes the request.\n\n"
      "### Instruction:\nHi\n\n### Input:\nx\n\n### Response:";
  std::vector<int32_t> ids = {kBos};
  for (int32_t id : Bytes(with_input)) ids.push_back(id);
  ids.push_back(kEos);  // the empty output: only EOS is a target
  EXPECT_THAT(d->train[0].input_ids, ElementsAreArray(ids));
  std::vector<int32_t> labels(ids.size(), kI);
  labels.back() = kEos;
  EXPECT_THAT(d->train[0].labels, ElementsAreArray(labels));
  // An empty input is the no-input prompt.
  EXPECT_EQ(d->train[1].input_ids.size(), 1 + std::string(kHiPrompt).size() + 2);
  EXPECT_EQ(d->train_target_tokens, 1u + 2u);
}

TEST_F(TextDataTest, InstructionTruncatedKeepsThePartOfTheResponseThatFits) {
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  const uint32_t prompt_tokens = 1 + static_cast<uint32_t>(std::string(kHiPrompt).size());
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(prompt_tokens + 1));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  EXPECT_EQ(d->train[0].input_ids.size(), prompt_tokens + 1);
  EXPECT_EQ(d->train[0].input_ids.back(), 'Y' + 3);
  EXPECT_EQ(d->train[0].labels.back(), 'Y' + 3);
  EXPECT_EQ(d->train[0].labels[prompt_tokens - 1], kI);
  EXPECT_EQ(d->train_target_tokens, 1u);

  // The prompt alone fills max_seq_length: no loss term, the record is skipped.
  d = LoadTextData(path, tok_, NoHeldOut(prompt_tokens));
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(d->train, IsEmpty());
  EXPECT_EQ(d->train_records, 0u);
  EXPECT_EQ(d->skipped_records, 1u);
  EXPECT_EQ(d->train_target_tokens, 0u);
}

TEST_F(TextDataTest, InstructionWithoutBosTokenizer) {
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  ByteTokenizer no_bos(/*add_bos=*/false);
  absl::StatusOr<TextData> d = LoadTextData(path, no_bos, NoHeldOut(1024));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  const size_t p = std::string(kHiPrompt).size();
  EXPECT_EQ(d->train[0].input_ids.size(), p + 3);
  EXPECT_EQ(d->train[0].input_ids[0], 'B' + 3);
  EXPECT_EQ(d->train[0].labels[p - 1], kI);
  EXPECT_EQ(d->train[0].labels[p], 'Y' + 3);
}


TEST_F(TextDataTest, PackingCutsBlocksAndDropsTheRemainder) {
  // "ab" -> 1 100 101 2; "c" -> 1 102 2; "defg" -> 1 103 104 105 106 2: 13 tokens.
  const std::string path =
      Write("{\"text\": \"ab\"}\n\n{\"text\": \"c\"}\n  \n{\"text\": \"defg\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(4));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 3u);
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(1, 100, 101, 2));
  EXPECT_THAT(d->train[1].input_ids, ElementsAre(1, 102, 2, 1));
  EXPECT_THAT(d->train[2].input_ids, ElementsAre(103, 104, 105, 106));
  for (const TokenizedExample& e : d->train) EXPECT_EQ(e.labels, e.input_ids);
  EXPECT_EQ(d->train_records, 3u);
  EXPECT_EQ(d->train_target_tokens, 9u);  // 3 blocks x 3 shifted targets

  // Exactly two blocks of 6; the 13th token is dropped.
  d = LoadTextData(path, tok_, NoHeldOut(6));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 2u);
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(1, 100, 101, 2, 1, 102));
  EXPECT_THAT(d->train[1].input_ids, ElementsAre(2, 1, 103, 104, 105, 106));
}

TEST_F(TextDataTest, PackingKeepsDataShorterThanOneBlock) {
  const std::string path = Write("{\"text\": \"ab\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(8));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(1, 100, 101, 2));
  EXPECT_THAT(d->train[0].labels, ElementsAre(1, 100, 101, 2));
  EXPECT_EQ(d->train_target_tokens, 3u);
}

TEST_F(TextDataTest, WithoutPackingOneTruncatedExamplePerRecord) {
  const std::string path = Write("{\"text\": \"defg\"}\n{\"text\": \"c\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(4, /*packing=*/false));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 2u);
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(1, 103, 104, 105));
  EXPECT_THAT(d->train[1].input_ids, ElementsAre(1, 102, 2));
  EXPECT_THAT(d->train[1].labels, ElementsAre(1, 102, 2));
  EXPECT_EQ(d->train_records, 2u);
  EXPECT_EQ(d->train_target_tokens, 3u + 2u);
}

TEST_F(TextDataTest, TextWithoutBosAndSingleTokenRecordsAreSkipped) {
  ByteTokenizer no_bos(/*add_bos=*/false);
  const std::string path = Write("{\"text\": \"ab\"}\n{\"text\": \"\"}\n");
  absl::StatusOr<TextData> d = LoadTextData(path, no_bos, NoHeldOut(8, /*packing=*/false));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);  // "" is just EOS: nothing to predict
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(100, 101, 2));
  EXPECT_EQ(d->skipped_records, 1u);
  EXPECT_EQ(d->train_records, 1u);
}

TEST_F(TextDataTest, CrLfLineEndingsAndExtraKeys) {
  const std::string path = Write("{\"text\": \"ab\", \"id\": 7}\r\n{\"text\": \"c\"}\r\n");
  absl::StatusOr<TextData> d = LoadTextData(path, tok_, NoHeldOut(16));
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  EXPECT_THAT(d->train[0].input_ids, ElementsAre(1, 100, 101, 2, 1, 102, 2));
}

TEST_F(TextDataTest, FormatAutoAndExplicit) {
  const std::string text_first =
      Write("{\"text\": \"ab\", \"instruction\": 3}\n{\"text\": \"c\"}\n");
  TextDataOptions o = NoHeldOut(64);
  // auto: the first record has "instruction", so every record is an instruction record.
  EXPECT_THAT(LoadTextData(text_first, tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("data.jsonl:1: \"instruction\" is not a string")));
  o.format = "text";
  absl::StatusOr<TextData> d = LoadTextData(text_first, tok_, o);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->train_records, 2u);
  o.format = "instruction";
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"ab\"}\n"), tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("data.jsonl:1: \"instruction\" is missing")));
}

TEST_F(TextDataTest, SplitSizes) {
  // One single-letter record per line, unpacked, so each example names its record.
  std::string contents;
  for (int i = 0; i < 10; ++i) contents += "{\"text\": \"" + std::string(1, 'a' + i) + "\"}\n";
  const std::string path = Write(contents);
  // {fraction, held out of 10}: max(1, llround(10 f)).
  const std::vector<std::pair<double, uint64_t>> cases = {{0.0, 0},  {0.01, 1}, {0.1, 1},
                                                          {0.25, 3}, {0.34, 3}, {0.5, 5}};
  for (const auto& [fraction, held] : cases) {
    TextDataOptions o = NoHeldOut(8, /*packing=*/false);
    o.heldout_fraction = fraction;
    absl::StatusOr<TextData> d = LoadTextData(path, tok_, o);
    ASSERT_THAT(d, IsOk());
    EXPECT_EQ(d->heldout_records, held) << fraction;
    EXPECT_EQ(d->heldout.size(), held) << fraction;
    EXPECT_EQ(d->train_records, 10 - held) << fraction;
    EXPECT_EQ(d->train_target_tokens, 2 * (10 - held)) << fraction;
    // Every record is in exactly one part.
    std::vector<int> seen(10, 0);
    for (const auto* part : {&d->train, &d->heldout}) {
      for (const TokenizedExample& e : *part) ++seen[e.input_ids[1] - ('a' + 3)];
    }
    EXPECT_THAT(seen, ::testing::Each(1)) << fraction;
  }
}

TEST_F(TextDataTest, SplitNeverEmptiesTheTrainPart) {
  TextDataOptions o = NoHeldOut(8);
  o.heldout_fraction = 0.5;
  absl::StatusOr<TextData> d = LoadTextData(Write("{\"text\": \"a\"}\n"), tok_, o);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->train_records, 1u);
  EXPECT_EQ(d->heldout_records, 0u);
  // 3 records at 0.5: llround(1.5) = 2 held out, 1 trains.
  d = LoadTextData(Write("{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n"), tok_, o);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->train_records, 1u);
  EXPECT_EQ(d->heldout_records, 2u);
}

TEST_F(TextDataTest, SplitIsTheDocumentedShuffle) {
  std::string contents;
  for (int i = 0; i < 10; ++i) contents += "{\"text\": \"" + std::string(1, 'a' + i) + "\"}\n";
  const std::string path = Write(contents);
  // Expected held-out records from an independent MT19937-64 (the reference mt19937-64.c
  // algorithm in Python, checked against the standard's 10000th output of seed 5489) with
  // the documented Fisher-Yates: seed 42 -> {1, 7, 9}; seed 0 -> {0, 2, 7}.
  for (const auto& [seed, held] : std::vector<std::pair<uint64_t, std::vector<int32_t>>>{
           {42, {'b' + 3, 'h' + 3, 'j' + 3}}, {0, {'a' + 3, 'c' + 3, 'h' + 3}}}) {
    TextDataOptions o = NoHeldOut(8, /*packing=*/false);
    o.heldout_fraction = 0.3;
    o.split_seed = seed;
    absl::StatusOr<TextData> d = LoadTextData(path, tok_, o);
    ASSERT_THAT(d, IsOk());
    std::vector<int32_t> got;
    for (const TokenizedExample& e : d->heldout) got.push_back(e.input_ids[1]);
    EXPECT_EQ(got, held) << seed;  // in file order
  }
}

TEST_F(TextDataTest, HeldOutIsPackedTheSameWay) {
  TextDataOptions o = NoHeldOut(3);
  o.heldout_fraction = 0.5;
  // 2 records: 1 held out. Each part: 1 x y 2 (4 tokens) -> one block of 3.
  absl::StatusOr<TextData> d =
      LoadTextData(Write("{\"text\": \"ab\"}\n{\"text\": \"cd\"}\n"), tok_, o);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  ASSERT_EQ(d->heldout.size(), 1u);
  EXPECT_EQ(d->train[0].input_ids.size(), 3u);
  EXPECT_EQ(d->heldout[0].input_ids.size(), 3u);
  EXPECT_EQ(d->heldout[0].labels, d->heldout[0].input_ids);
  EXPECT_EQ(d->train_target_tokens, 2u);
}

TEST_F(TextDataTest, MaxRecordsStopsReading) {
  TextDataOptions o = NoHeldOut(64, /*packing=*/false);
  o.max_records = 2;
  // Line 4 is bad but never read.
  absl::StatusOr<TextData> d =
      LoadTextData(Write("{\"text\": \"a\"}\n\n{\"text\": \"b\"}\nnot json\n"), tok_, o);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->train_records, 2u);
}

struct BadFile {
  std::string contents;
  std::string message;
};

TEST_F(TextDataTest, BadRecordsNameTheLineAndField) {
  const std::vector<BadFile> cases = {
      {"{\"text\": \"a\"}\n\n{\"text\": 5}\n", "data.jsonl:3: \"text\" is not a string"},
      {"{\"text\": \"a\"}\n{\"txt\": \"a\"}\n", "data.jsonl:2: \"text\" is missing"},
      {"{\"text\": \"a\"}\n{\"text\": \"a\"\n", "data.jsonl:2: not JSON"},
      {"{\"text\": \"a\"} x\n", "data.jsonl:1: not JSON"},
      {"[\"text\"]\n", "data.jsonl:1: expected a JSON object"},
      {"\"text\"\n", "data.jsonl:1: expected a JSON object"},
      {"{\"text\": \"\xff\"}\n", "data.jsonl:1: not JSON"},  // invalid UTF-8
      {"{\"text\": null}\n", "data.jsonl:1: \"text\" is not a string"},
      {"{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\"}\n",
       "data.jsonl:2: \"output\" is missing"},
      {"{\"instruction\": \"a\", \"input\": 1, \"output\": \"b\"}\n",
       "data.jsonl:1: \"input\" is not a string"},
      {"{\"instruction\": [], \"output\": \"b\"}\n",
       "data.jsonl:1: \"instruction\" is not a string"},
      {"", "data.jsonl: no records"},
      {"\n  \n\n", "data.jsonl: no records"},
  };
  for (const BadFile& c : cases) {
    EXPECT_THAT(LoadTextData(Write(c.contents), tok_, NoHeldOut(64)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.contents;
  }
}

TEST_F(TextDataTest, LineLengthLimit) {
  TextDataOptions o = NoHeldOut(64);
  o.max_line_bytes = 13;
  // {"text": "a"} is 13 bytes: at the limit (with or without "\r").
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"a\"}\n{\"text\": \"b\"}\r\n"), tok_, o), IsOk());
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"a\"}\n{\"text\": \"bc\"}\n"), tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("data.jsonl:2: line is longer than 13 bytes")));
  // A last line without a newline, and a line far longer than the read buffer.
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"a\"}\n{\"text\": \"bc\"}"), tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data.jsonl:2: line")));
  EXPECT_THAT(LoadTextData(Write(std::string(1 << 20, ' ') + "\n"), tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data.jsonl:1: line")));
  EXPECT_EQ(TextDataOptions().max_line_bytes, 1u << 20);
  // The default: a 1 MiB line is fine, one byte more is not.
  const std::string big_text(kMaxJsonlLineBytes - 12, 'x');
  o.max_line_bytes = kMaxJsonlLineBytes;
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"" + big_text + "\"}\n"), tok_, o), IsOk());
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"" + big_text + "x\"}\n"), tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("data.jsonl:1: line is longer than 1048576 bytes")));
}

TEST_F(TextDataTest, RecordLimit) {
  TextDataOptions o = NoHeldOut(64);
  o.record_limit = 2;
  EXPECT_THAT(LoadTextData(Write("{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n"), tok_, o), IsOk());
  EXPECT_THAT(
      LoadTextData(Write("{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n"), tok_, o),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data.jsonl:4: more than 2 records")));
  EXPECT_EQ(TextDataOptions().record_limit, 1'000'000u);
}

TEST_F(TextDataTest, BadOptionsAndTokenizer) {
  const std::string path = Write("{\"text\": \"a\"}\n");
  const auto bad = [&](auto set, const std::string& message) {
    TextDataOptions o;
    set(o);
    EXPECT_THAT(LoadTextData(path, tok_, o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << message;
  };
  bad([](TextDataOptions& o) { o.format = "csv"; }, "format: must be auto, text or instruction");
  bad([](TextDataOptions& o) { o.prompt_template = "vicuna"; }, "prompt_template: must be alpaca");
  bad([](TextDataOptions& o) { o.max_seq_length = 1; }, "max_seq_length: must be in [2, 1048576]");
  bad([](TextDataOptions& o) { o.max_seq_length = kMaxSeqLengthLimit + 1; },
      "max_seq_length: must be in [2, 1048576], got 1048577");
  bad([](TextDataOptions& o) { o.heldout_fraction = 0.51; },
      "heldout_fraction: must be in [0, 0.5]");
  bad([](TextDataOptions& o) { o.heldout_fraction = -0.1; }, "heldout_fraction");
  bad([](TextDataOptions& o) { o.heldout_fraction = std::nan(""); }, "heldout_fraction");
  bad([](TextDataOptions& o) { o.max_line_bytes = 0; }, "max_line_bytes: must be > 0");
  TextDataOptions o = NoHeldOut(2);
  EXPECT_THAT(LoadTextData(path, tok_, o), IsOk());
  ByteTokenizer no_eos(/*add_bos=*/true, /*has_eos=*/false);
  EXPECT_THAT(LoadTextData(path, no_eos, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no EOS token")));
}

TEST_F(TextDataTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadTextData((dir_ / "missing.jsonl").string(), tok_, TextDataOptions()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.jsonl")));
}

}  // namespace
}  // namespace tessera::lm
