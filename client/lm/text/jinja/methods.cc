// Item access, slicing, iteration, `in`, ordering and the Python methods of builtins.h.
#include <algorithm>
#include <cctype>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/builtins.h"
#include "client/lm/text/jinja/lexer.h"
#include "core/base/status_macros.h"
#include "core/base/utf8.h"

namespace tessera::lm::jinja {
namespace {

absl::Status Error(absl::string_view what) { return absl::InvalidArgumentError(what); }

// The code points of a UTF-8 string, each as its bytes.
std::vector<std::string> CodePoints(absl::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    char32_t c = 0;
    size_t len = 1;
    if (!DecodeUtf8Char(s, i, &c, &len)) len = 1;
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

absl::StatusOr<std::string> StringArg(const Args& args, size_t i, const char* method) {
  if (args.positional.size() <= i || !args.positional[i].is_string()) {
    return Error(absl::StrCat(method, "() argument ", i + 1, " must be a string"));
  }
  return args.positional[i].str();
}

// Python's str.strip(chars) family; chars none/absent: whitespace.
absl::StatusOr<Value> Strip(const Value& s, const Args& args, bool left, bool right,
                            const char* method) {
  if (args.positional.empty() || args.positional[0].is_none()) {
    return Value::String(PyStrip(s.str(), left, right));
  }
  TESSERA_ASSIGN_OR_RETURN(std::string chars, StringArg(args, 0, method));
  const std::vector<std::string> set = CodePoints(chars);
  std::vector<std::string> cps = CodePoints(s.str());
  const auto in_set = [&](const std::string& c) {
    return std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t begin = 0;
  size_t end = cps.size();
  while (left && begin < end && in_set(cps[begin])) ++begin;
  while (right && end > begin && in_set(cps[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return Value::String(std::move(out));
}

// Python's str.split(sep=None, maxsplit=-1).
absl::StatusOr<Value> Split(const std::string& s, const Args& args) {
  const Value* sep = args.positional.empty() ? nullptr : &args.positional[0];
  for (const auto& [k, v] : args.keyword) {
    if (k == "sep") sep = &v;
  }
  int64_t maxsplit = args.positional.size() > 1 ? args.positional[1].as_int() : -1;
  for (const auto& [k, v] : args.keyword) {
    if (k == "maxsplit") maxsplit = v.as_int();
  }
  List parts;
  if (sep == nullptr || sep->is_none()) {
    const std::vector<std::string> cps = CodePoints(s);
    const auto space = [&](size_t i) {
      char32_t c = 0;
      size_t len = 0;
      return DecodeUtf8Char(cps[i], 0, &c, &len) && IsPyWhitespace(c);
    };
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && space(i)) ++i;
      if (i == cps.size()) break;
      std::string word;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        for (; i < cps.size(); ++i) word += cps[i];
        parts.push_back(Value::String(PyStrip(word, false, true)));
        break;
      }
      for (; i < cps.size() && !space(i); ++i) word += cps[i];
      parts.push_back(Value::String(std::move(word)));
    }
    return Value::MakeList(std::move(parts));
  }
  if (!sep->is_string()) return Error("split() separator must be a string or None");
  if (sep->str().empty()) return Error("split(): empty separator");
  size_t from = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    const size_t at = s.find(sep->str(), from);
    if (at == std::string::npos) break;
    parts.push_back(Value::String(s.substr(from, at - from)));
    from = at + sep->str().size();
  }
  parts.push_back(Value::String(s.substr(from)));
  return Value::MakeList(std::move(parts));
}

// Normalizes a Python index or slice bound against `size`.
int64_t Clamp(int64_t i, int64_t size, int64_t low, int64_t high) {
  if (i < 0) i += size;
  return std::clamp(i, low, high);
}

}  // namespace

std::string AsciiCase(std::string s, bool upper) {
  for (char& c : s) {
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

absl::StatusOr<Value> CallMethod(const Value& object, const std::string& name,
                                 const Args& args) {
  if (object.is_string()) {
    const std::string& s = object.str();
    if (name == "strip") return Strip(object, args, true, true, "strip");
    if (name == "lstrip") return Strip(object, args, true, false, "lstrip");
    if (name == "rstrip") return Strip(object, args, false, true, "rstrip");
    if (name == "upper" || name == "lower") return Value::String(AsciiCase(s, name == "upper"));
    if (name == "split") return Split(s, args);
    if (name == "startswith" || name == "endswith") {
      if (args.positional.empty()) return Error(absl::StrCat(name, "() takes an argument"));
      List options = args.positional[0].kind() == Value::Kind::kList
                         ? args.positional[0].list()
                         : List{args.positional[0]};
      for (const Value& o : options) {
        if (!o.is_string()) return Error(absl::StrCat(name, "() argument must be a string"));
        const std::string& p = o.str();
        const bool hit = p.size() <= s.size() &&
                         (name == "startswith" ? s.compare(0, p.size(), p) == 0
                                               : s.compare(s.size() - p.size(), p.size(), p) == 0);
        if (hit) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (name == "replace") return CallFilter("replace", object, args);
    if (name == "title" || name == "capitalize") return CallFilter(name, object, args);
    if (name == "join") {
      if (args.positional.size() != 1) return Error("join() takes one argument");
      TESSERA_ASSIGN_OR_RETURN(List items, Iterate(args.positional[0]));
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) return Error("join(): sequence item is not a string");
        if (i > 0) out += s;
        out += items[i].str();
      }
      return Value::String(std::move(out));
    }
    if (name == "find" || name == "count") {
      TESSERA_ASSIGN_OR_RETURN(std::string needle, StringArg(args, 0, name.c_str()));
      if (name == "count") {
        if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePoints(s).size()) + 1);
        int64_t n = 0;
        for (size_t at = s.find(needle); at != std::string::npos;
             at = s.find(needle, at + needle.size())) {
          ++n;
        }
        return Value::Int(n);
      }
      const size_t at = s.find(needle);
      if (at == std::string::npos) return Value::Int(-1);
      return Value::Int(static_cast<int64_t>(CodePoints(s.substr(0, at)).size()));
    }
  }
  if (object.kind() == Value::Kind::kDict) {
    if (name == "items" || name == "keys" || name == "values") {
      List out;
      for (const auto& [k, v] : object.dict()) {
        if (name == "items") {
          out.push_back(Value::MakeList({Value::String(k), v}));
        } else {
          out.push_back(name == "keys" ? Value::String(k) : v);
        }
      }
      return Value::MakeList(std::move(out));
    }
    if (name == "get") {
      if (args.positional.empty()) return Error("get() takes a key");
      if (!args.positional[0].is_string()) return Value::None();
      const Value* v = object.Find(args.positional[0].str());
      if (v != nullptr) return *v;
      return args.positional.size() > 1 ? args.positional[1] : Value::None();
    }
  }
  if (object.is_undefined()) {
    return Error(absl::StrCat("'", object.str(), "' is undefined (calling .", name, "())"));
  }
  return Error(absl::StrCat("unsupported method ", object.TypeName(), ".", name, "()"));
}

Value GetAttr(const Value& object, const std::string& name) {
  if (const Value* v = object.Find(name)) return *v;
  return Value::Undefined(name);
}

absl::StatusOr<Value> GetItem(const Value& object, const Value& key) {
  if (object.is_mapping()) {
    if (!key.is_string()) return Value::Undefined(key.Repr());
    return GetAttr(object, key.str());
  }
  if (object.kind() == Value::Kind::kList || object.is_string()) {
    if (key.kind() != Value::Kind::kInt && key.kind() != Value::Kind::kBool) {
      return Error(absl::StrCat(object.TypeName(), " indices must be integers, not ",
                                key.TypeName()));
    }
    const std::vector<std::string> cps =
        object.is_string() ? CodePoints(object.str()) : std::vector<std::string>();
    const auto size = static_cast<int64_t>(object.is_string() ? cps.size()
                                                               : object.list().size());
    int64_t i = key.as_int();
    if (i < 0) i += size;
    if (i < 0 || i >= size) return Value::Undefined(absl::StrCat("[", key.as_int(), "]"));
    if (object.is_string()) return Value::String(cps[static_cast<size_t>(i)]);
    return object.list()[static_cast<size_t>(i)];
  }
  if (object.is_undefined()) {
    return Error(absl::StrCat("'", object.str(), "' is undefined (subscripted)"));
  }
  return Value::Undefined(key.Repr());
}

absl::StatusOr<Value> Slice(const Value& object, const Value* start, const Value* stop,
                            const Value* step) {
  const bool is_string = object.is_string();
  if (!is_string && object.kind() != Value::Kind::kList) {
    return Error(absl::StrCat("cannot slice a value of type ", object.TypeName()));
  }
  for (const Value* b : {start, stop, step}) {
    if (b != nullptr && !b->is_none() && b->kind() != Value::Kind::kInt) {
      return Error("slice indices must be integers or None");
    }
  }
  const std::vector<std::string> cps = is_string ? CodePoints(object.str())
                                                 : std::vector<std::string>();
  const auto n = static_cast<int64_t>(is_string ? cps.size() : object.list().size());
  const int64_t st = step != nullptr && !step->is_none() ? step->as_int() : 1;
  if (st == 0) return Error("slice step cannot be zero");
  const auto given = [](const Value* v) { return v != nullptr && !v->is_none(); };
  int64_t lo = 0;
  int64_t hi = 0;
  if (st > 0) {
    lo = given(start) ? Clamp(start->as_int(), n, 0, n) : 0;
    hi = given(stop) ? Clamp(stop->as_int(), n, 0, n) : n;
  } else {
    lo = given(start) ? Clamp(start->as_int(), n, -1, n - 1) : n - 1;
    hi = given(stop) ? Clamp(stop->as_int(), n, -1, n - 1) : -1;
  }
  std::string s;
  List items;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
    if (is_string) {
      s += cps[static_cast<size_t>(i)];
    } else {
      items.push_back(object.list()[static_cast<size_t>(i)]);
    }
  }
  return is_string ? Value::String(std::move(s)) : Value::MakeList(std::move(items));
}

absl::StatusOr<List> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return List();
    case Value::Kind::kList: return v.list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.dict()) keys.push_back(Value::String(kv.first));
      return keys;
    }
    case Value::Kind::kString: {
      List out;
      for (std::string& c : CodePoints(v.str())) out.push_back(Value::String(std::move(c)));
      return out;
    }
    default: return Error(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<bool> Contains(const Value& haystack, const Value& needle) {
  if (haystack.is_string()) {
    if (!needle.is_string()) {
      return Error(absl::StrCat("'in <string>' requires string as left operand, not ",
                                needle.TypeName()));
    }
    return haystack.str().find(needle.str()) != std::string::npos;
  }
  if (haystack.is_mapping()) return needle.is_string() && haystack.Find(needle.str()) != nullptr;
  TESSERA_ASSIGN_OR_RETURN(List items, Iterate(haystack));
  for (const Value& item : items) {
    if (item.Equals(needle)) return true;
  }
  return false;
}

absl::StatusOr<bool> Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat) {
      return a.as_double() < b.as_double();
    }
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order = code points
  if (a.kind() == Value::Kind::kList && b.kind() == Value::Kind::kList) {
    const List& x = a.list();
    const List& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i].Equals(y[i])) continue;
      return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return Error(absl::StrCat("'<' not supported between instances of '", a.TypeName(),
                            "' and '", b.TypeName(), "'"));
}

}  // namespace tessera::lm::jinja
