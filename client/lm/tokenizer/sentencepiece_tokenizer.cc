#include "client/lm/tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/sentencepiece_model.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(std::unique_ptr<SentencePieceModel> model)
      : model_(std::move(model)) {}

  absl::Status Init(const TokenizerConfig& config);

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              const EncodeOptions& options) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return model_->piece_size(); }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }
  std::optional<int32_t> pad_id() const override { return pad_id_; }
  std::string kind() const override { return "sentencepiece"; }
  std::optional<std::string> chat_template() const override { return chat_template_; }

 private:
  absl::Status EncodeSegment(absl::string_view segment, std::vector<int32_t>* ids) const;

  std::unique_ptr<SentencePieceModel> model_;
  std::optional<std::string> chat_template_;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  bool add_bos_ = true, add_eos_ = false;
  std::vector<std::pair<std::string, int32_t>> specials_;  // text -> id, longest first
};

absl::Status SentencePieceTokenizer::Init(const TokenizerConfig& config) {
  const auto resolve = [&](const std::optional<std::string>& token, int model_id,
                           absl::string_view field, std::optional<int32_t>* id) -> absl::Status {
    if (token.has_value()) {
      const int found = model_->PieceToId(*token);
      if (model_->IsUnknown(found) && model_->IdToPiece(found) != *token) {
        return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", field, " \"",
                                                       *token,
                                                       "\" is not a piece of the "
                                                       "SentencePiece model"));
      }
      *id = found;
    } else if (model_id >= 0) {
      *id = model_id;
    }
    if (id->has_value()) specials_.emplace_back(model_->IdToPiece(**id), **id);
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(resolve(config.bos_token, model_->bos_id(), "bos_token", &bos_id_));
  TESSERA_RETURN_IF_ERROR(resolve(config.eos_token, model_->eos_id(), "eos_token", &eos_id_));
  TESSERA_RETURN_IF_ERROR(resolve(config.pad_token, model_->pad_id(), "pad_token", &pad_id_));
  for (int id = 0; id < model_->piece_size(); ++id) {
    if (model_->IsControl(id) || model_->IsUnknown(id)) {
      specials_.emplace_back(model_->IdToPiece(id), id);
    }
  }
  std::sort(specials_.begin(), specials_.end(), [](const auto& x, const auto& y) {
    return x.first.size() != y.first.size() ? x.first.size() > y.first.size() : x < y;
  });
  specials_.erase(std::unique(specials_.begin(), specials_.end()), specials_.end());
  specials_.erase(std::remove_if(specials_.begin(), specials_.end(),
                                 [](const auto& s) { return s.first.empty(); }),
                  specials_.end());
  add_bos_ = config.add_bos_token.value_or(true) && bos_id_.has_value();
  add_eos_ = config.add_eos_token.value_or(false) && eos_id_.has_value();
  chat_template_ = config.chat_template;
  return absl::OkStatus();
}

absl::Status SentencePieceTokenizer::EncodeSegment(absl::string_view segment,
                                                   std::vector<int32_t>* ids) const {
  if (segment.empty()) return absl::OkStatus();
  std::vector<int> out;
  std::string error;
  if (!model_->Encode(std::string(segment), &out, &error)) {
    return absl::InternalError(absl::StrCat("sentencepiece Encode failed: ", error));
  }
  ids->insert(ids->end(), out.begin(), out.end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> SentencePieceTokenizer::Encode(
    absl::string_view text, const EncodeOptions& options) const {
  TESSERA_RETURN_IF_ERROR(CheckUtf8(text, "text"));
  std::vector<int32_t> ids;
  if (options.add_special_tokens && add_bos_) ids.push_back(*bos_id_);
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& special : specials_) {
      if (absl::StartsWith(text.substr(pos), special.first)) {
        hit = &special;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    TESSERA_RETURN_IF_ERROR(EncodeSegment(text.substr(segment_start, pos - segment_start), &ids));
    ids.push_back(hit->second);
    pos += hit->first.size();
    segment_start = pos;
  }
  TESSERA_RETURN_IF_ERROR(EncodeSegment(text.substr(segment_start), &ids));
  if (options.add_special_tokens && add_eos_) ids.push_back(*eos_id_);
  return ids;
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids,
                                                           bool skip_special_tokens) const {
  std::string text;
  std::vector<int> segment;
  std::string error;
  const auto flush = [&]() -> absl::Status {
    if (segment.empty()) return absl::OkStatus();
    std::string piece_text;
    if (!model_->Decode(segment, &piece_text, &error)) {
      return absl::InternalError(absl::StrCat("sentencepiece Decode failed: ", error));
    }
    text += piece_text;
    segment.clear();
    return absl::OkStatus();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is outside [0, ", vocab_size(), ")"));
    }
    if (!model_->IsControl(id)) {
      segment.push_back(id);
      continue;
    }
    TESSERA_RETURN_IF_ERROR(flush());
    if (!skip_special_tokens) text += model_->IdToPiece(id);
  }
  TESSERA_RETURN_IF_ERROR(flush());
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> NewSentencePieceTokenizer(
    const std::string& model_path, const TokenizerConfig& config) {
  std::string error;
  std::unique_ptr<SentencePieceModel> model = SentencePieceModel::Load(model_path, &error);
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": not a SentencePiece model (", error, ")"));
  }
  auto tokenizer = std::make_unique<SentencePieceTokenizer>(std::move(model));
  TESSERA_RETURN_IF_ERROR(tokenizer->Init(config));
  return tokenizer;
}

}  // namespace tessera::lm
