// File: markup.cc
#include "core/governance/markup.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/base/utf8.h"

namespace tessera::governance {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at `s[*pos]` and advances `*pos`; an invalid sequence (overlong,
// surrogate, past U+10FFFF, truncated) yields U+FFFD and consumes one byte.
char32_t NextCodePoint(absl::string_view s, size_t* pos) {
  char32_t cp;
  size_t len;
  if (DecodeUtf8Char(s, *pos, &cp, &len)) {
    *pos += len;
    return cp;
  }
  ++*pos;
  return kReplacement;
}

bool IsControl(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Characters YAML wants escaped even inside a double-quoted scalar: not printable, or read as
// a line break by YAML 1.1 parsers, or a byte order mark.
bool YamlNeedsEscape(char32_t cp) {
  return IsControl(cp) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
         cp == 0xFFFF;
}

}  // namespace

std::string YamlQuote(absl::string_view s) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = NextCodePoint(s, &pos);
    if (cp == '\\' || cp == '"') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (YamlNeedsEscape(cp)) {
      out += absl::StrFormat("\\u%04X", static_cast<uint32_t>(cp));
    } else {
      AppendUtf8(cp, &out);
    }
  }
  out.push_back('"');
  return out;
}

std::string MarkdownInline(absl::string_view s) {
  static constexpr absl::string_view kSpecial = "\\`*_[]<>|~&!#";
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = NextCodePoint(s, &pos);
    if (YamlNeedsEscape(cp)) {
      out.push_back(' ');
    } else if (cp < 0x80 && kSpecial.find(static_cast<char>(cp)) != absl::string_view::npos) {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else {
      AppendUtf8(cp, &out);
    }
  }
  return out;
}

std::string MarkdownBlock(absl::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    if (cp == '\r') {
      if (pos < s.size() && s[pos] == '\n') ++pos;
      cp = '\n';
    }
    if (cp != '\n' && cp != '\t' && YamlNeedsEscape(cp)) continue;
    AppendUtf8(cp, &out);
  }
  // Leading and trailing blank lines (and trailing whitespace) go.
  size_t begin = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') {
      begin = i + 1;
    } else if (out[i] != ' ' && out[i] != '\t') {
      break;
    }
  }
  size_t end = out.find_last_not_of(" \t\n");
  if (end == std::string::npos || end < begin) return "";
  // A line of "---" is what front matter tools split on; "- - -" is the same thematic break.
  std::string block;
  for (absl::string_view line : absl::StrSplit(out.substr(begin, end + 1 - begin), '\n')) {
    if (!block.empty()) block.push_back('\n');
    if (absl::StripTrailingAsciiWhitespace(line) == "---") {
      block += "- - -";
    } else {
      block.append(line.data(), line.size());
    }
  }
  return block;
}

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  std::string out(buf, r.ptr);
  // "1e-05" is a string to YAML 1.1 parsers; "1.0e-05" is a float to every parser.
  const size_t e = out.find('e');
  if (e != std::string::npos && out.find('.') == std::string::npos) out.insert(e, ".0");
  return out;
}

}  // namespace tessera::governance
