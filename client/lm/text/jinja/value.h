// File: value.h
// The values a Jinja template computes with, with Python's semantics as Jinja2 inherits them:
// undefined, none, booleans, 64-bit integers, floats, UTF-8 strings, lists (tuples are lists),
// dicts with string keys in insertion order, namespaces (mutable dicts) and the built-in
// functions. Lists and dicts are shared immutably (ImmutableSandboxedEnvironment: templates
// cannot mutate them); only a namespace's attributes can be assigned.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_VALUE_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_VALUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm::jinja {

class Value;
using List = std::vector<Value>;
// Insertion-ordered, as Python's dict; keys are unique.
using Dict = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace,
                    kFunction };

  Value() = default;  // undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value MakeList(List items);
  static Value MakeDict(Dict items);
  static Value MakeNamespace(Dict items);
  // A built-in function called by name ("raise_exception", "strftime_now", ...).
  static Value Function(std::string name);
  // An undefined value that remembers the name it stands for (for error messages).
  static Value Undefined(std::string name);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const {
    return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool;
  }
  bool is_mapping() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }

  // Nesting: 0 for a scalar, 1 + the deepest item for a list, dict or namespace (as built;
  // namespace attributes assigned later are not counted).
  int depth() const { return depth_; }
  // Whether a namespace is inside this value (or is it).
  bool ContainsNamespace() const;

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? int64_t{b_} : i_; }
  double as_double() const {
    return kind_ == Kind::kFloat ? d_ : static_cast<double>(as_int());
  }
  // The string (kString), the function's name (kFunction) or the undefined name.
  const std::string& str() const { return s_; }
  const List& list() const;
  const Dict& dict() const;  // kDict or kNamespace
  // A namespace's attributes (the only mutable value).
  Dict& mutable_namespace() const;

  // The value of `key` in a mapping; nullptr when absent (or not a mapping).
  const Value* Find(absl::string_view key) const;

  // Python's truth value (undefined is false).
  bool Truthy() const;
  // Python's str() (Jinja's output and the `string` filter); undefined is "".
  std::string Str() const;
  // Python's repr().
  std::string Repr() const;
  // Python's ==, with Jinja's undefined (equal only to undefined).
  bool Equals(const Value& other) const;
  // "string", "int", "list", ... as Python names the type (for messages).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  int depth_ = 0;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
};

// d[key] = v: replaces the value of an existing key, else appends (Python's dict order).
void SetKey(Dict* d, const std::string& key, Value v);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_VALUE_H_
