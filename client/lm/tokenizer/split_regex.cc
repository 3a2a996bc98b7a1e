#include "client/lm/tokenizer/split_regex.h"

#include <re2/re2.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::lm {
namespace {

// Unicode White_Space, which \s means in Oniguruma and Python's regex (RE2's \s
// is ASCII).
constexpr absl::string_view kSpaceRanges =
    R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
constexpr absl::string_view kLookaheadAlternative = R"(\s+(?!\S))";
constexpr absl::string_view kWsGroupName = "tessera_ws";

absl::Status Unsupported(absl::string_view pattern, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("pre-tokenizer regex \"", pattern, "\": ", what,
                   " is not supported (RE2 has no lookaround; only the alternative "
                   "\\s+(?!\\S) is emulated)"));
}

struct Alternative {
  std::string raw;         // as written
  std::string translated;  // for RE2
  bool lookaround = false;
};

// Splits `pattern` into its top-level alternatives and translates each for RE2:
// \s and \S become Unicode White_Space classes, \d becomes \p{Nd}.
absl::StatusOr<std::vector<Alternative>> Translate(absl::string_view pattern) {
  std::vector<Alternative> alts(1);
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    Alternative& alt = alts.back();
    if (c == '\\') {
      if (i + 1 >= pattern.size()) return Unsupported(pattern, "a trailing backslash");
      const char e = pattern[++i];
      alt.raw += absl::StrCat("\\", std::string(1, e));
      switch (e) {
        case 's':
          alt.translated +=
              in_class ? std::string(kSpaceRanges) : absl::StrCat("[", kSpaceRanges, "]");
          break;
        case 'S':
          if (in_class) return Unsupported(pattern, "\\S inside a character class");
          alt.translated += absl::StrCat("[^", kSpaceRanges, "]");
          break;
        case 'd':
          alt.translated += "\\p{Nd}";
          break;
        case 'D':
          alt.translated += "\\P{Nd}";
          break;
        case 'w':
        case 'W':
        case 'b':
        case 'B':
        case 'G':
        case 'X':
        case 'R':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
          return Unsupported(pattern, absl::StrCat("\\", std::string(1, e)));
        default:
          alt.translated += absl::StrCat("\\", std::string(1, e));
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      if (c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
        const size_t end = pattern.find(":]", i + 2);
        if (end == absl::string_view::npos) return Unsupported(pattern, "an unclosed [:");
        absl::StrAppend(&alt.raw, pattern.substr(i, end + 2 - i));
        absl::StrAppend(&alt.translated, pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    } else if (c == '[') {
      in_class = true;
      alt.raw += c;
      alt.translated += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        alt.raw += '^';
        alt.translated += '^';
        ++i;
      }
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') {
        alt.raw += "\\]";
        alt.translated += "\\]";
        ++i;
      }
      continue;
    } else if (c == '(') {
      const absl::string_view rest = pattern.substr(i);
      if (absl::StartsWith(rest, "(?=") || absl::StartsWith(rest, "(?!") ||
          absl::StartsWith(rest, "(?<=") || absl::StartsWith(rest, "(?<!")) {
        alt.lookaround = true;
      }
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      alts.emplace_back();
      continue;
    }
    alt.raw += c;
    alt.translated += c;
  }
  if (in_class || depth != 0) return Unsupported(pattern, "unbalanced brackets");
  return alts;
}

std::unique_ptr<re2::RE2> NewRe2(const std::string& pattern) {
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  options.set_log_errors(false);
  return std::make_unique<re2::RE2>(pattern, options);
}

// The byte length of the UTF-8 character starting at text[pos].
size_t CharLength(absl::string_view text, size_t pos) {
  size_t len = 1;
  while (pos + len < text.size() && (static_cast<unsigned char>(text[pos + len]) & 0xC0) == 0x80)
    ++len;
  return len;
}

}  // namespace

std::string QuoteRegex(absl::string_view literal) {
  return re2::RE2::QuoteMeta(re2::StringPiece(literal.data(), literal.size()));
}

SplitRegex::~SplitRegex() = default;

absl::StatusOr<std::unique_ptr<SplitRegex>> SplitRegex::Compile(absl::string_view pattern) {
  absl::StatusOr<std::vector<Alternative>> alts = Translate(pattern);
  if (!alts.ok()) return alts.status();
  std::vector<std::string> full;
  std::vector<std::string> rest;
  bool seen_lookahead = false;
  for (const Alternative& alt : *alts) {
    if (alt.raw == kLookaheadAlternative) {
      if (seen_lookahead) return Unsupported(pattern, "a second \\s+(?!\\S)");
      seen_lookahead = true;
      full.push_back(absl::StrCat("(?P<", kWsGroupName, ">[", kSpaceRanges, "]+)"));
      continue;
    }
    if (alt.lookaround) {
      return Unsupported(pattern, absl::StrCat("the lookaround in \"", alt.raw, "\""));
    }
    full.push_back(alt.translated);
    if (seen_lookahead) rest.push_back(alt.translated);
  }
  std::unique_ptr<SplitRegex> split(new SplitRegex());
  split->re_ = NewRe2(absl::StrJoin(full, "|"));
  if (!split->re_->ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pre-tokenizer regex \"", pattern, "\": ", split->re_->error()));
  }
  if (seen_lookahead) {
    split->ws_group_ = split->re_->NamedCapturingGroups().at(std::string(kWsGroupName));
    if (!rest.empty()) split->rest_ = NewRe2(absl::StrJoin(rest, "|"));
  }
  return split;
}

std::vector<absl::string_view> SplitRegex::Split(absl::string_view text) const {
  std::vector<absl::string_view> pieces;
  const re2::StringPiece input(text.data(), text.size());
  const int num_groups = ws_group_ + 1 > 1 ? ws_group_ + 1 : 1;
  std::vector<re2::StringPiece> groups(static_cast<size_t>(num_groups));
  size_t gap_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!re_->Match(input, pos, text.size(), re2::RE2::UNANCHORED, groups.data(), num_groups)) {
      break;
    }
    const size_t start = static_cast<size_t>(groups[0].data() - text.data());
    size_t end = start + groups[0].size();
    if (ws_group_ > 0 && groups[static_cast<size_t>(ws_group_)].data() != nullptr &&
        end < text.size()) {
      // \s+ took the whole run and a non-space follows: (?!\S) backtracks one
      // character.
      size_t last = end - 1;
      while (last > start && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
      if (last > start) {
        end = last;
      } else {
        // One whitespace character: the alternative fails here; the later ones
        // may match.
        re2::StringPiece m;
        end = rest_ != nullptr &&
                      rest_->Match(input, start, text.size(), re2::RE2::ANCHOR_START, &m, 1)
                  ? start + m.size()
                  : start;
      }
    }
    if (end == start) {  // no (non-empty) match starts here
      pos = start + CharLength(text, start);
      continue;
    }
    if (start > gap_start) pieces.push_back(text.substr(gap_start, start - gap_start));
    pieces.push_back(text.substr(start, end - start));
    gap_start = pos = end;
  }
  if (gap_start < text.size()) pieces.push_back(text.substr(gap_start));
  return pieces;
}

}  // namespace tessera::lm
