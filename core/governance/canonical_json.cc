// Canonical JSON (canonical_json.h): nlohmann::json with strict UTF-8 and no exceptions out.
#include "core/governance/canonical_json.h"

#include <exception>
#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::governance {
namespace {

constexpr int kNoIndent = -1;

}  // namespace

absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value) {
  try {
    return value.dump(kNoIndent, ' ', /*ensure_ascii=*/false,
                      nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::type_error& e) {
    // type_error 316: a string is not valid UTF-8.
    return absl::InvalidArgumentError(absl::StrCat("JSON string is not valid UTF-8: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serialize JSON: ", e.what()));
  }
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
}

bool IsValidUtf8(absl::string_view text) {
  return CanonicalJson(nlohmann::json(std::string(text))).ok();
}

}  // namespace tessera::governance
