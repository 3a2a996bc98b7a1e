// File: special_tokens.h
// The special tokens of a byte-level BPE tokenizer.json: its "added_tokens", which are cut
// out of the text before anything else (longest first; lstrip/rstrip take the whitespace
// around them), and its "post_processor", whose TemplateProcessing puts special tokens around
// the encoded sequence (Llama 3's <|begin_of_text|>). Internal to client/lm/tokenizer
// (byte_level_bpe.cc).
#ifndef TESSERA_CLIENT_LM_TOKENIZER_SPECIAL_TOKENS_H_
#define TESSERA_CLIENT_LM_TOKENIZER_SPECIAL_TOKENS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm::tokenizer_internal {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
};

class AddedTokens {
 public:
  // Reads root["added_tokens"] (absent or null: none). Errors: INVALID_ARGUMENT
  // "tokenizer.json: added_tokens[i]..." for a malformed entry, non-UTF-8 content or
  // single_word.
  static absl::StatusOr<AddedTokens> FromJson(const nlohmann::json& root);

  // The longest added token whose content starts at text[pos], or nullptr.
  const AddedToken* LongestAt(absl::string_view text, size_t pos) const;
  // The added token with this id, or nullptr.
  const AddedToken* WithId(int32_t id) const;
  // The id of the (longest-first) first added token with this content.
  std::optional<int32_t> Find(const std::string& content) const;
  // The largest id + 1 (0 when there are none).
  size_t id_limit() const { return id_limit_; }

 private:
  std::vector<AddedToken> tokens_;                      // longest content first
  std::array<std::vector<size_t>, 256> by_first_byte_;  // indexes into tokens_
  absl::flat_hash_map<int32_t, size_t> by_id_;
  size_t id_limit_ = 0;
};

class PostProcessor {
 public:
  // Reads root["post_processor"]: absent, null, ByteLevel (offsets only), TemplateProcessing
  // or a Sequence of those with at most one TemplateProcessing; its special token ids must
  // be below `vocab_size`. Errors: INVALID_ARGUMENT "tokenizer.json: post_processor..."
  // naming what is missing or not supported.
  static absl::StatusOr<PostProcessor> FromJson(const nlohmann::json& root, size_t vocab_size);

  // Whether a TemplateProcessing is configured (it then replaces add_bos/add_eos).
  bool has_template() const { return has_template_; }
  // `ids` as the template's "single" lays them out ($A with special tokens around).
  std::vector<int32_t> Apply(const std::vector<int32_t>& ids) const;
  // The template's leading special token when it is one id (Llama 3's BOS), else nullopt.
  std::optional<int32_t> leading_special_id() const;

 private:
  // One item of "single": the sequence ($A) or special token ids.
  struct Item {
    bool sequence = false;
    std::vector<int32_t> ids;
  };

  bool has_template_ = false;
  std::vector<Item> template_;
};

}  // namespace tessera::lm::tokenizer_internal

#endif  // TESSERA_CLIENT_LM_TOKENIZER_SPECIAL_TOKENS_H_
