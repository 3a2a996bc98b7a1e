// File: bpe_trainer.h
// A small byte-level BPE trainer for demos and tests (no checkpoint can be
// downloaded on the build machines): it learns merges over GPT-2-regex
// pre-tokens with the 256-byte alphabet and writes a complete Hugging Face
// tokenizer.json (ByteLevel pre-tokenizer and decoder, special tokens as added
// tokens, a TemplateProcessing post-processor adding BOS) that LoadTokenizer,
// and transformers, read.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::string json,
//   TrainByteLevelBpeTokenizerJson(texts, 2000, {}));
//   TESSERA_RETURN_IF_ERROR(WriteFileAtomically(dir + "/tokenizer.json", json,
//   0644, true)); TESSERA_RETURN_IF_ERROR(WriteFileAtomically(dir +
//   "/tokenizer_config.json",
//                                               ByteLevelBpeTokenizerConfigJson({}),
//                                               0644, true));
#ifndef TESSERA_CLIENT_LM_TOKENIZER_BPE_TRAINER_H_
#define TESSERA_CLIENT_LM_TOKENIZER_BPE_TRAINER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::lm {

struct ByteLevelBpeTrainOptions {
  // Added (special) tokens, given the ids after the learned vocabulary in this
  // order.
  std::string bos_token = "<|bos|>";
  std::string eos_token = "<|eos|>";
  std::string pad_token = "<|pad|>";
  // Training stops early when the most frequent pair occurs fewer times than
  // this.
  int64_t min_frequency = 2;
};

// Learns merges from `texts` until the vocabulary holds `vocab_size` ids (256
// byte tokens, one per new merged token, and the 3 special tokens), or no pair
// reaches min_frequency. Each step merges the most frequent adjacent pair; ties
// go to the pair whose (left, right) token texts are smallest (byte-wise, in
// GPT-2's byte characters). Byte tokens take ids 0-255 in the order of their
// characters' code points, as tokenizers' trainer orders its alphabet. Returns
// the tokenizer.json text. Errors: INVALID_ARGUMENT for vocab_size < 259, empty
// or repeated special tokens, or a text that is not valid UTF-8 (naming its
// index).
absl::StatusOr<std::string> TrainByteLevelBpeTokenizerJson(
    const std::vector<std::string>& texts, int32_t vocab_size,
    const ByteLevelBpeTrainOptions& options = {});

// The tokenizer_config.json for a tokenizer.json trained with `options`:
// bos/eos/pad tokens, add_bos_token true, add_eos_token false.
std::string ByteLevelBpeTokenizerConfigJson(const ByteLevelBpeTrainOptions& options = {});

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_BPE_TRAINER_H_
