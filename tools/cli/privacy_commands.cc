// `tessera privacy epsilon|noise`: the RDP accountant (privacy/dp/rdp_accountant.h) or, with
// --accountant pld, the PLD accountant (privacy/dp/pld_accountant.h) from the command line.
// Offline: no coordinator connection. See docs/privacy.md.
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "privacy/dp/pld_accountant.h"
#include "privacy/dp/rdp_accountant.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
namespace {

int Fail(absl::string_view what, absl::string_view why) {
  std::cerr << "tessera: " << what << ": " << why << "\n";
  return 1;
}

// JSON has no infinity; write it as proto3's JSON mapping does.
std::string JsonNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  return absl::StrFormat("%.10g", v);
}

absl::StatusOr<std::vector<double>> ParseOrders(absl::string_view list) {
  if (list.empty()) return dp::DefaultOrders();
  std::vector<double> orders;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    double order = 0;
    if (!absl::SimpleAtod(item, &order) || !std::isfinite(order) || order <= 1.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--orders: '", item, "' is not a number > 1 (comma-separated list)"));
    }
    orders.push_back(order);
  }
  return orders;
}

absl::StatusOr<dp::Conversion> ParseConversion(absl::string_view name) {
  if (name == "improved") return dp::Conversion::kImproved;
  if (name == "classic") return dp::Conversion::kClassic;
  return absl::InvalidArgumentError(
      absl::StrCat("--conversion: '", name, "' (want improved or classic)"));
}

// Checks the flags shared by both commands, naming the flag on error.
absl::Status CheckCommonFlags(const PrivacyArgs& a) {
  if (a.accountant != "rdp" && a.accountant != "pld") {
    return absl::InvalidArgumentError(
        absl::StrCat("--accountant: '", a.accountant, "' (want rdp or pld)"));
  }
  if (!(a.q >= 0.0 && a.q <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("--q must be in [0, 1], got ", a.q));
  }
  if (!(a.delta > 0.0 && a.delta < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("--delta must be in (0, 1), got ", a.delta));
  }
  return absl::OkStatus();
}

std::string Setting(const PrivacyArgs& a) {
  return absl::StrFormat("q=%g steps=%d delta=%g conversion=%s", a.q, a.steps, a.delta,
                         a.conversion);
}

std::string PldSetting(const PrivacyArgs& a) {
  return absl::StrFormat("accountant=pld q=%g steps=%d delta=%g", a.q, a.steps, a.delta);
}

// `privacy epsilon --accountant pld`: PldEpsilon with the default options.
int PldEpsilonCommand(const OutputOptions& out, const PrivacyArgs& args) {
  constexpr absl::string_view kWhat = "privacy epsilon";
  if (!(args.noise_multiplier > 0.0)) {
    return Fail(kWhat, absl::StrCat("--noise-multiplier must be > 0 with --accountant pld, got ",
                                    args.noise_multiplier));
  }
  absl::StatusOr<double> eps =
      dp::PldEpsilon(args.q, args.noise_multiplier, args.steps, args.delta);
  if (!eps.ok()) return Fail(kWhat, eps.status().message());
  if (out.json) {
    std::cout << absl::StrFormat(
        "{\"epsilon\": %s, \"accountant\": \"pld\", \"q\": %s, \"noise_multiplier\": %s, "
        "\"steps\": %d, \"delta\": %s}\n",
        JsonNumber(*eps), JsonNumber(args.q), JsonNumber(args.noise_multiplier), args.steps,
        JsonNumber(args.delta));
  } else {
    std::cout << absl::StrFormat("epsilon %.6g (noise_multiplier=%g %s)\n", *eps,
                                 args.noise_multiplier, PldSetting(args));
  }
  return 0;
}

// `privacy noise --accountant pld`: PldNoiseMultiplier (bisection on PldEpsilon).
int PldNoiseCommand(const OutputOptions& out, const PrivacyArgs& args) {
  constexpr absl::string_view kWhat = "privacy noise";
  absl::StatusOr<double> sigma =
      dp::PldNoiseMultiplier(args.epsilon, args.delta, args.q, args.steps);
  if (!sigma.ok()) return Fail(kWhat, sigma.status().message());
  // Report the epsilon actually reached (<= the target); no noise needed means epsilon 0.
  double reached = 0.0;
  if (*sigma > 0.0) {
    absl::StatusOr<double> eps = dp::PldEpsilon(args.q, *sigma, args.steps, args.delta);
    if (!eps.ok()) return Fail(kWhat, eps.status().message());
    reached = *eps;
  }
  if (out.json) {
    std::cout << absl::StrFormat(
        "{\"noise_multiplier\": %s, \"epsilon\": %s, \"accountant\": \"pld\", "
        "\"target_epsilon\": %s, \"q\": %s, \"steps\": %d, \"delta\": %s}\n",
        JsonNumber(*sigma), JsonNumber(reached), JsonNumber(args.epsilon), JsonNumber(args.q),
        args.steps, JsonNumber(args.delta));
  } else {
    std::cout << absl::StrFormat("noise_multiplier %.6g (epsilon %.6g <= %g; %s)\n", *sigma,
                                 reached, args.epsilon, PldSetting(args));
  }
  return 0;
}

}  // namespace

int PrivacyEpsilon(const OutputOptions& out, const PrivacyArgs& args) {
  constexpr absl::string_view kWhat = "privacy epsilon";
  if (absl::Status s = CheckCommonFlags(args); !s.ok()) return Fail(kWhat, s.message());
  if (args.accountant == "pld") return PldEpsilonCommand(out, args);
  if (!(args.noise_multiplier >= 0.0)) {
    return Fail(kWhat, absl::StrCat("--noise-multiplier must be >= 0, got ",
                                    args.noise_multiplier));
  }
  absl::StatusOr<std::vector<double>> orders = ParseOrders(args.orders);
  if (!orders.ok()) return Fail(kWhat, orders.status().message());
  absl::StatusOr<dp::Conversion> conversion = ParseConversion(args.conversion);
  if (!conversion.ok()) return Fail(kWhat, conversion.status().message());
  absl::StatusOr<dp::EpsilonResult> r = dp::ComputeEpsilon(
      args.q, args.noise_multiplier, args.steps, args.delta, *orders, *conversion);
  if (!r.ok()) return Fail(kWhat, r.status().message());
  if (out.json) {
    std::cout << absl::StrFormat(
        "{\"epsilon\": %s, \"order\": %s, \"q\": %s, \"noise_multiplier\": %s, \"steps\": %d, "
        "\"delta\": %s, \"conversion\": \"%s\"}\n",
        JsonNumber(r->epsilon), JsonNumber(r->order), JsonNumber(args.q),
        JsonNumber(args.noise_multiplier), args.steps, JsonNumber(args.delta), args.conversion);
  } else {
    std::cout << absl::StrFormat("epsilon %.6g at order %g (noise_multiplier=%g %s)\n",
                                 r->epsilon, r->order, args.noise_multiplier, Setting(args));
  }
  return 0;
}

int PrivacyNoise(const OutputOptions& out, const PrivacyArgs& args) {
  constexpr absl::string_view kWhat = "privacy noise";
  if (absl::Status s = CheckCommonFlags(args); !s.ok()) return Fail(kWhat, s.message());
  if (!(args.epsilon > 0.0) || !std::isfinite(args.epsilon)) {
    return Fail(kWhat, absl::StrCat("--epsilon must be finite and > 0, got ", args.epsilon));
  }
  if (args.accountant == "pld") return PldNoiseCommand(out, args);
  absl::StatusOr<std::vector<double>> orders = ParseOrders(args.orders);
  if (!orders.ok()) return Fail(kWhat, orders.status().message());
  absl::StatusOr<dp::Conversion> conversion = ParseConversion(args.conversion);
  if (!conversion.ok()) return Fail(kWhat, conversion.status().message());
  absl::StatusOr<double> sigma = dp::FindNoiseMultiplier(args.epsilon, args.delta, args.q,
                                                         args.steps, *conversion, *orders);
  if (!sigma.ok()) return Fail(kWhat, sigma.status().message());
  // Report the epsilon actually reached (<= the target) and its order.
  absl::StatusOr<dp::EpsilonResult> r =
      dp::ComputeEpsilon(args.q, *sigma, args.steps, args.delta, *orders, *conversion);
  if (!r.ok()) return Fail(kWhat, r.status().message());
  if (out.json) {
    std::cout << absl::StrFormat(
        "{\"noise_multiplier\": %s, \"epsilon\": %s, \"order\": %s, \"target_epsilon\": %s, "
        "\"q\": %s, \"steps\": %d, \"delta\": %s, \"conversion\": \"%s\"}\n",
        JsonNumber(*sigma), JsonNumber(r->epsilon), JsonNumber(r->order),
        JsonNumber(args.epsilon), JsonNumber(args.q), args.steps, JsonNumber(args.delta),
        args.conversion);
  } else {
    std::cout << absl::StrFormat(
        "noise_multiplier %.6g (epsilon %.6g <= %g at order %g; %s)\n", *sigma, r->epsilon,
        args.epsilon, r->order, Setting(args));
  }
  return 0;
}

}  // namespace tessera::cli
