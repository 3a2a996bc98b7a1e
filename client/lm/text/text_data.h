// File: text_data.h
// A client's private text as training examples for a causal language model: JSONL records
// with a "text" field (every token is a target) or instruction records
// ("instruction", "input", "output") rendered with a prompt template (loss on the response
// tokens only), tokenized, cut to max_seq_length, packed or kept one per example, and split
// into train and held-out parts.
#ifndef TESSERA_CLIENT_LM_TEXT_TEXT_DATA_H_
#define TESSERA_CLIENT_LM_TEXT_TEXT_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/lm/tokenizer/tokenizer.h"

namespace tessera::lm {

// Label of a position that is not a target (PyTorch's cross_entropy ignore_index).
inline constexpr int32_t kIgnoreLabel = -100;

// One sequence. labels[i] is the target for predicting at position i, *unshifted* as in
// transformers (the model compares logits[i] with labels[i + 1]); kIgnoreLabel where no loss.
// input_ids.size() == labels.size() <= max_seq_length.
struct TokenizedExample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;
};

struct TextDataOptions {
  // "auto" (instruction when the first record has "instruction", else text), "text",
  // "instruction".
  std::string format = "auto";
  // Instruction records: "alpaca" (Stanford Alpaca's two prompts, with and without input).
  std::string prompt_template = "alpaca";
  uint32_t max_seq_length = 256;
  // Text records: concatenate all documents (each followed by EOS) and cut into blocks of
  // max_seq_length (transformers' run_clm group_texts). false: one example per record,
  // truncated. Instruction records are never packed.
  bool packing = true;
  // Fraction of records (before packing) held out for evaluation, at least one record.
  double heldout_fraction = 0.1;
  uint64_t split_seed = 0;
  // Read at most this many records (0 = all).
  uint64_t max_records = 0;
};

struct TextData {
  std::vector<TokenizedExample> train;
  std::vector<TokenizedExample> heldout;
  uint64_t train_records = 0;
  uint64_t heldout_records = 0;
  uint64_t train_target_tokens = 0;  // labels != kIgnoreLabel (shifted: the loss terms)
};

// Reads a JSONL file. Errors: NOT_FOUND; INVALID_ARGUMENT naming the line and field
// ("data.jsonl:12: \"text\" is not a string").
absl::StatusOr<TextData> LoadTextData(const std::string& jsonl_path, const Tokenizer& tokenizer,
                                      const TextDataOptions& options);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TEXT_TEXT_DATA_H_
