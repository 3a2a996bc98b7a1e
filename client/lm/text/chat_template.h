// File: chat_template.h
// A checkpoint's chat template (tokenizer_config.json "chat_template", a Jinja string)
// executed by the Jinja interpreter (jinja/template.h) exactly as transformers'
// tokenizer.apply_chat_template(messages, tokenize=False) renders it: the variables
// messages, add_generation_prompt, tools = none, documents = none and the tokenizer's
// bos_token / eos_token (undefined where the tokenizer has none), strftime_now formatting
// a fixed time.
//
// For training on one [user, assistant] exchange the rendering is split where the loss
// starts and ends: the prompt is the rendering of [user] with add_generation_prompt=True,
// which must be a prefix of the rendering of [user, assistant]; the rest is the response,
// through the last eos_token in it (the end-of-turn token such as <|im_end|>, <|eot_id|>,
// </s>), and the tail after that (ChatML's "\n"), which is not a target.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(ChatTemplate t, LoadChatTemplate(*tokenizer, ""));
//   TESSERA_ASSIGN_OR_RETURN(ChatRendering r, t.RenderExchange("Name a colour.", "Blue."));
//   // r.prompt + r.response + r.tail == apply_chat_template([user, assistant])
#ifndef TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_
#define TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/jinja/template.h"
#include "client/lm/tokenizer/tokenizer.h"

namespace tessera::lm {

struct ChatTemplateOptions {
  // The texts of the tokenizer's special tokens; nullopt: the template sees them undefined
  // (transformers passes only the tokens the tokenizer has).
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // The time strftime_now formats (Llama 3.2's and Granite's "Today Date").
  std::tm now{};
  jinja::Limits limits;
};

struct ChatMessage {
  std::string role;
  std::string content;
};

// One [user, assistant] exchange, split where the loss starts and ends.
struct ChatRendering {
  std::string prompt;    // apply_chat_template([user], add_generation_prompt=True)
  std::string response;  // the assistant's turn through its end-of-turn (eos) token
  std::string tail;      // what the template writes after that token
};

class ChatTemplate {
 public:
  // Errors: INVALID_ARGUMENT "chat template: line L, column C: ..." for syntax the
  // interpreter rejects.
  static absl::StatusOr<ChatTemplate> Parse(absl::string_view jinja,
                                            const ChatTemplateOptions& options);

  // apply_chat_template(messages, add_generation_prompt, tokenize=False).
  // Errors: INVALID_ARGUMENT "chat template: ..." (raise_exception's message included).
  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) const;

  // Errors: Render's, and INVALID_ARGUMENT when the prompt is not a prefix of the whole
  // exchange (the template renders the user turn differently once an assistant follows).
  absl::StatusOr<ChatRendering> RenderExchange(absl::string_view user,
                                               absl::string_view assistant) const;

 private:
  ChatTemplate(jinja::Template t, ChatTemplateOptions options)
      : template_(std::move(t)), options_(std::move(options)) {}

  jinja::Template template_;
  ChatTemplateOptions options_;
};

// The tokenizer's chat template, with the texts of its BOS and EOS tokens, and strftime_now
// formatting `chat_date` ("26 Jul 2024"; empty: the local time now, as transformers).
// Errors: INVALID_ARGUMENT when the tokenizer has no chat template (tokenizer_config.json
// "chat_template"), "tokenizer_config.json: chat template: ..." when it does not parse, or
// a chat_date that is not such a date.
absl::StatusOr<ChatTemplate> LoadChatTemplate(const Tokenizer& tokenizer,
                                              absl::string_view chat_date);

// The ids a chat model generates its reply from: [user] rendered with the tokenizer's chat
// template and add_generation_prompt=True, encoded without add_special_tokens (the
// template writes BOS itself), as apply_chat_template(tokenize=True) gives them.
// Errors: LoadChatTemplate's, Render's, the tokenizer's.
absl::StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer,
                                                      absl::string_view user,
                                                      absl::string_view chat_date);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TEXT_CHAT_TEMPLATE_H_
