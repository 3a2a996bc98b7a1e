// Template::Parse (lexer.h, then parser.h) and Template::Render (interpreter.h).
#include "client/lm/text/jinja/template.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/ast.h"
#include "client/lm/text/jinja/interpreter.h"
#include "client/lm/text/jinja/lexer.h"
#include "client/lm/text/jinja/parser.h"
#include "core/base/status_macros.h"

namespace tessera::lm::jinja {

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
  return Interpreter(limits_, now, variables).Run(*body_);
}

}  // namespace tessera::lm::jinja
