// The Value type: construction, access, and Python's truth, str(), repr() and ==.
#include "client/lm/text/jinja/value.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/python_repr.h"

namespace tessera::lm::jinja {
namespace {

const List& EmptyList() {
  static const List* const kEmpty = new List();
  return *kEmpty;
}

const Dict& EmptyDict() {
  static const Dict* const kEmpty = new Dict();
  return *kEmpty;
}

}  // namespace

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.d_ = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::move(s);
  return v;
}

Value Value::MakeList(List items) {
  Value v;
  v.kind_ = Kind::kList;
  for (const Value& item : items) v.depth_ = std::max(v.depth_, item.depth_ + 1);
  if (items.empty()) v.depth_ = 1;
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::MakeDict(Dict items) {
  Value v;
  v.kind_ = Kind::kDict;
  v.depth_ = 1;
  for (const auto& kv : items) v.depth_ = std::max(v.depth_, kv.second.depth_ + 1);
  v.dict_ = std::make_shared<Dict>(std::move(items));
  return v;
}

Value Value::MakeNamespace(Dict items) {
  Value v = MakeDict(std::move(items));
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::Function(std::string name) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.s_ = std::move(name);
  return v;
}

Value Value::Undefined(std::string name) {
  Value v;
  v.s_ = std::move(name);
  return v;
}

const List& Value::list() const { return list_ != nullptr ? *list_ : EmptyList(); }

const Dict& Value::dict() const { return dict_ != nullptr ? *dict_ : EmptyDict(); }

Dict& Value::mutable_namespace() const { return *dict_; }

const Value* Value::Find(absl::string_view key) const {
  if (!is_mapping()) return nullptr;
  for (const auto& [k, v] : dict()) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Value::ContainsNamespace() const {
  if (kind_ == Kind::kNamespace) return true;
  for (const Value& item : list()) {
    if (item.ContainsNamespace()) return true;
  }
  for (const auto& kv : dict()) {
    if (kv.second.ContainsNamespace()) return true;
  }
  return false;
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return d_ != 0;
    case Kind::kString: return !s_.empty();
    case Kind::kList: return !list().empty();
    case Kind::kDict: return !dict().empty();
    default: return true;
  }
}

std::string Value::Str() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kString: return s_;
    default: return Repr();
  }
}

std::string Value::Repr() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "None";
    case Kind::kBool: return b_ ? "True" : "False";
    case Kind::kInt: return std::to_string(i_);
    case Kind::kFloat: return PyFloatRepr(d_);
    case Kind::kString: return PyStringRepr(s_);
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < list().size(); ++i) {
        if (i > 0) out += ", ";
        out += list()[i].Repr();
      }
      return out + "]";
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = kind_ == Kind::kNamespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict().size(); ++i) {
        if (i > 0) out += ", ";
        absl::StrAppend(&out, PyStringRepr(dict()[i].first), ": ", dict()[i].second.Repr());
      }
      return out + (kind_ == Kind::kNamespace ? "}>" : "}");
    }
    case Kind::kFunction: return absl::StrCat("<function ", s_, ">");
  }
  return "";
}

bool Value::Equals(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (kind_ == Kind::kFloat || other.kind_ == Kind::kFloat) {
      return as_double() == other.as_double();
    }
    return as_int() == other.as_int();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString:
    case Kind::kFunction: return s_ == other.s_;
    case Kind::kList: {
      if (list().size() != other.list().size()) return false;
      for (size_t i = 0; i < list().size(); ++i) {
        if (!list()[i].Equals(other.list()[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (dict().size() != other.dict().size()) return false;
      for (const auto& [k, v] : dict()) {
        const Value* o = other.Find(k);
        if (o == nullptr || !v.Equals(*o)) return false;
      }
      return true;
    }
    case Kind::kNamespace: return dict_ == other.dict_;
    default: return false;
  }
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kFunction: return "function";
  }
  return "";
}

void SetKey(Dict* d, const std::string& key, Value v) {
  for (auto& [k, old] : *d) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  d->emplace_back(key, std::move(v));
}

}  // namespace tessera::lm::jinja
