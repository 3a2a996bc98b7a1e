// File: tojson.h
// Python's json.dumps(v, ensure_ascii=False, indent, separators, sort_keys) of a template
// value, as transformers' tojson filter calls it: non-ASCII text is written as is, NaN and
// infinities as Python writes them, dicts in insertion order unless sort_keys.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_TOJSON_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_TOJSON_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

// indent < 0: no newlines; item/key separators default to ", " and ": " (", " becomes ","
// with an indent), as Python's.
struct JsonOptions {
  int indent = -1;
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
};

// Errors: INVALID_ARGUMENT for a value JSON cannot hold (undefined, a namespace, a function)
// and for nesting deeper than 512.
absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_TOJSON_H_
