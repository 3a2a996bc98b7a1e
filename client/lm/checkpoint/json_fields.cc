#include "client/lm/checkpoint/json_fields.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::lm::internal {

absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view text, absl::string_view file) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  return json;
}

std::string Dump(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 80) text = absl::StrCat(text.substr(0, 77), "...");
  return text;
}

absl::Status FieldError(absl::string_view file, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", field, " ", what));
}

absl::StatusOr<int64_t> GetInt(const nlohmann::json& value, absl::string_view file,
                               absl::string_view field, int64_t min, int64_t max) {
  const std::string range = absl::StrCat("[", min, ", ", max, "]");
  int64_t result = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      return FieldError(file, field, absl::StrCat(u, " is outside ", range));
    }
    result = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    result = value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    // 2^63 itself is not representable as int64_t; every double below it is.
    if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) >= 9.2233720368547758e18) {
      return FieldError(file, field, absl::StrCat("must be an integer, not ", Dump(value)));
    }
    result = static_cast<int64_t>(d);
  } else {
    return FieldError(file, field, absl::StrCat("must be an integer, not ", Dump(value)));
  }
  if (result < min || result > max) {
    return FieldError(file, field, absl::StrCat(result, " is outside ", range));
  }
  return result;
}

absl::StatusOr<double> GetNumber(const nlohmann::json& value, absl::string_view file,
                                 absl::string_view field) {
  if (!value.is_number()) {
    return FieldError(file, field, absl::StrCat("must be a number, not ", Dump(value)));
  }
  const double d = value.get<double>();
  if (!std::isfinite(d)) return FieldError(file, field, "must be finite");
  return d;
}

absl::StatusOr<bool> GetBool(const nlohmann::json& value, absl::string_view file,
                             absl::string_view field) {
  if (!value.is_boolean()) {
    return FieldError(file, field, absl::StrCat("must be true or false, not ", Dump(value)));
  }
  return value.get<bool>();
}

absl::StatusOr<std::string> GetString(const nlohmann::json& value, absl::string_view file,
                                      absl::string_view field) {
  if (!value.is_string()) {
    return FieldError(file, field, absl::StrCat("must be a string, not ", Dump(value)));
  }
  return value.get<std::string>();
}

bool IsNullOrEmpty(const nlohmann::json& value) {
  return value.is_null() || ((value.is_object() || value.is_array()) && value.empty());
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace tessera::lm::internal
