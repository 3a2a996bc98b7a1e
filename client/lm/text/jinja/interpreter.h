// File: interpreter.h
// Runs a parsed template (ast.h) once: statements (interpreter.cc) write to the output in
// nested variable scopes, with macros and call blocks as closures; expressions
// (interpreter_expressions.cc) evaluate to Values through operators.h and builtins.h. Every
// limit of Limits (template.h) is counted here, and every error gets the line and column of
// the statement or expression that raised it. Internal to client/lm/text/jinja (template.cc).
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_INTERPRETER_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_INTERPRETER_H_

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/jinja/ast.h"
#include "client/lm/text/jinja/builtins.h"
#include "client/lm/text/jinja/template.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

// Prefixes an error (from a builtin, without a location) with "line L, column C: ".
absl::Status At(Location loc, const absl::Status& s);
// INVALID_ARGUMENT "line L, column C: <what>".
absl::Status ErrorAt(Location loc, absl::string_view what);

// How a statement list ended: normally, or at {% break %} / {% continue %}.
enum class Flow { kNormal, kBreak, kContinue };

// One rendering; not reusable. `limits` must outlive it.
class Interpreter {
 public:
  // The context: the globals, then `variables` (which may shadow them).
  Interpreter(const Limits& limits, const std::tm& now, const Dict& variables);
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // What `body` renders. Errors: as Template::Render.
  absl::StatusOr<std::string> Run(const Body& body);

 private:
  struct DepthGuard {
    explicit DepthGuard(int* d) : depth(d) { ++*depth; }
    ~DepthGuard() { --*depth; }
    int* depth;
  };

  // A macro, or a call block whose body caller() renders.
  struct Closure {
    const Node* node;
    bool caller;
  };

  // Limits.
  absl::Status CheckDepth(Location loc) const;
  absl::Status Count(Location loc, uint64_t n);
  absl::Status Emit(Location loc, absl::string_view s);

  // Statements (interpreter.cc).
  Value Lookup(const std::string& name) const;
  absl::StatusOr<Flow> Exec(const Body& body);
  absl::StatusOr<Flow> ExecNode(const Node& n);
  absl::StatusOr<std::string> Capture(const Body& body);
  absl::StatusOr<Value> CallClosure(size_t index, const Args& args);
  absl::Status Bind(const Node& n, const std::vector<std::string>& targets, Value v);
  absl::Status Assign(const Node& n, Value v);
  absl::StatusOr<Flow> ExecFor(const Node& n);

  // Expressions (interpreter_expressions.cc).
  absl::StatusOr<Args> EvalArgs(const Expr& e, size_t first);
  absl::StatusOr<Value> Eval(const Expr& e);
  absl::StatusOr<Value> EvalUnchecked(const Expr& e);
  absl::StatusOr<Value> EvalCall(const Expr& e);
  static absl::Status Undefined(const Value& obj, const std::string& member);

  const Limits& limits_;
  const std::tm now_;
  std::vector<Closure> closures_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string out_;
  uint64_t iterations_ = 0;
  size_t built_bytes_ = 0;
  int depth_ = 0;
};

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_INTERPRETER_H_
