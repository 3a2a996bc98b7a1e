#include "client/lm/text/chat_template.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using Part = ChatTemplate::Part;

// One {{ expression }} (output) or {% statement %} of the template, without the
// delimiters, the -/+ whitespace-control marks and surrounding whitespace.
struct Block {
  bool output = false;
  std::string inner;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string TrimBlock(absl::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  if (!s.empty() && (s.back() == '-' || s.back() == '+')) s.remove_suffix(1);
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// The end of the string literal that starts at s[i] (a quote): the index after
// the closing quote, or npos.
size_t LiteralEnd(absl::string_view s, size_t i) {
  const char quote = s[i];
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == quote) {
      return j + 1;
    }
  }
  return absl::string_view::npos;
}

// Python's string-literal escapes (Jinja's string literals are Python's).
std::string Unescape(absl::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out.push_back(body[i]);
      continue;
    }
    const char c = body[++i];
    switch (c) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case '\n':
        break;  // line continuation
      default:
        out.push_back('\\');
        out.push_back(c);
    }
  }
  return out;
}

std::vector<Block> Blocks(absl::string_view t) {
  std::vector<Block> blocks;
  size_t i = 0;
  while (i + 1 < t.size()) {
    if (t[i] != '{' ||
        (t[i + 1] != '{' && t[i + 1] != '%' && t[i + 1] != '#')) {
      ++i;
      continue;
    }
    const char kind = t[i + 1];
    const char close = kind == '{' ? '}' : kind;
    size_t j = i + 2;
    bool closed = false;
    while (j + 1 < t.size()) {
      if (kind != '#' && (t[j] == '\'' || t[j] == '"')) {
        const size_t end = LiteralEnd(t, j);
        if (end == absl::string_view::npos) break;
        j = end;
        continue;
      }
      if (t[j] == close && t[j + 1] == '}') {
        closed = true;
        break;
      }
      ++j;
    }
    if (!closed) break;
    if (kind != '#')
      blocks.push_back({kind == '{', TrimBlock(t.substr(i + 2, j - i - 2))});
    i = j + 2;
  }
  return blocks;
}

// Every string literal in the blocks, unescaped.
std::set<std::string> Literals(const std::vector<Block>& blocks) {
  std::set<std::string> out;
  for (const Block& b : blocks) {
    const absl::string_view s = b.inner;
    for (size_t i = 0; i < s.size();) {
      if (s[i] != '\'' && s[i] != '"') {
        ++i;
        continue;
      }
      const size_t end = LiteralEnd(s, i);
      if (end == absl::string_view::npos) break;
      out.insert(Unescape(s.substr(i + 1, end - i - 2)));
      i = end;
    }
  }
  return out;
}

// Parses `a + b + ...` where each term is a string literal, bos_token,
// eos_token, message['role'] / message.role, message['content'] /
// message.content (or `content` when `content_var` is set), the last optionally
// with | trim or .strip(). nullopt for anything else.
std::optional<std::vector<Part>> ParseExpression(absl::string_view e,
                                                 bool content_var) {
  std::vector<Part> parts;
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < e.size() && IsSpace(e[i])) ++i;
  };
  while (true) {
    skip_space();
    if (i >= e.size()) return std::nullopt;
    Part part;
    if (e[i] == '\'' || e[i] == '"') {
      const size_t end = LiteralEnd(e, i);
      if (end == absl::string_view::npos) return std::nullopt;
      part.text = Unescape(e.substr(i + 1, end - i - 2));
      i = end;
    } else {
      // A name with ['key'], ["key"], .key and () suffixes, spelled
      // canonically.
      std::string path;
      while (i < e.size() &&
             (std::isalnum(static_cast<unsigned char>(e[i])) || e[i] == '_')) {
        path.push_back(e[i++]);
      }
      if (path.empty()) return std::nullopt;
      while (i < e.size()) {
        if (e[i] == '.') {
          ++i;
          path.push_back('.');
          while (
              i < e.size() &&
              (std::isalnum(static_cast<unsigned char>(e[i])) || e[i] == '_')) {
            path.push_back(e[i++]);
          }
        } else if (e[i] == '[' && i + 1 < e.size() &&
                   (e[i + 1] == '\'' || e[i + 1] == '"')) {
          const size_t end = LiteralEnd(e, i + 1);
          if (end == absl::string_view::npos || end >= e.size() ||
              e[end] != ']') {
            return std::nullopt;
          }
          absl::StrAppend(&path, ".", e.substr(i + 2, end - i - 3));
          i = end + 1;
        } else if (e[i] == '(' && i + 1 < e.size() && e[i + 1] == ')') {
          path += "()";
          i += 2;
        } else {
          break;
        }
      }
      bool strip = false;
      if (absl::EndsWith(path, ".strip()")) {
        path.resize(path.size() - 8);
        strip = true;
      }
      if (path == "message.content" || (content_var && path == "content")) {
        part.kind = Part::kContent;
        part.trim = strip;
      } else if (strip) {
        return std::nullopt;
      } else if (path == "message.role") {
        part.kind = Part::kRole;
      } else if (path == "bos_token") {
        part.kind = Part::kBos;
      } else if (path == "eos_token") {
        part.kind = Part::kEos;
      } else {
        return std::nullopt;
      }
    }
    skip_space();
    if (i < e.size() && e[i] == '|') {
      ++i;
      skip_space();
      if (e.substr(i, 4) != "trim" || part.kind != Part::kContent)
        return std::nullopt;
      i += 4;
      part.trim = true;
      skip_space();
    }
    parts.push_back(std::move(part));
    if (i >= e.size()) return parts;
    if (e[i] != '+') return std::nullopt;
    ++i;
  }
}

bool Has(const std::vector<Part>& parts, Part::Kind kind) {
  return std::any_of(parts.begin(), parts.end(),
                     [&](const Part& p) { return p.kind == kind; });
}

bool HasLiteral(const std::vector<Part>& parts, absl::string_view text) {
  return std::any_of(parts.begin(), parts.end(), [&](const Part& p) {
    return p.kind == Part::kLiteral && absl::StrContains(p.text, text);
  });
}

absl::Status Refuse(absl::string_view family, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "chat template: ", family, " template cannot be rendered exactly: ", why,
      "; use prompt_template = \"alpaca\""));
}

// The one distinct message expression among `candidates`; an error when there
// is none or several differ.
absl::StatusOr<std::vector<Part>> OneExpression(
    const std::vector<std::vector<Part>>& candidates, absl::string_view family,
    absl::string_view what) {
  if (candidates.empty())
    return Refuse(family, absl::StrCat("no ", what, " expression found"));
  for (const auto& c : candidates) {
    if (!(c == candidates[0])) {
      return Refuse(family,
                    absl::StrCat("several different ", what, " expressions"));
    }
  }
  return candidates[0];
}

bool HasOutputBlock(const std::vector<Block>& blocks, absl::string_view inner) {
  return std::any_of(blocks.begin(), blocks.end(), [&](const Block& b) {
    return b.output && b.inner == inner;
  });
}

// Decodes the UTF-8 code point at s[i] (advancing i); -1 for a malformed
// sequence.
int32_t NextCodePoint(absl::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80         ? 1
            : (b >> 5) == 6  ? 2
            : (b >> 4) == 14 ? 3
            : (b >> 3) == 30 ? 4
                             : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return -1;
  }
  int32_t cp = len == 1 ? b : b & (0x7F >> len);
  for (int k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

// Python's str.isspace() code points.
bool IsPyWhitespace(int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

}  // namespace

std::string PyStrip(absl::string_view s) {
  size_t begin = 0;
  size_t end = 0;  // after the last non-space code point
  bool seen = false;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const int32_t c = NextCodePoint(s, i);
    if (IsPyWhitespace(c)) continue;
    if (!seen) begin = at;
    seen = true;
    end = i;
  }
  return seen ? std::string(s.substr(begin, end - begin)) : std::string();
}

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(
    absl::string_view jinja, const ChatTemplateOptions& options) {
  const std::vector<Block> blocks = Blocks(jinja);
  const std::set<std::string> literals = Literals(blocks);
  ChatTemplate t;
  t.options_ = options;
  const bool content_var =
      absl::StrContains(jinja, "set content = message['content']");
  // Expressions of output blocks and of {% set content = ... %}.
  std::vector<std::vector<Part>> exprs;
  for (const Block& b : blocks) {
    absl::string_view e = b.inner;
    if (!b.output && !absl::ConsumePrefix(&e, "set content =")) continue;
    if (std::optional<std::vector<Part>> p = ParseExpression(e, content_var)) {
      exprs.push_back(*std::move(p));
    }
  }
  const bool standalone_bos = HasOutputBlock(blocks, "bos_token");

  if (absl::StrContains(jinja, "<think>") ||
      absl::StrContains(jinja, "reasoning_content")) {
    return Refuse("a reasoning (<think>, Qwen3/QwQ-style)",
                  "it rewrites assistant turns");
  }
  if (absl::StrContains(jinja, "<|im_start|>")) {
    t.family_ = "chatml";
    t.end_of_turn_ = "<|im_end|>";
    t.generation_prompt_ = "<|im_start|>assistant\n";
    std::vector<std::vector<Part>> messages;
    for (const auto& p : exprs) {
      if (Has(p, Part::kRole) && Has(p, Part::kContent) &&
          HasLiteral(p, "<|im_start|>")) {
        messages.push_back(p);
      }
    }
    TESSERA_ASSIGN_OR_RETURN(t.user_,
                             OneExpression(messages, t.family_, "message"));
    if (!literals.contains(t.generation_prompt_)) {
      return Refuse(t.family_,
                    "no '<|im_start|>assistant\\n' generation prompt");
    }
    if (absl::StrContains(jinja, "bos_token")) {
      if (!standalone_bos)
        return Refuse(t.family_, "bos_token is used inside an expression");
      t.preamble_ = options.bos_token;
      t.writes_bos_ = true;
    }
    // The default system message: a literal
    // '<|im_start|>system\n...<|im_end|>\n'.
    std::vector<std::string> defaults;
    for (const std::string& l : literals) {
      absl::string_view s = l;
      if (absl::ConsumePrefix(&s, "<|im_start|>system\n") &&
          absl::ConsumeSuffix(&s, "<|im_end|>\n") &&
          !absl::StrContains(s, "<|im_")) {
        defaults.push_back(l);
      }
    }
    if (defaults.size() > 1) {
      return Refuse(t.family_,
                    absl::StrCat("several default system messages (",
                                 absl::StrJoin(defaults, " | "), ")"));
    }
    if (defaults.size() == 1) {
      t.preamble_ += defaults[0];
    } else if (absl::StrContains(jinja, "system")) {
      return Refuse(t.family_,
                    "it handles system messages but writes no "
                    "'<|im_start|>system\\n...<|im_end|>"
                    "\\n' default literal");
    }
  } else if (absl::StrContains(jinja, "<|start_header_id|>")) {
    t.family_ = "llama3";
    t.end_of_turn_ = "<|eot_id|>";
    t.generation_prompt_ = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    std::vector<std::vector<Part>> messages;
    for (const auto& p : exprs) {
      if (Has(p, Part::kRole) && Has(p, Part::kContent) &&
          HasLiteral(p, "<|start_header_id|>")) {
        messages.push_back(p);
      }
    }
    TESSERA_ASSIGN_OR_RETURN(t.user_,
                             OneExpression(messages, t.family_, "message"));
    if (!literals.contains(t.generation_prompt_)) {
      return Refuse(t.family_,
                    "no '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
                    "generation prompt");
    }
    if (absl::StrContains(jinja, "bos_token")) {
      // Llama 3.1+: {{- bos_token }}; Llama 3: bos_token + content for the
      // first message.
      if (!standalone_bos &&
          !absl::StrContains(jinja, "set content = bos_token + content")) {
        return Refuse(t.family_, "bos_token is used in an unknown way");
      }
      t.preamble_ = options.bos_token;
      t.writes_bos_ = true;
    }
    if (absl::StrContains(jinja, "Cutting Knowledge Date")) {
      for (const char* piece :
           {"<|start_header_id|>system<|end_header_id|>\n\n",
            "Cutting Knowledge Date: December 2023\n", "Today Date: ", "\n\n",
            "<|eot_id|>"}) {
        if (!literals.contains(piece)) {
          return Refuse(t.family_,
                        absl::StrCat("the system header lacks the literal \"",
                                     absl::CEscape(piece), "\""));
        }
      }
      std::string date;
      if (absl::StrContains(jinja, "strftime_now")) {
        if (options.today.empty())
          return Refuse(t.family_, "it needs today's date");
        date = options.today;
      } else {
        for (const Block& b : blocks) {
          absl::string_view e = b.inner;
          if (b.output || !absl::ConsumePrefix(&e, "set date_string ="))
            continue;
          std::optional<std::vector<Part>> p = ParseExpression(e, false);
          if (!p.has_value() || p->size() != 1 ||
              (*p)[0].kind != Part::kLiteral) {
            return Refuse(t.family_, "date_string is not a literal");
          }
          date = (*p)[0].text;
        }
        if (date.empty()) return Refuse(t.family_, "no date_string");
      }
      absl::StrAppend(&t.preamble_,
                      "<|start_header_id|>system<|end_header_id|>\n\n",
                      "Cutting Knowledge Date: December 2023\n",
                      "Today Date: ", date, "\n\n", "<|eot_id|>");
    } else if (absl::StrContains(jinja, "system")) {
      return Refuse(t.family_, "an unknown system header");
    }
  } else if (absl::StrContains(jinja, "[INST]")) {
    t.family_ = "inst";
    if (absl::StrContains(jinja, "[SYSTEM_PROMPT]") ||
        absl::StrContains(jinja, "default_system")) {
      return Refuse(t.family_, "a default system prompt ([SYSTEM_PROMPT])");
    }
    if (options.eos_token.empty())
      return Refuse(t.family_, "the tokenizer has no eos_token");
    std::vector<std::vector<Part>> users, assistants;
    for (size_t k = 0; k < blocks.size(); ++k) {
      const Block& b = blocks[k];
      if (!b.output || absl::StrContains(b.inner, "system") ||
          absl::StrContains(b.inner, "<<SYS>>")) {
        continue;
      }
      std::optional<std::vector<Part>> p =
          ParseExpression(b.inner, content_var);
      if (!p.has_value() || !Has(*p, Part::kContent)) continue;
      if (HasLiteral(*p, "[INST]")) {
        users.push_back(*std::move(p));
      } else if (Has(*p, Part::kEos)) {
        assistants.push_back(*std::move(p));
      }
    }
    TESSERA_ASSIGN_OR_RETURN(t.user_, OneExpression(users, t.family_, "user"));
    TESSERA_ASSIGN_OR_RETURN(t.assistant_,
                             OneExpression(assistants, t.family_, "assistant"));
    if (Has(t.user_, Part::kRole) || Has(t.assistant_, Part::kRole)) {
      return Refuse(t.family_, "message expressions that write the role");
    }
    if (Has(t.user_, Part::kBos)) {
      t.writes_bos_ = true;
    } else if (standalone_bos) {
      t.preamble_ = options.bos_token;
      t.writes_bos_ = true;
    } else if (absl::StrContains(jinja, "bos_token")) {
      return Refuse(t.family_, "bos_token is used in an unknown way");
    }
    t.end_of_turn_ = options.eos_token;
  } else {
    return absl::InvalidArgumentError(
        "chat template: not a recognized family (ChatML <|im_start|>, Llama 3 "
        "<|start_header_id|>, Llama 2/Mistral [INST]); use prompt_template = "
        "\"alpaca\"");
  }
  if (t.family_ != "inst") t.assistant_ = t.user_;

  // The assistant turn must be header + content + end of turn + tail.
  std::vector<Part> before, through_content;
  for (const Part& p : t.assistant_) {
    through_content.push_back(p);
    if (p.kind == Part::kContent) break;
    before.push_back(p);
  }
  const std::string header = t.Eval(before, "assistant", "");
  if (t.family_ != "inst" && header != t.generation_prompt_) {
    return Refuse(t.family_,
                  "the assistant header differs from the generation prompt");
  }
  const std::string a = t.Eval(t.assistant_, "assistant", "x");
  const size_t content_end = t.Eval(through_content, "assistant", "x").size();
  if (t.end_of_turn_.empty() ||
      a.find(t.end_of_turn_, content_end) == std::string::npos) {
    return Refuse(t.family_,
                  "no end-of-turn token after the assistant content");
  }
  return t;
}

std::string ChatTemplate::Eval(const std::vector<Part>& parts,
                               absl::string_view role,
                               absl::string_view content) const {
  std::string out;
  for (const Part& p : parts) {
    switch (p.kind) {
      case Part::kLiteral:
        out += p.text;
        break;
      case Part::kRole:
        out.append(role.data(), role.size());
        break;
      case Part::kContent:
        out += p.trim ? PyStrip(content) : std::string(content);
        break;
      case Part::kBos:
        out += options_.bos_token;
        break;
      case Part::kEos:
        out += options_.eos_token;
        break;
    }
  }
  return out;
}

ChatRendering ChatTemplate::Render(absl::string_view user,
                                   absl::string_view assistant) const {
  ChatRendering r;
  r.prompt = preamble_ + Eval(user_, "user", user);
  if (family_ != "inst") r.prompt += generation_prompt_;
  // The assistant turn, split after its content's end.
  std::vector<Part> before, through_content;
  for (const Part& p : assistant_) {
    through_content.push_back(p);
    if (p.kind == Part::kContent) break;
    before.push_back(p);
  }
  const std::string a = Eval(assistant_, "assistant", assistant);
  const size_t header =
      family_ == "inst" ? 0 : Eval(before, "assistant", "").size();
  const size_t content_end =
      Eval(through_content, "assistant", assistant).size();
  const size_t eot = a.find(end_of_turn_, content_end) + end_of_turn_.size();
  r.response = a.substr(header, eot - header);
  r.tail = a.substr(eot);
  return r;
}

}  // namespace tessera::lm
