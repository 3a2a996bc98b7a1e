#include "client/lm/tokenizer/utf8.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tessera::lm {
namespace {

// The byte-to-code-point table of GPT-2's bytes_to_unicode, and its inverse.
struct ByteTables {
  ByteTables() {
    inverse.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
      AppendUtf8(cp, &text[b]);
      inverse[cp] = b;
    }
  }
  std::array<std::string, 256> text;
  std::array<int, 512> inverse;
};

const ByteTables& Tables() {
  static const ByteTables* const tables = new ByteTables();
  return *tables;
}

}  // namespace

bool DecodeUtf8Char(absl::string_view s, size_t pos, char32_t* cp, size_t* len) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    *cp = b0;
    *len = 1;
    return true;
  }
  size_t need;
  char32_t value;
  uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    value = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    value = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    value = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    *len = 1;
    return false;
  }
  for (size_t i = 1; i <= need; ++i) {
    const uint8_t lower = i == 1 ? lo : 0x80;
    const uint8_t upper = i == 1 ? hi : 0xBF;
    if (pos + i >= s.size() || byte(pos + i) < lower || byte(pos + i) > upper) {
      *len = i;
      return false;
    }
    value = (value << 6) | (byte(pos + i) & 0x3F);
  }
  *cp = value;
  *len = need + 1;
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

absl::Status CheckUtf8(absl::string_view text, absl::string_view what) {
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp;
    size_t len;
    if (!DecodeUtf8Char(text, pos, &cp, &len)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not valid UTF-8 (byte ", pos, ")"));
    }
    pos += len;
  }
  return absl::OkStatus();
}

std::string Utf8Lossy(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    char32_t cp;
    size_t len;
    if (DecodeUtf8Char(bytes, pos, &cp, &len)) {
      out.append(bytes.data() + pos, len);
    } else {
      AppendUtf8(0xFFFD, &out);
    }
    pos += len;
  }
  return out;
}

const std::array<std::string, 256>& ByteToUnicode() { return Tables().text; }

int UnicodeToByte(char32_t cp) { return cp < 512 ? Tables().inverse[cp] : -1; }

}  // namespace tessera::lm
