#include "core/config/secure_aggregation_config.h"

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <string>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace config_internal {
namespace {

constexpr double kDefaultDropoutFraction = 0.1;
constexpr double kDefaultCorruptFraction = 0.1;
constexpr int64_t kDefaultSecurityBits = 40;
constexpr double kDefaultClip = 1.0;
// With central or distributed DP, "auto" keeps 32 (see AutoValueBits).
constexpr uint32_t kDpValueBits = 32;
constexpr double kDefaultMaxExamples = 1e6;
constexpr double kDefaultPhaseDeadlineSeconds = 60;

constexpr Range kSecurityBits{1, 128};
constexpr Range kValueBits{2, 48};
constexpr double kMaxClip = 1e6;
constexpr double kMaxMaxExamples = 1099511627776.0;  // 2^40
constexpr double kMaxPhaseDeadlineSeconds = 86400;
// Masked sums live mod 2^b, b = value_bits + ceil(log2 n) + 1 (docs/secagg.md).
constexpr uint32_t kMaxModulusBits = 62;
// value_bits = "auto" holds its precision bound for clients down to max_examples / 1024
// examples on average (docs/secagg.md, "Bit width").
constexpr double kAutoExampleRange = 1024;

// The smallest c with 2^c >= n.
uint32_t CeilLog2(uint64_t n) {
  uint32_t bits = 0;
  while (bits < 64 && (uint64_t{1} << bits) < n) ++bits;
  return bits;
}

absl::Status CheckFraction(absl::string_view field, double v) {
  if (v >= 0 && v < 1) return absl::OkStatus();  // false for NaN
  return FieldError(absl::StrCat("secure_aggregation.", field),
                    absl::StrCat("must be finite and in [0, 1), got ", v));
}

// Secure aggregation over one client's update is that update: the sum must
// cover at least two clients.
absl::Status CheckMinClients(const wire::v1::SelectionConfig& s) {
  if (s.min_clients() >= 2) return absl::OkStatus();
  return FieldError("selection.min_clients",
                    absl::StrCat("must be >= 2 with secure_aggregation (a sum "
                                 "of one update is that update), got ",
                                 s.min_clients()));
}

// With a fixed round size n the modulus is known now; with selection.fraction
// the coordinator checks it per round.
absl::Status CheckModulus(const wire::v1::RunConfig& c) {
  const uint32_t n = c.selection().clients_per_round();
  if (n == 0) return absl::OkStatus();
  const uint32_t value_bits = c.secure_aggregation().value_bits();
  const uint32_t log2n = CeilLog2(n);
  if (value_bits + log2n + 1 > kMaxModulusBits) {
    return FieldError(
        "secure_aggregation.value_bits",
        absl::StrCat("value_bits + ceil(log2(selection.clients_per_round)) + 1 "
                     "must be <= ",
                     kMaxModulusBits, " (the modulus bits), got ", value_bits,
                     " + ", log2n, " + 1"));
  }
  // The clients' integer weights (example counts up to max_examples) are summed mod 2^b
  // as well: n * max_examples must stay below 2^(b-1) or the weight sum wraps.
  const double weights = std::ceil(c.secure_aggregation().max_examples()) * n;
  if (weights < std::ldexp(1.0, static_cast<int>(value_bits + log2n))) {
    return absl::OkStatus();
  }
  return FieldError(
      "secure_aggregation.max_examples",
      absl::StrCat("max_examples * selection.clients_per_round = ", weights,
                   " does not fit below 2^", value_bits + log2n,
                   " (value_bits + ceil(log2 n)), so the summed weights could wrap: "
                   "raise value_bits or lower max_examples"));
}

}  // namespace

absl::StatusOr<wire::v1::SecureAggregationConfig> ParseSecureAggregation(
    const TableReader& t) {
  wire::v1::SecureAggregationConfig out;
  if (!t.present()) return out;
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"enabled", "dropout_fraction", "corrupt_fraction", "security_bits",
       "clip", "value_bits", "max_examples", "phase_deadline_seconds"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> enabled, t.Bool("enabled"));
  TESSERA_ASSIGN_OR_RETURN(
      double dropout, t.FloatOr("dropout_fraction", kDefaultDropoutFraction));
  TESSERA_ASSIGN_OR_RETURN(
      double corrupt, t.FloatOr("corrupt_fraction", kDefaultCorruptFraction));
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> security_bits,
                           t.Int("security_bits"));
  TESSERA_ASSIGN_OR_RETURN(double clip, t.FloatOr("clip", kDefaultClip));
  // An integer or "auto" (the default; 0 here, set by ResolveAutoValueBits once the
  // selection and DP tables are read).
  std::optional<int64_t> value_bits;
  if (absl::StatusOr<std::optional<std::string>> word = t.String("value_bits"); word.ok()) {
    if (word->has_value() && **word != "auto") {
      return FieldError(t.Path("value_bits"),
                        absl::StrCat("must be an integer in [2, 48] or \"auto\", got \"",
                                     **word, "\""));
    }
  } else {
    absl::StatusOr<std::optional<int64_t>> bits = t.Int("value_bits");
    if (!bits.ok()) {
      return FieldError(t.Path("value_bits"), "must be an integer in [2, 48] or \"auto\"");
    }
    value_bits = *bits;
  }
  TESSERA_ASSIGN_OR_RETURN(double max_examples,
                           t.FloatOr("max_examples", kDefaultMaxExamples));
  TESSERA_ASSIGN_OR_RETURN(
      double phase_deadline,
      t.FloatOr("phase_deadline_seconds", kDefaultPhaseDeadlineSeconds));
  if (!enabled.value_or(true)) return out;

  // Range-check the integers before narrowing them to the proto's uint32.
  const int64_t sigma = security_bits.value_or(kDefaultSecurityBits);
  const int64_t bits = value_bits.value_or(0);
  TESSERA_RETURN_IF_ERROR(
      CheckRange(t.Path("security_bits"), sigma, kSecurityBits));
  if (value_bits.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckRange(t.Path("value_bits"), bits, kValueBits));
  }
  out.set_enabled(true);
  out.set_dropout_fraction(dropout);
  out.set_corrupt_fraction(corrupt);
  out.set_security_bits(static_cast<uint32_t>(sigma));
  out.set_clip(clip);
  out.set_value_bits(static_cast<uint32_t>(bits));
  out.set_max_examples(max_examples);
  out.set_phase_deadline_seconds(phase_deadline);
  return out;
}

uint32_t AutoValueBits(const wire::v1::RunConfig& c) {
  using Dp = wire::v1::DifferentialPrivacyConfig;
  const Dp::Mode mode = c.differential_privacy().mode();
  if (mode == Dp::CENTRAL || mode == Dp::DISTRIBUTED) return kDpValueBits;
  const wire::v1::SelectionConfig& s = c.selection();
  const uint64_t n = std::max<uint64_t>(
      2, s.clients_per_round() > 0 ? s.clients_per_round() : s.min_clients());
  const double max_examples = std::ceil(c.secure_aggregation().max_examples());
  const uint32_t log2n = CeilLog2(n);
  for (uint32_t v = static_cast<uint32_t>(kValueBits.lo);
       v < static_cast<uint32_t>(kValueBits.hi); ++v) {
    // Precision: sqrt(n) / (2 scale W) <= 2^-20 clip for W = n * max(1, max_examples / 1024),
    // i.e. 2^(v-1) - 1 >= 2^19 * min(max_examples, 1024) / sqrt(n).
    const bool precise = (std::ldexp(1.0, static_cast<int>(v) - 1) - 1) * std::sqrt(n) >=
                         std::ldexp(std::min(max_examples, kAutoExampleRange), 19);
    // Headroom: the summed weights stay below 2^(v + ceil(log2 n)) (CheckModulus).
    const bool weights_fit =
        max_examples * static_cast<double>(n) < std::ldexp(1.0, static_cast<int>(v + log2n));
    if (precise && weights_fit) return v;
  }
  return static_cast<uint32_t>(kValueBits.hi);
}

void ResolveAutoValueBits(wire::v1::RunConfig& config) {
  if (!config.secure_aggregation().enabled() || config.secure_aggregation().value_bits() != 0) {
    return;
  }
  config.mutable_secure_aggregation()->set_value_bits(AutoValueBits(config));
}

absl::Status ValidateSecureAggregation(const wire::v1::RunConfig& c) {
  const wire::v1::SecureAggregationConfig& s = c.secure_aggregation();
  if (!s.enabled()) return absl::OkStatus();
  TESSERA_RETURN_IF_ERROR(
      CheckFraction("dropout_fraction", s.dropout_fraction()));
  TESSERA_RETURN_IF_ERROR(
      CheckFraction("corrupt_fraction", s.corrupt_fraction()));
  // Against a malicious coordinator t > (k + C) / 2 and t <= k - D: C + 2D < k.
  if (!(2 * s.dropout_fraction() + s.corrupt_fraction() < 1)) {
    return FieldError(
        "secure_aggregation.corrupt_fraction",
        absl::StrCat("corrupt_fraction + 2 * dropout_fraction must be < 1 (a threshold "
                     "above (k + corrupt) / 2 that dropouts still reach), got ",
                     s.corrupt_fraction(), " + 2 * ", s.dropout_fraction()));
  }
  TESSERA_RETURN_IF_ERROR(CheckRange("secure_aggregation.security_bits",
                                     s.security_bits(), kSecurityBits));
  if (!(s.clip() > 0 && s.clip() <= kMaxClip)) {
    return FieldError(
        "secure_aggregation.clip",
        absl::StrCat("must be finite and in (0, 1e6], got ", s.clip()));
  }
  TESSERA_RETURN_IF_ERROR(
      CheckRange("secure_aggregation.value_bits", s.value_bits(), kValueBits));
  if (!(s.max_examples() >= 1 && s.max_examples() <= kMaxMaxExamples)) {
    return FieldError("secure_aggregation.max_examples",
                      absl::StrCat("must be finite and in [1, 2^40], got ",
                                   s.max_examples()));
  }
  if (!(s.phase_deadline_seconds() > 0 &&
        s.phase_deadline_seconds() <= kMaxPhaseDeadlineSeconds)) {
    return FieldError(
        "secure_aggregation.phase_deadline_seconds",
        absl::StrCat("must be > 0 and <= ", kMaxPhaseDeadlineSeconds, ", got ",
                     s.phase_deadline_seconds()));
  }
  TESSERA_RETURN_IF_ERROR(CheckMinClients(c.selection()));
  return CheckModulus(c);
}

}  // namespace config_internal
}  // namespace tessera
