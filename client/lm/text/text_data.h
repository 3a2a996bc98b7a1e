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

// Limits on the input (TextDataOptions' defaults); a file beyond one is INVALID_ARGUMENT.
inline constexpr uint64_t kMaxJsonlLineBytes = uint64_t{1} << 20;  // 1 MiB, newline excluded
inline constexpr uint64_t kMaxTextRecords = 1'000'000;
inline constexpr uint32_t kMaxSeqLengthLimit = 1u << 20;

struct TextDataOptions {
  // "auto" (instruction when the first record has "instruction", else text), "text",
  // "instruction".
  std::string format = "auto";
  // Instruction records: "alpaca" (Stanford Alpaca's two prompts, with and without input)
  // or "chat" (the tokenizer's chat template, chat_template.h).
  std::string prompt_template = "alpaca";
  // "chat" with a template that writes today's date (strftime_now: Llama 3.2, Granite): the
  // date, e.g. "26 Jul 2024"; empty: the local time now, as transformers renders it.
  std::string chat_date;
  // In [2, kMaxSeqLengthLimit].
  uint32_t max_seq_length = 256;
  // Text records: concatenate all documents (each followed by EOS) and cut into blocks of
  // max_seq_length (transformers' run_clm group_texts). false: one example per record,
  // truncated. Instruction records are never packed.
  bool packing = true;
  // Fraction of records (before packing) held out for evaluation, in [0, 0.5]. With n
  // records, 0 holds out none; otherwise min(n - 1, max(1, llround(fraction * n))) records
  // are held out (none when n == 1: the train part is never empty).
  double heldout_fraction = 0.1;
  // The split: std::mt19937_64(split_seed) drives a Fisher-Yates shuffle of the record
  // indices 0..n-1 (for i = n-1 down to 1: swap(p[i], p[rng() % (i + 1)])); the records at
  // p[0..held) are held out. Both parts keep the file's order. Portable: the same on every
  // platform and standard library.
  uint64_t split_seed = 0;
  // Read at most this many records (0 = all); the rest of the file is not read.
  uint64_t max_records = 0;
  // Limits: a longer line, or more records than record_limit (after max_records), is an
  // error naming the file and line.
  uint64_t max_line_bytes = kMaxJsonlLineBytes;
  uint64_t record_limit = kMaxTextRecords;
};

struct TextData {
  std::vector<TokenizedExample> train;
  std::vector<TokenizedExample> heldout;
  // Records in each part that produced examples.
  uint64_t train_records = 0;
  uint64_t heldout_records = 0;
  // positions i >= 1 with labels[i] != kIgnoreLabel over `train` (the shifted loss terms).
  uint64_t train_target_tokens = 0;
  // Records left out because their example has no loss term (an instruction whose prompt
  // fills max_seq_length; unpacked text of a single token).
  uint64_t skipped_records = 0;
};

// Reads a JSONL file: one JSON object per line, blank lines skipped, keys other than the
// format's ignored.
//   Text records: {"text": "..."}: Encode(text, add_special_tokens) + EOS, every position a
//   target (labels == input_ids).
//   Instruction records: {"instruction": "...", "input": "..." (optional), "output": "..."}
//   as Stanford Alpaca's train.py: source = the prompt (prompt_input when input is
//   non-empty, else prompt_no_input); input_ids = Encode(source + output,
//   add_special_tokens) + EOS truncated to max_seq_length; labels = kIgnoreLabel on the
//   first |Encode(source, add_special_tokens)| positions, the ids on the rest.
//   With prompt_template "chat": the user message is the instruction, plus "\n\n" + input
//   when input is non-empty; the assistant message is the output. The checkpoint's chat
//   template (tokenizer.chat_template(), executed by ChatTemplate::RenderExchange: prompt =
//   [user] with add_generation_prompt, response through the eos token, tail) renders
//   [user, assistant], encoded without add_special_tokens (as
//   apply_chat_template(tokenize=True); the template writes BOS itself where the checkpoint
//   has one); no EOS is appended (the template's end-of-turn token ends the response).
//   Labels are kIgnoreLabel on the prompt (through the assistant header) and on the tail
//   after the end-of-turn token, the ids on the response; a token that straddles a boundary
//   is a target.
// Errors: NOT_FOUND; INVALID_ARGUMENT naming the line and field
// ("data.jsonl:12: \"text\" is not a string"), for a bad option, a line over
// max_line_bytes, more than record_limit records, a file without records, a tokenizer
// without an EOS token, or (prompt_template "chat") a tokenizer without a chat template
// (tokenizer_config.json "chat_template"), one the interpreter cannot parse, a record the
// template refuses (raise_exception) or renders so that the prompt is not a prefix of the
// exchange, or a chat_date that is not a date.
absl::StatusOr<TextData> LoadTextData(const std::string& jsonl_path, const Tokenizer& tokenizer,
                                      const TextDataOptions& options);

// The "text" fields of a JSONL file of text records, read with LoadTextData's checks and
// limits (tools that need the raw text, e.g. to train a tokenizer on it).
// Errors: as LoadTextData's for reading.
absl::StatusOr<std::vector<std::string>> ReadTextRecords(const std::string& jsonl_path);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TEXT_TEXT_DATA_H_
