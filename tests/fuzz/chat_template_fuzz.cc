// File: chat_template_fuzz.cc
// Fuzzes the Jinja interpreter a checkpoint's chat template runs in (tokenizer_config.json
// "chat_template"; client/lm/text/jinja/template.h): Template::Parse, then Render with a
// three-message conversation, the generation prompt and BOS/EOS tokens, under small limits.
// Input: the template source. Errors are fine; a crash, hang or a limit exceeded without an
// error is not.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>

#include "client/lm/text/jinja/template.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using tessera::lm::jinja::Dict;
using tessera::lm::jinja::Value;

Value Message(const char* role, const char* content) {
  return Value::MakeDict({{"role", Value::String(role)}, {"content", Value::String(content)}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::lm::jinja::Limits limits;
  limits.max_template_bytes = 64 << 10;
  limits.max_output_bytes = 1 << 20;
  limits.max_built_bytes = 16 << 20;
  limits.max_loop_iterations = 100'000;
  limits.max_depth = 64;
  absl::StatusOr<tessera::lm::jinja::Template> t = tessera::lm::jinja::Template::Parse(
      std::string(reinterpret_cast<const char*>(data), size), limits);
  tessera::fuzz::Report(t.status());
  if (!t.ok()) return 0;
  const Dict vars = {
      {"messages", Value::MakeList({Message("system", "Be brief."), Message("user", " Hi "),
                                    Message("assistant", "Hello")})},
      {"add_generation_prompt", Value::Bool(true)},
      {"tools", Value::None()},
      {"documents", Value::None()},
      {"bos_token", Value::String("<s>")},
      {"eos_token", Value::String("</s>")}};
  std::tm now{};
  now.tm_year = 124;
  now.tm_mon = 6;
  now.tm_mday = 26;
  absl::StatusOr<std::string> out = t->Render(vars, now);
  tessera::fuzz::Report(out.status());
  if (out.ok()) {
    tessera::fuzz::Check(out->size() <= limits.max_output_bytes, "output within its limit");
  }
  return 0;
}
