#include "client/lm/text/prompt_template.h"

#include "absl/strings/str_cat.h"

namespace tessera::lm {

std::string AlpacaPrompt(absl::string_view instruction, absl::string_view input) {
  if (input.empty()) {
    return absl::StrCat(
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n",
        instruction, "\n\n### Response:");
  }
  return absl::StrCat(
      "Below is an instruction that describes a task, paired with an input that provides "
      "further context. "
      "Write a response that appropriately completes the request.\n\n"
      "### Instruction:\n",
      instruction, "\n\n### Input:\n", input, "\n\n### Response:");
}

}  // namespace tessera::lm
