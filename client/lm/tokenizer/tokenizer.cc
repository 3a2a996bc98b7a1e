#include "client/lm/tokenizer/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/byte_level_bpe.h"
#include "client/lm/tokenizer/sentencepiece_tokenizer.h"
#include "client/lm/tokenizer/tokenizer_config.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"

namespace tessera::lm {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& checkpoint_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(checkpoint_dir);
  const std::string json_path = (dir / "tokenizer.json").string();
  const std::string model_path = (dir / "tokenizer.model").string();
  const std::string config_path = (dir / "tokenizer_config.json").string();
  std::error_code ec;
  const bool has_json = fs::is_regular_file(json_path, ec);
  const bool has_model = fs::is_regular_file(model_path, ec);
  if (!has_json && !has_model) {
    return absl::NotFoundError(
        absl::StrCat("no tokenizer.json or tokenizer.model in ", checkpoint_dir));
  }
  TokenizerConfig config;
  if (fs::is_regular_file(config_path, ec)) {
    TESSERA_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(config_path));
    TESSERA_ASSIGN_OR_RETURN(config, ParseTokenizerConfig(text));
  }
  if (has_json) {
    TESSERA_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(json_path));
    const nlohmann::json root = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded() || !root.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(json_path, ": tokenizer.json is not a JSON object"));
    }
    // A byte-level BPE tokenizer.json is used as is; anything else (Llama 2's
    // SentencePiece-style BPE, Unigram, WordPiece) falls back to
    // tokenizer.model.
    if (IsByteLevelBpe(root) || !has_model) return NewByteLevelBpeTokenizer(root, config);
  }
  return NewSentencePieceTokenizer(model_path, config);
}

}  // namespace tessera::lm
