#include "client/lm/tokenizer/bpe_model.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/lm/tokenizer/tokenizer_json.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

namespace tessera::lm::tokenizer_internal {
namespace {

using json = nlohmann::json;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const json& model) {
  std::unique_ptr<BpeModel> out(new BpeModel());
  TESSERA_RETURN_IF_ERROR(out->Init(model));
  return out;
}

absl::Status BpeModel::Init(const json& model) {
  const std::string type = TypeOf(model);
  if (type != "BPE" && !(type.empty() && model.contains("merges"))) {
    return Invalid("model.type", absl::StrCat(Quoted(type), " is not supported"));
  }
  auto vocab = model.find("vocab");
  if (vocab == model.end()) return Invalid("model.vocab", "is missing");
  if (!vocab->is_object()) return Invalid("model.vocab", "is not an object");
  int32_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > (int64_t{1} << 30)) {
      return Invalid(absl::StrCat("model.vocab[", Quoted(it.key()), "]"),
                     "is not a token id (an integer in [0, 2^30])");
    }
    const int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), "");
  for (const auto& [token, id] : vocab_) id_to_token_[static_cast<size_t>(id)] = token;

  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>().empty())) {
      return Invalid(absl::StrCat("model.", key), "is not supported in byte-level BPE");
    }
  }
  if (auto it = model.find("dropout");
      it != model.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0)) {
    return Invalid("model.dropout", "is not supported (only null)");
  }
  TESSERA_ASSIGN_OR_RETURN(const bool byte_fallback,
                           OptionalBool(model, "byte_fallback", "model", false));
  if (byte_fallback) return Invalid("model.byte_fallback", "true is not supported");
  TESSERA_ASSIGN_OR_RETURN(ignore_merges_, OptionalBool(model, "ignore_merges", "model", false));
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) return Invalid("model.unk_token", "is not a string");
    auto unk = vocab_.find(it->get<std::string>());
    if (unk == vocab_.end()) return Invalid("model.unk_token", "is not in model.vocab");
    unk_id_ = unk->second;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(ByteToUnicode()[static_cast<size_t>(b)]);
    byte_ids_[static_cast<size_t>(b)] = it == vocab_.end() ? -1 : it->second;
  }

  return InitMerges(model);
}

absl::Status BpeModel::InitMerges(const json& model) {
  auto merges = model.find("merges");
  if (merges == model.end()) return Invalid("model.merges", "is missing");
  if (!merges->is_array()) return Invalid("model.merges", "is not an array");
  merges_.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    const std::string field = absl::StrCat("model.merges[", i, "]");
    std::string a, b;
    if (m.is_string()) {
      std::vector<std::string> parts = absl::StrSplit(m.get<std::string>(), ' ');
      if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
        return Invalid(field, absl::StrCat(Quoted(m.get<std::string>()),
                                           " is not two tokens separated by one space"));
      }
      a = std::move(parts[0]);
      b = std::move(parts[1]);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return Invalid(field, "is neither \"a b\" nor a pair [a, b] of strings");
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    for (const auto& [it, token] : {std::pair{ia, a}, std::pair{ib, b}, std::pair{iab, a + b}}) {
      if (it == vocab_.end()) {
        return Invalid(
            field, absl::StrCat("names token ", Quoted(token), ", which is not in model.vocab"));
      }
    }
    // As in tokenizers, a repeated pair keeps its last rank.
    merges_[PairKey(ia->second, ib->second)] = {static_cast<int32_t>(i), iab->second};
  }
  return absl::OkStatus();
}

void BpeModel::EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids;
  if (ignore_merges_) {
    std::string mapped;
    for (char c : word) mapped += ByteToUnicode()[static_cast<unsigned char>(c)];
    auto it = vocab_.find(mapped);
    if (it != vocab_.end()) word_ids.push_back(it->second);
  }
  if (word_ids.empty()) MergeWord(word, &word_ids);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(word, std::move(word_ids));
  }
}

// tokenizers' Word::merge_all: repeatedly merges the adjacent pair of lowest
// rank (leftmost on ties) through a priority queue over a linked list of
// symbols.
void BpeModel::MergeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int prev;
    int next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (char c : word) {
    int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id < 0) {
      // As tokenizers does: the unknown token, or nothing when the model has
      // none.
      if (!unk_id_.has_value()) continue;
      id = *unk_id_;
    }
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  const auto merge_of = [&](int32_t a, int32_t b) -> const Merge* {
    auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = merge_of(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const Merge* m = merge_of(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = merge_of(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
        queue.push({pm->rank, left.prev, pm->new_id});
      }
    }
    if (left.next >= 0) {
      if (const Merge* nm = merge_of(left.id, symbols[static_cast<size_t>(left.next)].id)) {
        queue.push({nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids->push_back(s.id);
  }
}

std::optional<int32_t> BpeModel::Find(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it != vocab_.end()) return it->second;
  return std::nullopt;
}

}  // namespace tessera::lm::tokenizer_internal
