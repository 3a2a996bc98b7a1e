#include "client/lm/tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/tokenizer_json.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

#ifdef TESSERA_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

namespace tessera::lm::tokenizer_internal {

using json = nlohmann::json;

absl::StatusOr<Normalizer> Normalizer::FromJson(const json& root) {
  Normalizer out;
  auto n = root.find("normalizer");
  if (n == root.end() || n->is_null()) return out;
  std::string type = TypeOf(*n);
  if (type == "Sequence") {
    auto list = n->find("normalizers");
    if (list == n->end() || !list->is_array()) {
      return Invalid("normalizer.normalizers", "is missing");
    }
    if (list->empty()) return out;
    if (list->size() > 1) {
      return Invalid("normalizer", "Sequence of more than one normalizer is not supported");
    }
    type = TypeOf((*list)[0]);
  }
  if (type != "NFC") {
    return Invalid("normalizer.type",
                   absl::StrCat(Quoted(type), " is not supported (only null and NFC)"));
  }
  out.nfc_ = true;
  return out;
}

absl::StatusOr<std::string> Normalizer::Normalize(absl::string_view text) const {
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
          absl::StrCat(kTokenizerFile,
                       ": normalizer NFC needs ICU, which this build lacks, "
                       "for text with U+",
                       absl::Hex(static_cast<uint32_t>(cp), absl::kZeroPad4)));
    }
    pos += len;
  }
  return std::string(text);
#endif
}

absl::StatusOr<PreTokenizer> PreTokenizer::FromJson(const json& root) {
  PreTokenizer out;
  auto p = root.find("pre_tokenizer");
  if (p == root.end() || p->is_null()) return Invalid("pre_tokenizer", "is missing");
  TESSERA_ASSIGN_OR_RETURN(std::vector<SectionItem> steps,
                           SectionItems(*p, "pre_tokenizer", "pretokenizers"));
  for (const auto& [item, field] : steps) {
    const json& s = *item;
    const std::string type = TypeOf(s);
    Step step;
    if (!out.steps_.empty() && out.steps_.back().kind == Step::Kind::kByteLevel) {
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
      step.kind = Step::Kind::kDigits;
      TESSERA_ASSIGN_OR_RETURN(const bool individual,
                               OptionalBool(s, "individual_digits", field, false));
      TESSERA_ASSIGN_OR_RETURN(step.regex, SplitRegex::Compile(individual ? "[0-9]" : "[0-9]+"));
    } else if (type == "ByteLevel") {
      step.kind = Step::Kind::kByteLevel;
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
    out.steps_.push_back(std::move(step));
  }
  if (out.steps_.empty() || out.steps_.back().kind != Step::Kind::kByteLevel) {
    return Invalid("pre_tokenizer", "has no ByteLevel step (not a byte-level BPE tokenizer)");
  }
  return out;
}

std::vector<absl::string_view> PreTokenizer::Split(absl::string_view text,
                                                   std::deque<std::string>* owned) const {
  std::vector<absl::string_view> pieces = {text};
  for (const Step& step : steps_) {
    if (step.add_prefix_space) {
      for (absl::string_view& piece : pieces) {
        if (!absl::StartsWith(piece, " ")) {
          owned->push_back(absl::StrCat(" ", piece));
          piece = owned->back();
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
  return pieces;
}

}  // namespace tessera::lm::tokenizer_internal
