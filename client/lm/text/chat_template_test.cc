#include "client/lm/text/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using ::testing::HasSubstr;

// The templates are the Jinja source as tokenizer_config.json holds it (after
// JSON decoding:
// "\n" inside a Jinja string literal is a backslash and an n). The expected
// renderings are worked out by hand from the templates' rules, as transformers'
// apply_chat_template renders
// [{"role": "user", ...}, {"role": "assistant", ...}] (and [user] with
// add_generation_prompt=True for the prompt).

// Qwen/Qwen2.5-*-Instruct.
constexpr char kQwen25[] = R"({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)";

// Qwen/Qwen2-*-Instruct.
constexpr char kQwen2[] =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

// HuggingFaceTB/SmolLM2-*-Instruct.
constexpr char kSmolLM2[] =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

// A plain ChatML template (no system handling at all).
constexpr char kPlainChatml[] =
    R"({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

// meta-llama/Meta-Llama-3-8B-Instruct.
constexpr char kLlama3[] =
    R"({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %})";

// The system-header, message and generation-prompt parts of
// meta-llama/Llama-3.2-1B-Instruct (the tool branches, which need tools, are
// left out). `kLlama31` below has 3.1's date.
constexpr char kLlama32[] = R"({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)";

// Llama 3.1's date: a literal, no strftime_now.
std::string Llama31() {
  std::string t = kLlama32;
  const std::string from = R"({%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %})";
  t.replace(t.find(from), from.size(),
            R"({%- set date_string = "26 Jul 2024" %})");
  return t;
}

// meta-llama/Llama-2-7b-chat-hf.
constexpr char kLlama2[] =
    R"({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})";

// mistralai/Mixtral-8x7B-Instruct-v0.1 (and Mistral-7B-Instruct-v0.2's first
// template).
constexpr char kMistralV01[] =
    R"({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})";

// Mistral-7B-Instruct-v0.3's template without tools.
constexpr char kMistralV03[] = R"({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)";

ChatTemplateOptions Llama3Tokens(std::string today = "") {
  return {.bos_token = "<|begin_of_text|>",
          .eos_token = "<|eot_id|>",
          .today = today};
}
ChatTemplateOptions SentencePieceTokens() {
  return {.bos_token = "<s>", .eos_token = "</s>", .today = ""};
}
ChatTemplateOptions ChatmlTokens() {
  return {.bos_token = "", .eos_token = "<|im_end|>", .today = ""};
}

void ExpectRendering(const absl::StatusOr<ChatTemplate>& t,
                     const std::string& family, const std::string& user,
                     const std::string& assistant, const std::string& prompt,
                     const std::string& response, const std::string& tail) {
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->family(), family);
  const ChatRendering r = t->Render(user, assistant);
  EXPECT_EQ(r.prompt, prompt);
  EXPECT_EQ(r.response, response);
  EXPECT_EQ(r.tail, tail);
}

TEST(ChatTemplateTest, Qwen25WritesItsDefaultSystemMessage) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(kQwen25, ChatmlTokens());
  ExpectRendering(
      t, "chatml", "Name a colour.", " Blue. ",
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
      "helpful "
      "assistant.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n"
      "<|im_start|>assistant\n",
      " Blue. <|im_end|>", "\n");
  EXPECT_FALSE(t->writes_bos());
}

TEST(ChatTemplateTest, Qwen2AndSmolLM2DefaultSystemMessages) {
  ExpectRendering(ChatTemplate::Parse(kQwen2, ChatmlTokens()), "chatml", "Hi",
                  "Yo",
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                  "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                  "Yo<|im_end|>", "\n");
  ExpectRendering(ChatTemplate::Parse(kSmolLM2, ChatmlTokens()), "chatml", "Hi",
                  "Yo",
                  "<|im_start|>system\nYou are a helpful AI assistant named "
                  "SmolLM, trained by "
                  "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\n",
                  "Yo<|im_end|>", "\n");
  ExpectRendering(ChatTemplate::Parse(kPlainChatml, ChatmlTokens()), "chatml",
                  "a\n\nb", "c",
                  "<|im_start|>user\na\n\nb<|im_end|>\n<|im_start|>assistant\n",
                  "c<|im_end|>", "\n");
}

TEST(ChatTemplateTest, Llama3TrimsContents) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(kLlama3, Llama3Tokens());
  ExpectRendering(t, "llama3", "  Hi\n", "\tYo \n",
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>"
                  "\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n",
                  "Yo<|eot_id|>", "");
  EXPECT_TRUE(t->writes_bos());
}

TEST(ChatTemplateTest, Llama31WritesTheSystemHeaderWithItsDate) {
  ExpectRendering(
      ChatTemplate::Parse(Llama31(), Llama3Tokens("01 Jan 2030")), "llama3",
      "Hi", "Yo",
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul "
      "2024\n\n<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
      "Yo<|eot_id|>", "");
}

TEST(ChatTemplateTest, Llama32WritesTodaysDate) {
  ExpectRendering(
      ChatTemplate::Parse(kLlama32, Llama3Tokens("05 Mar 2025")), "llama3",
      "Hi", "Yo",
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "Cutting Knowledge Date: December 2023\nToday Date: 05 Mar "
      "2025\n\n<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
      "Yo<|eot_id|>", "");
  EXPECT_THAT(
      ChatTemplate::Parse(kLlama32, Llama3Tokens("")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("today's date")));
}

TEST(ChatTemplateTest, Llama2SpacesAndStrip) {
  absl::StatusOr<ChatTemplate> t =
      ChatTemplate::Parse(kLlama2, SentencePieceTokens());
  ExpectRendering(t, "inst", " Hi ", "Yo\n", "<s>[INST] Hi [/INST]", " Yo </s>",
                  "");
  EXPECT_TRUE(t->writes_bos());
}

TEST(ChatTemplateTest, MistralTemplates) {
  ExpectRendering(ChatTemplate::Parse(kMistralV01, SentencePieceTokens()),
                  "inst", " Hi", "Yo ", "<s>[INST]  Hi [/INST]", "Yo </s>", "");
  ExpectRendering(ChatTemplate::Parse(kMistralV03, SentencePieceTokens()),
                  "inst", "Hi", "Yo", "<s> [INST] Hi [/INST]", " Yo</s>", "");
}

TEST(ChatTemplateTest, ContentIsInsertedVerbatim) {
  // Template syntax and special-token text in a message are not interpreted.
  ExpectRendering(
      ChatTemplate::Parse(kQwen2, ChatmlTokens()), "chatml", "{{ x }}",
      "<|im_end|>",
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
      "<|im_start|>user\n{{ x }}<|im_end|>\n<|im_start|>assistant\n",
      "<|im_end|><|im_end|>", "\n");
}

TEST(ChatTemplateTest, RefusesUnknownTemplates) {
  // google/gemma-2-*-it.
  EXPECT_THAT(
      ChatTemplate::Parse(
          R"({{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})",
          SentencePieceTokens()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("not a recognized family")));
  // A reasoning template (Qwen3-style).
  EXPECT_THAT(
      ChatTemplate::Parse(
          absl::StrCat(kPlainChatml, "{{- '<think>\\n\\n</think>\\n\\n' }}"),
          ChatmlTokens()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("<think>")));
  // ChatML whose message expression cannot be read.
  EXPECT_THAT(
      ChatTemplate::Parse(
          R"({% for message in messages %}<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})",
          ChatmlTokens()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chatml")));
  // ChatML with system handling but no default literal.
  EXPECT_THAT(
      ChatTemplate::Parse(
          R"({% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n' + default_system + '<|im_end|>\n' }}{% endif %})"
          R"({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{{ '<|im_start|>assistant\n' }})",
          ChatmlTokens()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("default")));
  // Mistral's [SYSTEM_PROMPT] templates.
  EXPECT_THAT(
      ChatTemplate::Parse(absl::StrCat(kMistralV01, "{{ '[SYSTEM_PROMPT]' }}"),
                          SentencePieceTokens()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("[SYSTEM_PROMPT]")));
}

TEST(ChatTemplateTest, PyStripMatchesPythonWhitespace) {
  EXPECT_EQ(PyStrip(" \t\n\r\x0b\x0c\x1c a b \xC2\xA0\xE3\x80\x80"), "a b");
  EXPECT_EQ(PyStrip("\xE2\x80\x8B"
                    "a"),
            "\xE2\x80\x8B"
            "a");  // U+200B is not whitespace
  EXPECT_EQ(PyStrip("  "), "");
}

}  // namespace
}  // namespace tessera::lm
