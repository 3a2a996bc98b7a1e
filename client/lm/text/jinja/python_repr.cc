#include "client/lm/text/jinja/python_repr.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_format.h"
#include "core/base/utf8.h"

namespace tessera::lm::jinja {
namespace {

// Whether Python's str.isprintable() is false for the code point (repr escapes it): the C0
// and C1 controls, DEL, and the separators and format characters other than ' ' that chat
// text meets (Zs, Zl, Zp, the zero-width and direction marks, BOM).
bool NotPrintable(char32_t c) {
  if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return true;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f)) return true;
  return c == 0x205f || (c >= 0x2060 && c <= 0x206f) || c == 0x3000 || c == 0xfeff;
}

}  // namespace

std::string PyStringRepr(absl::string_view s) {
  const bool has_single = s.find('\'') != absl::string_view::npos;
  const bool has_double = s.find('"') != absl::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    char32_t c = 0;
    size_t len = 1;
    if (!DecodeUtf8Char(s, i, &c, &len)) c = static_cast<unsigned char>(s[i]);
    if (c == '\\' || c == static_cast<char32_t>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (NotPrintable(c)) {
      out += c <= 0xff ? absl::StrFormat("\\x%02x", static_cast<uint32_t>(c))
                       : absl::StrFormat("\\u%04x", static_cast<uint32_t>(c));
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  out += quote;
  return out;
}

std::string PyFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // The shortest round-tripping digits, then Python's layout: positional for exponents in
  // [-4, 16), else d.ddde+XX.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
      const size_t int_digits = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_digits) {
        out = digits + std::string(int_digits - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, int_digits) + "." + digits.substr(int_digits);
      }
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += absl::StrFormat("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
  return negative ? "-" + out : out;
}

}  // namespace tessera::lm::jinja
