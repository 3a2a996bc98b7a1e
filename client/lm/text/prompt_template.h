// File: prompt_template.h
// The prompt templates instruction records are rendered with, as their sources define them
// (the same text at training and generation time).
//
// Example:
//   std::string prompt = AlpacaPrompt("Name a colour.", "");
//   // "Below is an instruction that describes a task. ...### Response:"
#ifndef TESSERA_CLIENT_LM_TEXT_PROMPT_TEMPLATE_H_
#define TESSERA_CLIENT_LM_TEXT_PROMPT_TEMPLATE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tessera::lm {

// Stanford Alpaca's PROMPT_DICT (tatsu-lab/stanford_alpaca train.py): "prompt_input" when
// `input` is non-empty, else "prompt_no_input". Both end in "### Response:" with no newline;
// the response follows directly.
std::string AlpacaPrompt(absl::string_view instruction, absl::string_view input);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TEXT_PROMPT_TEMPLATE_H_
