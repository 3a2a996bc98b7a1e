// Limits, errors and values worked out by hand from Jinja2's and Python's documented rules
// (template_reference_test.cc compares with Jinja2 itself).
#include "client/lm/text/jinja/template.h"

#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/lm/text/jinja/python_repr.h"
#include "client/lm/text/jinja/tojson.h"
#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::lm::jinja {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::string> Render(const std::string& source, const Dict& vars = {},
                                   const Limits& limits = {}) {
  absl::StatusOr<Template> t = Template::Parse(source, limits);
  if (!t.ok()) return t.status();
  return t->Render(vars, std::tm{});
}

TEST(JinjaTemplate, RendersMessagesWithLoopAndNamespace) {
  const Value messages = Value::MakeList({
      Value::MakeDict({{"role", Value::String("user")}, {"content", Value::String("Hi")}}),
      Value::MakeDict({{"role", Value::String("assistant")}, {"content", Value::String("Yo")}}),
  });
  const std::string source =
      "{%- set ns = namespace(n=0) -%}\n"
      "{%- for m in messages %}\n"
      "  <{{ m.role }}:{{ m['content'] }}{% if not loop.last %},{% endif %}>\n"
      "  {%- set ns.n = ns.n + m.content | length %}\n"
      "{% endfor -%}\n"
      "={{ ns.n }}";
  // lstrip_blocks/trim_blocks drop the statement lines; each output line keeps its two
  // leading spaces and the "\n" before "{%- set" is stripped.
  EXPECT_THAT(Render(source, {{"messages", messages}}),
              IsOkAndHolds("  <user:Hi,>  <assistant:Yo>=4"));
}

TEST(JinjaTemplate, ErrorsNameLineAndColumn) {
  EXPECT_THAT(Render("ok\n  {{ 1 +* 2 }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 2, column 9: expected an expression, got '*'")));
  EXPECT_THAT(Render("{% if x %}\nno end"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unexpected end of template: expected 'elif' or 'else' or "
                                 "'endif'")));
  EXPECT_THAT(Render("a\n{% include 'x.jinja' %}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 2, column 4: unsupported statement 'include'")));
  EXPECT_THAT(Render("{{ 'x' | indent(2) }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1, column 10: unsupported filter 'indent'")));
  EXPECT_THAT(Render("{{ 'x'.zfill(3) }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unsupported method str.zfill()")));
  EXPECT_THAT(Render("{{ 'unterminated }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1, column 4: unterminated string literal")));
  EXPECT_THAT(Render("{# open comment"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("missing end of comment tag")));
  EXPECT_THAT(Render("{{ (1 ]}}"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("unexpected ']'")));
  EXPECT_THAT(Render("{% break %}"), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("'break' outside a for loop")));
  EXPECT_THAT(Render("{{ raise_exception('no system role') }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1, column 4: raise_exception: no system role")));
  EXPECT_THAT(Render("{{ missing.attr }}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'missing' is undefined")));
  EXPECT_THAT(Render("{% set x = 1 %}{% set x.a = 2 %}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a namespace")));
  EXPECT_THAT(Render("{{ 9223372036854775807 + 1 }}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("integer overflow")));
  EXPECT_THAT(Render("{{ 1 // 0 }}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("by zero")));
}

TEST(JinjaTemplate, TemplateSizeLimit) {
  Limits limits;
  limits.max_template_bytes = 10;
  EXPECT_THAT(Render("0123456789", {}, limits), IsOkAndHolds("0123456789"));
  EXPECT_THAT(Render("0123456789a", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("template of 11 bytes is over max_template_bytes (10)")));
}

TEST(JinjaTemplate, OutputSizeLimit) {
  Limits limits;
  limits.max_output_bytes = 6;
  EXPECT_THAT(Render("{% for i in range(3) %}ab{% endfor %}", {}, limits),
              IsOkAndHolds("ababab"));
  EXPECT_THAT(Render("{% for i in range(4) %}ab{% endfor %}", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("output longer than max_output_bytes (6)")));
  EXPECT_THAT(Render("{% set s = 'ab' * 4 %}", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_output_bytes (6)")));
}

TEST(JinjaTemplate, BuiltBytesLimit) {
  Limits limits;
  limits.max_built_bytes = 10;
  // s ~ 'ab' builds 2, 4, 6 bytes: 12 in all for three iterations, 6 for two.
  const std::string two = "{% set ns = namespace(s='') %}{% for i in range(2) %}"
                          "{% set ns.s = ns.s ~ 'ab' %}{% endfor %}{{ ns.s }}";
  EXPECT_THAT(Render(two, {}, limits), IsOkAndHolds("abab"));
  const std::string three = "{% set ns = namespace(s='') %}{% for i in range(3) %}"
                            "{% set ns.s = ns.s ~ 'ab' %}{% endfor %}{{ ns.s }}";
  EXPECT_THAT(Render(three, {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("strings built longer than max_built_bytes (10) in all")));
}

TEST(JinjaTemplate, LoopIterationLimit) {
  Limits limits;
  limits.max_loop_iterations = 6;
  // 2 outer + 2 * 2 inner iterations = 6.
  EXPECT_THAT(Render("{% for i in [1, 2] %}{% for j in [1, 2] %}x{% endfor %}{% endfor %}", {},
                     limits),
              IsOkAndHolds("xxxx"));
  EXPECT_THAT(Render("{% for i in [1, 2, 3] %}{% for j in [1] %}{% endfor %}{% endfor %}x",
                     {}, limits),
              IsOkAndHolds("x"));
  EXPECT_THAT(Render("{% for i in [1, 2, 3, 4, 5, 6, 7] %}{% endfor %}", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("more than max_loop_iterations (6)")));
  EXPECT_THAT(Render("{% for i in range(7) %}{% endfor %}", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("range() longer than the loop iterations left (6)")));
}

TEST(JinjaTemplate, DepthLimit) {
  Limits limits;
  limits.max_depth = 20;
  const auto nested = [](int n) {
    return absl::StrCat("{{ ", std::string(static_cast<size_t>(n), '('), "1",
                        std::string(static_cast<size_t>(n), ')'), " }}");
  };
  EXPECT_THAT(Render(nested(5), {}, limits), IsOkAndHolds("1"));
  EXPECT_THAT(Render(nested(40), {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nesting deeper than the limit of 20")));
  std::string ifs;
  for (int i = 0; i < 30; ++i) ifs += "{% if true %}";
  ifs += "x";
  for (int i = 0; i < 30; ++i) ifs += "{% endif %}";
  EXPECT_THAT(Render(ifs, {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nesting deeper than the limit of 20")));
  // Unbounded macro recursion stops at the evaluation depth.
  EXPECT_THAT(Render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("evaluation nested deeper than max_depth 20")));
  // The default limit parses 50 nested parentheses (Jinja2 itself stops near 80, at
  // Python's recursion limit).
  EXPECT_THAT(Render(nested(50)), IsOkAndHolds("1"));
}

TEST(JinjaTemplate, ValuesStayBoundedAndAcyclic) {
  Limits limits;
  limits.max_depth = 20;
  // Each iteration wraps the list once more: depth 1 + i after iteration i.
  const auto wrap = [](int n) {
    return absl::StrCat("{% set ns = namespace(x=[]) %}{% for i in range(", n,
                        ") %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | length }}");
  };
  EXPECT_THAT(Render(wrap(19), {}, limits), IsOkAndHolds("1"));
  EXPECT_THAT(Render(wrap(20), {}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a value nested deeper than max_depth (20)")));
  EXPECT_THAT(Render("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cannot store a namespace in namespace attribute 'me'")));
}

TEST(JinjaTemplate, StrftimeNowFormatsTheGivenTime) {
  std::tm t{};
  t.tm_year = 2025 - 1900;
  t.tm_mon = 0;
  t.tm_mday = 2;
  absl::StatusOr<Template> tpl = Template::Parse("{{ strftime_now('%d %b %Y') }}");
  ASSERT_THAT(tpl, IsOk());
  EXPECT_THAT(tpl->Render({}, t), IsOkAndHolds("02 Jan 2025"));
}

TEST(JinjaValue, PythonReprAndJson) {
  EXPECT_EQ(PyFloatRepr(1.0), "1.0");
  EXPECT_EQ(PyFloatRepr(0.1), "0.1");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(0.00001), "1e-05");
  EXPECT_EQ(PyFloatRepr(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(Value::String("it's").Repr(), "\"it's\"");
  EXPECT_EQ(Value::String("a'\"\n").Repr(), "'a\\'\"\\n'");
  EXPECT_THAT(ToJson(Value::MakeDict({{"k", Value::MakeList({})}, {"e", Value::String("\x01")}}),
                     {}),
              IsOkAndHolds("{\"k\": [], \"e\": \"\\u0001\"}"));
  EXPECT_THAT(ToJson(Value(), {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("not JSON serializable")));
}

}  // namespace
}  // namespace tessera::lm::jinja
