#include "client/lm/text/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using ::testing::HasSubstr;

// HuggingFaceTB/SmolLM2-*-Instruct's template (tokenizer_config.json, after JSON decoding;
// jinja/template_reference_test.cc checks the interpreter against Jinja2 on it). The
// expected renderings below follow from reading the template.
constexpr char kSmolLM2[] =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

// meta-llama/Meta-Llama-3-8B-Instruct's template.
constexpr char kLlama3[] =
    R"({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %})";

ChatTemplateOptions Options(const char* bos, const char* eos) {
  ChatTemplateOptions o;
  if (bos != nullptr) o.bos_token = bos;
  if (eos != nullptr) o.eos_token = eos;
  return o;
}

TEST(ChatTemplate, ChatmlExchangeSplitsAfterTheEndOfTurnToken) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(kSmolLM2, Options(nullptr, "<|im_end|>"));
  ASSERT_THAT(t, IsOk());
  absl::StatusOr<ChatRendering> r = t->RenderExchange("Hi", "Yo");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r->response, "Yo<|im_end|>");
  EXPECT_EQ(r->tail, "\n");
}

TEST(ChatTemplate, Llama3ExchangeTrimsAndWritesBos) {
  absl::StatusOr<ChatTemplate> t =
      ChatTemplate::Parse(kLlama3, Options("<|begin_of_text|>", "<|eot_id|>"));
  ASSERT_THAT(t, IsOk());
  absl::StatusOr<ChatRendering> r = t->RenderExchange(" Hi\n", "Yo ");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->prompt,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(r->response, "Yo<|eot_id|>");
  EXPECT_EQ(r->tail, "");
}

TEST(ChatTemplate, WithoutEosTheWholeSuffixIsTheResponse) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(
      "{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>"
      "{% endif %}{{ eos_token is defined }}",
      Options(nullptr, nullptr));
  ASSERT_THAT(t, IsOk());
  // [user] + generation prompt: "[u]>False"; that is not a prefix of "[u][a]False".
  EXPECT_THAT(t->RenderExchange("u", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the prompt ([user] with add_generation_prompt=True) \"[u]>False"
                                 "\" is not a prefix of the exchange")));
  absl::StatusOr<ChatTemplate> plain =
      ChatTemplate::Parse("{% for m in messages %}[{{ m.content }}]{% endfor %}",
                          Options(nullptr, nullptr));
  ASSERT_THAT(plain, IsOk());
  absl::StatusOr<ChatRendering> r = plain->RenderExchange("u", "a");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->prompt, "[u]");
  EXPECT_EQ(r->response, "[a]");
  EXPECT_EQ(r->tail, "");
}

TEST(ChatTemplate, ErrorsNameTheTemplate) {
  EXPECT_THAT(ChatTemplate::Parse("{% include 'x.jinja' %}", {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("chat template: line 1, column 4: unsupported statement "
                                 "'include'")));
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(
      "{% if messages[0].role != 'system' %}{{ raise_exception('needs a system turn') }}"
      "{% endif %}",
      {});
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->RenderExchange("u", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("chat template: line 1, column 41: raise_exception: needs a "
                                 "system turn")));
}

}  // namespace
}  // namespace tessera::lm
