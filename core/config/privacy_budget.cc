#include "core/config/privacy_budget.h"

#include <cmath>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace {

constexpr double kMaxEpsilon = 100;
constexpr double kMaxDelta = 0.01;

absl::Status Bad(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

}  // namespace

absl::StatusOr<PrivacyBudget> ParsePrivacyBudget(absl::string_view text) {
  std::optional<double> epsilon, delta;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "privacy budget \"", text, "\": want epsilon=E,delta=D (e.g. epsilon=8,delta=1e-5)"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
    const absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
    double v = 0;
    if (!absl::SimpleAtod(value, &v) || !std::isfinite(v)) {
      return Bad(key, absl::StrCat("\"", value, "\" is not a number"));
    }
    if (key == "epsilon") {
      if (epsilon.has_value()) return Bad(key, "is set twice");
      if (!(v > 0 && v <= kMaxEpsilon)) {
        return Bad(key, absl::StrCat("must be in (0, ", kMaxEpsilon, "], got ", value));
      }
      epsilon = v;
    } else if (key == "delta") {
      if (delta.has_value()) return Bad(key, "is set twice");
      if (!(v > 0 && v <= kMaxDelta)) {
        return Bad(key, absl::StrCat("must be in (0, ", kMaxDelta, "], got ", value));
      }
      delta = v;
    } else {
      return Bad(key, "unknown key (a privacy budget has epsilon and delta)");
    }
  }
  if (!epsilon.has_value()) return Bad("epsilon", "missing (want epsilon=E,delta=D)");
  if (!delta.has_value()) return Bad("delta", "missing (want epsilon=E,delta=D)");
  return PrivacyBudget{*epsilon, *delta};
}

std::string FormatPrivacyBudget(const PrivacyBudget& budget) {
  return absl::StrFormat("epsilon=%.17g,delta=%.17g", budget.epsilon, budget.delta);
}

}  // namespace tessera
