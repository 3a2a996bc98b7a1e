// File: tokenizer.h
// Text <-> token ids exactly as a Hugging Face checkpoint defines them: byte-level BPE from
// tokenizer.json (Llama 3, Qwen2, SmolLM, GPT-2 family) or a SentencePiece model
// (tokenizer.model: Llama 2, Mistral). Special tokens (BOS/EOS/pad and added tokens) come from
// tokenizer.json's "added_tokens", tokenizer_config.json and the post-processor.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, LoadTokenizer(checkpoint_dir));
//   TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("Hello", {.add_special_tokens = true}));
#ifndef TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_H_
#define TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera::lm {

struct EncodeOptions {
  // Adds what the checkpoint adds around a sequence (BOS for Llama, nothing for Qwen2 and
  // GPT-2), as transformers' tokenizer(text) does with add_special_tokens=True.
  bool add_special_tokens = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text` (valid UTF-8). Special tokens' text inside `text` (e.g.
  // "<|im_end|>") map to their ids, as in transformers.
  // Errors: INVALID_ARGUMENT for invalid UTF-8.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      const EncodeOptions& options = {}) const = 0;
  // The text of `ids`; special tokens are left out when skip_special_tokens.
  // Errors: OUT_OF_RANGE for an id outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                             bool skip_special_tokens = false) const = 0;
  // Ids in [0, vocab_size()) (added tokens included).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual std::optional<int32_t> pad_id() const = 0;
  // "bpe" or "sentencepiece".
  virtual std::string kind() const = 0;
  // The checkpoint's Jinja chat template (tokenizer_config.json "chat_template"; from a list
  // of named templates, the one named "default"); nullopt when it has none.
  virtual std::optional<std::string> chat_template() const { return std::nullopt; }
};

// Loads the tokenizer of a checkpoint directory: tokenizer.json when it holds a byte-level
// BPE model, else tokenizer.model (SentencePiece). tokenizer_config.json, when present,
// supplies bos/eos/pad tokens, add_bos_token/add_eos_token and chat_template.
// Errors: NOT_FOUND when neither file exists; INVALID_ARGUMENT naming the file and field for
// an unsupported or malformed tokenizer (e.g. "tokenizer.json: model.vocab is missing",
// "tokenizer.json: model.type \"WordPiece\" is not supported").
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& checkpoint_dir);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_H_
