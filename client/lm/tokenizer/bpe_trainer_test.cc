#include "client/lm/tokenizer/bpe_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "client/lm/tokenizer/tokenizer.h"
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

// Deterministic multilingual text of about `bytes` bytes: pseudo-words of 1-4
// syllables from several scripts, with digits, punctuation and whitespace runs
// between them.
std::string Corpus(size_t bytes) {
  const std::vector<std::string> syllables = {"ka",
                                              "to",
                                              "ri",
                                              "men",
                                              "der",
                                              "ung",
                                              "ver",
                                              "st",
                                              "\xC3\xBC"
                                              "b",
                                              "\xC3\xA4r",
                                              "\xC3\x9F"
                                              "e",
                                              "\xD0\xBC\xD0\xB8",
                                              "\xD1\x80\xD0\xBE",
                                              "\xD0\xB2\xD0\xB0",
                                              "\xD9\x85\xD8\xB1",
                                              "\xD8\xAD\xD8\xA8",
                                              "\xE4\xBD\xA0",
                                              "\xE5\xA5\xBD",
                                              "\xE4\xB8\x96",
                                              "\xE7\x95\x8C",
                                              "\xF0\x9F\x98\x80",
                                              "'t",
                                              "'ll",
                                              "la",
                                              "no"};
  const std::vector<std::string> separators = {" ",  " ",  " ",  ", ",      ". ",
                                               "\n", "  ", "\t", " 12345 ", " 2024: "};
  std::mt19937 rng(7);
  std::string text;
  while (text.size() < bytes) {
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) text += syllables[rng() % syllables.size()];
    text += separators[rng() % separators.size()];
  }
  return text;
}

TEST(BpeTrainerTest, FirstMergeIsTheMostFrequentPair) {
  // Pre-tokens "aaab", " aaab", " aaab": (a, a) occurs 6 times, (a, b) 3, (Ġ,
  // a) 2.
  absl::StatusOr<std::string> json = TrainByteLevelBpeTokenizerJson({"aaab aaab aaab"}, 260);
  ASSERT_THAT(json, IsOk());
  const nlohmann::json root = nlohmann::json::parse(*json);
  ASSERT_EQ(root["model"]["merges"].size(), 1u);
  EXPECT_EQ(root["model"]["merges"][0], nlohmann::json({"a", "a"}));
  EXPECT_EQ(root["model"]["vocab"]["aa"], 256);
  EXPECT_EQ(root["model"]["vocab"]["!"],
            0);  // byte tokens ordered by character
  EXPECT_EQ(root["added_tokens"][0]["content"], "<|bos|>");
  EXPECT_EQ(root["added_tokens"][0]["id"], 257);
}

TEST(BpeTrainerTest, TiesGoToTheSmallestPair) {
  ByteLevelBpeTrainOptions options;
  options.min_frequency = 1;
  // (a, b), (Ġ, c) and (c, d) each occur once; "a" < "c" < "Ġ".
  absl::StatusOr<std::string> json = TrainByteLevelBpeTokenizerJson({"ab cd"}, 260, options);
  ASSERT_THAT(json, IsOk());
  EXPECT_EQ(nlohmann::json::parse(*json)["model"]["merges"][0], nlohmann::json({"a", "b"}));
}

TEST(BpeTrainerTest, TrainedTokenizerRoundTripsAndMatchesReference) {
  ScratchDir dir("bpe_trainer");
  const std::string corpus = Corpus(200'000);
  absl::StatusOr<std::string> json = TrainByteLevelBpeTokenizerJson({corpus}, 500);
  ASSERT_THAT(json, IsOk());
  WriteFile(dir / "tokenizer.json", *json);
  WriteFile(dir / "tokenizer_config.json", ByteLevelBpeTokenizerConfigJson());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(dir.path());
  ASSERT_THAT(tok, IsOk());
  EXPECT_EQ((*tok)->vocab_size(), 500);
  EXPECT_EQ((*tok)->bos_id(), 497);
  EXPECT_EQ((*tok)->eos_id(), 498);
  EXPECT_EQ((*tok)->pad_id(), 499);

  const std::string text =
      "The federated model: don't stop at 12345!  Gr\xC3\xBC\xC3\x9F"
      "e aus M\xC3\xBCnchen, "
      "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C "
      "\xD0\xBC\xD0\xB8\xD1\x80 \xF0\x9F\x98\x80"
      "\n\tnew words<|eos|> unseen\xE2\x80\x94text   ";
  WriteFile(dir / "text.txt", text);
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT((*tok)->Decode(*ids), IsOkAndHolds(text));
  // Merges were learned and are used: the corpus takes far fewer ids than
  // bytes.
  const std::string sample = corpus.substr(0, corpus.find('\n', 4000));
  absl::StatusOr<std::vector<int32_t>> sample_ids = (*tok)->Encode(sample);
  ASSERT_THAT(sample_ids, IsOk());
  EXPECT_LT(sample_ids->size(), sample.size() / 3);

  int status = 0;
  std::string out = RunReference("encode " + dir.path() + " " + (dir / "text.txt"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(*ids, ParseIds(out));
  out = RunReference("encode " + dir.path() + " " + (dir / "text.txt") + " --add-special-tokens",
                     &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_THAT((*tok)->Encode(text, {.add_special_tokens = true}), IsOkAndHolds(ParseIds(out)));
}

// The megabyte-scale run the LLM demo does (no wall-clock bound here: speed is a benchmark's
// business, and a bound flakes on a loaded machine or under a sanitizer).
TEST(BpeTrainerTest, TrainsTwoThousandTokensOnAMegabyte) {
  const std::string corpus = Corpus(1'000'000);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> json = TrainByteLevelBpeTokenizerJson({corpus}, 2000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_THAT(json, IsOk());
  const nlohmann::json root = nlohmann::json::parse(*json);
  EXPECT_EQ(root["model"]["vocab"].size() + root["added_tokens"].size(), 2000u);
  RecordProperty("train_seconds", std::to_string(seconds));
  std::cout << "trained on " << corpus.size() << " bytes in " << seconds << " s\n";
}

TEST(BpeTrainerTest, RefusesBadArguments) {
  EXPECT_THAT(TrainByteLevelBpeTokenizerJson({"abc"}, 258),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab_size 258")));
  EXPECT_THAT(TrainByteLevelBpeTokenizerJson({"ok", "bad \xFF"}, 300),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("texts[1]")));
  ByteLevelBpeTrainOptions options;
  options.eos_token = options.bos_token;
  EXPECT_THAT(TrainByteLevelBpeTokenizerJson({"abc"}, 300, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeated")));
}

}  // namespace
}  // namespace tessera::lm
