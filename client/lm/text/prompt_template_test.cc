#include "client/lm/text/prompt_template.h"

#include <gtest/gtest.h>

namespace tessera::lm {
namespace {

// The expected strings are typed from PROMPT_DICT in tatsu-lab/stanford_alpaca train.py.
TEST(AlpacaPromptTest, WithoutInput) {
  EXPECT_EQ(AlpacaPrompt("Name a colour.", ""),
            "Below is an instruction that describes a task. Write a response that "
            "appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n"
            "### Response:");
}

TEST(AlpacaPromptTest, WithInput) {
  EXPECT_EQ(AlpacaPrompt("Translate.", "chat"),
            "Below is an instruction that describes a task, paired with an input that "
            "provides further context. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nTranslate.\n\n### Input:\nchat\n\n### Response:");
}

TEST(AlpacaPromptTest, FieldsAreInsertedVerbatim) {
  // Braces and newlines in the record are not template syntax.
  EXPECT_EQ(AlpacaPrompt("{input}", "a\nb"),
            "Below is an instruction that describes a task, paired with an input that "
            "provides further context. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{input}\n\n### Input:\na\nb\n\n### Response:");
}

}  // namespace
}  // namespace tessera::lm
