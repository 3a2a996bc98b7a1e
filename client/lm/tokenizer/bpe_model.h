// File: bpe_model.h
// The "model" section of a byte-level BPE tokenizer.json: the vocabulary (token -> id), the
// ranked merges, the id of each byte's GPT-2 character, and how one pre-token (a "word") is
// merged into ids, as the tokenizers library's BPE model does (Word::merge_all, with
// ignore_merges and unk_token). Internal to client/lm/tokenizer (byte_level_bpe.cc).
#ifndef TESSERA_CLIENT_LM_TOKENIZER_BPE_MODEL_H_
#define TESSERA_CLIENT_LM_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tessera::lm::tokenizer_internal {

// Thread-safe: EncodeWord may be called concurrently (its word cache has its own mutex).
class BpeModel {
 public:
  // Words (pre-tokens) up to this many bytes are cached; the cache is cleared when it holds
  // kCacheEntries.
  static constexpr size_t kCacheMaxWordBytes = 256;
  static constexpr size_t kCacheEntries = 1 << 16;

  // Reads tokenizer.json's "model" object (type BPE, or untyped with "merges"). Errors:
  // INVALID_ARGUMENT "tokenizer.json: model.<field> ..." for what is missing, malformed or
  // not supported (dropout, byte_fallback, a subword prefix or word suffix).
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& model);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of `word` (raw bytes): the whole word's token with ignore_merges when the
  // vocabulary holds it, else its bytes' characters merged by rank.
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;

  // The id of a vocabulary token.
  std::optional<int32_t> Find(const std::string& token) const;

  // Token of each id below the largest vocabulary id + 1; "" for ids with no token.
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  BpeModel() = default;
  absl::Status Init(const nlohmann::json& model);
  absl::Status InitMerges(const nlohmann::json& model);
  void MergeWord(absl::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;  // by PairKey(left id, right id)
  std::array<int32_t, 256> byte_ids_{};  // -1 where the byte's character is not in the vocab
  std::optional<int32_t> unk_id_;
  bool ignore_merges_ = false;

  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::lm::tokenizer_internal

#endif  // TESSERA_CLIENT_LM_TOKENIZER_BPE_MODEL_H_
