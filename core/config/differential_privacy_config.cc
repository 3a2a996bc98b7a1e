#include "core/config/differential_privacy_config.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace config_internal {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

constexpr Range kPopulation{1, 100000000};
constexpr Range kModulusBits{8, 62};
constexpr int64_t kDefaultModulusBits = 20;
constexpr double kDefaultTargetQuantile = 0.5;
constexpr double kDefaultClipLearningRate = 0.2;
// Andrew et al. 2021 suggest sigma_b = expected clients / 20.
constexpr double kDefaultCountStddevPerClient = 1.0 / 20;
constexpr double kMaxNoiseMultiplier = 1e4;
constexpr double kMaxClipNorm = 1e6;
constexpr size_t kMaxDatasetLength = 128;

std::string P(absl::string_view field) {
  return absl::StrCat("differential_privacy.", field);
}

absl::Status Required(const TableReader& t, absl::string_view key) {
  return FieldError(t.Path(key), "is required with differential privacy");
}

absl::Status CheckDataset(const std::string& dataset) {
  if (dataset.empty() || dataset.size() > kMaxDatasetLength) {
    return FieldError(P("dataset"),
                      absl::StrCat("must be 1..", kMaxDatasetLength, " characters"));
  }
  for (char c : dataset) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-' && c != ':') {
      return FieldError(P("dataset"),
                        absl::StrCat("may hold only letters, digits and . _ - :, got \"",
                                     dataset, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseAdaptive(const TableReader& t, Dp& out) {
  if (!t.present()) return absl::OkStatus();
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"enabled", "target_quantile", "learning_rate", "clipped_count_stddev"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> enabled, t.Bool("enabled"));
  TESSERA_ASSIGN_OR_RETURN(double quantile,
                           t.FloatOr("target_quantile", kDefaultTargetQuantile));
  TESSERA_ASSIGN_OR_RETURN(double rate, t.FloatOr("learning_rate", kDefaultClipLearningRate));
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> stddev, t.Float("clipped_count_stddev"));
  if (!enabled.value_or(true)) return absl::OkStatus();
  wire::v1::AdaptiveClippingConfig& a = *out.mutable_adaptive_clipping();
  a.set_enabled(true);
  a.set_target_quantile(quantile);
  a.set_learning_rate(rate);
  a.set_clipped_count_stddev(
      stddev.value_or(kDefaultCountStddevPerClient * out.expected_clients_per_round()));
  return absl::OkStatus();
}

constexpr Range kPhysicalBatch{1, 65536};
constexpr int64_t kDefaultPhysicalBatch = 256;
constexpr double kMaxExpectedBatch = 1e6;

// noise_multiplier and clip_norm of a mechanism whose table is `path`; `unit` names whose
// influence the clip bounds ("one client's", "one record's").
absl::Status CheckNoiseAndClip(absl::string_view path, double noise_multiplier,
                               double clip_norm, absl::string_view unit) {
  if (!(noise_multiplier > 0 && noise_multiplier <= kMaxNoiseMultiplier)) {
    return FieldError(absl::StrCat(path, ".noise_multiplier"),
                      absl::StrCat("must be in (0, ", kMaxNoiseMultiplier,
                                   "] (0 or negative noise gives no privacy), got ",
                                   noise_multiplier));
  }
  if (!(clip_norm > 0 && clip_norm <= kMaxClipNorm)) {
    return FieldError(absl::StrCat(path, ".clip_norm"),
                      absl::StrCat("must be in (0, ", kMaxClipNorm, "] (without clipping ", unit,
                                   " influence is unbounded), got ", clip_norm));
  }
  return absl::OkStatus();
}

// DP-SGD's parameters, from the [differential_privacy] table itself (mode = "record") or its
// `record` sub-table.
absl::Status ParseRecord(const TableReader& t, wire::v1::RecordDpConfig& out) {
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> noise, t.Float("noise_multiplier"));
  if (!noise.has_value()) return Required(t, "noise_multiplier");
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> clip, t.Float("clip_norm"));
  if (!clip.has_value()) {
    return FieldError(t.Path("clip_norm"),
                      "is required with record-level DP (without clipping one record's "
                      "influence is unbounded)");
  }
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> batch, t.Float("expected_batch_size"));
  if (!batch.has_value()) return Required(t, "expected_batch_size");
  TESSERA_ASSIGN_OR_RETURN(int64_t physical,
                           t.IntIn("max_physical_batch", kPhysicalBatch, kDefaultPhysicalBatch));
  out.set_enabled(true);
  out.set_noise_multiplier(*noise);
  out.set_clip_norm(*clip);
  out.set_expected_batch_size(*batch);
  out.set_max_physical_batch(static_cast<uint32_t>(physical));
  return absl::OkStatus();
}

absl::Status ValidateRecord(const wire::v1::RunConfig& c) {
  const wire::v1::RecordDpConfig& r = c.differential_privacy().record();
  if (!r.enabled()) return absl::OkStatus();
  const std::string path = c.differential_privacy().mode() == Dp::MODE_UNSPECIFIED
                               ? std::string("differential_privacy")
                               : P("record");
  auto field = [&](absl::string_view f) { return absl::StrCat(path, ".", f); };
  TESSERA_RETURN_IF_ERROR(
      CheckNoiseAndClip(path, r.noise_multiplier(), r.clip_norm(), "one record's"));
  if (!(r.expected_batch_size() >= 1 && r.expected_batch_size() <= kMaxExpectedBatch)) {
    return FieldError(field("expected_batch_size"),
                      absl::StrCat("must be in [1, ", kMaxExpectedBatch, "], got ",
                                   r.expected_batch_size()));
  }
  TESSERA_RETURN_IF_ERROR(
      CheckRange(field("max_physical_batch"), r.max_physical_batch(), kPhysicalBatch));
  // Built-in architectures (per-example gradients by layer walking) and language models
  // (one training sequence per record, a per-sequence backward pass over the adapters).
  if (c.model().architecture().empty() && !c.model().has_causal_lm()) {
    return FieldError(path,
                      "record-level DP-SGD needs a built-in model.architecture or "
                      "[model.causal_lm]: a TorchScript program's layers cannot be walked for "
                      "per-example gradients");
  }
  return absl::OkStatus();
}

// Under any differential privacy every update weighs 1 (clients send no example count).
absl::Status CheckUpdateWeight(const wire::v1::RunConfig& c) {
  if (c.secure_aggregation().enabled() && c.secure_aggregation().max_examples() != 1) {
    return FieldError("secure_aggregation.max_examples",
                      absl::StrCat("must be 1 with differential privacy (every update weighs "
                                   "1, so the quantizer's range is sized for weight 1; it is "
                                   "the default there), got ",
                                   c.secure_aggregation().max_examples()));
  }
  return absl::OkStatus();
}

absl::Status ValidateAdaptive(const wire::v1::RunConfig& c) {
  const Dp& dp = c.differential_privacy();
  const wire::v1::AdaptiveClippingConfig& a = dp.adaptive_clipping();
  if (!a.enabled()) return absl::OkStatus();
  const std::string path = P("adaptive_clipping");
  if (dp.mode() != Dp::CENTRAL || c.secure_aggregation().enabled()) {
    return FieldError(path,
                      "works only with mode = \"central\" and no secure aggregation (the "
                      "coordinator must see each client's clipped-count bit)");
  }
  if (!(a.target_quantile() > 0 && a.target_quantile() < 1)) {
    return FieldError(absl::StrCat(path, ".target_quantile"),
                      absl::StrCat("must be in (0, 1), got ", a.target_quantile()));
  }
  if (!(a.learning_rate() > 0 && a.learning_rate() <= 10)) {
    return FieldError(absl::StrCat(path, ".learning_rate"),
                      absl::StrCat("must be in (0, 10], got ", a.learning_rate()));
  }
  // The count's noise multiplier is 2 sigma_b (a bit's sensitivity is 1/2 once centred);
  // the update's noise multiplier z_u solves 1/z^2 = 1/z_u^2 + 1/(2 sigma_b)^2, which has a
  // solution only when 2 sigma_b > z.
  if (!(2 * a.clipped_count_stddev() > dp.noise_multiplier()) ||
      !std::isfinite(a.clipped_count_stddev())) {
    return FieldError(
        absl::StrCat(path, ".clipped_count_stddev"),
        absl::StrCat("must be finite and > noise_multiplier / 2 = ", dp.noise_multiplier() / 2,
                     " (the count's noise is part of the privacy cost), got ",
                     a.clipped_count_stddev()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Dp> ParseDifferentialPrivacy(const TableReader& t) {
  Dp out;
  if (!t.present()) return out;
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> mode, t.String("mode"));
  if (!mode.has_value()) return Required(t, "mode");
  if (*mode != "record" && *mode != "central" && *mode != "distributed") {
    return FieldError(t.Path("mode"),
                      absl::StrCat("must be \"record\", \"central\" or \"distributed\", got \"",
                                   *mode, "\""));
  }
  if (*mode == "record") {
    // Each site keeps its own budget (tessera-client --privacy-budget): none of the
    // organization-level keys apply.
    TESSERA_RETURN_IF_ERROR(t.CheckKeys({"mode", "noise_multiplier", "clip_norm",
                                         "expected_batch_size", "max_physical_batch"}));
    TESSERA_RETURN_IF_ERROR(ParseRecord(t, *out.mutable_record()));
    return out;
  }
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"mode", "noise_multiplier", "clip_norm", "expected_clients_per_round", "population",
       "epsilon", "delta", "dataset", "modulus_bits", "adaptive_clipping", "record"}));
  if (*mode == "central") {
    out.set_mode(Dp::CENTRAL);
  } else {
    out.set_mode(Dp::DISTRIBUTED);
  }
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> noise, t.Float("noise_multiplier"));
  if (!noise.has_value()) return Required(t, "noise_multiplier");
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> clip, t.Float("clip_norm"));
  if (!clip.has_value()) {
    return FieldError(t.Path("clip_norm"),
                      "is required with differential privacy (without clipping one client's "
                      "influence is unbounded)");
  }
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> population, t.Int("population"));
  if (!population.has_value()) return Required(t, "population");
  TESSERA_RETURN_IF_ERROR(CheckRange(t.Path("population"), *population, kPopulation));
  TESSERA_ASSIGN_OR_RETURN(double expected,
                           t.FloatOr("expected_clients_per_round",
                                     static_cast<double>(*population)));
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> epsilon, t.Float("epsilon"));
  if (!epsilon.has_value()) return Required(t, "epsilon");
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> delta, t.Float("delta"));
  if (!delta.has_value()) return Required(t, "delta");
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> dataset, t.String("dataset"));
  if (!dataset.has_value()) return Required(t, "dataset");
  TESSERA_ASSIGN_OR_RETURN(int64_t bits,
                           t.IntIn("modulus_bits", kModulusBits, kDefaultModulusBits));
  out.set_noise_multiplier(*noise);
  out.set_clip_norm(*clip);
  out.set_population(static_cast<uint32_t>(*population));
  out.set_expected_clients_per_round(expected);
  out.set_epsilon_budget(*epsilon);
  out.set_delta(*delta);
  out.set_dataset(*dataset);
  out.set_modulus_bits(out.mode() == Dp::DISTRIBUTED ? static_cast<uint32_t>(bits) : 0);
  TESSERA_ASSIGN_OR_RETURN(TableReader adaptive, t.Table("adaptive_clipping"));
  TESSERA_RETURN_IF_ERROR(ParseAdaptive(adaptive, out));
  TESSERA_ASSIGN_OR_RETURN(TableReader record, t.Table("record"));
  if (record.present()) {
    TESSERA_RETURN_IF_ERROR(record.CheckKeys(
        {"noise_multiplier", "clip_norm", "expected_batch_size", "max_physical_batch"}));
    TESSERA_RETURN_IF_ERROR(ParseRecord(record, *out.mutable_record()));
  }
  return out;
}

absl::Status ValidateDifferentialPrivacy(const wire::v1::RunConfig& c) {
  const Dp& dp = c.differential_privacy();
  TESSERA_RETURN_IF_ERROR(ValidateRecord(c));
  if (dp.mode() == Dp::MODE_UNSPECIFIED && !dp.record().enabled()) return absl::OkStatus();
  TESSERA_RETURN_IF_ERROR(CheckUpdateWeight(c));
  if (dp.mode() == Dp::MODE_UNSPECIFIED) return absl::OkStatus();
  if (dp.mode() != Dp::CENTRAL && dp.mode() != Dp::DISTRIBUTED) {
    return FieldError(P("mode"), absl::StrCat("unknown mode ", dp.mode()));
  }
  TESSERA_RETURN_IF_ERROR(CheckNoiseAndClip("differential_privacy", dp.noise_multiplier(),
                                            dp.clip_norm(), "one client's"));
  TESSERA_RETURN_IF_ERROR(CheckRange(P("population"), dp.population(), kPopulation));
  const double population = dp.population();
  const double expected = dp.expected_clients_per_round();
  const uint32_t min_clients = c.selection().min_clients();
  if (min_clients < 2) {
    return FieldError("selection.min_clients",
                      absl::StrCat("must be >= 2 with differential privacy (a round of one "
                                   "client releases that client's noised update), got ",
                                   min_clients));
  }
  if (!(expected >= min_clients && expected <= population)) {
    return FieldError(P("expected_clients_per_round"),
                      absl::StrCat("must be in [selection.min_clients, population] = [",
                                   min_clients, ", ", dp.population(),
                                   "]: DP needs enough clients per round, got ", expected));
  }
  if (c.selection().clients_per_round() > 0) {
    return FieldError("selection.clients_per_round",
                      "must be unset with differential privacy: each client is sampled "
                      "independently with probability expected_clients_per_round / "
                      "population, as the privacy accountant assumes");
  }
  if (!(dp.epsilon_budget() > 0 && std::isfinite(dp.epsilon_budget()))) {
    return FieldError(P("epsilon"),
                      absl::StrCat("must be finite and > 0, got ", dp.epsilon_budget()));
  }
  if (!(dp.delta() > 0 && dp.delta() < 1 / population)) {
    return FieldError(P("delta"),
                      absl::StrCat("must be in (0, 1/population) = (0, ", 1 / population,
                                   "): a delta of 1/population or more allows releasing one "
                                   "client's data outright, got ",
                                   dp.delta()));
  }
  TESSERA_RETURN_IF_ERROR(CheckDataset(dp.dataset()));
  if (dp.mode() == Dp::DISTRIBUTED) {
    if (!c.secure_aggregation().enabled()) {
      return FieldError(P("mode"),
                        "\"distributed\" needs a [secure_aggregation] table: the clients' "
                        "noise shares only protect the sum if no one sees a single update");
    }
    TESSERA_RETURN_IF_ERROR(CheckRange(P("modulus_bits"), dp.modulus_bits(), kModulusBits));
  }
  return ValidateAdaptive(c);
}

}  // namespace config_internal
}  // namespace tessera
