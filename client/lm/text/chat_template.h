// File: chat_template.h
// A checkpoint's chat template (tokenizer_config.json "chat_template", a Jinja
// string) for one [user, assistant] exchange, rendered exactly as transformers'
// tokenizer.apply_chat_template(messages, tokenize=False) renders it. This is
// not a Jinja interpreter: the published template families are recognized by
// their markers, the per-message expressions ('<|im_start|>' + message['role']
// + ...) are read from the template and evaluated, and anything else is refused
// by name.
//
// Families:
//   chatml  (<|im_start|>: Qwen2, Qwen2.5, SmolLM2-Instruct): the default
//   system message the
//           template writes when the conversation has none
//           ('<|im_start|>system\n...<|im_end|>\n' literal), then the messages;
//           generation prompt '<|im_start|>assistant\n'.
//   llama3  (<|start_header_id|>: Llama 3, 3.1, 3.2, 3.3): bos_token; 3.1+
//   templates
//           ("Cutting Knowledge Date") write a system header with "Today Date:
//           " + the date
//           ("26 Jul 2024" as the template sets it, or today's date where the
//           template calls strftime_now, as transformers >= 4.45 does); message
//           contents are trimmed.
//   inst    ([INST]: Llama 2 chat, Mistral/Mixtral Instruct): the user and
//   assistant
//           expressions as the template writes them (spaces, .strip()/|trim,
//           bos/eos).
// Refused: reasoning templates (<think>: Qwen3, QwQ), Mistral's [SYSTEM_PROMPT]
// templates, templates of other families (Gemma, Phi-3, Zephyr, ...), and any
// family template whose message expressions or default system message cannot be
// read.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(ChatTemplate t,
//   ChatTemplate::Parse(*tok->chat_template(), {})); ChatRendering r =
//   t.Render("Name a colour.", "Blue.");
//   // r.prompt + r.response + r.tail == apply_chat_template([user, assistant])
#ifndef TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_
#define TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm {

struct ChatTemplateOptions {
  // The texts the template's bos_token and eos_token stand for ("" when the
  // tokenizer has none, as Jinja renders an undefined variable).
  std::string bos_token;
  std::string eos_token;
  // "Today Date" of Llama 3.1+ templates that call strftime_now("%d %b %Y"),
  // e.g. "26 Jul 2024". Empty: such a template is refused.
  std::string today;
};

// One [user, assistant] exchange, split where the loss starts and ends.
struct ChatRendering {
  // Everything up to and including the assistant header:
  // apply_chat_template([user], add_generation_prompt=True) for chatml and
  // llama3; BOS + the user turn for inst.
  std::string prompt;
  // The assistant content through its end-of-turn token (<|im_end|>,
  // <|eot_id|>, </s>); for inst, with the text the template writes before the
  // content (Llama 2 and Mistral v0.3: " ").
  std::string response;
  // What the template writes after the end-of-turn token ("\n" for chatml).
  std::string tail;
};

class ChatTemplate {
 public:
  // Errors: INVALID_ARGUMENT "chat template: ..." naming the family (or that
  // none is recognized) and what cannot be rendered exactly.
  static absl::StatusOr<ChatTemplate> Parse(absl::string_view jinja,
                                            const ChatTemplateOptions& options);

  // "chatml", "llama3" or "inst".
  const std::string& family() const { return family_; }
  // Whether the rendering starts with bos_token (then encode it without
  // add_special_tokens, as apply_chat_template(tokenize=True) does).
  bool writes_bos() const { return writes_bos_; }

  ChatRendering Render(absl::string_view user,
                       absl::string_view assistant) const;

  // One piece of a message expression.
  struct Part {
    enum Kind { kLiteral, kRole, kContent, kBos, kEos } kind = kLiteral;
    std::string text;   // kLiteral
    bool trim = false;  // kContent: |trim or .strip()
    bool operator==(const Part& o) const {
      return kind == o.kind && text == o.text && trim == o.trim;
    }
  };

 private:
  ChatTemplate() = default;
  // The message expression's text for `role` with `content`, split at the
  // content.
  std::string Eval(const std::vector<Part>& parts, absl::string_view role,
                   absl::string_view content) const;

  std::string family_;
  bool writes_bos_ = false;
  ChatTemplateOptions options_;
  std::string preamble_;  // before the first message (BOS, system header)
  std::vector<Part> user_;
  std::vector<Part> assistant_;  // == user_ for chatml and llama3
  std::string generation_prompt_;
  std::string end_of_turn_;
};

// Python's str.strip() (Jinja's |trim): Unicode whitespace off both ends of
// UTF-8 text.
std::string PyStrip(absl::string_view s);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_
