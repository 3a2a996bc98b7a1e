#include "client/lm/text/jinja/tojson.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/lm/text/jinja/python_repr.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

absl::Status JsonInto(const Value& v, const JsonOptions& o, int depth, std::string* out) {
  if (depth > 512) return absl::InvalidArgumentError("tojson: nesting deeper than 512");
  const std::string item_sep = o.item_separator.value_or(o.indent >= 0 ? "," : ", ");
  const std::string key_sep = o.key_separator.value_or(": ");
  const auto newline = [&](int level) {
    if (o.indent < 0) return;
    *out += '\n';
    out->append(static_cast<size_t>(o.indent) * static_cast<size_t>(level), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kNone: *out += "null"; return absl::OkStatus();
    case Value::Kind::kBool: *out += v.as_bool() ? "true" : "false"; return absl::OkStatus();
    case Value::Kind::kInt: *out += std::to_string(v.as_int()); return absl::OkStatus();
    case Value::Kind::kFloat:
      if (std::isnan(v.as_double())) {
        *out += "NaN";
      } else if (std::isinf(v.as_double())) {
        *out += v.as_double() > 0 ? "Infinity" : "-Infinity";
      } else {
        *out += PyFloatRepr(v.as_double());
      }
      return absl::OkStatus();
    case Value::Kind::kString: *out += JsonString(v.str()); return absl::OkStatus();
    case Value::Kind::kList: {
      if (v.list().empty()) {
        *out += "[]";
        return absl::OkStatus();
      }
      *out += '[';
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (i > 0) *out += item_sep;
        newline(depth + 1);
        TESSERA_RETURN_IF_ERROR(JsonInto(v.list()[i], o, depth + 1, out));
      }
      newline(depth);
      *out += ']';
      return absl::OkStatus();
    }
    case Value::Kind::kDict: {
      if (v.dict().empty()) {
        *out += "{}";
        return absl::OkStatus();
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict()) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      *out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) *out += item_sep;
        newline(depth + 1);
        *out += JsonString(items[i]->first);
        *out += key_sep;
        TESSERA_RETURN_IF_ERROR(JsonInto(items[i]->second, o, depth + 1, out));
      }
      newline(depth);
      *out += '}';
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tojson: Object of type ", v.TypeName(), " is not JSON serializable"));
  }
}

}  // namespace

absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options) {
  std::string out;
  TESSERA_RETURN_IF_ERROR(JsonInto(v, options, 0, &out));
  return out;
}

}  // namespace tessera::lm::jinja
