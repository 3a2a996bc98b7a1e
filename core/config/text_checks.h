// File: text_checks.h
// Internal to core/config: the checks that free text and license identifiers of data cards
// and the run config's [governance] table share (docs/data_cards.md, docs/run_config.md).
// Text that a partner or an operator writes ends up in logs, the audit log and model cards,
// so it must be valid UTF-8 without control characters (which could forge log lines or
// terminal escapes). Only core/config/*.cc include this.
#ifndef TESSERA_CORE_CONFIG_TEXT_CHECKS_H_
#define TESSERA_CORE_CONFIG_TEXT_CHECKS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace config_internal {

// Longest license identifier (the longest SPDX ids are about 40 characters).
inline constexpr size_t kMaxLicenseIdLength = 64;
// Longest free-text field (descriptions, intended use, ...), in bytes.
inline constexpr size_t kMaxTextBytes = 4096;

// OK for an SPDX-like license identifier: 1..64 characters matching [A-Za-z0-9][A-Za-z0-9.+-]*
// ("CC-BY-4.0", "MIT", "LicenseRef-hospital-internal", "proprietary"). Errors:
// INVALID_ARGUMENT `PATH: "CC BY" is not an SPDX license identifier (letters, digits, '.',
// '+', '-')`, or naming the length limit.
absl::Status CheckLicenseId(absl::string_view path, absl::string_view id);

// OK for valid UTF-8 of at most `max_bytes` bytes without control characters (C0, DEL, C1)
// other than '\n' and '\t'. Errors: INVALID_ARGUMENT "PATH: ..." naming the first problem
// and its byte offset.
absl::Status CheckText(absl::string_view path, absl::string_view text,
                       size_t max_bytes = kMaxTextBytes);

// As CheckText, for one line: no control characters at all, at most `max_chars` Unicode
// characters (code points).
absl::Status CheckLine(absl::string_view path, absl::string_view text, size_t max_chars);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_TEXT_CHECKS_H_
