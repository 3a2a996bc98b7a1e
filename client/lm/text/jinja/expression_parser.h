// File: expression_parser.h
// Jinja2's expression grammar over one tag's tokens (parser.py's precedence, loosest first):
// conditional (a if c else b), or, and, not, comparisons (chained; in, not in), + -, ~,
// * / // %, **, unary - +, then postfix: .attr, [item], [a:b:c], (call), | filter, is test.
// The statement parser (parser.h) derives from it and points it at each tag in turn.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_EXPRESSION_PARSER_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_EXPRESSION_PARSER_H_

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/jinja/ast.h"
#include "client/lm/text/jinja/lexer.h"

namespace tessera::lm::jinja {

class ExpressionParser {
 protected:
  explicit ExpressionParser(int max_depth) : max_depth_(max_depth) {}

  // An expression, or a tuple (a list) when commas follow; stop_at_if: without the
  // conditional form (a for loop's iterable, before its "if" filter).
  absl::StatusOr<ExprPtr> ParseTuple(bool stop_at_if = false);
  absl::StatusOr<ExprPtr> ParseExpression();

  // Nesting guard shared by statements and expressions.
  struct DepthGuard {
    explicit DepthGuard(ExpressionParser* p) : parser(p) { ++parser->depth_; }
    ~DepthGuard() { --parser->depth_; }
    ExpressionParser* parser;
  };
  absl::Status DepthError(Location at) const;

  // The current tag's tokens (they end with a kEnd token).
  const std::vector<Token>& Tokens() const { return *tokens_; }
  const Token& Cur() const { return Tokens()[std::min(tok_, Tokens().size() - 1)]; }
  const Token& Next();
  bool IsOp(absl::string_view op) const {
    return Cur().kind == Token::Kind::kOperator && Cur().text == op;
  }
  bool IsName(absl::string_view name) const {
    return Cur().kind == Token::Kind::kName && Cur().text == name;
  }
  absl::Status Unexpected(absl::string_view expected) const;
  absl::Status ExpectOp(absl::string_view op);
  absl::Status ExpectName(absl::string_view name);
  absl::Status ExpectEnd() const;

  const std::vector<Token>* tokens_ = nullptr;
  size_t tok_ = 0;
  int depth_ = 0;
  const int max_depth_;

 private:
  using Kind = Expr::Kind;

  absl::StatusOr<ExprPtr> ParseOr() { return ParseLogic("or", Kind::kOr); }
  absl::StatusOr<ExprPtr> ParseLogic(const char* word, Kind kind);
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseBinary(int level);
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParseFilterOrTest(ExprPtr operand, Kind kind);
  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee);
  absl::Status ParseArguments(Expr* e);
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr node);
  absl::StatusOr<ExprPtr> ParsePrimary();
  static ExprPtr NewExpr(Kind kind, Location at);
  static ExprPtr Literal(Value v, Location at);
};

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_EXPRESSION_PARSER_H_
