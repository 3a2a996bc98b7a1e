// The filters and tests of builtins.h (Jinja2 3.1's filters.py and tests.py; tojson as
// transformers' chat_template_utils defines it).
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/builtins.h"
#include "client/lm/text/jinja/lexer.h"
#include "client/lm/text/jinja/tojson.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

absl::Status Error(absl::string_view what) { return absl::InvalidArgumentError(what); }

// The argument at `index` or named `name`; nullptr when not given.
const Value* Arg(const Args& args, size_t index, absl::string_view name) {
  for (const auto& [k, v] : args.keyword) {
    if (k == name) return &v;
  }
  return index < args.positional.size() ? &args.positional[index] : nullptr;
}

// The arguments from `from` on, as a test's arguments.
Args Rest(const Args& args, size_t from) {
  Args rest;
  for (size_t i = from; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  return rest;
}

absl::StatusOr<Value> Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Value::Int(0);
    case Value::Kind::kList: return Value::Int(static_cast<int64_t>(v.list().size()));
    case Value::Kind::kDict: return Value::Int(static_cast<int64_t>(v.dict().size()));
    case Value::Kind::kString: {
      TESSERA_ASSIGN_OR_RETURN(List cps, Iterate(v));
      return Value::Int(static_cast<int64_t>(cps.size()));
    }
    default: return Error(absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
  }
}

absl::StatusOr<Value> ToJsonFilter(const Value& v, const Args& args) {
  JsonOptions o;
  if (const Value* a = Arg(args, 0, "ensure_ascii"); a != nullptr && a->Truthy()) {
    return Error("tojson: ensure_ascii=True is not supported");
  }
  if (const Value* indent = Arg(args, 1, "indent"); indent != nullptr && !indent->is_none()) {
    if (indent->kind() != Value::Kind::kInt || indent->as_int() < 0 || indent->as_int() > 64) {
      return Error("tojson: indent must be an integer in [0, 64]");
    }
    o.indent = static_cast<int>(indent->as_int());
  }
  if (const Value* sep = Arg(args, 2, "separators"); sep != nullptr && !sep->is_none()) {
    if (sep->kind() != Value::Kind::kList || sep->list().size() != 2 ||
        !sep->list()[0].is_string() || !sep->list()[1].is_string()) {
      return Error("tojson: separators must be a pair of strings");
    }
    o.item_separator = sep->list()[0].str();
    o.key_separator = sep->list()[1].str();
  }
  if (const Value* sort = Arg(args, 3, "sort_keys")) o.sort_keys = sort->Truthy();
  TESSERA_ASSIGN_OR_RETURN(std::string json, ToJson(v, o));
  return Value::String(std::move(json));
}

absl::StatusOr<Value> Replace(const Value& v, const Args& args) {
  const Value* old_value = Arg(args, 0, "old");
  const Value* new_value = Arg(args, 1, "new");
  if (old_value == nullptr || new_value == nullptr || !old_value->is_string() ||
      !new_value->is_string()) {
    return Error("replace: needs two string arguments");
  }
  const Value* count = Arg(args, 2, "count");
  int64_t left = count != nullptr && !count->is_none() ? count->as_int() : -1;
  const std::string s = v.Str();
  const std::string& from = old_value->str();
  std::string out;
  size_t pos = 0;
  if (from.empty()) {  // Python inserts the replacement between code points
    TESSERA_ASSIGN_OR_RETURN(List cps, Iterate(Value::String(s)));
    for (const Value& c : cps) {
      if (left != 0) {
        out += new_value->str();
        --left;
      }
      out += c.str();
    }
    if (left != 0) out += new_value->str();
    return Value::String(std::move(out));
  }
  while (left != 0) {
    const size_t at = s.find(from, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += new_value->str();
    pos = at + from.size();
    --left;
  }
  out.append(s, pos, std::string::npos);
  return Value::String(std::move(out));
}

// Python's str.capitalize() (the first character upper) or Jinja's title (each word's first
// letter upper, words split at whitespace and "-({[<"), on ASCII letters.
std::string Capitalize(const std::string& s, bool each_word) {
  std::string out = AsciiCase(s, false);
  bool start = true;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (start && std::isalpha(u)) c = static_cast<char>(std::toupper(u));
    start = each_word && (std::isspace(u) || std::string_view("-({[<").find(c) !=
                                                 std::string_view::npos);
  }
  return out;
}

// select/reject (attribute empty) and selectattr/rejectattr.
absl::StatusOr<Value> Select(const Value& v, const Args& args, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return Error("selectattr/rejectattr: needs an attribute name");
    }
    attribute = args.positional[next++].str();
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return Error("select: the test name must be a string");
    test = args.positional[next++].str();
  }
  const Args test_args = Rest(args, next);
  TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
  List out;
  for (const Value& item : items) {
    const Value subject = by_attribute ? GetAttr(item, attribute) : item;
    bool hit = subject.Truthy();
    if (!test.empty()) {
      TESSERA_ASSIGN_OR_RETURN(hit, CallTest(test, subject, test_args));
    }
    if (hit == keep) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

absl::StatusOr<Value> Map(const Value& v, const Args& args) {
  TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
  List out;
  if (const Value* attribute = Arg(args, 99, "attribute")) {
    const Value* fallback = Arg(args, 99, "default");
    for (const Value& item : items) {
      Value x = GetAttr(item, attribute->Str());
      out.push_back(x.is_undefined() && fallback != nullptr ? *fallback : x);
    }
    return Value::MakeList(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return Error("map: needs a filter name or attribute=");
  }
  const Args filter_args = Rest(args, 1);
  for (const Value& item : items) {
    TESSERA_ASSIGN_OR_RETURN(Value x, CallFilter(args.positional[0].str(), item, filter_args));
    out.push_back(std::move(x));
  }
  return Value::MakeList(std::move(out));
}

}  // namespace

absl::StatusOr<Value> CallFilter(const std::string& name, const Value& v, const Args& args) {
  if (name == "length" || name == "count") return Length(v);
  if (name == "string") return Value::String(v.Str());
  if (name == "safe") return v;
  if (name == "tojson") return ToJsonFilter(v, args);
  if (name == "trim") return CallMethod(Value::String(v.Str()), "strip", args);
  if (name == "upper" || name == "lower") return Value::String(AsciiCase(v.Str(), name == "upper"));
  if (name == "capitalize" || name == "title") {
    return Value::String(Capitalize(v.Str(), name == "title"));
  }
  if (name == "replace") return Replace(v, args);
  if (name == "default" || name == "d") {
    const Value* fallback = Arg(args, 0, "default_value");
    const Value* boolean = Arg(args, 1, "boolean");
    const bool use = v.is_undefined() || (boolean != nullptr && boolean->Truthy() && !v.Truthy());
    if (!use) return v;
    return fallback != nullptr ? *fallback : Value::String("");
  }
  if (name == "first" || name == "last") {
    TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
    if (items.empty()) return Value::Undefined(absl::StrCat("|", name, " of an empty sequence"));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
    return Value::MakeList(std::move(items));
  }
  if (name == "reverse") {
    TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
    if (v.is_string()) {
      std::string out;
      for (auto it = items.rbegin(); it != items.rend(); ++it) out += it->str();
      return Value::String(std::move(out));
    }
    return Value::MakeList(List(items.rbegin(), items.rend()));
  }
  if (name == "unique") {
    TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
    List out;
    for (const Value& item : items) {
      bool seen = false;
      for (const Value& o : out) seen = seen || o.Equals(item);
      if (!seen) out.push_back(item);
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "join") {
    TESSERA_ASSIGN_OR_RETURN(List items, Iterate(v));
    const Value* sep = Arg(args, 0, "d");
    const Value* attribute = Arg(args, 1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0 && sep != nullptr) out += sep->Str();
      out += attribute != nullptr ? GetAttr(items[i], attribute->Str()).Str() : items[i].Str();
    }
    return Value::String(std::move(out));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::MakeList({});
    if (!v.is_mapping()) return Error("items: can only get item pairs from a mapping");
    return CallMethod(Value::MakeDict(v.dict()), "items", {});
  }
  if (name == "int" || name == "float") {
    const Value* fallback = Arg(args, 0, "default");
    const Value dflt = fallback != nullptr
                           ? *fallback
                           : (name == "int" ? Value::Int(0) : Value::Float(0));
    if (v.is_number()) {
      if (name == "float") return Value::Float(v.as_double());
      return Value::Int(v.kind() == Value::Kind::kFloat ? static_cast<int64_t>(v.as_double())
                                                        : v.as_int());
    }
    if (!v.is_string()) return dflt;
    const std::string s = PyStrip(v.str());
    int64_t i = 0;
    double d = 0;
    if (name == "int" && absl::SimpleAtoi(s, &i)) return Value::Int(i);
    if (absl::SimpleAtod(s, &d) && std::isfinite(d)) {
      return name == "int" ? Value::Int(static_cast<int64_t>(d)) : Value::Float(d);
    }
    return dflt;
  }
  if (name == "abs") {
    if (v.kind() == Value::Kind::kFloat) return Value::Float(std::fabs(v.as_double()));
    if (v.is_number()) return Value::Int(std::llabs(v.as_int()));
    return Error(absl::StrCat("bad operand type for abs(): '", v.TypeName(), "'"));
  }
  if (name == "select" || name == "reject") return Select(v, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") {
    return Select(v, args, true, name == "selectattr");
  }
  if (name == "map") return Map(v, args);
  return Error(absl::StrCat("unsupported filter '", name, "'"));
}

absl::StatusOr<bool> CallTest(const std::string& name, const Value& v, const Args& args) {
  using K = Value::Kind;
  const Value* arg = args.positional.empty() ? nullptr : &args.positional[0];
  const auto need_arg = [&]() -> absl::Status {
    if (arg == nullptr) return Error(absl::StrCat("test '", name, "' needs an argument"));
    return absl::OkStatus();
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_mapping();
  if (name == "boolean") return v.kind() == K::kBool;
  if (name == "true") return v.kind() == K::kBool && v.as_bool();
  if (name == "false") return v.kind() == K::kBool && !v.as_bool();
  if (name == "integer") return v.kind() == K::kInt;
  if (name == "float") return v.kind() == K::kFloat;
  if (name == "number") return v.is_number();
  if (name == "callable") return v.kind() == K::kFunction;
  if (name == "iterable") {
    return v.kind() == K::kList || v.kind() == K::kDict || v.is_string() || v.is_undefined();
  }
  if (name == "sequence") return v.kind() == K::kList || v.kind() == K::kDict || v.is_string();
  if (name == "lower" || name == "upper") {
    return v.is_string() && AsciiCase(v.str(), name == "upper") == v.str();
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.kind() != K::kInt && v.kind() != K::kBool) {
      return Error(absl::StrCat("test '", name, "' needs an integer, got ", v.TypeName()));
    }
    if (name != "divisibleby") return (v.as_int() % 2 != 0) == (name == "odd");
    TESSERA_RETURN_IF_ERROR(need_arg());
    if (!arg->is_number() || arg->as_int() == 0) return Error("divisibleby: bad divisor");
    return v.as_int() % arg->as_int() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "ne" || name == "!=") {
    TESSERA_RETURN_IF_ERROR(need_arg());
    return v.Equals(*arg) == (name != "ne" && name != "!=");
  }
  if (name == "sameas") {
    TESSERA_RETURN_IF_ERROR(need_arg());
    return v.kind() == arg->kind() && (v.kind() == K::kNone || v.kind() == K::kBool
                                           ? v.Equals(*arg)
                                           : false);
  }
  if (name == "lt" || name == "<" || name == "gt" || name == ">") {
    TESSERA_RETURN_IF_ERROR(need_arg());
    return name == "lt" || name == "<" ? Less(v, *arg) : Less(*arg, v);
  }
  if (name == "le" || name == "<=" || name == "ge" || name == ">=") {
    TESSERA_RETURN_IF_ERROR(need_arg());
    TESSERA_ASSIGN_OR_RETURN(bool less, name == "le" || name == "<=" ? Less(*arg, v)
                                                                     : Less(v, *arg));
    return !less;
  }
  if (name == "in") {
    TESSERA_RETURN_IF_ERROR(need_arg());
    return Contains(*arg, v);
  }
  return Error(absl::StrCat("unsupported test '", name, "'"));
}

}  // namespace tessera::lm::jinja
