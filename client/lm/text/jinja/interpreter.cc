// The Interpreter's statements (interpreter.h): output, if, for with loop.*, set (names,
// unpacking, namespace attributes, blocks), macros and call blocks, break and continue,
// scopes, and the output, depth and iteration limits.
#include "client/lm/text/jinja/interpreter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/lexer.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {

absl::Status At(Location loc, const absl::Status& s) {
  if (s.ok() || absl::StartsWith(s.message(), "line ")) return s;
  return absl::Status(s.code(),
                      absl::StrCat("line ", loc.line, ", column ", loc.column, ": ", s.message()));
}

Interpreter::Interpreter(const Limits& limits, const std::tm& now, const Dict& variables)
    : limits_(limits), now_(now) {
  scopes_.emplace_back();
  for (const char* f : {"raise_exception", "strftime_now", "namespace", "range", "dict"}) {
    scopes_.back()[f] = Value::Function(f);
  }
  for (const auto& [k, v] : variables) scopes_.back()[k] = v;
}

absl::StatusOr<std::string> Interpreter::Run(const Body& body) {
  TESSERA_RETURN_IF_ERROR(Exec(body).status());
  return std::move(out_);
}

absl::Status Interpreter::CheckDepth(Location loc) const {
  if (depth_ <= limits_.max_depth) return absl::OkStatus();
  return ErrorAt(loc, absl::StrCat("evaluation nested deeper than max_depth ", limits_.max_depth));
}

absl::Status Interpreter::Count(Location loc, uint64_t n) {
  iterations_ += n;
  if (iterations_ <= limits_.max_loop_iterations) return absl::OkStatus();
  return ErrorAt(loc, absl::StrCat("more than max_loop_iterations (", limits_.max_loop_iterations,
                                   ") loop iterations"));
}

absl::Status Interpreter::Emit(Location loc, absl::string_view s) {
  if (out_.size() + s.size() > limits_.max_output_bytes) {
    return ErrorAt(
        loc, absl::StrCat("output longer than max_output_bytes (", limits_.max_output_bytes, ")"));
  }
  out_.append(s.data(), s.size());
  return absl::OkStatus();
}

Value Interpreter::Lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    const auto found = it->find(name);
    if (found != it->end()) return found->second;
  }
  return Value::Undefined(name);
}

absl::StatusOr<Flow> Interpreter::Exec(const Body& body) {
  for (const auto& n : body) {
    TESSERA_ASSIGN_OR_RETURN(Flow flow, ExecNode(*n));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::StatusOr<Flow> Interpreter::ExecNode(const Node& n) {
  DepthGuard guard(&depth_);
  TESSERA_RETURN_IF_ERROR(CheckDepth(n.location));
  switch (n.kind) {
    case Node::Kind::kText: TESSERA_RETURN_IF_ERROR(Emit(n.location, n.text)); return Flow::kNormal;
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
absl::StatusOr<std::string> Interpreter::Capture(const Body& body) {
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
absl::StatusOr<Value> Interpreter::CallClosure(size_t index, const Args& args) {
  const Closure c = closures_[index];
  const Node& n = *c.node;
  if (args.positional.size() > (c.caller ? 0 : n.params.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.caller ? "caller()" : absl::StrCat("macro '", n.targets[0], "'"), " takes ",
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
    } else if (const auto kw =
                   std::find_if(args.keyword.begin(), args.keyword.end(),
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
absl::Status Interpreter::Bind(const Node& n, const std::vector<std::string>& targets, Value v) {
  if (targets.size() == 1) {
    scopes_.back()[targets[0]] = std::move(v);
    return absl::OkStatus();
  }
  absl::StatusOr<List> items = Iterate(v);
  if (!items.ok() || items->size() != targets.size()) {
    return ErrorAt(n.location,
                   absl::StrCat("cannot unpack ", v.Repr(), " into ", targets.size(), " names"));
  }
  for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = (*items)[i];
  return absl::OkStatus();
}

absl::Status Interpreter::Assign(const Node& n, Value v) {
  if (n.attr.empty()) return Bind(n, n.targets, std::move(v));
  const Value ns = Lookup(n.targets[0]);
  if (ns.kind() != Value::Kind::kNamespace) {
    return ErrorAt(n.location, absl::StrCat("cannot assign attribute '", n.attr, "' of '",
                                            n.targets[0], "': not a namespace"));
  }
  if (v.ContainsNamespace()) {  // it could hold itself: a cycle
    return ErrorAt(n.location,
                   absl::StrCat("cannot store a namespace in namespace attribute '", n.attr, "'"));
  }
  SetKey(&ns.mutable_namespace(), n.attr, std::move(v));
  return absl::OkStatus();
}

absl::StatusOr<Flow> Interpreter::ExecFor(const Node& n) {
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
}  // namespace tessera::lm::jinja
