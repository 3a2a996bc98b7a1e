#include "client/lm/tokenizer/split_regex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "client/lm/tokenizer/tokenizer_test_util.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using ::tessera::lm::testing::RunReference;
using ::tessera::lm::testing::ScratchDir;
using ::tessera::lm::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Pieces(const SplitRegex& re, absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view p : re.Split(text)) out.emplace_back(p);
  return out;
}

TEST(SplitRegexTest, Gpt2LookaheadKeepsTheLastSpaceForTheNextWord) {
  absl::StatusOr<std::unique_ptr<SplitRegex>> re = SplitRegex::Compile(kGpt2SplitPattern);
  ASSERT_THAT(re, IsOk());
  EXPECT_THAT(Pieces(**re, "Hello   world"), ElementsAre("Hello", "  ", " world"));
  EXPECT_THAT(Pieces(**re, "a \tb"), ElementsAre("a", " ", "\t", "b"));
  EXPECT_THAT(Pieces(**re, "end   "), ElementsAre("end", "   "));
  EXPECT_THAT(Pieces(**re, "don't"), ElementsAre("don", "'t"));
}

// Whitespace-heavy texts under the three shipped patterns, against Python's
// regex module running the patterns as written (lookahead included).
TEST(SplitRegexTest, MatchesPythonRegexOnShippedPatterns) {
  const std::vector<std::string> patterns = {
      std::string(kGpt2SplitPattern),
      // Llama 3
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
      R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      // Qwen2
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
      R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
  };
  const std::vector<std::string> texts = {"  a",
                                          "a  b",
                                          "a \xE3\x80\x80 b",
                                          "x\n\n  y",
                                          "end   ",
                                          " \t\n",
                                          "a\xC2\xA0\xC2\xA0"
                                          "b",
                                          " 123 4567 89",
                                          "'S 'll DON'T we'VE",
                                          "\xE4\xBD\xA0\xE5\xA5\xBD  \xD0\xBC\xD0\xB8\xD1\x80!!",
                                          "tab\t\tx \n",
                                          "  \n  z",
                                          "$$$ ...\n\n",
                                          "\xF0\x9F\x98\x80 \xF0\x9F\x9A\x80x",
                                          ""};
  ScratchDir dir("split_regex");
  WriteFile(dir / "texts.json", nlohmann::json(texts).dump());
  for (const std::string& pattern : patterns) {
    SCOPED_TRACE(pattern);
    WriteFile(dir / "pattern.txt", pattern);
    int status = 0;
    const std::string out =
        RunReference("split " + (dir / "pattern.txt") + " " + (dir / "texts.json"), &status);
    ASSERT_EQ(status, 0) << out;
    const nlohmann::json expected = nlohmann::json::parse(out);
    absl::StatusOr<std::unique_ptr<SplitRegex>> re = SplitRegex::Compile(pattern);
    ASSERT_THAT(re, IsOk());
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(nlohmann::json(Pieces(**re, texts[i])), expected[i]) << "text " << i;
    }
  }
}

TEST(SplitRegexTest, RefusesOtherLookaroundsAndUnicodeUnawareClasses) {
  for (const char* pattern : {"(?<=a)b", "a(?=b)", "(?<!x)y", "\\s+(?!\\S)|\\s+(?!\\S)", "\\w+",
                              "a\\b", "(a)\\1", "[\\S]"}) {
    EXPECT_THAT(SplitRegex::Compile(pattern),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not supported")))
        << pattern;
  }
  EXPECT_THAT(SplitRegex::Compile("(unclosed"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SplitRegexTest, KeepsGapsBetweenMatches) {
  absl::StatusOr<std::unique_ptr<SplitRegex>> re = SplitRegex::Compile("[0-9]+");
  ASSERT_THAT(re, IsOk());
  EXPECT_THAT(Pieces(**re, "ab12cd345"), ElementsAre("ab", "12", "cd", "345"));
  EXPECT_THAT(Pieces(**SplitRegex::Compile(QuoteRegex("a.b")), "xa.bya+b"),
              ElementsAre("x", "a.b", "ya+b"));
}

}  // namespace
}  // namespace tessera::lm
