// Byte-for-byte comparison with Jinja2 itself: client/lm/testing/chat_template_reference.py
// renders every chat template of client/lm/testing/chat_templates.json (published
// tokenizer_config.json templates, verbatim) for several conversations, and small feature
// templates, with Debian's python3-jinja2 configured as transformers configures it.
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/template.h"
#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::lm::jinja {
namespace {

using ::testing::HasSubstr;

Value FromJson(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::None();
    case nlohmann::json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return Value::Int(j.get<int64_t>());
    case nlohmann::json::value_t::number_float: return Value::Float(j.get<double>());
    case nlohmann::json::value_t::string: return Value::String(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List items;
      for (const auto& x : j) items.push_back(FromJson(x));
      return Value::MakeList(std::move(items));
    }
    default: {
      Dict d;
      for (const auto& [k, v] : j.items()) d.emplace_back(k, FromJson(v));
      return Value::MakeDict(std::move(d));
    }
  }
}

class JinjaReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir =
        absl::StrCat(::testing::TempDir(), "/chat_template_reference_", ::getpid());
    std::filesystem::create_directories(dir);
    const std::string cmd = absl::StrCat("/usr/bin/python3 ", TESSERA_SOURCE_DIR,
                                         "/client/lm/testing/chat_template_reference.py ", dir,
                                         " > ", dir, "/log.txt 2>&1");
    if (std::system(cmd.c_str()) == 0) {
      std::ifstream in(dir + "/cases.json");
      cases_ = new nlohmann::json(nlohmann::json::parse(in));
    } else {
      std::ifstream log(dir + "/log.txt");
      error_ = new std::string(std::istreambuf_iterator<char>(log), {});
    }
    std::filesystem::remove_all(dir);
  }

  void SetUp() override {
    ASSERT_NE(cases_, nullptr) << "chat_template_reference.py failed (needs Debian's "
                                  "python3-jinja2, scripts/install_deps.sh):\n"
                               << *error_;
  }

  static std::tm Now() {
    const auto& n = (*cases_)["now"];
    std::tm t{};
    t.tm_year = n[0].get<int>() - 1900;
    t.tm_mon = n[1].get<int>() - 1;
    t.tm_mday = n[2].get<int>();
    t.tm_hour = n[3].get<int>();
    t.tm_min = n[4].get<int>();
    t.tm_sec = n[5].get<int>();
    std::mktime(&t);  // fills in the weekday and day of the year
    return t;
  }

  // Renders every case whose name starts with `prefix`; returns how many.
  static int CheckCases(const std::string& prefix) {
    int n = 0;
    for (const auto& c : (*cases_)["cases"]) {
      const std::string name = c["name"];
      if (name.rfind(prefix, 0) != 0) continue;
      ++n;
      SCOPED_TRACE(name);
      const absl::StatusOr<Template> t = Template::Parse(c["source"].get<std::string>());
      const absl::StatusOr<std::string> out =
          t.ok() ? t->Render(FromJson(c["variables"]).dict(), Now())
                 : absl::StatusOr<std::string>(t.status());
      if (c.contains("expected")) {
        EXPECT_THAT(out, IsOkAndHolds(c["expected"].get<std::string>()));
        continue;
      }
      const std::string error = c["error"];
      EXPECT_FALSE(out.ok()) << "Jinja2 raised " << error << "; rendered " << *out;
      constexpr char kRaised[] = "TemplateError: ";  // raise_exception's message
      if (error.rfind(kRaised, 0) == 0 && !out.ok()) {
        EXPECT_THAT(std::string(out.status().message()),
                    HasSubstr(absl::StrCat("raise_exception: ", error.substr(strlen(kRaised)))));
      }
    }
    return n;
  }

  static inline nlohmann::json* cases_ = nullptr;
  static inline std::string* error_ = nullptr;
};

TEST_F(JinjaReferenceTest, PublishedChatTemplatesRenderAsJinja2) {
  std::set<std::string> names;
  for (const auto& c : (*cases_)["cases"]) names.insert(c["template"].get<std::string>());
  names.erase("");  // the feature templates
  for (const char* required : {"llama3", "llama3.1", "llama3.2", "llama2-chat", "qwen2",
                               "qwen2.5", "smollm2", "mistral-v0.1", "mixtral-v0.1",
                               "mistral-v0.3", "granite-3.0", "granite-3.1", "granite-3.2"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
  // 9 conversations, each with and without the generation prompt.
  for (const std::string& name : names) EXPECT_EQ(CheckCases(name + "/"), 18) << name;
}

TEST_F(JinjaReferenceTest, FeatureTemplatesRenderAsJinja2) {
  EXPECT_GE(CheckCases("feature/"), 45);
}

}  // namespace
}  // namespace tessera::lm::jinja
