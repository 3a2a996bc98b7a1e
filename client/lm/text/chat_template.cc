#include "client/lm/text/chat_template.h"

#include <cstdint>
#include <ctime>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

absl::Status Prefixed(const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("chat template: ", s.message()));
}

// At most this much of a rendering is quoted in an error.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 200;
  return s.size() <= kMax ? absl::StrCat("\"", s, "\"")
                          : absl::StrCat("\"", s.substr(0, kMax), "\"...");
}

// The text of a special token id; nullopt when the tokenizer has none (the template then
// sees it undefined, as transformers passes only the tokens a tokenizer has).
absl::StatusOr<std::optional<std::string>> TokenText(const Tokenizer& tokenizer,
                                                     std::optional<int32_t> id) {
  if (!id.has_value()) return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(std::string text,
                           tokenizer.Decode({*id}, /*skip_special_tokens=*/false));
  return text;
}

}  // namespace

absl::StatusOr<ChatTemplate> LoadChatTemplate(const Tokenizer& tokenizer,
                                              absl::string_view chat_date) {
  const std::optional<std::string> jinja = tokenizer.chat_template();
  if (!jinja.has_value()) {
    return absl::InvalidArgumentError(
        "the tokenizer has no chat template (tokenizer_config.json "
        "\"chat_template\")");
  }
  ChatTemplateOptions chat;
  TESSERA_ASSIGN_OR_RETURN(chat.bos_token, TokenText(tokenizer, tokenizer.bos_id()));
  TESSERA_ASSIGN_OR_RETURN(chat.eos_token, TokenText(tokenizer, tokenizer.eos_id()));
  if (chat_date.empty()) {
    // transformers' strftime_now: the local time now.
    const std::time_t now = std::time(nullptr);
    localtime_r(&now, &chat.now);
  } else {
    const std::string date(chat_date);
    const char* end = strptime(date.c_str(), "%d %b %Y", &chat.now);
    if (end == nullptr || *end != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("chat_date \"", date, "\" is not a date like \"26 Jul 2024\""));
    }
    std::mktime(&chat.now);  // the weekday and day of the year
  }
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse(*jinja, chat);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer_config.json: ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(absl::string_view jinja,
                                                 const ChatTemplateOptions& options) {
  absl::StatusOr<jinja::Template> t = jinja::Template::Parse(jinja, options.limits);
  if (!t.ok()) return Prefixed(t.status());
  return ChatTemplate(*std::move(t), options);
}

absl::StatusOr<std::string> ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt) const {
  jinja::List list;
  for (const ChatMessage& m : messages) {
    list.push_back(jinja::Value::MakeDict({{"role", jinja::Value::String(m.role)},
                                           {"content", jinja::Value::String(m.content)}}));
  }
  jinja::Dict vars = {{"messages", jinja::Value::MakeList(std::move(list))},
                      {"tools", jinja::Value::None()},
                      {"documents", jinja::Value::None()},
                      {"add_generation_prompt", jinja::Value::Bool(add_generation_prompt)}};
  if (options_.bos_token.has_value()) {
    vars.emplace_back("bos_token", jinja::Value::String(*options_.bos_token));
  }
  if (options_.eos_token.has_value()) {
    vars.emplace_back("eos_token", jinja::Value::String(*options_.eos_token));
  }
  absl::StatusOr<std::string> out = template_.Render(vars, options_.now);
  if (!out.ok()) return Prefixed(out.status());
  return out;
}

absl::StatusOr<ChatRendering> ChatTemplate::RenderExchange(absl::string_view user,
                                                           absl::string_view assistant) const {
  const ChatMessage u{"user", std::string(user)};
  const ChatMessage a{"assistant", std::string(assistant)};
  TESSERA_ASSIGN_OR_RETURN(std::string prompt, Render({u}, /*add_generation_prompt=*/true));
  TESSERA_ASSIGN_OR_RETURN(std::string full, Render({u, a}, /*add_generation_prompt=*/false));
  if (!absl::StartsWith(full, prompt)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chat template: the prompt ([user] with add_generation_prompt=True) ", Quote(prompt),
        " is not a prefix of the exchange ([user, assistant]) ", Quote(full),
        ", so the response tokens cannot be told apart; use prompt_template = \"alpaca\""));
  }
  ChatRendering r;
  r.prompt = std::move(prompt);
  absl::string_view rest = absl::string_view(full).substr(r.prompt.size());
  const std::string eos = options_.eos_token.value_or("");
  const size_t at = eos.empty() ? absl::string_view::npos : rest.rfind(eos);
  const size_t end = at == absl::string_view::npos ? rest.size() : at + eos.size();
  r.response = std::string(rest.substr(0, end));
  r.tail = std::string(rest.substr(end));
  return r;
}

absl::StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer,
                                                      absl::string_view user,
                                                      absl::string_view chat_date) {
  TESSERA_ASSIGN_OR_RETURN(ChatTemplate chat, LoadChatTemplate(tokenizer, chat_date));
  TESSERA_ASSIGN_OR_RETURN(std::string text, chat.Render({{"user", std::string(user)}},
                                                         /*add_generation_prompt=*/true));
  return tokenizer.Encode(text, {.add_special_tokens = false});
}

}  // namespace tessera::lm
