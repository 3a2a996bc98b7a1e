// File: utf8.h
// UTF-8 helpers for the tokenizers: validation, lossy decoding (invalid
// sequences become U+FFFD, as Rust's String::from_utf8_lossy and so Hugging
// Face's decoders do), and GPT-2's byte <-> printable-character mapping
// (bytes_to_unicode in GPT-2's encoder.py) that byte-level BPE vocabularies are
// written in.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_UTF8_H_
#define TESSERA_CLIENT_LM_TOKENIZER_UTF8_H_

#include <array>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/base/utf8.h"

namespace tessera::lm {

// DecodeUtf8Char and AppendUtf8: core/base/utf8.h.

// INVALID_ARGUMENT "<what> is not valid UTF-8 (byte N)" when `text` is not
// well-formed.
absl::Status CheckUtf8(absl::string_view text, absl::string_view what);

// `bytes` with each maximal invalid subpart replaced by U+FFFD.
std::string Utf8Lossy(absl::string_view bytes);

// GPT-2's bytes_to_unicode: the UTF-8 text of the printable character standing
// for each byte (bytes 33-126, 161-172 and 174-255 stand for themselves; the
// rest for U+0100 on).
const std::array<std::string, 256>& ByteToUnicode();

// The byte that code point `cp` stands for in that mapping, or -1.
int UnicodeToByte(char32_t cp);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_UTF8_H_
