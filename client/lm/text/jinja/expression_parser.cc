#include "client/lm/text/jinja/expression_parser.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

using Kind = Expr::Kind;
using TK = Token::Kind;

std::string Describe(const Token& t) {
  switch (t.kind) {
    case TK::kEnd: return "end of tag";
    case TK::kString: return "a string literal";
    case TK::kInt:
    case TK::kFloat: return absl::StrCat("number ", t.text);
    default: return absl::StrCat("'", t.text, "'");
  }
}

}  // namespace

absl::Status ExpressionParser::DepthError(Location at) const {
  return ErrorAt(at, absl::StrCat("nesting deeper than the limit of ", max_depth_));
}

ExprPtr ExpressionParser::NewExpr(Kind kind, Location at) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->location = at;
  return e;
}

ExprPtr ExpressionParser::Literal(Value v, Location at) {
  ExprPtr e = NewExpr(Kind::kLiteral, at);
  e->literal = std::move(v);
  return e;
}

const Token& ExpressionParser::Next() {
  const Token& t = Cur();
  if (tok_ + 1 < Tokens().size()) ++tok_;
  return t;
}

absl::Status ExpressionParser::Unexpected(absl::string_view expected) const {
  return ErrorAt(Cur().location,
                 absl::StrCat("expected ", expected, ", got ", Describe(Cur())));
}

absl::Status ExpressionParser::ExpectOp(absl::string_view op) {
  if (!IsOp(op)) return Unexpected(absl::StrCat("'", op, "'"));
  ++tok_;
  return absl::OkStatus();
}

absl::Status ExpressionParser::ExpectName(absl::string_view name) {
  if (!IsName(name)) return Unexpected(absl::StrCat("'", name, "'"));
  ++tok_;
  return absl::OkStatus();
}

absl::Status ExpressionParser::ExpectEnd() const {
  if (Cur().kind != TK::kEnd) return Unexpected("the end of the tag");
  return absl::OkStatus();
}

// An expression, or a tuple (a list) when commas follow.
absl::StatusOr<ExprPtr> ExpressionParser::ParseTuple(bool stop_at_if) {
  const Location at = Cur().location;
  TESSERA_ASSIGN_OR_RETURN(ExprPtr first,
                           stop_at_if ? ParseOr() : ParseExpression());
  if (!IsOp(",")) return first;
  auto list = NewExpr(Kind::kList, at);
  list->args.push_back(std::move(first));
  while (IsOp(",")) {
    ++tok_;
    if (Cur().kind == TK::kEnd) break;
    TESSERA_ASSIGN_OR_RETURN(ExprPtr e, stop_at_if ? ParseOr() : ParseExpression());
    list->args.push_back(std::move(e));
  }
  return list;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseExpression() {
  DepthGuard guard(this);
  if (depth_ > max_depth_) return DepthError(Cur().location);
  TESSERA_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
  while (IsName("if")) {
    auto c = NewExpr(Kind::kCondition, Next().location);
    TESSERA_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
    c->args.push_back(std::move(cond));
    c->args.push_back(std::move(e));
    if (IsName("else")) {
      ++tok_;
      TESSERA_ASSIGN_OR_RETURN(ExprPtr other, ParseExpression());
      c->args.push_back(std::move(other));
    } else {
      c->args.push_back(nullptr);
    }
    e = std::move(c);
  }
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseLogic(const char* word, Kind kind) {
  TESSERA_ASSIGN_OR_RETURN(ExprPtr left,
                           kind == Kind::kOr ? ParseLogic("and", Kind::kAnd) : ParseNot());
  while (IsName(word)) {
    auto e = NewExpr(kind, Next().location);
    TESSERA_ASSIGN_OR_RETURN(ExprPtr right,
                             kind == Kind::kOr ? ParseLogic("and", Kind::kAnd) : ParseNot());
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    left = std::move(e);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseNot() {
  if (!IsName("not")) return ParseCompare();
  auto e = NewExpr(Kind::kUnary, Next().location);
  e->name = "not";
  DepthGuard guard(this);
  if (depth_ > max_depth_) return DepthError(e->location);
  TESSERA_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
  e->args.push_back(std::move(operand));
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCompare() {
  const Location at = Cur().location;
  TESSERA_ASSIGN_OR_RETURN(ExprPtr first, ParseBinary(0));
  auto e = NewExpr(Kind::kCompare, at);
  e->args.push_back(std::move(first));
  while (true) {
    std::string op;
    if (IsOp("==") || IsOp("!=") || IsOp("<") || IsOp("<=") || IsOp(">") || IsOp(">=") ||
        IsName("in")) {
      op = Next().text;
    } else if (IsName("not") && tok_ + 1 < Tokens().size() &&
               Tokens()[tok_ + 1].kind == TK::kName && Tokens()[tok_ + 1].text == "in") {
      tok_ += 2;
      op = "notin";
    } else {
      break;
    }
    TESSERA_ASSIGN_OR_RETURN(ExprPtr operand, ParseBinary(0));
    e->ops.push_back(op);
    e->args.push_back(std::move(operand));
  }
  if (e->ops.empty()) return std::move(e->args[0]);
  return e;
}

// Binary operators by level: 0 "+ -", 1 "~", 2 "* / // %", 3 "**"; then unary.
absl::StatusOr<ExprPtr> ExpressionParser::ParseBinary(int level) {
  static const std::vector<std::vector<std::string>> kLevels = {
      {"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
  if (level == static_cast<int>(kLevels.size())) return ParseUnary(true);
  TESSERA_ASSIGN_OR_RETURN(ExprPtr left, ParseBinary(level + 1));
  while (Cur().kind == TK::kOperator &&
         std::find(kLevels[static_cast<size_t>(level)].begin(),
                   kLevels[static_cast<size_t>(level)].end(),
                   Cur().text) != kLevels[static_cast<size_t>(level)].end()) {
    auto e = NewExpr(Kind::kBinary, Cur().location);
    e->name = Next().text;
    TESSERA_ASSIGN_OR_RETURN(ExprPtr right, ParseBinary(level + 1));
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    left = std::move(e);
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseUnary(bool with_filter) {
  DepthGuard guard(this);
  if (depth_ > max_depth_) return DepthError(Cur().location);
  ExprPtr node;
  if (IsOp("-") || IsOp("+")) {
    node = NewExpr(Kind::kUnary, Cur().location);
    node->name = Next().text;
    TESSERA_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
    node->args.push_back(std::move(operand));
  } else {
    TESSERA_ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  TESSERA_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (!with_filter) return node;
  while (true) {
    if (IsOp("|")) {
      ++tok_;
      TESSERA_ASSIGN_OR_RETURN(node, ParseFilterOrTest(std::move(node), Kind::kFilter));
    } else if (IsName("is")) {
      ++tok_;
      TESSERA_ASSIGN_OR_RETURN(node, ParseFilterOrTest(std::move(node), Kind::kTest));
    } else if (IsOp("(")) {
      TESSERA_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseFilterOrTest(ExprPtr operand, Kind kind) {
  auto e = NewExpr(kind, Cur().location);
  if (kind == Kind::kTest && IsName("not")) {
    ++tok_;
    e->negated = true;
  }
  if (Cur().kind != TK::kName) {
    return Unexpected(kind == Kind::kFilter ? "a filter name" : "a test name");
  }
  e->name = Next().text;
  e->args.push_back(std::move(operand));
  if (IsOp("(")) {
    TESSERA_RETURN_IF_ERROR(ParseArguments(e.get()));
  } else if (kind == Kind::kTest &&
             (Cur().kind == TK::kString || Cur().kind == TK::kInt ||
              Cur().kind == TK::kFloat || IsOp("[") || IsOp("{") ||
              (Cur().kind == TK::kName && !IsName("else") && !IsName("or") &&
               !IsName("and") && !IsName("if") && !IsName("is")))) {
    TESSERA_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
    TESSERA_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    e->args.push_back(std::move(arg));
  }
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCall(ExprPtr callee) {
  auto e = NewExpr(Kind::kCall, callee->location);
  e->args.push_back(std::move(callee));
  TESSERA_RETURN_IF_ERROR(ParseArguments(e.get()));
  return e;
}

// "(" [arg {, arg}] ")" where arg is EXPR or NAME=EXPR, appended to e's args/kwargs.
absl::Status ExpressionParser::ParseArguments(Expr* e) {
  TESSERA_RETURN_IF_ERROR(ExpectOp("("));
  while (!IsOp(")")) {
    if (Cur().kind == TK::kName && tok_ + 1 < Tokens().size() &&
        Tokens()[tok_ + 1].kind == TK::kOperator && Tokens()[tok_ + 1].text == "=") {
      std::string key = Next().text;
      ++tok_;
      TESSERA_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
      e->kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!e->kwargs.empty()) return Unexpected("a keyword argument (name=value)");
      TESSERA_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
      e->args.push_back(std::move(value));
    }
    if (!IsOp(",")) break;
    ++tok_;
  }
  return ExpectOp(")");
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePostfix(ExprPtr node) {
  while (true) {
    if (IsOp(".")) {
      auto e = NewExpr(Kind::kGetAttr, Next().location);
      if (Cur().kind == TK::kInt) {
        e->kind = Kind::kGetItem;
        e->args.push_back(std::move(node));
        e->args.push_back(Literal(Value::Int(Cur().int_value), Next().location));
      } else {
        if (Cur().kind != TK::kName) return Unexpected("an attribute name");
        e->name = Next().text;
        e->args.push_back(std::move(node));
      }
      node = std::move(e);
    } else if (IsOp("[")) {
      TESSERA_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    } else if (IsOp("(")) {
      TESSERA_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscript(ExprPtr node) {
  auto e = NewExpr(Kind::kGetItem, Next().location);
  e->args.push_back(std::move(node));
  std::vector<ExprPtr> parts(1);
  while (!IsOp("]")) {
    if (IsOp(":")) {
      ++tok_;
      parts.emplace_back();
      continue;
    }
    if (parts.back() != nullptr) return Unexpected("':' or ']'");
    TESSERA_ASSIGN_OR_RETURN(parts.back(), ParseExpression());
  }
  ++tok_;
  if (parts.size() > 3) return ErrorAt(e->location, "a slice has at most two ':'");
  if (parts.size() == 1) {
    if (parts[0] == nullptr) return ErrorAt(e->location, "empty subscript");
    e->args.push_back(std::move(parts[0]));
    return e;
  }
  e->kind = Kind::kSlice;
  parts.resize(3);
  for (ExprPtr& p : parts) e->args.push_back(std::move(p));
  return e;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePrimary() {
  const Token& t = Cur();
  if (t.kind == TK::kString) {
    std::string s;
    const Location at = t.location;
    while (Cur().kind == TK::kString) s += Next().text;  // adjacent literals concatenate
    return Literal(Value::String(std::move(s)), at);
  }
  if (t.kind == TK::kInt) return Literal(Value::Int(t.int_value), Next().location);
  if (t.kind == TK::kFloat) return Literal(Value::Float(t.float_value), Next().location);
  if (t.kind == TK::kName) {
    const Location at = t.location;
    const std::string name = Next().text;
    if (name == "true" || name == "True") return Literal(Value::Bool(true), at);
    if (name == "false" || name == "False") return Literal(Value::Bool(false), at);
    if (name == "none" || name == "None") return Literal(Value::None(), at);
    auto e = NewExpr(Kind::kName, at);
    e->name = name;
    return e;
  }
  if (IsOp("(")) {
    const Location at = Next().location;
    if (IsOp(")")) {
      ++tok_;
      return NewExpr(Kind::kList, at);
    }
    TESSERA_ASSIGN_OR_RETURN(ExprPtr inner, ParseTuple());
    TESSERA_RETURN_IF_ERROR(ExpectOp(")"));
    return inner;
  }
  if (IsOp("[") || IsOp("{")) {
    const bool dict = t.text == "{";
    auto e = NewExpr(dict ? Kind::kDict : Kind::kList, Next().location);
    const char* close = dict ? "}" : "]";
    while (!IsOp(close)) {
      TESSERA_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      e->args.push_back(std::move(item));
      if (dict) {
        TESSERA_RETURN_IF_ERROR(ExpectOp(":"));
        TESSERA_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
        e->args.push_back(std::move(value));
      }
      if (!IsOp(",")) break;
      ++tok_;
    }
    TESSERA_RETURN_IF_ERROR(ExpectOp(close));
    return e;
  }
  return Unexpected("an expression");
}

}  // namespace tessera::lm::jinja
