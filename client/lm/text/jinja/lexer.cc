#include "client/lm/text/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/utf8.h"

namespace tessera::lm::jinja {

absl::Status ErrorAt(Location at, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("line ", at.line, ", column ", at.column, ": ", what));
}

namespace {

// Normalizes "\r\n" and "\r" to "\n" and drops one trailing newline (Jinja's tokeniter).
std::string Normalize(absl::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// One code point starting at s[i] (a byte that is not UTF-8 counts as itself).
char32_t CodePointAt(absl::string_view s, size_t i, size_t* len) {
  char32_t c = 0;
  if (!DecodeUtf8Char(s, i, &c, len)) {
    *len = 1;
    c = static_cast<unsigned char>(s[i]);
  }
  return c;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  absl::StatusOr<std::vector<Chunk>> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      const size_t open = FindTagStart(pos_);
      std::string text = src_.substr(pos_, open - pos_);
      const Location text_at = At(pos_);
      if (open == src_.size()) {
        AddText(std::move(text), text_at);
        break;
      }
      const char type = src_[open + 1];  // '{', '%' or '#'
      const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign == '-') {
        text = PyStrip(text, /*left=*/false, /*right=*/true);
      } else if (sign != '+' && type != '{') {  // lstrip_blocks
        const size_t l_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            text.find_first_not_of(" \t", l_pos) == std::string::npos) {
          text.resize(l_pos);
        }
      }
      AddText(std::move(text), text_at);
      pos_ = open + 2 + (sign == '-' || sign == '+' ? 1 : 0);
      absl::StatusOr<size_t> end = type == '#' ? Comment(open) : Tag(open, type);
      if (!end.ok()) return end.status();
      line_starting = *end > 0 && src_[*end - 1] == '\n';
      pos_ = *end;
    }
    return std::move(chunks_);
  }

 private:
  Location At(size_t pos) const {
    const auto next = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    Location loc;
    loc.line = static_cast<int>(next - line_starts_.begin());
    loc.column = static_cast<int>(pos - *(next - 1)) + 1;
    return loc;
  }

  absl::Status Error(size_t pos, absl::string_view what) const { return ErrorAt(At(pos), what); }

  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  void AddText(std::string text, Location at) {
    if (text.empty()) return;
    Chunk c;
    c.kind = Chunk::Kind::kText;
    c.text = std::move(text);
    c.location = at;
    chunks_.push_back(std::move(c));
  }

  // After the closing of a tag at `close` (the index after "%}", "}}" or "#}") with the sign
  // before it: where the next text starts.
  size_t AfterClose(size_t close, char sign, bool block) const {
    if (sign == '-') {
      size_t i = close;
      while (i < src_.size()) {
        size_t len = 1;
        if (!IsPyWhitespace(CodePointAt(src_, i, &len))) break;
        i += len;
      }
      return i;
    }
    if (block && sign != '+' && close < src_.size() && src_[close] == '\n') return close + 1;
    return close;
  }

  absl::StatusOr<size_t> Comment(size_t open) {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) return Error(open, "missing end of comment tag '#}'");
    const char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+')
                          ? src_[end - 1] : '\0';
    return AfterClose(end + 2, sign, /*block=*/true);
  }

  absl::StatusOr<size_t> Tag(size_t open, char type) {
    Chunk chunk;
    chunk.kind = type == '{' ? Chunk::Kind::kOutput : Chunk::Kind::kStatement;
    chunk.location = At(open);
    const char close_char = type == '{' ? '}' : '%';
    std::string brackets;  // the closers expected, innermost last
    size_t i = pos_;
    while (true) {
      while (i < src_.size() && std::isspace(static_cast<unsigned char>(src_[i]))) ++i;
      if (i >= src_.size()) {
        return Error(open, absl::StrCat("missing end of tag '", std::string(1, close_char),
                                        "}'"));
      }
      if (brackets.empty()) {
        size_t j = i;
        char sign = '\0';
        if (src_[j] == '-' || src_[j] == '+') sign = src_[j++];
        if (j + 1 < src_.size() && src_[j] == close_char && src_[j + 1] == '}') {
          Token end;
          end.location = At(i);
          chunk.tokens.push_back(std::move(end));
          chunks_.push_back(std::move(chunk));
          return AfterClose(j + 2, sign, type == '%');
        }
      }
      absl::StatusOr<Token> token = Next(&i);
      if (!token.ok()) return token.status();
      if (token->kind == Token::Kind::kOperator) {
        const std::string& op = token->text;
        if (op == "(" || op == "[" || op == "{") {
          brackets += op == "(" ? ')' : op == "[" ? ']' : '}';
        } else if (op == ")" || op == "]" || op == "}") {
          if (brackets.empty() || brackets.back() != op[0]) {
            return Error(i - 1, absl::StrCat("unexpected '", op, "'"));
          }
          brackets.pop_back();
        }
      }
      chunk.tokens.push_back(*std::move(token));
    }
  }

  absl::StatusOr<Token> Next(size_t* pos) {
    size_t i = *pos;
    Token t;
    t.location = At(i);
    const char c = src_[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) ||
                                 src_[j] == '_')) {
        ++j;
      }
      t.kind = Token::Kind::kName;
      t.text = src_.substr(i, j - i);
      *pos = j;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return Number(pos, t);
    if (c == '\'' || c == '"') return String(pos, t);
    static constexpr const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(i, 2, op) == 0) {
        t.kind = Token::Kind::kOperator;
        t.text = op;
        *pos = i + 2;
        return t;
      }
    }
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) != std::string_view::npos) {
      t.kind = Token::Kind::kOperator;
      t.text = std::string(1, c);
      *pos = i + 1;
      return t;
    }
    return Error(i, absl::StrCat("unexpected character '", std::string(1, c), "'"));
  }

  absl::StatusOr<Token> Number(size_t* pos, Token t) {
    size_t j = *pos;
    std::string digits;
    bool is_float = false;
    const auto take_digits = [&] {
      while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) ||
                                 src_[j] == '_')) {
        if (src_[j] != '_') digits += src_[j];
        ++j;
      }
    };
    take_digits();
    if (j + 1 < src_.size() && src_[j] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
      is_float = true;
      digits += src_[j++];
      take_digits();
    }
    if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
        is_float = true;
        digits += 'e';
        digits.append(src_, j + 1, k - j - 1);
        j = k;
        take_digits();
      }
    }
    errno = 0;
    if (is_float) {
      t.kind = Token::Kind::kFloat;
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      t.kind = Token::Kind::kInt;
      t.int_value = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) return Error(*pos, "integer literal out of the 64-bit range");
    }
    t.text = src_.substr(*pos, j - *pos);
    *pos = j;
    return t;
  }

  // A string literal with Python's escapes (\n \t \r \\ \' \" \xHH \uHHHH \UHHHHHHHH \0).
  absl::StatusOr<Token> String(size_t* pos, Token t) {
    const char quote = src_[*pos];
    size_t j = *pos + 1;
    std::string out;
    while (true) {
      if (j >= src_.size()) return Error(*pos, "unterminated string literal");
      const char c = src_[j];
      if (c == quote) break;
      if (c != '\\' || j + 1 >= src_.size()) {
        out += c;
        ++j;
        continue;
      }
      const char e = src_[j + 1];
      j += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // a line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (j + n > src_.size()) return Error(j - 2, "truncated \\x/\\u escape");
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = src_[j + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              return Error(j - 2, "bad \\x/\\u escape");
            }
            cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : std::tolower(h) - 'a' + 10);
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return Error(j - 2, "escape is not a Unicode scalar value");
          }
          AppendUtf8(cp, &out);
          j += n;
          break;
        }
        default:
          if (e == '\\' || e == '\'' || e == '"') {
            out += e;
          } else {  // Python keeps unknown escapes as written
            out += '\\';
            out += e;
          }
      }
    }
    t.kind = Token::Kind::kString;
    t.text = std::move(out);
    *pos = j + 1;
    return t;
  }

  const std::string src_;
  std::vector<size_t> line_starts_ = {0};
  size_t pos_ = 0;
  std::vector<Chunk> chunks_;
};

}  // namespace

bool IsPyWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string PyStrip(absl::string_view s, bool left, bool right) {
  size_t begin = s.size();
  size_t end = 0;  // after the last non-space code point
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const char32_t c = CodePointAt(s, i, &len);
    if (!IsPyWhitespace(c)) {
      if (begin == s.size()) begin = i;
      end = i + len;
    }
    i += len;
  }
  if (begin == s.size()) return left || right ? std::string() : std::string(s);
  const size_t from = left ? begin : 0;
  const size_t to = right ? end : s.size();
  return std::string(s.substr(from, to - from));
}

absl::StatusOr<std::vector<Chunk>> Lex(absl::string_view source) {
  return Lexer(Normalize(source)).Run();
}

}  // namespace tessera::lm::jinja
