// File: privacy_budget.h
// A site's record-level privacy budget as the partner writes it: "epsilon=E,delta=D" (the
// value of tessera-client --privacy-budget and of a data card's privacy_budget key;
// docs/privacy.md, "Each site owns its budget").
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(PrivacyBudget b, ParsePrivacyBudget("epsilon=8,delta=1e-5"));
#ifndef TESSERA_CORE_CONFIG_PRIVACY_BUDGET_H_
#define TESSERA_CORE_CONFIG_PRIVACY_BUDGET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

struct PrivacyBudget {
  double epsilon = 0;
  double delta = 0;

  bool operator==(const PrivacyBudget& o) const {
    return epsilon == o.epsilon && delta == o.delta;
  }
};

// Parses "epsilon=E,delta=D" (both keys required, in any order, spaces allowed around
// them). epsilon must be finite and > 0 and at most 100; delta in (0, 0.01].
// Errors: INVALID_ARGUMENT naming the key ("epsilon: must be ...", "delta: missing").
absl::StatusOr<PrivacyBudget> ParsePrivacyBudget(absl::string_view text);

// "epsilon=8,delta=1e-05": what ParsePrivacyBudget reads back to the same values.
std::string FormatPrivacyBudget(const PrivacyBudget& budget);

}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_PRIVACY_BUDGET_H_
