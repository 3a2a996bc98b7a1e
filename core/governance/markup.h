// File: markup.h
// Escaping for the model card (model_card.h): YAML double-quoted scalars for the front matter
// and Markdown text for the body. Every string from a config, a data card or a certificate
// goes through one of these, so no input can end the front matter, start a heading or break
// a table.
//
// Invalid UTF-8 is replaced by U+FFFD everywhere: the card is always valid UTF-8.
//
// Example:
//   out += absl::StrCat("license_name: ", YamlQuote(name), "\n");
//   out += absl::StrCat("| ", MarkdownInline(card.name()), " |\n");
#ifndef TESSERA_CORE_GOVERNANCE_MARKUP_H_
#define TESSERA_CORE_GOVERNANCE_MARKUP_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tessera::governance {

// `s` as a YAML double-quoted scalar, quotes included: \\ and \" escaped, every character
// YAML does not allow unescaped (C0 and C1 controls, DEL, U+2028, U+2029, U+FEFF, U+FFFE,
// U+FFFF) as \uXXXX. Valid for YAML 1.1 and 1.2 parsers alike.
std::string YamlQuote(absl::string_view s);

// `s` as one line of Markdown text that renders literally: line breaks and other controls
// become spaces, and the characters Markdown gives a meaning inside a line (\ ` * _ [ ] < >
// | ~ & ! #) are backslash-escaped. Safe in a table cell, a list item or a heading.
std::string MarkdownInline(absl::string_view s);

// Operator-written Markdown (a config's description, intended use, limitations), kept as
// Markdown: valid UTF-8, "\r\n" and "\r" as "\n", controls other than "\n" and "\t" dropped,
// leading and trailing blank lines removed, and a line "---" (what front matter tools split
// on) written as "- - -", the same thematic break.
std::string MarkdownBlock(absl::string_view s);

// A number as YAML and Markdown show it: the shortest text that reads back as the same
// double ("0.1", "3", "1e-05"); "nan", "inf" or "-inf" when not finite.
std::string FormatNumber(double value);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_MARKUP_H_
