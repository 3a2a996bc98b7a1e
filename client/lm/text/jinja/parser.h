// File: parser.h
// Jinja2's grammar for the statements and expressions chat templates use (parser.py's
// precedence: conditional, or, and, not, comparisons, + -, ~, * / // %, **, unary, postfix
// with filters and tests).
//
// Statements: if/elif/else/endif; for TARGETS in EXPR [if EXPR] ... [else] ... endfor;
// set NAME[, NAME...] = EXPR, set NAME.ATTR = EXPR, set NAME %}...{% endset; break and
// continue (jinja2.ext.loopcontrols); macro NAME(PARAM[=DEFAULT], ...) ... endmacro;
// call MACRO(...) ... endcall (caller() without arguments); generation/endgeneration
// (transformers' AssistantTracker: rendered in place). Anything else (include, import, raw,
// filter blocks, ...) is refused with its line and column.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_PARSER_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "client/lm/text/jinja/ast.h"
#include "client/lm/text/jinja/lexer.h"

namespace tessera::lm::jinja {

// Errors: INVALID_ARGUMENT "line L, column C: ..." saying what was expected and what came,
// and for nesting deeper than max_depth (statements and expressions together).
absl::StatusOr<Body> Parse(std::vector<Chunk> chunks, int max_depth);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_PARSER_H_
