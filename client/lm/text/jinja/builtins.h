// File: builtins.h
// Jinja2's built-in filters and tests, and the Python methods chat templates call on strings
// and dicts, with the semantics of Jinja2 3.1 and CPython; plus item access and slicing.
// Strings index, slice and count by code point, as Python's. Errors are INVALID_ARGUMENT
// without a location (the interpreter adds it).
//
// Filters: abs, capitalize, count, d, default, first, float, int, items, join, last, length,
//   list, lower, map, reject, rejectattr, replace, reverse, safe, select, selectattr, string,
//   title, tojson (transformers' json.dumps version), trim, unique, upper.
// Tests: boolean, callable, defined, divisibleby, eq, equalto, even, false, float, ge, gt, in,
//   integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas, sequence,
//   string, true, undefined, upper (and ==, !=, <, <=, >, >=).
// Globals: raise_exception, strftime_now, namespace, dict, range.
// Methods: str.strip/lstrip/rstrip/split/startswith/endswith/replace/upper/lower/title/
//   capitalize/join/find/count, dict.items/keys/values/get.
// upper, lower, title and capitalize change ASCII letters only.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_BUILTINS_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_BUILTINS_H_

#include <cstdint>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

absl::StatusOr<Value> CallFilter(const std::string& name, const Value& v, const Args& args);
absl::StatusOr<bool> CallTest(const std::string& name, const Value& v, const Args& args);
absl::StatusOr<Value> CallMethod(const Value& object, const std::string& name,
                                 const Args& args);

// The global functions: raise_exception(message) (transformers: fails the rendering with the
// message), strftime_now(format) (formats `now`), namespace(...) and dict(...) (from
// mappings and keyword arguments), range([start,] stop[, step]) (at most max_items items).
absl::StatusOr<Value> CallGlobal(const std::string& name, const Args& args, const std::tm& now,
                                 uint64_t max_items);

// obj.name (Jinja's getattr: a dict's item; otherwise undefined).
Value GetAttr(const Value& object, const std::string& name);
// obj[key]: a dict's item, a list's or string's element (negative from the end); undefined
// when absent or out of range. Errors: an index of the wrong type.
absl::StatusOr<Value> GetItem(const Value& object, const Value& key);
// obj[start:stop:step] with Python's rules (null values omitted).
absl::StatusOr<Value> Slice(const Value& object, const Value* start, const Value* stop,
                            const Value* step);
// The items iterating over v yields (list items, dict keys, string code points; none for
// undefined). Errors: v is not iterable.
absl::StatusOr<List> Iterate(const Value& v);
// Python's `needle in haystack`.
absl::StatusOr<bool> Contains(const Value& haystack, const Value& needle);
// Python's a < b for numbers, strings and lists. Errors: other types.
absl::StatusOr<bool> Less(const Value& a, const Value& b);
// s with its ASCII letters in upper (or lower) case.
std::string AsciiCase(std::string s, bool upper);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_BUILTINS_H_
