#include "client/lm/tokenizer/special_tokens.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/tokenizer/tokenizer_json.h"
#include "client/lm/tokenizer/utf8.h"
#include "core/base/status_macros.h"

namespace tessera::lm::tokenizer_internal {

using json = nlohmann::json;

absl::StatusOr<AddedTokens> AddedTokens::FromJson(const json& root) {
  AddedTokens out;
  auto list = root.find("added_tokens");
  if (list == root.end() || list->is_null()) return out;
  if (!list->is_array()) return Invalid("added_tokens", "is not an array");
  for (size_t i = 0; i < list->size(); ++i) {
    const json& t = (*list)[i];
    const std::string field = absl::StrCat("added_tokens[", i, "]");
    if (!t.is_object()) return Invalid(field, "is not an object");
    auto content = t.find("content");
    auto id = t.find("id");
    if (content == t.end() || !content->is_string() || content->get<std::string>().empty()) {
      return Invalid(absl::StrCat(field, ".content"), "is missing or empty");
    }
    if (id == t.end() || !id->is_number_integer() || id->get<int64_t>() < 0 ||
        id->get<int64_t>() > (int64_t{1} << 30)) {
      return Invalid(absl::StrCat(field, ".id"), "is missing or not a token id");
    }
    AddedToken token;
    token.content = content->get<std::string>();
    token.id = static_cast<int32_t>(id->get<int64_t>());
    TESSERA_ASSIGN_OR_RETURN(token.special, OptionalBool(t, "special", field, false));
    TESSERA_ASSIGN_OR_RETURN(token.lstrip, OptionalBool(t, "lstrip", field, false));
    TESSERA_ASSIGN_OR_RETURN(token.rstrip, OptionalBool(t, "rstrip", field, false));
    TESSERA_ASSIGN_OR_RETURN(const bool single_word, OptionalBool(t, "single_word", field, false));
    if (single_word) return Invalid(absl::StrCat(field, ".single_word"), "true is not supported");
    TESSERA_RETURN_IF_ERROR(CheckUtf8(token.content, absl::StrCat(kTokenizerFile, ": ", field)));
    out.tokens_.push_back(std::move(token));
  }
  std::stable_sort(out.tokens_.begin(), out.tokens_.end(),
                   [](const AddedToken& x, const AddedToken& y) {
                     return x.content.size() > y.content.size();
                   });
  for (size_t i = 0; i < out.tokens_.size(); ++i) {
    const AddedToken& t = out.tokens_[i];
    out.by_first_byte_[static_cast<unsigned char>(t.content[0])].push_back(i);
    out.by_id_[t.id] = i;
    out.id_limit_ = std::max(out.id_limit_, static_cast<size_t>(t.id) + 1);
  }
  return out;
}

const AddedToken* AddedTokens::LongestAt(absl::string_view text, size_t pos) const {
  for (size_t i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    if (absl::StartsWith(text.substr(pos), tokens_[i].content)) return &tokens_[i];
  }
  return nullptr;
}

const AddedToken* AddedTokens::WithId(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedTokens::Find(const std::string& content) const {
  for (const AddedToken& t : tokens_) {
    if (t.content == content) return t.id;
  }
  return std::nullopt;
}

absl::StatusOr<PostProcessor> PostProcessor::FromJson(const json& root, size_t vocab_size) {
  PostProcessor out;
  auto p = root.find("post_processor");
  if (p == root.end() || p->is_null()) return out;
  TESSERA_ASSIGN_OR_RETURN(std::vector<SectionItem> procs,
                           SectionItems(*p, "post_processor", "processors"));
  for (const auto& [item, field] : procs) {
    const json& s = *item;
    const std::string type = TypeOf(s);
    if (type == "ByteLevel") continue;  // offsets only
    if (type != "TemplateProcessing") {
      return Invalid(
          absl::StrCat(field, ".type"),
          absl::StrCat(Quoted(type), " is not supported (only TemplateProcessing and ByteLevel)"));
    }
    if (out.has_template_) return Invalid(field, "is a second TemplateProcessing");
    out.has_template_ = true;
    auto single = s.find("single");
    if (single == s.end() || !single->is_array()) {
      return Invalid(absl::StrCat(field, ".single"), "is missing");
    }
    auto specials = s.find("special_tokens");
    for (size_t k = 0; k < single->size(); ++k) {
      const json& item = (*single)[k];
      const std::string item_field = absl::StrCat(field, ".single[", k, "]");
      Item item_out;
      if (item.is_object() && item.contains("Sequence")) {
        const json& seq = item["Sequence"];
        if (!seq.is_object() || seq.value("id", "") != "A") {
          return Invalid(item_field, "is a sequence other than $A");
        }
        item_out.sequence = true;
      } else if (item.is_object() && item.contains("SpecialToken") &&
                 item["SpecialToken"].is_object() && item["SpecialToken"].contains("id") &&
                 item["SpecialToken"]["id"].is_string()) {
        const std::string name = item["SpecialToken"]["id"].get<std::string>();
        if (specials == s.end() || !specials->is_object() || !specials->contains(name) ||
            !(*specials)[name].is_object() || !(*specials)[name].contains("ids") ||
            !(*specials)[name]["ids"].is_array()) {
          return Invalid(absl::StrCat(field, ".special_tokens"),
                         absl::StrCat("has no ids for ", Quoted(name)));
        }
        for (const json& id : (*specials)[name]["ids"]) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
              id.get<int64_t>() >= static_cast<int64_t>(vocab_size)) {
            return Invalid(absl::StrCat(field, ".special_tokens[", Quoted(name), "].ids"),
                           "holds an id outside the vocabulary");
          }
          item_out.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
        }
      } else {
        return Invalid(item_field, "is neither {\"Sequence\": ...} nor {\"SpecialToken\": ...}");
      }
      out.template_.push_back(std::move(item_out));
    }
  }
  return out;
}

std::vector<int32_t> PostProcessor::Apply(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> out;
  for (const Item& item : template_) {
    if (item.sequence) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
  }
  return out;
}

std::optional<int32_t> PostProcessor::leading_special_id() const {
  if (!template_.empty() && !template_[0].sequence && template_[0].ids.size() == 1) {
    return template_[0].ids[0];
  }
  return std::nullopt;
}

}  // namespace tessera::lm::tokenizer_internal
