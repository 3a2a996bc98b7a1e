#include "client/lm/text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/lm/text/jinja/expression_parser.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {
namespace {

using TK = Token::Kind;

class Parser : public ExpressionParser {
 public:
  Parser(std::vector<Chunk> chunks, int max_depth)
      : ExpressionParser(max_depth), chunks_(std::move(chunks)) {}

  absl::StatusOr<Body> Run() {
    std::string end;
    TESSERA_ASSIGN_OR_RETURN(Body body, ParseBody({}, &end));
    return body;
  }

 private:
  // --- statements ---

  // Parses chunks until a statement whose first name is in `ends` (its name in *end, the
  // token position after it) or the end of the template (only when `ends` is empty).
  absl::StatusOr<Body> ParseBody(std::initializer_list<const char*> ends, std::string* end) {
    DepthGuard guard(this);
    if (depth_ > max_depth_) return DepthError(Here());
    Body body;
    while (chunk_ < chunks_.size()) {
      Chunk& c = chunks_[chunk_];
      if (c.kind == Chunk::Kind::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->text = std::move(c.text);
        n->location = c.location;
        body.push_back(std::move(n));
        ++chunk_;
        continue;
      }
      tokens_ = &c.tokens;
      tok_ = 0;
      if (c.kind == Chunk::Kind::kOutput) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->location = c.location;
        TESSERA_ASSIGN_OR_RETURN(n->expr, ParseTuple());
        TESSERA_RETURN_IF_ERROR(ExpectEnd());
        body.push_back(std::move(n));
        ++chunk_;
        continue;
      }
      const Token& first = Cur();
      if (first.kind != TK::kName) return Unexpected("a statement name");
      if (std::find_if(ends.begin(), ends.end(), [&](const char* e) {
            return first.text == e;
          }) != ends.end()) {
        *end = first.text;
        ++tok_;
        return body;
      }
      TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Node> n, ParseStatement());
      body.push_back(std::move(n));
    }
    if (ends.size() > 0) {
      return ErrorAt(EndLocation(), absl::StrCat("unexpected end of template: expected '",
                                                 absl::StrJoin(ends, "' or '"), "'"));
    }
    return body;
  }

  // The statement at the current chunk; leaves chunk_ after its last chunk.
  absl::StatusOr<std::unique_ptr<Node>> ParseStatement() {
    const Token& first = Next();
    auto n = std::make_unique<Node>();
    n->location = first.location;
    const std::string name = first.text;
    if (name == "if") {
      n->kind = Node::Kind::kIf;
      std::string end = "elif";
      while (end == "elif") {
        TESSERA_ASSIGN_OR_RETURN(ExprPtr cond, ParseExpression());
        TESSERA_ASSIGN_OR_RETURN(Body body, StatementBody({"elif", "else", "endif"}, &end));
        n->branches.emplace_back(std::move(cond), std::move(body));
      }
      if (end == "else") {
        TESSERA_ASSIGN_OR_RETURN(Body body, StatementBody({"endif"}, &end));
        n->branches.emplace_back(nullptr, std::move(body));
      }
    } else if (name == "for") {
      n->kind = Node::Kind::kFor;
      TESSERA_RETURN_IF_ERROR(ParseTargets(&n->targets));
      TESSERA_RETURN_IF_ERROR(ExpectName("in"));
      TESSERA_ASSIGN_OR_RETURN(n->expr, ParseTuple(/*stop_at_if=*/true));
      if (Cur().kind == TK::kName && Cur().text == "if") {
        ++tok_;
        TESSERA_ASSIGN_OR_RETURN(n->filter, ParseExpression());
      }
      std::string end;
      TESSERA_ASSIGN_OR_RETURN(n->body,
                               StatementBody({"else", "endfor"}, &end, /*in_loop=*/true));
      if (end == "else") {
        TESSERA_ASSIGN_OR_RETURN(n->else_body, StatementBody({"endfor"}, &end));
      }
    } else if (name == "set") {
      TESSERA_RETURN_IF_ERROR(ParseTargets(&n->targets));
      if (n->targets.size() == 1 && IsOp(".")) {
        ++tok_;
        if (Cur().kind != TK::kName) return Unexpected("an attribute name");
        n->attr = Next().text;
      }
      if (IsOp("=")) {
        ++tok_;
        n->kind = Node::Kind::kSet;
        TESSERA_ASSIGN_OR_RETURN(n->expr, ParseTuple());
        TESSERA_RETURN_IF_ERROR(EndStatement());
        return n;
      }
      if (n->targets.size() != 1 || !n->attr.empty()) return Unexpected("'='");
      n->kind = Node::Kind::kSetBlock;
      std::string end;
      TESSERA_ASSIGN_OR_RETURN(n->body, StatementBody({"endset"}, &end));
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) {
        return ErrorAt(first.location, absl::StrCat("'", name, "' outside a for loop"));
      }
      n->kind = name == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      TESSERA_RETURN_IF_ERROR(EndStatement());
      return n;
    } else if (name == "macro") {
      n->kind = Node::Kind::kMacro;
      if (Cur().kind != TK::kName) return Unexpected("a macro name");
      n->targets.push_back(Next().text);
      TESSERA_RETURN_IF_ERROR(ExpectOp("("));
      while (!IsOp(")")) {
        if (Cur().kind != TK::kName) return Unexpected("a parameter name");
        std::string param = Next().text;
        ExprPtr fallback;
        if (IsOp("=")) {
          ++tok_;
          TESSERA_ASSIGN_OR_RETURN(fallback, ParseExpression());
        }
        n->params.emplace_back(std::move(param), std::move(fallback));
        if (!IsOp(",")) break;
        ++tok_;
      }
      TESSERA_RETURN_IF_ERROR(ExpectOp(")"));
      std::string end;
      TESSERA_ASSIGN_OR_RETURN(n->body, StatementBody({"endmacro"}, &end));
    } else if (name == "call") {
      n->kind = Node::Kind::kCallBlock;
      if (IsOp("(")) return ErrorAt(Cur().location, "caller arguments are not supported");
      TESSERA_ASSIGN_OR_RETURN(n->expr, ParseExpression());
      if (n->expr->kind != Expr::Kind::kCall) {
        return ErrorAt(n->expr->location, "a call block needs a macro call");
      }
      std::string end;
      TESSERA_ASSIGN_OR_RETURN(n->body, StatementBody({"endcall"}, &end));
    } else if (name == "generation") {
      n->kind = Node::Kind::kScope;
      std::string end;
      TESSERA_ASSIGN_OR_RETURN(n->body, StatementBody({"endgeneration"}, &end));
    } else {
      return ErrorAt(first.location, absl::StrCat("unsupported statement '", name, "'"));
    }
    TESSERA_RETURN_IF_ERROR(EndStatement());
    return n;
  }

  // Ends the current statement tag, then parses the body up to one of `ends` (a for loop's
  // body when in_loop: break and continue allowed).
  absl::StatusOr<Body> StatementBody(std::initializer_list<const char*> ends, std::string* end,
                                     bool in_loop = false) {
    TESSERA_RETURN_IF_ERROR(EndStatement());
    const int saved = loop_depth_;
    loop_depth_ = in_loop ? loop_depth_ + 1 : loop_depth_;
    absl::StatusOr<Body> body = ParseBody(ends, end);
    loop_depth_ = saved;
    return body;
  }

  absl::Status EndStatement() {
    TESSERA_RETURN_IF_ERROR(ExpectEnd());
    ++chunk_;
    tok_ = 0;
    return absl::OkStatus();
  }

  absl::Status ParseTargets(std::vector<std::string>* targets) {
    do {
      if (Cur().kind != TK::kName) return Unexpected("a variable name");
      targets->push_back(Next().text);
    } while (IsOp(",") && (++tok_, true));
    return absl::OkStatus();
  }

  // --- helpers ---

  Location Here() const {
    return chunk_ < chunks_.size() ? chunks_[chunk_].location : EndLocation();
  }
  Location EndLocation() const {
    if (chunks_.empty()) return Location{};
    const Chunk& last = chunks_.back();
    return last.tokens.empty() ? last.location : last.tokens.back().location;
  }

  std::vector<Chunk> chunks_;
  size_t chunk_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<Body> Parse(std::vector<Chunk> chunks, int max_depth) {
  return Parser(std::move(chunks), max_depth).Run();
}

}  // namespace tessera::lm::jinja
