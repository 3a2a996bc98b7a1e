// File: operators.h
// Jinja2's operators with Python's semantics on Value: arithmetic (64-bit integers; an
// overflow is an error where Python would grow the integer), string and list concatenation
// and repetition, "~" (str() of both sides), comparisons and membership.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_OPERATORS_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_OPERATORS_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

// op: "-", "+" or "not".
absl::StatusOr<Value> UnaryOp(const std::string& op, const Value& v);
// op: + - * / // % ** ~. A string or list result longer than max_bytes (bytes or items) is
// an error. Errors: INVALID_ARGUMENT as Python's TypeError/ZeroDivisionError say it.
absl::StatusOr<Value> BinaryOp(const std::string& op, const Value& a, const Value& b,
                               size_t max_bytes);
// op: == != < <= > >= in notin.
absl::StatusOr<bool> Compare(const std::string& op, const Value& a, const Value& b);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_OPERATORS_H_
