// File: lexer.h
// Splits a Jinja template into text, {{ output }} and {% statement %} chunks (comments
// dropped) and each tag into tokens, applying Jinja2's whitespace control as Hugging Face
// configures it: "{%-"/"-%}" (and "{{-", "-}}", "{#-", "-#}") strip all whitespace before or
// after the tag; trim_blocks removes the first newline after a statement or comment tag;
// lstrip_blocks removes spaces and tabs between the start of a line and a statement or
// comment tag ("{%+" keeps them, "+%}" keeps the newline); newlines are normalized to "\n"
// and one trailing newline of the template is dropped (keep_trailing_newline=False).
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_LEXER_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_LEXER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm::jinja {

// A place in the template, both 1-based (columns count bytes).
struct Location {
  int line = 1;
  int column = 1;
};

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOperator, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // the name, the decoded string, the operator ("==", "(", ...)
  int64_t int_value = 0;
  double float_value = 0;
  Location location;
};

struct Chunk {
  enum class Kind { kText, kOutput, kStatement };
  Kind kind = Kind::kText;
  std::string text;           // kText
  std::vector<Token> tokens;  // kOutput, kStatement: ends with a kEnd token at the closing tag
  Location location;          // where the chunk starts
};

// INVALID_ARGUMENT "line L, column C: <what>": every error of the parser and interpreter that
// points into the template.
absl::Status ErrorAt(Location at, absl::string_view what);

// Errors: INVALID_ARGUMENT "line L, column C: ..." for an unterminated tag, comment or
// string, an unexpected character or unbalanced brackets.
absl::StatusOr<std::vector<Chunk>> Lex(absl::string_view source);

// Python's str.isspace() for one code point.
bool IsPyWhitespace(char32_t c);

// Python's str.strip() / lstrip() / rstrip() without arguments on UTF-8 text.
std::string PyStrip(absl::string_view s, bool left = true, bool right = true);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_LEXER_H_
