#include "client/lm/text/jinja/operators.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/builtins.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

using K = Value::Kind;

absl::Status TypeError(const std::string& op, const Value& a, const Value& b) {
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", op,
                                                 ": '", a.TypeName(), "' and '",
                                                 b.TypeName(), "'"));
}

absl::Status Overflow(const std::string& op) {
  return absl::InvalidArgumentError(absl::StrCat("integer overflow in '", op, "'"));
}

bool IsInt(const Value& v) { return v.kind() == K::kInt || v.kind() == K::kBool; }

// Python's floor division and modulo on integers (REQUIRES: b != 0).
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

absl::StatusOr<Value> Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (IsInt(a) && IsInt(b)) {
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) return Overflow(op);
      return Value::Int(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) return Overflow(op);
      return Value::Int(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) return Overflow(op);
      return Value::Int(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) return Overflow(op);
      const int64_t q = FloorDiv(x, y);
      return Value::Int(op == "//" ? q : x - q * y);
    }
    if (op == "**" && y >= 0) {
      if (y == 0) return Value::Int(1);
      if (x == 0 || x == 1) return Value::Int(x);
      if (x == -1) return Value::Int(y % 2 == 1 ? -1 : 1);
      int64_t p = 1;  // |x| >= 2: overflows within 63 steps
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(p, x, &p)) return Overflow(op);
      }
      return Value::Int(p);
    }
  }
  const double x = a.as_double();
  const double y = b.as_double();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "**") return Value::Float(std::pow(x, y));
  if (y == 0) return absl::InvalidArgumentError("float division by zero");
  if (op == "/") return Value::Float(x / y);
  const double q = std::floor(x / y);
  if (op == "//") return Value::Float(q);
  double m = std::fmod(x, y);
  if (m != 0 && ((m < 0) != (y < 0))) m += y;
  return Value::Float(m);
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t times, size_t max_bytes) {
  const size_t n = times > 0 ? static_cast<size_t>(times) : 0;
  const size_t unit = seq.is_string() ? seq.str().size() : seq.list().size();
  if (unit != 0 && n > max_bytes / unit) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition longer than max_output_bytes (", max_bytes, ")"));
  }
  if (seq.is_string()) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += seq.str();
    return Value::String(std::move(out));
  }
  List out;
  for (size_t i = 0; i < n; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
  return Value::MakeList(std::move(out));
}

}  // namespace

absl::StatusOr<Value> UnaryOp(const std::string& op, const Value& v) {
  if (op == "not") return Value::Bool(!v.Truthy());
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad operand type for unary ", op, ": '", v.TypeName(), "'"));
  }
  if (op == "+") return v.kind() == K::kBool ? Value::Int(v.as_int()) : v;
  if (v.kind() == K::kFloat) return Value::Float(-v.as_double());
  if (v.as_int() == INT64_MIN) return Overflow(op);
  return Value::Int(-v.as_int());
}

absl::StatusOr<Value> BinaryOp(const std::string& op, const Value& a, const Value& b,
                               size_t max_bytes) {
  if (op == "~") {
    std::string s = a.Str() + b.Str();
    if (s.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("string longer than max_output_bytes (", max_bytes, ")"));
    }
    return Value::String(std::move(s));
  }
  if (a.is_number() && b.is_number()) {
    if (op == "/") {
      if (b.as_double() == 0) return absl::InvalidArgumentError("division by zero");
      return Value::Float(a.as_double() / b.as_double());
    }
    return Arithmetic(op, a, b);
  }
  if (op == "+" && a.kind() == b.kind() && (a.is_string() || a.kind() == K::kList)) {
    const size_t size = a.is_string() ? a.str().size() + b.str().size()
                                      : a.list().size() + b.list().size();
    if (size > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("concatenation longer than max_output_bytes (", max_bytes, ")"));
    }
    if (a.is_string()) return Value::String(a.str() + b.str());
    List items = a.list();
    items.insert(items.end(), b.list().begin(), b.list().end());
    return Value::MakeList(std::move(items));
  }
  if (op == "*" && (a.is_string() || a.kind() == K::kList) && IsInt(b)) {
    return Repeat(a, b.as_int(), max_bytes);
  }
  if (op == "*" && (b.is_string() || b.kind() == K::kList) && IsInt(a)) {
    return Repeat(b, a.as_int(), max_bytes);
  }
  if (op == "%" && a.is_string()) {
    return absl::InvalidArgumentError("printf-style string formatting ('%') is not supported");
  }
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    return absl::InvalidArgumentError(
        absl::StrCat("'", u.str(), "' is undefined (operand of '", op, "')"));
  }
  return TypeError(op, a, b);
}

absl::StatusOr<bool> Compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.Equals(b);
  if (op == "!=") return !a.Equals(b);
  if (op == "in") return Contains(b, a);
  if (op == "notin") {
    TESSERA_ASSIGN_OR_RETURN(bool in, Contains(b, a));
    return !in;
  }
  if (op == "<") return Less(a, b);
  if (op == ">") return Less(b, a);
  if (op == "<=") {
    TESSERA_ASSIGN_OR_RETURN(bool greater, Less(b, a));
    return !greater;
  }
  TESSERA_ASSIGN_OR_RETURN(bool less, Less(a, b));  // >=
  return !less;
}

}  // namespace tessera::lm::jinja
