#include "core/config/compression_config.h"

#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/config/run_config.h"

namespace tessera {
namespace config_internal {
namespace {

using wire::v1::CompressionConfig;

struct Named {
  absl::string_view name;
  CompressionConfig::Method method;
};
constexpr Named kMethods[] = {
    {"none", CompressionConfig::NONE}, {"fp16", CompressionConfig::FLOAT16},
    {"bf16", CompressionConfig::BFLOAT16}, {"int8", CompressionConfig::INT8},
    {"topk", CompressionConfig::TOPK},
};

absl::string_view MethodName(CompressionConfig::Method m) {
  for (const Named& n : kMethods) {
    if (n.method == m) return n.name;
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<CompressionConfig> ParseCompression(const TableReader& t) {
  CompressionConfig c;
  if (!t.present()) return c;
  TESSERA_RETURN_IF_ERROR(
      t.CheckKeys({"method", "block_size", "topk_fraction", "error_feedback"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> method, t.String("method"));
  const std::string name = method.value_or("none");
  bool known = false;
  for (const Named& n : kMethods) {
    if (n.name == name) {
      c.set_method(n.method);
      known = true;
    }
  }
  if (!known) {
    return FieldError("compression.method",
                      absl::StrCat("must be one of none, fp16, bf16, int8, topk; got \"", name,
                                   "\""));
  }
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> block, t.Int("block_size"));
  const int64_t block_size = block.value_or(kDefaultCompressionBlockSize);
  if (block_size != 0) {
    TESSERA_RETURN_IF_ERROR(
        CheckRange("compression.block_size", block_size, kCompressionBlockSize));
  }
  TESSERA_ASSIGN_OR_RETURN(double fraction, t.FloatOr("topk_fraction", kDefaultTopKFraction));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> feedback, t.Bool("error_feedback"));
  c.set_block_size(static_cast<uint32_t>(block_size));
  c.set_topk_fraction(fraction);
  c.set_error_feedback(feedback.value_or(true));
  return c;
}

absl::Status ValidateCompression(const wire::v1::RunConfig& config) {
  const CompressionConfig& c = config.compression();
  if (c.method() == CompressionConfig::NONE) return absl::OkStatus();
  if (MethodName(c.method()) == "unknown") {
    return FieldError("compression.method", absl::StrCat("unknown method number ", c.method()));
  }
  if (c.block_size() != 0) {
    TESSERA_RETURN_IF_ERROR(
        CheckRange("compression.block_size", c.block_size(), kCompressionBlockSize));
  }
  if (c.method() == CompressionConfig::TOPK &&
      !(std::isfinite(c.topk_fraction()) && c.topk_fraction() >= 1e-6 &&
        c.topk_fraction() <= kMaxTopKFraction)) {
    return FieldError("compression.topk_fraction",
                      absl::StrCat("must be in [1e-06, ", kMaxTopKFraction, "], got ",
                                   c.topk_fraction()));
  }
  const std::string what = absl::StrCat("\"", MethodName(c.method()), "\"");
  // Distributed DP adds its noise inside secure aggregation's integer sum (and needs secure
  // aggregation), so the same reason applies; named first so the error says which table.
  if (config.differential_privacy().mode() == wire::v1::DifferentialPrivacyConfig::DISTRIBUTED) {
    return FieldError(
        "compression.method",
        absl::StrCat(what, " is not available with differential_privacy.mode = "
                     "\"distributed\": its noised sum goes through secure aggregation, whose "
                     "integer quantization is the compression there (set "
                     "secure_aggregation.value_bits)"));
  }
  if (config.secure_aggregation().enabled()) {
    return FieldError(
        "compression.method",
        absl::StrCat(what, " is not available with secure aggregation: its integer "
                     "quantization is the compression there (set "
                     "secure_aggregation.value_bits)"));
  }
  // Central DP and record-level DP-SGD take any method, with or without error feedback
  // (docs/compression.md, "With differential privacy"): central DP clips the decoded update
  // on the coordinator before noising the sum, and record-level DP's update, residual
  // included, is post-processing of the DP-SGD output.
  const auto kind = config.strategy().kind();
  if (kind == wire::v1::StrategyConfig::MEDIAN ||
      kind == wire::v1::StrategyConfig::TRIMMED_MEAN ||
      kind == wire::v1::StrategyConfig::KRUM || kind == wire::v1::StrategyConfig::MULTI_KRUM) {
    return FieldError(
        "compression.method",
        absl::StrCat(what, " needs a strategy that aggregates linearly (a weighted mean); \"",
                     StrategyName(kind), "\" does not, so compression errors would not "
                     "average out"));
  }
  return absl::OkStatus();
}

}  // namespace config_internal

std::string CompressionSummary(const wire::v1::CompressionConfig& c) {
  using config_internal::MethodName;
  using wire::v1::CompressionConfig;
  std::string what;
  double bytes = 4;  // per float32 value
  switch (c.method()) {
    case CompressionConfig::NONE:
      return "";
    case CompressionConfig::FLOAT16:
      what = "fp16 (IEEE binary16, round to nearest even)";
      bytes = 2;
      break;
    case CompressionConfig::BFLOAT16:
      what = "bf16 (bfloat16, round to nearest even)";
      bytes = 2;
      break;
    case CompressionConfig::INT8:
      if (c.block_size() == 0) {
        return absl::StrCat(
            "int8 (stochastic rounding, one float32 scale per tensor): 1 byte per float32 "
            "value plus 4 per tensor, just under 4x fewer than float32; error feedback ",
            c.error_feedback() ? "on" : "off");
      }
      what = absl::StrCat("int8 (stochastic rounding, one float32 scale per ", c.block_size(),
                          " values)");
      bytes = 1 + 4.0 / c.block_size();
      break;
    case CompressionConfig::TOPK:
      what = absl::StrCat("top-k (the ", absl::StrFormat("%g", 100 * c.topk_fraction()),
                          "% largest magnitudes of each tensor, as indices and values)");
      bytes = 8 * c.topk_fraction();
      break;
    default:
      return absl::StrCat(MethodName(c.method()), " (method number ", c.method(), ")");
  }
  return absl::StrCat(what, ": ", absl::StrFormat("%.4g", bytes), " bytes per float32 value, ",
                      absl::StrFormat("%.3g", 4 / bytes), "x fewer than float32; error feedback ",
                      c.error_feedback() ? "on" : "off");
}

}  // namespace tessera
