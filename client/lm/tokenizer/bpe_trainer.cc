#include "client/lm/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/split_regex.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr int32_t kNumSpecialTokens = 3;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t Left(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t Right(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// The BPE state: the words with their counts, the count of every adjacent pair,
// and which words hold each pair (with repeats and stale entries, checked when
// used).
class Trainer {
 public:
  explicit Trainer(std::vector<Word> words) : words_(std::move(words)) {
    const std::array<std::string, 256>& chars = ByteToUnicode();
    std::vector<int> order(256);
    for (int b = 0; b < 256; ++b) order[static_cast<size_t>(b)] = b;
    std::sort(order.begin(), order.end(), [&](int x, int y) {
      return chars[static_cast<size_t>(x)] < chars[static_cast<size_t>(y)];
    });
    for (int b : order) AddToken(chars[static_cast<size_t>(b)]);
    for (Word& w : words_) {
      for (int32_t& s : w.symbols) s = byte_to_id_[static_cast<size_t>(s)];
    }
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const uint64_t pair = PairKey(word.symbols[i], word.symbols[i + 1]);
        pair_counts_[pair] += word.count;
        pair_words_[pair].push_back(static_cast<int32_t>(w));
      }
    }
    for (const auto& [pair, count] : pair_counts_) queue_.push({count, pair, this});
  }

  // Learns merges until the vocabulary has `target` tokens.
  void Run(size_t target, int64_t min_frequency) {
    std::vector<int32_t> seen(words_.size(), -1);
    int32_t step = 0;
    while (tokens_.size() < target && !queue_.empty()) {
      const Entry top = queue_.top();
      queue_.pop();
      auto it = pair_counts_.find(top.pair);
      if (it == pair_counts_.end() || it->second != top.count) continue;  // stale
      if (top.count < min_frequency) break;
      const int32_t a = Left(top.pair), b = Right(top.pair);
      const int32_t merged =
          AddToken(tokens_[static_cast<size_t>(a)] + tokens_[static_cast<size_t>(b)]);
      merges_.emplace_back(a, b);
      absl::flat_hash_map<uint64_t, int64_t> delta;
      std::vector<int32_t> holders = std::move(pair_words_[top.pair]);
      pair_words_.erase(top.pair);
      for (int32_t w : holders) {
        if (seen[static_cast<size_t>(w)] == step) continue;
        seen[static_cast<size_t>(w)] = step;
        MergeInWord(w, a, b, merged, &delta);
      }
      for (const auto& [pair, d] : delta) {
        if (d == 0) continue;
        int64_t& count = pair_counts_[pair];
        count += d;
        if (count > 0) {
          queue_.push({count, pair, this});
        } else {
          pair_counts_.erase(pair);
        }
      }
      ++step;
    }
  }

  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  struct Entry {
    int64_t count;
    uint64_t pair;
    const Trainer* trainer;
    // Max-heap order: higher count first, then the smaller (left, right) texts.
    bool operator<(const Entry& o) const {
      if (count != o.count) return count < o.count;
      const auto& t = trainer->tokens_;
      return std::tie(t[static_cast<size_t>(Left(pair))], t[static_cast<size_t>(Right(pair))]) >
             std::tie(t[static_cast<size_t>(Left(o.pair))], t[static_cast<size_t>(Right(o.pair))]);
    }
  };

  int32_t AddToken(const std::string& token) {
    auto [it, inserted] = token_ids_.emplace(token, static_cast<int32_t>(tokens_.size()));
    if (inserted) {
      tokens_.push_back(token);
      if (tokens_.size() <= 256) {
        char32_t cp;
        size_t len;
        DecodeUtf8Char(token, 0, &cp, &len);
        byte_to_id_[static_cast<size_t>(UnicodeToByte(cp))] = it->second;
      }
    }
    return it->second;
  }

  void MergeInWord(int32_t w, int32_t a, int32_t b, int32_t merged,
                   absl::flat_hash_map<uint64_t, int64_t>* delta) {
    Word& word = words_[static_cast<size_t>(w)];
    std::vector<int32_t>& s = word.symbols;
    std::vector<int32_t> out;
    out.reserve(s.size());
    bool changed = false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        out.push_back(merged);
        ++i;
        changed = true;
      } else {
        out.push_back(s[i]);
      }
    }
    if (!changed) return;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      (*delta)[PairKey(s[i], s[i + 1])] -= word.count;
    }
    for (size_t i = 0; i + 1 < out.size(); ++i) {
      const uint64_t pair = PairKey(out[i], out[i + 1]);
      (*delta)[pair] += word.count;
      if (out[i] == merged || out[i + 1] == merged) pair_words_[pair].push_back(w);
    }
    s = std::move(out);
  }

  std::vector<Word> words_;
  std::vector<std::string> tokens_;  // in GPT-2's byte characters
  absl::flat_hash_map<std::string, int32_t> token_ids_;
  std::array<int32_t, 256> byte_to_id_{};
  absl::flat_hash_map<uint64_t, int64_t> pair_counts_;
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> pair_words_;
  std::priority_queue<Entry> queue_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
};

ordered_json SpecialToken(const std::string& content, int32_t id) {
  return ordered_json{{"id", id},        {"content", content}, {"single_word", false},
                      {"lstrip", false}, {"rstrip", false},    {"normalized", false},
                      {"special", true}};
}

ordered_json TemplatePiece(const char* kind, const std::string& id, int type_id) {
  return ordered_json{{kind, {{"id", id}, {"type_id", type_id}}}};
}

}  // namespace

absl::StatusOr<std::string> TrainByteLevelBpeTokenizerJson(
    const std::vector<std::string>& texts, int32_t vocab_size,
    const ByteLevelBpeTrainOptions& options) {
  if (vocab_size < 256 + kNumSpecialTokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab_size ", vocab_size, " is below 259 (256 byte tokens and 3 special tokens)"));
  }
  const std::vector<std::string> specials = {options.bos_token, options.eos_token,
                                             options.pad_token};
  for (size_t i = 0; i < specials.size(); ++i) {
    if (specials[i].empty() || !CheckUtf8(specials[i], "special token").ok() ||
        std::count(specials.begin(), specials.end(), specials[i]) > 1) {
      return absl::InvalidArgumentError(absl::StrCat("special token \"", specials[i],
                                                     "\" is empty, repeated or not valid UTF-8"));
    }
  }
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<SplitRegex> regex,
                           SplitRegex::Compile(kGpt2SplitPattern));
  absl::flat_hash_map<std::string, int64_t> counts;
  for (size_t i = 0; i < texts.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(CheckUtf8(texts[i], absl::StrCat("texts[", i, "]")));
    for (absl::string_view piece : regex->Split(texts[i])) ++counts[piece];
  }
  // Sorted, so that the training does not depend on hash order.
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [piece, count] : sorted) {
    Word w;
    w.count = count;
    for (char c : piece) w.symbols.push_back(static_cast<unsigned char>(c));
    words.push_back(std::move(w));
  }
  Trainer trainer(std::move(words));
  trainer.Run(static_cast<size_t>(vocab_size - kNumSpecialTokens), options.min_frequency);

  const std::vector<std::string>& tokens = trainer.tokens();
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < tokens.size(); ++id) vocab[tokens[id]] = id;
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : trainer.merges()) {
    merges.push_back({tokens[static_cast<size_t>(a)], tokens[static_cast<size_t>(b)]});
  }
  const int32_t first_special = static_cast<int32_t>(tokens.size());
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    added.push_back(SpecialToken(specials[i], first_special + static_cast<int32_t>(i)));
  }
  const std::string& bos = options.bos_token;
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  root["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {TemplatePiece("SpecialToken", bos, 0), TemplatePiece("Sequence", "A", 0)}},
      {"pair",
       {TemplatePiece("SpecialToken", bos, 0), TemplatePiece("Sequence", "A", 0),
        TemplatePiece("SpecialToken", bos, 1), TemplatePiece("Sequence", "B", 1)}},
      {"special_tokens", {{bos, {{"id", bos}, {"ids", {first_special}}, {"tokens", {bos}}}}}}};
  root["decoder"] = {{"type", "ByteLevel"},
                     {"add_prefix_space", true},
                     {"trim_offsets", true},
                     {"use_regex", true}};
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", vocab},
                   {"merges", merges}};
  return root.dump(1);
}

std::string ByteLevelBpeTokenizerConfigJson(const ByteLevelBpeTrainOptions& options) {
  ordered_json config;
  config["bos_token"] = options.bos_token;
  config["eos_token"] = options.eos_token;
  config["pad_token"] = options.pad_token;
  config["add_bos_token"] = true;
  config["add_eos_token"] = false;
  config["clean_up_tokenization_spaces"] = false;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  return config.dump(1) + "\n";
}

}  // namespace tessera::lm
