#include "core/config/text_checks.h"

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/config/toml_reader.h"

namespace tessera {
namespace config_internal {
namespace {

bool IsLicenseChar(char c, bool first) {
  const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || (!first && (c == '.' || c == '+' || c == '-'));
}

// Decodes the UTF-8 sequence at text[i]; returns its length (0 when invalid: a bad lead or
// continuation byte, an overlong form, a surrogate, or a code point above U+10FFFF).
size_t DecodeUtf8(absl::string_view text, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(text[i + k]); };
  const uint8_t lead = b(0);
  size_t len = 0;
  uint32_t min = 0;
  if (lead < 0x80) {
    *cp = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(k) & 0x3Fu);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

std::string CodePoint(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// Walks `text`: valid UTF-8, control characters only from `allowed`; counts code points.
absl::Status Scan(absl::string_view path, absl::string_view text, absl::string_view allowed,
                  size_t* chars) {
  *chars = 0;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0) return FieldError(path, absl::StrCat("is not valid UTF-8 (at byte ", i, ")"));
    if (IsControl(cp) && (cp >= 0x80 || allowed.find(static_cast<char>(cp)) ==
                                            absl::string_view::npos)) {
      return FieldError(path, absl::StrCat("contains control character ", CodePoint(cp),
                                           " at byte ", i,
                                           allowed.empty() ? " (none are allowed)"
                                                           : " (only \\n and \\t are allowed)"));
    }
    i += len;
    ++*chars;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLicenseId(absl::string_view path, absl::string_view id) {
  if (id.size() > kMaxLicenseIdLength) {
    return FieldError(path, absl::StrCat("must be at most ", kMaxLicenseIdLength,
                                         " characters, got ", id.size()));
  }
  bool ok = !id.empty();
  for (size_t i = 0; ok && i < id.size(); ++i) ok = IsLicenseChar(id[i], i == 0);
  if (ok) return absl::OkStatus();
  return FieldError(path, absl::StrCat("\"", id,
                                       "\" is not an SPDX license identifier (letters, "
                                       "digits, '.', '+', '-')"));
}

absl::Status CheckText(absl::string_view path, absl::string_view text, size_t max_bytes) {
  if (text.size() > max_bytes) {
    return FieldError(path,
                      absl::StrCat("must be at most ", max_bytes, " bytes, got ", text.size()));
  }
  size_t chars = 0;
  return Scan(path, text, "\n\t", &chars);
}

absl::Status CheckLine(absl::string_view path, absl::string_view text, size_t max_chars) {
  size_t chars = 0;
  TESSERA_RETURN_IF_ERROR(Scan(path, text, "", &chars));
  if (chars > max_chars) {
    return FieldError(path, absl::StrCat("must be at most ", max_chars, " characters, got ",
                                         chars));
  }
  return absl::OkStatus();
}

}  // namespace config_internal
}  // namespace tessera
