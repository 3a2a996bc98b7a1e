// The global functions of builtins.h (Jinja2's namespace, dict and range; transformers'
// raise_exception and strftime_now).
#include <cstdint>
#include <ctime>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/builtins.h"

namespace tessera::lm::jinja {

absl::StatusOr<Value> CallGlobal(const std::string& name, const Args& args, const std::tm& now,
                                 uint64_t max_items) {
  if (name == "raise_exception") {
    const std::string message = args.positional.empty() ? "" : args.positional[0].Str();
    return absl::InvalidArgumentError(absl::StrCat("raise_exception: ", message));
  }
  if (name == "strftime_now") {
    if (args.positional.size() != 1 || !args.positional[0].is_string()) {
      return absl::InvalidArgumentError("strftime_now() takes one format string");
    }
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), args.positional[0].str().c_str(), &now);
    return Value::String(std::string(buf, n));
  }
  if (name == "namespace" || name == "dict") {
    Dict d;
    for (const Value& p : args.positional) {
      if (!p.is_mapping()) return absl::InvalidArgumentError(name + "() takes a mapping");
      for (const auto& [k, v] : p.dict()) SetKey(&d, k, v);
    }
    for (const auto& [k, v] : args.keyword) SetKey(&d, k, v);
    return name == "dict" ? Value::MakeDict(std::move(d)) : Value::MakeNamespace(std::move(d));
  }
  if (name != "range") return absl::InvalidArgumentError(absl::StrCat("no function '", name, "'"));
  const size_t n = args.positional.size();
  if (n < 1 || n > 3) return absl::InvalidArgumentError("range() takes 1 to 3 integers");
  for (const Value& a : args.positional) {
    if (a.kind() != Value::Kind::kInt) return absl::InvalidArgumentError("range() takes integers");
  }
  const int64_t start = n == 1 ? 0 : args.positional[0].as_int();
  const int64_t stop = n == 1 ? args.positional[0].as_int() : args.positional[1].as_int();
  const int64_t step = n == 3 ? args.positional[2].as_int() : 1;
  if (step == 0) return absl::InvalidArgumentError("range() step must not be zero");
  List items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (items.size() >= max_items) {
      return absl::InvalidArgumentError(
          absl::StrCat("range() longer than the loop iterations left (", max_items, ")"));
    }
    items.push_back(Value::Int(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::MakeList(std::move(items));
}

}  // namespace tessera::lm::jinja
