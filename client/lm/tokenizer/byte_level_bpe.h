// File: byte_level_bpe.h
// The byte-level BPE tokenizer of a Hugging Face tokenizer.json (GPT-2, Llama
// 3, Qwen2, SmolLM): added tokens are split out first (longest first), the rest
// is normalized (none or NFC), pre-tokenized (ByteLevel's GPT-2 regex, or Split
// regexes then ByteLevel without its regex; Digits), mapped to GPT-2's byte
// characters and merged by rank; a TemplateProcessing post-processor adds the
// special tokens (e.g. Llama 3's <|begin_of_text|>).
#ifndef TESSERA_CLIENT_LM_TOKENIZER_BYTE_LEVEL_BPE_H_
#define TESSERA_CLIENT_LM_TOKENIZER_BYTE_LEVEL_BPE_H_

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/tokenizer/tokenizer_config.h"

namespace tessera::lm {

// True when `root` (a parsed tokenizer.json) holds a BPE model with a ByteLevel
// pre-tokenizer and no byte fallback: the kind NewByteLevelBpeTokenizer takes.
// SentencePiece-style BPE (Llama 2's tokenizer.json) is false.
bool IsByteLevelBpe(const nlohmann::json& root);

// Builds the tokenizer of a parsed tokenizer.json; `config`
// (tokenizer_config.json, or empty) names bos/eos/pad. Errors: INVALID_ARGUMENT
// "tokenizer.json: <field> ..." (or "tokenizer_config.json: ...") naming what
// is missing, malformed or not supported.
absl::StatusOr<std::unique_ptr<Tokenizer>> NewByteLevelBpeTokenizer(const nlohmann::json& root,
                                                                    const TokenizerConfig& config);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_BYTE_LEVEL_BPE_H_
