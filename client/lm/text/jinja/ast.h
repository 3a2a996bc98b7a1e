// File: ast.h
// The parsed form of a Jinja template: expressions (Expr) and statements (Node), as
// parser.h builds them and interpreter.h runs them.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_AST_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/lm/text/jinja/lexer.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kList,       // [args...] (tuples too)
    kDict,       // {args[0]: args[1], ...}
    kGetAttr,    // args[0].name
    kGetItem,    // args[0][args[1]]
    kSlice,      // args[0][args[1]:args[2]:args[3]] (null where omitted)
    kCall,       // args[0](args[1..], kwargs)
    kFilter,     // args[0] | name(args[1..], kwargs)
    kTest,       // args[0] is [not] name(args[1..])
    kUnary,      // name ("-", "+", "not") args[0]
    kBinary,     // args[0] name args[1]: + - * / // % ** ~
    kAnd,        // args[0] and args[1]
    kOr,         // args[0] or args[1]
    kCompare,    // args[0] ops[0] args[1] ops[1] args[2] ... (== != < <= > >= in notin)
    kCondition,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind = Kind::kLiteral;
  Location location;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;  // kTest: "is not"
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body); the else branch has a null condition
    kFor,       // for targets in expr [if filter] body [else else_body]
    kSet,       // set targets = expr, or set targets[0].attr = expr
    kSetBlock,  // set targets[0] %}body{% endset
    kBreak,
    kContinue,
    kScope,     // a block whose body is rendered in place ({% generation %})
    kMacro,     // macro targets[0](params) body
    kCallBlock, // call expr %}body{% endcall: expr (a call) with caller() rendering body
  };
  Kind kind = Kind::kText;
  Location location;
  std::string text;
  ExprPtr expr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: names, defaults or null
  ExprPtr filter;
  Body body;
  Body else_body;
};

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_AST_H_
