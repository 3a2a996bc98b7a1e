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
