// File: template.h
// A Jinja2 template interpreter for the chat templates Hugging Face checkpoints publish in
// tokenizer_config.json ("chat_template"), rendering them as transformers'
// apply_chat_template does: Jinja2's ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, the globals raise_exception(message) and
// strftime_now(format), and tojson as json.dumps(ensure_ascii=False). Also the Jinja
// globals namespace(...), range(...) and dict(...).
//
// The language: lexer.h (whitespace control), parser.h (statements and expressions),
// builtins.h (filters, tests, methods). Undefined variables render as "" and are false;
// attribute or item access on an undefined value is an error, as Jinja2's default
// Undefined. A {% set %} inside a for loop lasts until the end of its iteration (use a
// namespace to carry values across iterations or out of the loop), as in Jinja2.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(Template t, Template::Parse(source));
//   Dict vars = {{"messages", messages}, {"add_generation_prompt", Value::Bool(true)},
//                {"bos_token", Value::String("<s>")}};
//   TESSERA_ASSIGN_OR_RETURN(std::string text, t.Render(vars, now));
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_TEMPLATE_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_TEMPLATE_H_

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/jinja/value.h"

namespace tessera::lm::jinja {

struct Node;

// Every limit is checked; exceeding one is INVALID_ARGUMENT naming it.
struct Limits {
  // Bytes of template source.
  size_t max_template_bytes = size_t{1} << 20;
  // Bytes one rendering may produce.
  size_t max_output_bytes = size_t{16} << 20;
  // Bytes of the strings operators, filters and calls build in one rendering, all together
  // (bounds the time a template that grows a string in a loop can take).
  size_t max_built_bytes = size_t{256} << 20;
  // For-loop iterations (and range() and filter items) in one rendering, all loops together.
  uint64_t max_loop_iterations = 1'000'000;
  // Nesting of statements and expressions when parsing, and of evaluation.
  int max_depth = 128;
};

class Template {
 public:
  // Errors: INVALID_ARGUMENT "line L, column C: ..." for syntax Jinja2 rejects or this
  // interpreter does not support (naming it), or a source over max_template_bytes.
  static absl::StatusOr<Template> Parse(absl::string_view source, const Limits& limits = {});

  // Renders with `variables` as the context; `now` is the local time strftime_now formats.
  // Errors: INVALID_ARGUMENT "line L, column C: ..." for what Jinja2 raises at run time
  // (raise_exception's message, an undefined value's attribute, a type error, an
  // unsupported filter, test or method), and for a limit exceeded.
  absl::StatusOr<std::string> Render(const Dict& variables, const std::tm& now) const;

 private:
  Template(std::shared_ptr<const std::vector<std::unique_ptr<Node>>> body, Limits limits)
      : body_(std::move(body)), limits_(limits) {}

  std::shared_ptr<const std::vector<std::unique_ptr<Node>>> body_;
  Limits limits_;
};

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_TEMPLATE_H_
