// LoadTextData with a tokenizer's chat template (format "chat"): what is masked, BOS, the
// date a template reads, the generation prompt, and the errors.
#include "client/lm/text/text_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/lm/text/chat_template.h"
#include "client/lm/text/text_data_test_support.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using text_test::ByteTokenizer;
using text_test::Bytes;
using text_test::kBos;
using text_test::kEos;
using text_test::kI;
using text_test::TextDataTest;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ByteTokenizer plus special tokens whose text maps to one id, and a chat template.
class ChatByteTokenizer : public ByteTokenizer {
 public:
  ChatByteTokenizer(std::optional<std::string> chat_template,
                    std::vector<std::pair<std::string, int32_t>> specials, int32_t eos)
      : ByteTokenizer(/*add_bos=*/true), template_(std::move(chat_template)),
        specials_(std::move(specials)), eos_(eos) {}
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              const EncodeOptions& options) const override {
    std::vector<int32_t> ids;
    if (options.add_special_tokens) ids.push_back(kBos);
    for (size_t i = 0; i < text.size();) {
      bool special = false;
      for (const auto& [s, id] : specials_) {
        if (text.substr(i, s.size()) == s) {
          ids.push_back(id);
          i += s.size();
          special = true;
          break;
        }
      }
      if (!special) ids.push_back(static_cast<unsigned char>(text[i++]) + 3);
    }
    return ids;
  }
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool) const override {
    std::string out;
    for (int32_t id : ids) {
      for (const auto& [s, sid] : specials_) {
        if (sid == id) out += s;
      }
    }
    return out;
  }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<std::string> chat_template() const override { return template_; }

 private:
  std::optional<std::string> template_;
  std::vector<std::pair<std::string, int32_t>> specials_;
  int32_t eos_;
};

TEST_F(TextDataTest, ChatTemplateMasksAllButTheResponse) {
  // A SmolLM2-shaped ChatML template with default system "S"; <|im_start|> 300, <|im_end|> 301.
  ChatByteTokenizer tok(
      R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nS<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})",
      {{"<|im_start|>", 300}, {"<|im_end|>", 301}}, 301);
  const std::string path =
      Write("{\"instruction\": \"Hi\", \"input\": \"x\", \"output\": \"Yo\"}\n");
  TextDataOptions o = NoHeldOut(1024);
  o.prompt_template = "chat";
  absl::StatusOr<TextData> d = LoadTextData(path, tok, o);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  // "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi\n\nx<|im_end|>\n"
  // "<|im_start|>assistant\nYo<|im_end|>\n": no BOS (add_special_tokens is off), no EOS
  // appended; targets "Y", "o" and <|im_end|>; the final "\n" is not one.
  std::vector<int32_t> ids = {300};
  for (int32_t id : Bytes("system\nS")) ids.push_back(id);
  ids.push_back(301);
  ids.push_back('\n' + 3);
  ids.push_back(300);
  for (int32_t id : Bytes("user\nHi\n\nx")) ids.push_back(id);
  ids.push_back(301);
  ids.push_back('\n' + 3);
  ids.push_back(300);
  for (int32_t id : Bytes("assistant\n")) ids.push_back(id);
  std::vector<int32_t> labels(ids.size(), kI);
  for (int32_t id : {'Y' + 3, 'o' + 3, 301}) {
    ids.push_back(id);
    labels.push_back(id);
  }
  ids.push_back('\n' + 3);
  labels.push_back(kI);
  EXPECT_THAT(d->train[0].input_ids, ElementsAreArray(ids));
  EXPECT_THAT(d->train[0].labels, ElementsAreArray(labels));
  EXPECT_EQ(d->train_target_tokens, 3u);
}

TEST_F(TextDataTest, ChatTemplateThatWritesBosGetsNoSecondBos) {
  // Llama 2's template; <s> 1 (also what add_special_tokens would prepend), </s> 2.
  ChatByteTokenizer tok(
      R"({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})",
      {{"<s>", kBos}, {"</s>", kEos}}, kEos);
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  TextDataOptions o = NoHeldOut(1024);
  o.prompt_template = "chat";
  absl::StatusOr<TextData> d = LoadTextData(path, tok, o);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  // "<s>[INST] Hi [/INST] Yo </s>": the response " Yo </s>" is the target.
  std::vector<int32_t> ids = {kBos};
  for (int32_t id : Bytes("[INST] Hi [/INST]")) ids.push_back(id);
  std::vector<int32_t> labels(ids.size(), kI);
  for (int32_t id : Bytes(" Yo ")) {
    ids.push_back(id);
    labels.push_back(id);
  }
  ids.push_back(kEos);
  labels.push_back(kEos);
  EXPECT_THAT(d->train[0].input_ids, ElementsAreArray(ids));
  EXPECT_THAT(d->train[0].labels, ElementsAreArray(labels));
}

TEST_F(TextDataTest, ChatDateIsWhatStrftimeNowFormats) {
  ChatByteTokenizer tok("{{ strftime_now('%d %b %Y') }}|{% for m in messages %}{{ m.content }}"
                        "{% endfor %}",
                        {}, kEos);
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  TextDataOptions o = NoHeldOut(1024);
  o.prompt_template = "chat";
  o.chat_date = "2 Jan 2025";
  absl::StatusOr<TextData> d = LoadTextData(path, tok, o);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->train.size(), 1u);
  // prompt "02 Jan 2025|Hi", exchange "02 Jan 2025|HiYo": the response "Yo" (no eos text).
  std::vector<int32_t> ids = Bytes("02 Jan 2025|HiYo");
  std::vector<int32_t> labels(ids.size(), kI);
  labels[ids.size() - 2] = 'Y' + 3;
  labels[ids.size() - 1] = 'o' + 3;
  EXPECT_THAT(d->train[0].input_ids, ElementsAreArray(ids));
  EXPECT_THAT(d->train[0].labels, ElementsAreArray(labels));
}

TEST_F(TextDataTest, ChatPromptForGenerationEndsWithTheAssistantHeader) {
  // Llama 2's template writes BOS itself; with add_special_tokens off there is one BOS.
  ChatByteTokenizer tok(
      "{% for m in messages %}{{ bos_token + '[INST] ' + m.content + ' [/INST]' }}{% endfor %}"
      "{% if add_generation_prompt %}>{% endif %}",
      {{"<s>", kBos}}, kEos);
  std::vector<int32_t> ids = {kBos};
  for (int32_t id : Bytes("[INST] Hi [/INST]>")) ids.push_back(id);
  EXPECT_THAT(EncodeChatPrompt(tok, "Hi", ""), IsOkAndHolds(ElementsAreArray(ids)));
  EXPECT_THAT(EncodeChatPrompt(tok_, "Hi", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json \"chat_template\"")));
}

TEST_F(TextDataTest, ChatPromptTemplateNeedsAChatTemplate) {
  const std::string path = Write("{\"instruction\": \"Hi\", \"output\": \"Yo\"}\n");
  TextDataOptions o = NoHeldOut(1024);
  o.prompt_template = "chat";
  EXPECT_THAT(LoadTextData(path, tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json \"chat_template\"")));
  ChatByteTokenizer unsupported("{% include 'x.jinja' %}", {}, kEos);
  EXPECT_THAT(LoadTextData(path, unsupported, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: chat template: line 1, column 4: "
                                 "unsupported statement 'include'")));
  // A record the template refuses names the file's line.
  ChatByteTokenizer refusing("{{ raise_exception('no user turns') }}", {}, kEos);
  EXPECT_THAT(LoadTextData(path, refusing, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(":1: chat template: line 1, column 4: raise_exception: no user "
                                 "turns")));
  o.chat_date = "July 26";
  EXPECT_THAT(LoadTextData(path, refusing, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("chat_date \"July 26\" is not a date")));
  o.chat_date = "";
  o.prompt_template = "vicuna";
  EXPECT_THAT(LoadTextData(path, tok_, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alpaca or chat")));
}

}  // namespace
}  // namespace tessera::lm
