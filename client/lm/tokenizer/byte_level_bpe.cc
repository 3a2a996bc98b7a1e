// The byte-level BPE tokenizer: the stages of tokenizer.json (special_tokens.h,
// pre_tokenizer.h, bpe_model.h) put together as the tokenizers library runs them, plus
// tokenizer_config.json's bos/eos/pad and decoding back to text.
#include "client/lm/tokenizer/byte_level_bpe.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/bpe_model.h"
#include "client/lm/tokenizer/pre_tokenizer.h"
#include "client/lm/tokenizer/special_tokens.h"
#include "client/lm/tokenizer/tokenizer_json.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using json = nlohmann::json;
using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokens;
using tokenizer_internal::BpeModel;
using tokenizer_internal::Invalid;
using tokenizer_internal::kTokenizerFile;
using tokenizer_internal::Normalizer;
using tokenizer_internal::PostProcessor;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::Quoted;
using tokenizer_internal::TypeOf;

// Unicode White_Space (char::is_whitespace in Rust, which lstrip/rstrip use).
bool IsWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

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
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }
  std::optional<int32_t> pad_id() const override { return pad_id_; }
  std::string kind() const override { return "bpe"; }
  std::optional<std::string> chat_template() const override { return chat_template_; }

 private:
  absl::Status InitSpecialIds(const TokenizerConfig& config);
  absl::Status EncodeSegment(absl::string_view segment, std::vector<int32_t>* ids) const;
  std::optional<int32_t> TokenId(const std::string& token) const;

  std::optional<std::string> chat_template_;
  std::unique_ptr<BpeModel> model_;
  AddedTokens added_;
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  PostProcessor post_processor_;
  int32_t vocab_size_ = 0;  // ids below it are the model's or added tokens (or unused)
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  bool add_bos_ = false, add_eos_ = false;  // without a template
};

absl::Status ByteLevelBpeTokenizer::Init(const json& root, const TokenizerConfig& config) {
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) return Invalid("model", "is missing");
  TESSERA_ASSIGN_OR_RETURN(model_, BpeModel::FromJson(*model));
  TESSERA_ASSIGN_OR_RETURN(added_, AddedTokens::FromJson(root));
  vocab_size_ =
      static_cast<int32_t>(std::max(model_->id_to_token().size(), added_.id_limit()));
  TESSERA_ASSIGN_OR_RETURN(normalizer_, Normalizer::FromJson(root));
  TESSERA_ASSIGN_OR_RETURN(pre_tokenizer_, PreTokenizer::FromJson(root));
  TESSERA_ASSIGN_OR_RETURN(post_processor_,
                           PostProcessor::FromJson(root, static_cast<size_t>(vocab_size_)));
  return InitSpecialIds(config);
}

std::optional<int32_t> ByteLevelBpeTokenizer::TokenId(const std::string& token) const {
  if (std::optional<int32_t> id = added_.Find(token)) return id;
  return model_->Find(token);
}

absl::Status ByteLevelBpeTokenizer::InitSpecialIds(const TokenizerConfig& config) {
  const auto lookup = [&](const std::optional<std::string>& token, absl::string_view field,
                          std::optional<int32_t>* id) -> absl::Status {
    if (!token.has_value()) return absl::OkStatus();
    *id = TokenId(*token);
    if (!id->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", field, " ",
                                                     Quoted(*token), " is not a token of ",
                                                     kTokenizerFile));
    }
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(lookup(config.bos_token, "bos_token", &bos_id_));
  TESSERA_RETURN_IF_ERROR(lookup(config.eos_token, "eos_token", &eos_id_));
  TESSERA_RETURN_IF_ERROR(lookup(config.pad_token, "pad_token", &pad_id_));
  // Without a bos_token, a template's leading special token is the BOS (Llama
  // 3).
  if (!bos_id_.has_value()) bos_id_ = post_processor_.leading_special_id();
  add_bos_ = config.add_bos_token.value_or(false) && bos_id_.has_value();
  add_eos_ = config.add_eos_token.value_or(false) && eos_id_.has_value();
  chat_template_ = config.chat_template;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> ByteLevelBpeTokenizer::Encode(
    absl::string_view text, const EncodeOptions& options) const {
  TESSERA_RETURN_IF_ERROR(CheckUtf8(text, "text"));
  std::vector<int32_t> ids;
  // Added tokens first: at each position the longest one that starts there.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* hit = added_.LongestAt(text, pos);
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
  if (post_processor_.has_template()) return post_processor_.Apply(ids);
  if (add_bos_) ids.insert(ids.begin(), *bos_id_);
  if (add_eos_) ids.push_back(*eos_id_);
  return ids;
}

absl::Status ByteLevelBpeTokenizer::EncodeSegment(absl::string_view segment,
                                                  std::vector<int32_t>* ids) const {
  if (segment.empty()) return absl::OkStatus();
  std::string normalized;
  if (normalizer_.enabled()) {
    TESSERA_ASSIGN_OR_RETURN(normalized, normalizer_.Normalize(segment));
    segment = normalized;
  }
  std::deque<std::string> owned;  // pieces that add_prefix_space changed (stable addresses)
  for (absl::string_view word : pre_tokenizer_.Split(segment, &owned)) {
    model_->EncodeWord(word, ids);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ByteLevelBpeTokenizer::Decode(absl::Span<const int32_t> ids,
                                                          bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is outside [0, ", vocab_size(), ")"));
    }
    if (const AddedToken* t = added_.WithId(id)) {
      if (!(skip_special_tokens && t->special)) bytes += t->content;
      continue;
    }
    // Characters of the byte alphabet become their bytes; any other stays as
    // written. Ids above the model's vocabulary that no added token has are "".
    const std::vector<std::string>& tokens = model_->id_to_token();
    if (static_cast<size_t>(id) >= tokens.size()) continue;
    const std::string& token = tokens[static_cast<size_t>(id)];
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
