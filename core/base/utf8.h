// File: utf8.h
// Decoding and encoding one UTF-8 character (RFC 3629: no overlong forms, surrogates or code
// points above U+10FFFF), for the text Tessera checks and escapes (model cards, tokenizers).
#ifndef TESSERA_CORE_BASE_UTF8_H_
#define TESSERA_CORE_BASE_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace tessera {

// Decodes the well-formed UTF-8 character starting at byte `pos` of `s`: its
// code point in *cp and byte length in *len. False (and *len the length of the
// maximal invalid subpart, at least 1) when the bytes there are not well-formed
// UTF-8 (overlong forms, surrogates and code points above U+10FFFF included).
// REQUIRES: pos < s.size().
bool DecodeUtf8Char(absl::string_view s, size_t pos, char32_t* cp, size_t* len);

// Appends the UTF-8 encoding of `cp` (REQUIRES: a Unicode scalar value).
void AppendUtf8(char32_t cp, std::string* out);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_UTF8_H_
