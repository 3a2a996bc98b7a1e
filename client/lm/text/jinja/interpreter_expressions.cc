// The Interpreter's expressions (interpreter.h): names, literals, attribute and item access,
// slices, calls (globals, methods, macros), filters, tests, operators, and/or, chained
// comparisons and conditionals, with the depth and built-bytes limits.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/interpreter.h"
#include "client/lm/text/jinja/lexer.h"
#include "client/lm/text/jinja/operators.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {

using Kind = Expr::Kind;

absl::StatusOr<Args> Interpreter::EvalArgs(const Expr& e, size_t first) {
  Args args;
  for (size_t i = first; i < e.args.size(); ++i) {
    TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [k, x] : e.kwargs) {
    TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*x));
    args.keyword.emplace_back(k, std::move(v));
  }
  return args;
}

absl::StatusOr<Value> Interpreter::Eval(const Expr& e) {
  DepthGuard guard(&depth_);
  TESSERA_RETURN_IF_ERROR(CheckDepth(e.location));
  absl::StatusOr<Value> v = EvalUnchecked(e);
  if (!v.ok()) return At(e.location, v.status());
  if (v->depth() > limits_.max_depth) {
    return ErrorAt(e.location,
                   absl::StrCat("a value nested deeper than max_depth (", limits_.max_depth, ")"));
  }
  if (v->is_string() &&
      (e.kind == Kind::kBinary || e.kind == Kind::kFilter || e.kind == Kind::kCall)) {
    built_bytes_ += v->str().size();
    if (built_bytes_ > limits_.max_built_bytes) {
      return ErrorAt(e.location, absl::StrCat("strings built longer than max_built_bytes (",
                                              limits_.max_built_bytes, ") in all"));
    }
  }
  return v;
}

absl::StatusOr<Value> Interpreter::EvalUnchecked(const Expr& e) {
  switch (e.kind) {
    case Kind::kLiteral: return e.literal;
    case Kind::kName: return Lookup(e.name);
    case Kind::kList: {
      TESSERA_ASSIGN_OR_RETURN(Args items, EvalArgs(e, 0));
      return Value::MakeList(std::move(items.positional));
    }
    case Kind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        TESSERA_ASSIGN_OR_RETURN(Value k, Eval(*e.args[i]));
        TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1]));
        if (!k.is_string()) return absl::InvalidArgumentError("dict keys must be strings");
        SetKey(&d, k.str(), std::move(v));
      }
      return Value::MakeDict(std::move(d));
    }
    case Kind::kGetAttr: {
      TESSERA_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
      if (obj.is_undefined()) return Undefined(obj, e.name);
      return GetAttr(obj, e.name);
    }
    case Kind::kGetItem: {
      TESSERA_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
      TESSERA_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
      if (obj.is_undefined()) return Undefined(obj, key.Repr());
      return GetItem(obj, key);
    }
    case Kind::kSlice: {
      TESSERA_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
      Value bounds[3];
      for (size_t i = 0; i < 3; ++i) {
        if (e.args[i + 1] == nullptr) continue;
        TESSERA_ASSIGN_OR_RETURN(bounds[i], Eval(*e.args[i + 1]));
      }
      const auto given = [&](size_t i) { return e.args[i + 1] != nullptr ? &bounds[i] : nullptr; };
      return Slice(obj, given(0), given(1), given(2));
    }
    case Kind::kCall: return EvalCall(e);
    case Kind::kFilter: {
      TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      TESSERA_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
      if (v.kind() == Value::Kind::kList) {
        TESSERA_RETURN_IF_ERROR(Count(e.location, v.list().size()));
      }
      return CallFilter(e.name, v, args);
    }
    case Kind::kTest: {
      TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      TESSERA_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
      TESSERA_ASSIGN_OR_RETURN(bool r, CallTest(e.name, v, args));
      return Value::Bool(r != e.negated);
    }
    case Kind::kUnary: {
      TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      return UnaryOp(e.name, v);
    }
    case Kind::kBinary: {
      TESSERA_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
      TESSERA_ASSIGN_OR_RETURN(Value b, Eval(*e.args[1]));
      return BinaryOp(e.name, a, b, limits_.max_output_bytes);
    }
    case Kind::kAnd:
    case Kind::kOr: {
      TESSERA_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
      if (a.Truthy() == (e.kind == Kind::kOr)) return a;
      return Eval(*e.args[1]);
    }
    case Kind::kCompare: {
      TESSERA_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        TESSERA_ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1]));
        TESSERA_ASSIGN_OR_RETURN(bool r, Compare(e.ops[i], left, right));
        if (!r) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case Kind::kCondition: {
      TESSERA_ASSIGN_OR_RETURN(Value c, Eval(*e.args[0]));
      if (c.Truthy()) return Eval(*e.args[1]);
      if (e.args[2] == nullptr) return Value::Undefined("");
      return Eval(*e.args[2]);
    }
  }
  return absl::InternalError("unknown expression");
}

absl::Status Interpreter::Undefined(const Value& obj, const std::string& member) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", obj.str(), "' is undefined (looking up '", member, "' in it)"));
}

absl::StatusOr<Value> Interpreter::EvalCall(const Expr& e) {
  const Expr& callee = *e.args[0];
  if (callee.kind == Kind::kGetAttr) {
    TESSERA_ASSIGN_OR_RETURN(Value obj, Eval(*callee.args[0]));
    TESSERA_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
    return CallMethod(obj, callee.name, args);
  }
  TESSERA_ASSIGN_OR_RETURN(Value f, Eval(callee));
  TESSERA_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
  if (f.kind() != Value::Kind::kFunction) {
    if (f.is_undefined()) {
      return absl::InvalidArgumentError(absl::StrCat("'", f.str(), "' is undefined"));
    }
    return absl::InvalidArgumentError(absl::StrCat("'", f.TypeName(), "' object is not callable"));
  }
  const std::string& name = f.str();
  if (name[0] == '#') return CallClosure(std::stoul(name.substr(1)), args);
  const uint64_t budget =
      limits_.max_loop_iterations - std::min(iterations_, limits_.max_loop_iterations);
  TESSERA_ASSIGN_OR_RETURN(Value v, CallGlobal(name, args, now_, budget));
  if (name == "range") TESSERA_RETURN_IF_ERROR(Count(e.location, v.list().size()));
  return v;
}
}  // namespace tessera::lm::jinja
