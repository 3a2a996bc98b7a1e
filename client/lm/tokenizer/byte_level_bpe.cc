#include "client/lm/tokenizer/byte_level_bpe.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/lm/tokenizer/split_regex.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

#ifdef TESSERA_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

namespace tessera::lm {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kFile = "tokenizer.json";
// Words (pre-tokens) up to this many bytes are cached; the cache is cleared
// when it holds kCacheEntries.
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheEntries = 1 << 16;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kFile, ": ", field, " ", what));
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// The "type" of a json object, or "".
std::string TypeOf(const json& j) {
  if (!j.is_object()) return "";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A boolean field that may be absent (then `fallback`).
absl::StatusOr<bool> OptionalBool(const json& j, const char* key, absl::string_view field,
                                  bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Invalid(absl::StrCat(field, ".", key), "is not a boolean");
  return it->get<bool>();
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Unicode White_Space (char::is_whitespace in Rust, which lstrip/rstrip use).
bool IsWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
};

// One pre-tokenizer step of the pipeline.
struct PreTokenizerStep {
  enum class Kind { kSplit, kDigits, kByteLevel };
  Kind kind = Kind::kSplit;
  std::unique_ptr<SplitRegex> regex;  // kSplit, kDigits, kByteLevel with use_regex
  bool add_prefix_space = false;      // kByteLevel
};

// One item of TemplateProcessing's "single": the sequence ($A) or special token
// ids.
struct TemplateItem {
  bool sequence = false;
  std::vector<int32_t> ids;
};

struct BpeMerge {
  int32_t rank;
  int32_t new_id;
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer() = default;
  ByteLevelBpeTokenizer(const ByteLevelBpeTokenizer&) = delete;
  ByteLevelBpeTokenizer& operator=(const ByteLevelBpeTokenizer&) = delete;

  absl::Status Init(const json& root, const TokenizerConfig& config);

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              const EncodeOptions& options) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }
  std::optional<int32_t> pad_id() const override { return pad_id_; }
  std::string kind() const override { return "bpe"; }
  std::optional<std::string> chat_template() const override { return chat_template_; }

 private:
  absl::Status InitModel(const json& model);
  absl::Status InitAddedTokens(const json& root);
  absl::Status InitNormalizer(const json& root);
  absl::Status InitPreTokenizer(const json& root);
  absl::Status InitPostProcessor(const json& root);
  absl::Status InitSpecialIds(const TokenizerConfig& config);

  absl::StatusOr<std::string> Normalize(absl::string_view text) const;
  absl::Status EncodeSegment(absl::string_view segment, std::vector<int32_t>* ids) const;
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;
  void MergeWord(absl::string_view word, std::vector<int32_t>* ids) const;
  std::optional<int32_t> TokenId(const std::string& token) const;

  std::optional<std::string> chat_template_;
  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;  // "" for ids with no token
  absl::flat_hash_map<uint64_t, BpeMerge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // -1 where the byte's character is not in the vocab
  std::optional<int32_t> unk_id_;
  bool ignore_merges_ = false;
  bool nfc_ = false;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::vector<AddedToken> added_;                             // longest content first
  std::array<std::vector<size_t>, 256> added_by_first_byte_;  // indexes into added_
  absl::flat_hash_map<int32_t, size_t> added_by_id_;
  bool has_template_ = false;
  std::vector<TemplateItem> template_;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  bool add_bos_ = false, add_eos_ = false;  // without a template

  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(mu_);
};

absl::Status ByteLevelBpeTokenizer::Init(const json& root, const TokenizerConfig& config) {
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) return Invalid("model", "is missing");
  TESSERA_RETURN_IF_ERROR(InitModel(*model));
  TESSERA_RETURN_IF_ERROR(InitAddedTokens(root));
  TESSERA_RETURN_IF_ERROR(InitNormalizer(root));
  TESSERA_RETURN_IF_ERROR(InitPreTokenizer(root));
  TESSERA_RETURN_IF_ERROR(InitPostProcessor(root));
  return InitSpecialIds(config);
}

absl::Status ByteLevelBpeTokenizer::InitModel(const json& model) {
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

absl::Status ByteLevelBpeTokenizer::InitAddedTokens(const json& root) {
  auto list = root.find("added_tokens");
  if (list == root.end() || list->is_null()) return absl::OkStatus();
  if (!list->is_array()) return Invalid("added_tokens", "is not an array");
  for (size_t i = 0; i < list->size(); ++i) {
    const json& t = (*list)[i];
    const std::string field = absl::StrCat("added_tokens[", i, "]");
    if (!t.is_object()) return Invalid(field, "is not an object");
    auto content = t.find("content");
    auto id = t.find("id");
    if (content == t.end() || !content->is_string() || content->get<std::string>().empty()) {
      return Invalid(absl::StrCat(field, ".content"), "is missing or empty");
    }
    if (id == t.end() || !id->is_number_integer() || id->get<int64_t>() < 0 ||
        id->get<int64_t>() > (int64_t{1} << 30)) {
      return Invalid(absl::StrCat(field, ".id"), "is missing or not a token id");
    }
    AddedToken token;
    token.content = content->get<std::string>();
    token.id = static_cast<int32_t>(id->get<int64_t>());
    TESSERA_ASSIGN_OR_RETURN(token.special, OptionalBool(t, "special", field, false));
    TESSERA_ASSIGN_OR_RETURN(token.lstrip, OptionalBool(t, "lstrip", field, false));
    TESSERA_ASSIGN_OR_RETURN(token.rstrip, OptionalBool(t, "rstrip", field, false));
    TESSERA_ASSIGN_OR_RETURN(const bool single_word, OptionalBool(t, "single_word", field, false));
    if (single_word) return Invalid(absl::StrCat(field, ".single_word"), "true is not supported");
    TESSERA_RETURN_IF_ERROR(CheckUtf8(token.content, absl::StrCat(kFile, ": ", field)));
    added_.push_back(std::move(token));
  }
  std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& x, const AddedToken& y) {
    return x.content.size() > y.content.size();
  });
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& t = added_[i];
    added_by_first_byte_[static_cast<unsigned char>(t.content[0])].push_back(i);
    added_by_id_[t.id] = i;
    if (static_cast<size_t>(t.id) >= id_to_token_.size()) {
      id_to_token_.resize(static_cast<size_t>(t.id) + 1);
    }
    id_to_token_[static_cast<size_t>(t.id)] = t.content;
  }
  return absl::OkStatus();
}

absl::Status ByteLevelBpeTokenizer::InitNormalizer(const json& root) {
  auto n = root.find("normalizer");
  if (n == root.end() || n->is_null()) return absl::OkStatus();
  std::string type = TypeOf(*n);
  if (type == "Sequence") {
    auto list = n->find("normalizers");
    if (list == n->end() || !list->is_array()) {
      return Invalid("normalizer.normalizers", "is missing");
    }
    if (list->empty()) return absl::OkStatus();
    if (list->size() > 1) {
      return Invalid("normalizer", "Sequence of more than one normalizer is not supported");
    }
    type = TypeOf((*list)[0]);
  }
  if (type != "NFC") {
    return Invalid("normalizer.type",
                   absl::StrCat(Quoted(type), " is not supported (only null and NFC)"));
  }
  nfc_ = true;
  return absl::OkStatus();
}

absl::Status ByteLevelBpeTokenizer::InitPreTokenizer(const json& root) {
  auto p = root.find("pre_tokenizer");
  if (p == root.end() || p->is_null()) return Invalid("pre_tokenizer", "is missing");
  std::vector<const json*> steps;
  std::string prefix = "pre_tokenizer";
  if (TypeOf(*p) == "Sequence") {
    auto list = p->find("pretokenizers");
    if (list == p->end() || !list->is_array()) {
      return Invalid("pre_tokenizer.pretokenizers", "is missing");
    }
    for (const json& s : *list) steps.push_back(&s);
    prefix = "pre_tokenizer.pretokenizers";
  } else {
    steps.push_back(&*p);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = *steps[i];
    const std::string field =
        steps.size() == 1 && prefix == "pre_tokenizer" ? prefix : absl::StrCat(prefix, "[", i, "]");
    const std::string type = TypeOf(s);
    PreTokenizerStep step;
    if (!pre_tokenizer_.empty() &&
        pre_tokenizer_.back().kind == PreTokenizerStep::Kind::kByteLevel) {
      return Invalid(field, "follows ByteLevel, which must be the last pre-tokenizer");
    }
    if (type == "Split") {
      auto pattern = s.find("pattern");
      std::string regex;
      if (pattern != s.end() && pattern->is_object() && pattern->contains("Regex") &&
          (*pattern)["Regex"].is_string()) {
        regex = (*pattern)["Regex"].get<std::string>();
      } else if (pattern != s.end() && pattern->is_object() && pattern->contains("String") &&
                 (*pattern)["String"].is_string()) {
        regex = QuoteRegex((*pattern)["String"].get<std::string>());
      } else {
        return Invalid(absl::StrCat(field, ".pattern"),
                       "is not {\"Regex\": ...} or {\"String\": ...}");
      }
      auto behavior = s.find("behavior");
      if (behavior == s.end() || !behavior->is_string() || *behavior != "Isolated") {
        return Invalid(absl::StrCat(field, ".behavior"),
                       absl::StrCat(behavior != s.end() ? behavior->dump() : "(missing)",
                                    " is not supported (only \"Isolated\")"));
      }
      TESSERA_ASSIGN_OR_RETURN(const bool invert, OptionalBool(s, "invert", field, false));
      if (invert) return Invalid(absl::StrCat(field, ".invert"), "true is not supported");
      absl::StatusOr<std::unique_ptr<SplitRegex>> re = SplitRegex::Compile(regex);
      if (!re.ok()) {
        return Invalid(absl::StrCat(field, ".pattern"), re.status().message());
      }
      step.regex = *std::move(re);
    } else if (type == "Digits") {
      step.kind = PreTokenizerStep::Kind::kDigits;
      TESSERA_ASSIGN_OR_RETURN(const bool individual,
                               OptionalBool(s, "individual_digits", field, false));
      TESSERA_ASSIGN_OR_RETURN(step.regex, SplitRegex::Compile(individual ? "[0-9]" : "[0-9]+"));
    } else if (type == "ByteLevel") {
      step.kind = PreTokenizerStep::Kind::kByteLevel;
      TESSERA_ASSIGN_OR_RETURN(step.add_prefix_space,
                               OptionalBool(s, "add_prefix_space", field, false));
      TESSERA_ASSIGN_OR_RETURN(const bool use_regex, OptionalBool(s, "use_regex", field, true));
      if (use_regex) {
        TESSERA_ASSIGN_OR_RETURN(step.regex, SplitRegex::Compile(kGpt2SplitPattern));
      }
    } else {
      return Invalid(
          absl::StrCat(field, ".type"),
          absl::StrCat(Quoted(type), " is not supported (only ByteLevel, Split and Digits)"));
    }
    pre_tokenizer_.push_back(std::move(step));
  }
  if (pre_tokenizer_.empty() || pre_tokenizer_.back().kind != PreTokenizerStep::Kind::kByteLevel) {
    return Invalid("pre_tokenizer", "has no ByteLevel step (not a byte-level BPE tokenizer)");
  }
  return absl::OkStatus();
}

absl::Status ByteLevelBpeTokenizer::InitPostProcessor(const json& root) {
  auto p = root.find("post_processor");
  if (p == root.end() || p->is_null()) return absl::OkStatus();
  std::vector<const json*> procs;
  std::string prefix = "post_processor";
  if (TypeOf(*p) == "Sequence") {
    auto list = p->find("processors");
    if (list == p->end() || !list->is_array()) {
      return Invalid("post_processor.processors", "is missing");
    }
    for (const json& s : *list) procs.push_back(&s);
    prefix = "post_processor.processors";
  } else {
    procs.push_back(&*p);
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    const json& s = *procs[i];
    const std::string field =
        prefix == "post_processor" ? prefix : absl::StrCat(prefix, "[", i, "]");
    const std::string type = TypeOf(s);
    if (type == "ByteLevel") continue;  // offsets only
    if (type != "TemplateProcessing") {
      return Invalid(
          absl::StrCat(field, ".type"),
          absl::StrCat(Quoted(type), " is not supported (only TemplateProcessing and ByteLevel)"));
    }
    if (has_template_) return Invalid(field, "is a second TemplateProcessing");
    has_template_ = true;
    auto single = s.find("single");
    if (single == s.end() || !single->is_array()) {
      return Invalid(absl::StrCat(field, ".single"), "is missing");
    }
    auto specials = s.find("special_tokens");
    for (size_t k = 0; k < single->size(); ++k) {
      const json& item = (*single)[k];
      const std::string item_field = absl::StrCat(field, ".single[", k, "]");
      TemplateItem out;
      if (item.is_object() && item.contains("Sequence")) {
        const json& seq = item["Sequence"];
        if (!seq.is_object() || seq.value("id", "") != "A") {
          return Invalid(item_field, "is a sequence other than $A");
        }
        out.sequence = true;
      } else if (item.is_object() && item.contains("SpecialToken") &&
                 item["SpecialToken"].is_object() && item["SpecialToken"].contains("id") &&
                 item["SpecialToken"]["id"].is_string()) {
        const std::string name = item["SpecialToken"]["id"].get<std::string>();
        if (specials == s.end() || !specials->is_object() || !specials->contains(name) ||
            !(*specials)[name].is_object() || !(*specials)[name].contains("ids") ||
            !(*specials)[name]["ids"].is_array()) {
          return Invalid(absl::StrCat(field, ".special_tokens"),
                         absl::StrCat("has no ids for ", Quoted(name)));
        }
        for (const json& id : (*specials)[name]["ids"]) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
              id.get<int64_t>() >= static_cast<int64_t>(id_to_token_.size())) {
            return Invalid(absl::StrCat(field, ".special_tokens[", Quoted(name), "].ids"),
                           "holds an id outside the vocabulary");
          }
          out.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
        }
      } else {
        return Invalid(item_field, "is neither {\"Sequence\": ...} nor {\"SpecialToken\": ...}");
      }
      template_.push_back(std::move(out));
    }
  }
  return absl::OkStatus();
}

std::optional<int32_t> ByteLevelBpeTokenizer::TokenId(const std::string& token) const {
  for (const AddedToken& t : added_) {
    if (t.content == token) return t.id;
  }
  auto it = vocab_.find(token);
  if (it != vocab_.end()) return it->second;
  return std::nullopt;
}

absl::Status ByteLevelBpeTokenizer::InitSpecialIds(const TokenizerConfig& config) {
  const auto lookup = [&](const std::optional<std::string>& token, absl::string_view field,
                          std::optional<int32_t>* id) -> absl::Status {
    if (!token.has_value()) return absl::OkStatus();
    *id = TokenId(*token);
    if (!id->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", field, " ",
                                                     Quoted(*token), " is not a token of ", kFile));
    }
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(lookup(config.bos_token, "bos_token", &bos_id_));
  TESSERA_RETURN_IF_ERROR(lookup(config.eos_token, "eos_token", &eos_id_));
  TESSERA_RETURN_IF_ERROR(lookup(config.pad_token, "pad_token", &pad_id_));
  // Without a bos_token, a template's leading special token is the BOS (Llama
  // 3).
  if (!bos_id_.has_value() && !template_.empty() && !template_[0].sequence &&
      template_[0].ids.size() == 1) {
    bos_id_ = template_[0].ids[0];
  }
  add_bos_ = config.add_bos_token.value_or(false) && bos_id_.has_value();
  add_eos_ = config.add_eos_token.value_or(false) && eos_id_.has_value();
  chat_template_ = config.chat_template;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ByteLevelBpeTokenizer::Normalize(absl::string_view text) const {
#ifdef TESSERA_HAVE_ICU
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(error);
  std::string out;
  if (U_SUCCESS(error)) {
    icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
    nfc->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink,
                       nullptr, error);
  }
  if (U_FAILURE(error)) {
    return absl::InternalError(absl::StrCat("NFC normalization failed: ", u_errorName(error)));
  }
  return out;
#else
  // Text below U+0300 is already NFC (no combining marks, no composition
  // exclusions).
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    size_t len;
    DecodeUtf8Char(text, pos, &cp, &len);
    if (cp >= 0x300) {
      return absl::FailedPreconditionError(
          absl::StrCat(kFile,
                       ": normalizer NFC needs ICU, which this build lacks, "
                       "for text with U+",
                       absl::Hex(static_cast<uint32_t>(cp), absl::kZeroPad4)));
    }
    pos += len;
  }
  return std::string(text);
#endif
}

absl::StatusOr<std::vector<int32_t>> ByteLevelBpeTokenizer::Encode(
    absl::string_view text, const EncodeOptions& options) const {
  TESSERA_RETURN_IF_ERROR(CheckUtf8(text, "text"));
  std::vector<int32_t> ids;
  // Added tokens first: at each position the longest one that starts there.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* hit = nullptr;
    for (size_t i : added_by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (absl::StartsWith(text.substr(pos), added_[i].content)) {
        hit = &added_[i];
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t segment_end = pos;
    if (hit->lstrip) {  // the token takes the whitespace before it
      while (segment_end > segment_start) {
        size_t prev = segment_end - 1;
        while (prev > segment_start && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80)
          --prev;
        char32_t cp;
        size_t len;
        DecodeUtf8Char(text, prev, &cp, &len);
        if (!IsWhitespace(cp)) break;
        segment_end = prev;
      }
    }
    TESSERA_RETURN_IF_ERROR(
        EncodeSegment(text.substr(segment_start, segment_end - segment_start), &ids));
    ids.push_back(hit->id);
    pos += hit->content.size();
    if (hit->rstrip) {  // and the whitespace after it
      char32_t cp;
      size_t len;
      while (pos < text.size() && DecodeUtf8Char(text, pos, &cp, &len) && IsWhitespace(cp)) {
        pos += len;
      }
    }
    segment_start = pos;
  }
  TESSERA_RETURN_IF_ERROR(EncodeSegment(text.substr(segment_start), &ids));
  if (!options.add_special_tokens) return ids;
  if (has_template_) {
    std::vector<int32_t> out;
    for (const TemplateItem& item : template_) {
      if (item.sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    return out;
  }
  if (add_bos_) ids.insert(ids.begin(), *bos_id_);
  if (add_eos_) ids.push_back(*eos_id_);
  return ids;
}

absl::Status ByteLevelBpeTokenizer::EncodeSegment(absl::string_view segment,
                                                  std::vector<int32_t>* ids) const {
  if (segment.empty()) return absl::OkStatus();
  std::string normalized;
  if (nfc_) {
    TESSERA_ASSIGN_OR_RETURN(normalized, Normalize(segment));
    segment = normalized;
  }
  std::deque<std::string> owned;  // pieces that add_prefix_space changed (stable addresses)
  std::vector<absl::string_view> pieces = {segment};
  for (const PreTokenizerStep& step : pre_tokenizer_) {
    if (step.add_prefix_space) {
      for (absl::string_view& piece : pieces) {
        if (!absl::StartsWith(piece, " ")) {
          owned.push_back(absl::StrCat(" ", piece));
          piece = owned.back();
        }
      }
    }
    if (step.regex == nullptr) continue;
    std::vector<absl::string_view> next;
    for (absl::string_view piece : pieces) {
      std::vector<absl::string_view> split = step.regex->Split(piece);
      next.insert(next.end(), split.begin(), split.end());
    }
    pieces = std::move(next);
  }
  for (absl::string_view word : pieces) EncodeWord(word, ids);
  return absl::OkStatus();
}

void ByteLevelBpeTokenizer::EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const {
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
void ByteLevelBpeTokenizer::MergeWord(absl::string_view word, std::vector<int32_t>* ids) const {
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
  const auto merge_of = [&](int32_t a, int32_t b) -> const BpeMerge* {
    auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const BpeMerge* m = merge_of(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const BpeMerge* m = merge_of(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const BpeMerge* pm = merge_of(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
        queue.push({pm->rank, left.prev, pm->new_id});
      }
    }
    if (left.next >= 0) {
      if (const BpeMerge* nm = merge_of(left.id, symbols[static_cast<size_t>(left.next)].id)) {
        queue.push({nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids->push_back(s.id);
  }
}

absl::StatusOr<std::string> ByteLevelBpeTokenizer::Decode(absl::Span<const int32_t> ids,
                                                          bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is outside [0, ", vocab_size(), ")"));
    }
    if (auto added = added_by_id_.find(id); added != added_by_id_.end()) {
      const AddedToken& t = added_[added->second];
      if (!(skip_special_tokens && t.special)) bytes += t.content;
      continue;
    }
    // Characters of the byte alphabet become their bytes; any other stays as
    // written.
    const std::string& token = id_to_token_[static_cast<size_t>(id)];
    for (size_t pos = 0; pos < token.size();) {
      char32_t cp;
      size_t len;
      const bool ok = DecodeUtf8Char(token, pos, &cp, &len);
      const int b = ok ? UnicodeToByte(cp) : -1;
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
      } else {
        bytes.append(token, pos, len);
      }
      pos += len;
    }
  }
  return Utf8Lossy(bytes);
}

}  // namespace

bool IsByteLevelBpe(const json& root) {
  if (!root.is_object()) return false;
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) return false;
  const std::string type = TypeOf(*model);
  if (type != "BPE" && !(type.empty() && model->contains("merges"))) return false;
  auto fallback = model->find("byte_fallback");
  if (fallback != model->end() && fallback->is_boolean() && fallback->get<bool>()) return false;
  auto p = root.find("pre_tokenizer");
  if (p == root.end()) return false;
  if (TypeOf(*p) == "ByteLevel") return true;
  if (TypeOf(*p) != "Sequence") return false;
  auto list = p->find("pretokenizers");
  if (list == p->end() || !list->is_array()) return false;
  return std::any_of(list->begin(), list->end(),
                     [](const json& s) { return TypeOf(s) == "ByteLevel"; });
}

absl::StatusOr<std::unique_ptr<Tokenizer>> NewByteLevelBpeTokenizer(const json& root,
                                                                    const TokenizerConfig& config) {
  auto tokenizer = std::make_unique<ByteLevelBpeTokenizer>();
  TESSERA_RETURN_IF_ERROR(tokenizer->Init(root, config));
  return tokenizer;
}

}  // namespace tessera::lm
