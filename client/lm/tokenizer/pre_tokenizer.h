// File: pre_tokenizer.h
// What byte-level BPE does to text before the model: tokenizer.json's "normalizer" (none or
// NFC) and its "pre_tokenizer", a sequence of Split (an "Isolated" regex or string), Digits
// and, last, ByteLevel steps (GPT-2's regex unless use_regex is false; add_prefix_space)
// that cut a segment into the words the BPE model merges. Internal to client/lm/tokenizer
// (byte_level_bpe.cc).
#ifndef TESSERA_CLIENT_LM_TOKENIZER_PRE_TOKENIZER_H_
#define TESSERA_CLIENT_LM_TOKENIZER_PRE_TOKENIZER_H_

#include <deque>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/tokenizer/split_regex.h"

namespace tessera::lm::tokenizer_internal {

class Normalizer {
 public:
  // Reads root["normalizer"]: absent, null, NFC, or a Sequence of at most one NFC. Errors:
  // INVALID_ARGUMENT "tokenizer.json: normalizer... " for anything else.
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& root);

  // Whether text must go through Normalize (false: the text is used as it is).
  bool enabled() const { return nfc_; }

  // `text` in NFC (ICU). Without ICU in the build, text below U+0300 (NFC already) is
  // returned unchanged and other text is FAILED_PRECONDITION naming the code point.
  absl::StatusOr<std::string> Normalize(absl::string_view text) const;

 private:
  bool nfc_ = false;
};

class PreTokenizer {
 public:
  // Reads root["pre_tokenizer"], which must end in a ByteLevel step. Errors:
  // INVALID_ARGUMENT "tokenizer.json: pre_tokenizer... " naming the step and field that is
  // missing, malformed or not supported (e.g. a Split behavior other than "Isolated").
  static absl::StatusOr<PreTokenizer> FromJson(const nlohmann::json& root);

  // The words of `text`, in order. They view `text`, or strings appended to `*owned` (which
  // must outlive them) where add_prefix_space put a space in front.
  std::vector<absl::string_view> Split(absl::string_view text,
                                       std::deque<std::string>* owned) const;

 private:
  struct Step {
    enum class Kind { kSplit, kDigits, kByteLevel };
    Kind kind = Kind::kSplit;
    std::unique_ptr<SplitRegex> regex;  // kSplit, kDigits, kByteLevel with use_regex
    bool add_prefix_space = false;      // kByteLevel
  };

  std::vector<Step> steps_;
};

}  // namespace tessera::lm::tokenizer_internal

#endif  // TESSERA_CLIENT_LM_TOKENIZER_PRE_TOKENIZER_H_
