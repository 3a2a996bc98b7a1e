// File: sentencepiece_tokenizer.h
// The Tokenizer of a SentencePiece model (tokenizer.model: Llama 2, Mistral). Ids are
// sentencepiece's own; the text of special tokens (<s>, </s>, <unk>, tokenizer_config.json's
// bos/eos/pad) inside the input maps to their ids and the text between them is encoded piece
// by piece, as transformers' (legacy) LlamaTokenizer does. add_special_tokens adds BOS unless
// tokenizer_config.json sets add_bos_token false, and EOS when it sets add_eos_token true.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
#define TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/tokenizer/tokenizer_config.h"

namespace tessera::lm {

// Errors: INVALID_ARGUMENT naming `model_path` when sentencepiece cannot load it, or
// "tokenizer_config.json: <field> ..." for a bos/eos/pad token the model lacks.
absl::StatusOr<std::unique_ptr<Tokenizer>> NewSentencePieceTokenizer(
    const std::string& model_path, const TokenizerConfig& config);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
