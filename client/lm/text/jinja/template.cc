// Template::Parse and the renderer: statements, expressions, scopes, globals and limits.
#include "client/lm/text/jinja/template.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/ast.h"
#include "client/lm/text/jinja/builtins.h"
#include "client/lm/text/jinja/lexer.h"
#include "client/lm/text/jinja/operators.h"
#include "client/lm/text/jinja/parser.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

using Kind = Expr::Kind;

// Prefixes an error from a builtin with the location of the expression that raised it.
absl::Status At(Location loc, const absl::Status& s) {
  if (s.ok() || absl::StartsWith(s.message(), "line ")) return s;
  return absl::Status(s.code(),
                      absl::StrCat("line ", loc.line, ", column ", loc.column, ": ", s.message()));
}

absl::Status ErrorAt(Location loc, absl::string_view what) {
  return At(loc, absl::InvalidArgumentError(what));
}

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Limits& limits, const std::tm& now, const Dict& variables)
      : limits_(limits), now_(now) {
    scopes_.emplace_back();
    for (const char* f : {"raise_exception", "strftime_now", "namespace", "range", "dict"}) {
      scopes_.back()[f] = Value::Function(f);
    }
    for (const auto& [k, v] : variables) scopes_.back()[k] = v;
  }

  absl::StatusOr<std::string> Run(const Body& body) {
    TESSERA_RETURN_IF_ERROR(Exec(body).status());
    return std::move(out_);
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(int* d) : depth(d) { ++*depth; }
    ~DepthGuard() { --*depth; }
    int* depth;
  };

  absl::Status CheckDepth(Location loc) const {
    if (depth_ <= limits_.max_depth) return absl::OkStatus();
    return ErrorAt(loc, absl::StrCat("evaluation nested deeper than max_depth ",
                                     limits_.max_depth));
  }

  absl::Status Count(Location loc, uint64_t n) {
    iterations_ += n;
    if (iterations_ <= limits_.max_loop_iterations) return absl::OkStatus();
    return ErrorAt(loc, absl::StrCat("more than max_loop_iterations (",
                                     limits_.max_loop_iterations, ") loop iterations"));
  }

  absl::Status Emit(Location loc, absl::string_view s) {
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      return ErrorAt(loc, absl::StrCat("output longer than max_output_bytes (",
                                       limits_.max_output_bytes, ")"));
    }
    out_.append(s.data(), s.size());
    return absl::OkStatus();
  }

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::Undefined(name);
  }

  // --- statements ---

  absl::StatusOr<Flow> Exec(const Body& body) {
    for (const auto& n : body) {
      TESSERA_ASSIGN_OR_RETURN(Flow flow, ExecNode(*n));
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  absl::StatusOr<Flow> ExecNode(const Node& n) {
    DepthGuard guard(&depth_);
    TESSERA_RETURN_IF_ERROR(CheckDepth(n.location));
    switch (n.kind) {
      case Node::Kind::kText:
        TESSERA_RETURN_IF_ERROR(Emit(n.location, n.text));
        return Flow::kNormal;
      case Node::Kind::kOutput: {
        TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
        TESSERA_RETURN_IF_ERROR(Emit(n.location, v.Str()));
        return Flow::kNormal;
      }
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          bool take = cond == nullptr;
          if (!take) {
            TESSERA_ASSIGN_OR_RETURN(Value c, Eval(*cond));
            take = c.Truthy();
          }
          if (take) return Exec(body);
        }
        return Flow::kNormal;
      case Node::Kind::kFor: return ExecFor(n);
      case Node::Kind::kSet: {
        TESSERA_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
        TESSERA_RETURN_IF_ERROR(Assign(n, std::move(v)));
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock: {
        TESSERA_ASSIGN_OR_RETURN(std::string captured, Capture(n.body));
        scopes_.back()[n.targets[0]] = Value::String(std::move(captured));
        return Flow::kNormal;
      }
      case Node::Kind::kMacro:
        closures_.push_back({&n, /*caller=*/false});
        scopes_.back()[n.targets[0]] = Value::Function(absl::StrCat("#", closures_.size() - 1));
        return Flow::kNormal;
      case Node::Kind::kCallBlock: {
        closures_.push_back({&n, /*caller=*/true});
        scopes_.emplace_back();
        scopes_.back()["caller"] = Value::Function(absl::StrCat("#", closures_.size() - 1));
        absl::StatusOr<Value> v = Eval(*n.expr);
        scopes_.pop_back();
        if (!v.ok()) return v.status();
        TESSERA_RETURN_IF_ERROR(Emit(n.location, v->Str()));
        return Flow::kNormal;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
      case Node::Kind::kScope: return Exec(n.body);
    }
    return Flow::kNormal;
  }

  // What `body` renders, apart from the output so far.
  absl::StatusOr<std::string> Capture(const Body& body) {
    std::string saved = std::move(out_);
    out_.clear();
    absl::StatusOr<Flow> flow = Exec(body);
    std::string captured = std::move(out_);
    out_ = std::move(saved);
    if (!flow.ok()) return flow.status();
    return captured;
  }

  // Calls a macro (its parameters bound from args, then defaults, else undefined) or a call
  // block's caller(), in a new scope; the value is what its body renders.
  absl::StatusOr<Value> CallClosure(size_t index, const Args& args) {
    const Closure c = closures_[index];
    const Node& n = *c.node;
    if (args.positional.size() > (c.caller ? 0 : n.params.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.caller ? "caller()" : absl::StrCat("macro '", n.targets[0], "'"), " takes ",
          c.caller ? 0 : n.params.size(), " arguments, got ", args.positional.size()));
    }
    for (const auto& [k, v] : args.keyword) {
      bool known = false;
      for (const auto& p : n.params) known = known || (!c.caller && p.first == k);
      if (!known) return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", k, "'"));
    }
    scopes_.emplace_back();
    absl::Status status;
    for (size_t i = 0; !c.caller && i < n.params.size() && status.ok(); ++i) {
      const auto& [param, fallback] = n.params[i];
      Value v = Value::Undefined(param);
      if (i < args.positional.size()) {
        v = args.positional[i];
      } else if (const auto kw = std::find_if(
                     args.keyword.begin(), args.keyword.end(),
                     [&, &name = param](const auto& a) { return a.first == name; });
                 kw != args.keyword.end()) {
        v = kw->second;
      } else if (fallback != nullptr) {
        absl::StatusOr<Value> d = Eval(*fallback);
        status = d.status();
        if (d.ok()) v = *std::move(d);
      }
      scopes_.back()[param] = std::move(v);
    }
    absl::StatusOr<std::string> rendered = status.ok() ? Capture(n.body) : status;
    scopes_.pop_back();
    if (!rendered.ok()) return rendered.status();
    return Value::String(*std::move(rendered));
  }

  // Binds `targets` to `v` (unpacking a sequence for several targets) in the innermost scope.
  absl::Status Bind(const Node& n, const std::vector<std::string>& targets, Value v) {
    if (targets.size() == 1) {
      scopes_.back()[targets[0]] = std::move(v);
      return absl::OkStatus();
    }
    absl::StatusOr<List> items = Iterate(v);
    if (!items.ok() || items->size() != targets.size()) {
      return ErrorAt(n.location, absl::StrCat("cannot unpack ", v.Repr(), " into ",
                                              targets.size(), " names"));
    }
    for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = (*items)[i];
    return absl::OkStatus();
  }

  absl::Status Assign(const Node& n, Value v) {
    if (n.attr.empty()) return Bind(n, n.targets, std::move(v));
    const Value ns = Lookup(n.targets[0]);
    if (ns.kind() != Value::Kind::kNamespace) {
      return ErrorAt(n.location, absl::StrCat("cannot assign attribute '", n.attr, "' of '",
                                              n.targets[0], "': not a namespace"));
    }
    if (v.ContainsNamespace()) {  // it could hold itself: a cycle
      return ErrorAt(n.location, absl::StrCat("cannot store a namespace in namespace attribute '",
                                              n.attr, "'"));
    }
    SetKey(&ns.mutable_namespace(), n.attr, std::move(v));
    return absl::OkStatus();
  }

  absl::StatusOr<Flow> ExecFor(const Node& n) {
    TESSERA_ASSIGN_OR_RETURN(Value iterable, Eval(*n.expr));
    absl::StatusOr<List> all = Iterate(iterable);
    if (!all.ok()) return At(n.expr->location, all.status());
    scopes_.emplace_back();
    List items;
    for (Value& item : *all) {
      if (n.filter != nullptr) {
        absl::Status bound = Bind(n, n.targets, item);
        absl::StatusOr<Value> keep = bound.ok() ? Eval(*n.filter) : bound;
        if (!keep.ok()) {
          scopes_.pop_back();
          return keep.status();
        }
        if (!keep->Truthy()) continue;
      }
      items.push_back(std::move(item));
    }
    absl::Status status;
    for (size_t i = 0; i < items.size() && status.ok(); ++i) {
      status = Count(n.location, 1);
      scopes_.back().clear();  // each iteration starts afresh: sets do not carry over
      if (status.ok()) status = Bind(n, n.targets, items[i]);
      if (!status.ok()) break;
      const auto size = static_cast<int64_t>(items.size());
      const auto index = static_cast<int64_t>(i);
      scopes_.back()["loop"] = Value::MakeDict({
          {"index0", Value::Int(index)},
          {"index", Value::Int(index + 1)},
          {"revindex0", Value::Int(size - index - 1)},
          {"revindex", Value::Int(size - index)},
          {"first", Value::Bool(i == 0)},
          {"last", Value::Bool(i + 1 == items.size())},
          {"length", Value::Int(size)},
          {"previtem", i > 0 ? items[i - 1] : Value::Undefined("loop.previtem")},
          {"nextitem", i + 1 < items.size() ? items[i + 1] : Value::Undefined("loop.nextitem")},
      });
      absl::StatusOr<Flow> flow = Exec(n.body);
      if (!flow.ok()) status = flow.status();
      if (flow.ok() && *flow == Flow::kBreak) break;
    }
    scopes_.pop_back();
    TESSERA_RETURN_IF_ERROR(status);
    if (items.empty()) return Exec(n.else_body);
    return Flow::kNormal;
  }

  // --- expressions ---

  absl::StatusOr<Args> EvalArgs(const Expr& e, size_t first) {
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

  absl::StatusOr<Value> Eval(const Expr& e) {
    DepthGuard guard(&depth_);
    TESSERA_RETURN_IF_ERROR(CheckDepth(e.location));
    absl::StatusOr<Value> v = EvalUnchecked(e);
    if (!v.ok()) return At(e.location, v.status());
    if (v->depth() > limits_.max_depth) {
      return ErrorAt(e.location, absl::StrCat("a value nested deeper than max_depth (",
                                              limits_.max_depth, ")"));
    }
    if (v->is_string() && (e.kind == Kind::kBinary || e.kind == Kind::kFilter ||
                           e.kind == Kind::kCall)) {
      built_bytes_ += v->str().size();
      if (built_bytes_ > limits_.max_built_bytes) {
        return ErrorAt(e.location, absl::StrCat("strings built longer than max_built_bytes (",
                                                limits_.max_built_bytes, ") in all"));
      }
    }
    return v;
  }

  absl::StatusOr<Value> EvalUnchecked(const Expr& e) {
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

  static absl::Status Undefined(const Value& obj, const std::string& member) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", obj.str(), "' is undefined (looking up '", member, "' in it)"));
  }

  absl::StatusOr<Value> EvalCall(const Expr& e) {
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
      return absl::InvalidArgumentError(
          absl::StrCat("'", f.TypeName(), "' object is not callable"));
    }
    const std::string& name = f.str();
    if (name[0] == '#') return CallClosure(std::stoul(name.substr(1)), args);
    const uint64_t budget =
        limits_.max_loop_iterations - std::min(iterations_, limits_.max_loop_iterations);
    TESSERA_ASSIGN_OR_RETURN(Value v, CallGlobal(name, args, now_, budget));
    if (name == "range") TESSERA_RETURN_IF_ERROR(Count(e.location, v.list().size()));
    return v;
  }

  // A macro, or a call block whose body caller() renders.
  struct Closure {
    const Node* node;
    bool caller;
  };

  const Limits& limits_;
  const std::tm now_;
  std::vector<Closure> closures_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string out_;
  uint64_t iterations_ = 0;
  size_t built_bytes_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<Template> Template::Parse(absl::string_view source, const Limits& limits) {
  if (source.size() > limits.max_template_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("template of ", source.size(), " bytes is over max_template_bytes (",
                     limits.max_template_bytes, ")"));
  }
  TESSERA_ASSIGN_OR_RETURN(std::vector<Chunk> chunks, Lex(source));
  TESSERA_ASSIGN_OR_RETURN(Body body, jinja::Parse(std::move(chunks), limits.max_depth));
  return Template(std::make_shared<const Body>(std::move(body)), limits);
}

absl::StatusOr<std::string> Template::Render(const Dict& variables, const std::tm& now) const {
  return Renderer(limits_, now, variables).Run(*body_);
}

}  // namespace tessera::lm::jinja
