// File: split_regex.h
// A Hugging Face pre-tokenizer regex (the pattern of a "Split" pre-tokenizer,
// or ByteLevel's built-in GPT-2 pattern) run on RE2 with the semantics of the
// Oniguruma engine the tokenizers library uses: leftmost-first alternation,
// Unicode \s, and the one lookaround these patterns ship, `\s+(?!\S)` (a run of
// whitespace before a non-space gives all but its last character; at the end of
// the text all of it). RE2 has no lookaround, so that alternative runs as `\s+`
// and its match is cut back afterwards; any other lookaround, \w, \b and
// backreferences are refused when the pattern is compiled.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<SplitRegex> re,
//   SplitRegex::Compile(kGpt2Pattern)); std::vector<absl::string_view> pieces =
//   re->Split("Hello  world");  // "Hello", " ", " world"
#ifndef TESSERA_CLIENT_LM_TOKENIZER_SPLIT_REGEX_H_
#define TESSERA_CLIENT_LM_TOKENIZER_SPLIT_REGEX_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace tessera::lm {

// GPT-2's pre-tokenizer pattern (ByteLevel's use_regex).
inline constexpr absl::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// `literal` escaped as a regex that matches exactly it (Split's {"String": ...}
// pattern).
std::string QuoteRegex(absl::string_view literal);

class SplitRegex {
 public:
  // Errors: INVALID_ARGUMENT naming the unsupported construct or RE2's
  // complaint.
  static absl::StatusOr<std::unique_ptr<SplitRegex>> Compile(absl::string_view pattern);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Split's "Isolated" behavior: every non-empty match and every gap between
  // matches, in order; the pieces concatenate to `text`. REQUIRES: `text` is
  // valid UTF-8.
  std::vector<absl::string_view> Split(absl::string_view text) const;

 private:
  SplitRegex() = default;

  std::unique_ptr<re2::RE2> re_;    // lookahead alternative relaxed to \s+ in group ws_group_
  std::unique_ptr<re2::RE2> rest_;  // the alternatives after it (null when none)
  int ws_group_ = -1;               // -1 when the pattern has no `\s+(?!\S)`
};

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_SPLIT_REGEX_H_
