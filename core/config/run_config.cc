#include "core/config/run_config.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>  // toml++ speaks std::string_view
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status_macros.h"
#include "core/config/differential_privacy_config.h"
#include "core/config/governance_config.h"
#include "core/config/compression_config.h"
#include "core/config/secure_aggregation_config.h"
#include "core/config/strategy_config.h"
#include "core/config/toml_reader.h"
#include "toml++/toml.h"

namespace tessera {
namespace {

using config_internal::CheckRange;
using config_internal::FieldError;
using config_internal::Range;
using config_internal::TableReader;

// Integer ranges, shared by parsing (which must reject values that do not fit
// the proto field before narrowing) and ValidateRunConfig.
constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr Range kRounds{1, 100000};
constexpr Range kSeed{0, kI64Max};
constexpr Range kLocalEpochs{1, 1000};
constexpr Range kBatchSize{1, 65536};
constexpr Range kMaxSteps{0, kU32Max};
constexpr Range kClientsPerRound{0, kU32Max};
constexpr Range kMinClients{1, kU32Max};
constexpr Range kMaxRetries{0, 100};
constexpr Range kEvaluateEvery{0, 100000};
constexpr Range kRetainRounds{1, 100000};   // retention.keep_last (rounds are <= 100000)
constexpr Range kRetainEvery{0, 100000};    // retention.keep_every (0: none)
constexpr double kMaxDeadlineSeconds = 86400;
constexpr size_t kMaxNameLength = 128;
constexpr absl::string_view kArchitectures[] = {"niid_cnn", "mcmahan_cnn",
                                                "mlp", "dp_cnn"};
// Language models ([model.causal_lm], docs/run_config.md "Language models").
constexpr Range kLoraRank{1, 1024};
constexpr Range kMaxSeqLength{8, 32768};
constexpr Range kWarmupSteps{0, 1000000};
constexpr double kMaxHeldoutFraction = 0.5;
constexpr absl::string_view kLoraTargets[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
constexpr absl::string_view kTextFormats[] = {"auto", "text", "instruction"};
constexpr absl::string_view kPromptTemplates[] = {"alpaca", "chat"};
// An empty string (a proto written before the field existed) means the first, the default.
constexpr absl::string_view kOptimizers[] = {"sgd", "adamw"};
constexpr absl::string_view kLrSchedules[] = {"constant", "linear", "cosine"};
constexpr char kExactlyOneModel[] =
    "set exactly one of model.architecture, model.torchscript and [model.causal_lm]";

template <size_t N>
absl::Status CheckOneOf(absl::string_view path, const std::string& value,
                        const absl::string_view (&allowed)[N]) {
  for (absl::string_view a : allowed) {
    if (value == a) return absl::OkStatus();
  }
  return FieldError(path, absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "),
                                       "; got \"", value, "\""));
}

// Lower- or upper-case hex of 32 bytes.
absl::StatusOr<std::string> ParseSha256Hex(absl::string_view path, const std::string& hex) {
  if (hex.size() != 64) {
    return FieldError(path, absl::StrCat("must be 64 hex digits (a SHA-256), got ",
                                         hex.size(), " characters"));
  }
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes(32, '\0');
  for (size_t i = 0; i < 64; i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return FieldError(path, absl::StrCat("must be 64 hex digits (a SHA-256), got \"",
                                           hex, "\""));
    }
    bytes[i / 2] = static_cast<char>(hi * 16 + lo);
  }
  return bytes;
}

absl::Status ParseLora(const TableReader& t, wire::v1::LoraSpec& lora) {
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"rank", "alpha", "dropout", "target_modules", "freeze_a", "init_seed"}));
  TESSERA_ASSIGN_OR_RETURN(int64_t rank, t.IntIn("rank", kLoraRank, 8));
  TESSERA_ASSIGN_OR_RETURN(double alpha, t.FloatOr("alpha", 16));
  TESSERA_ASSIGN_OR_RETURN(double dropout, t.FloatOr("dropout", 0));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> targets,
                           t.StringArray("target_modules"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> freeze_a, t.Bool("freeze_a"));
  TESSERA_ASSIGN_OR_RETURN(int64_t init_seed, t.IntIn("init_seed", kSeed, 0));
  lora.set_rank(static_cast<uint32_t>(rank));
  lora.set_alpha(alpha);
  lora.set_dropout(dropout);
  for (const std::string& m : targets.value_or(std::vector<std::string>{"q_proj", "v_proj"})) {
    lora.add_target_modules(m);
  }
  lora.set_freeze_a(freeze_a.value_or(false));
  lora.set_init_seed(static_cast<uint64_t>(init_seed));
  return absl::OkStatus();
}

absl::Status ParseText(const TableReader& t, wire::v1::TextSpec& text) {
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"format", "prompt_template", "max_seq_length", "packing", "heldout_fraction"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> format, t.String("format"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> prompt, t.String("prompt_template"));
  TESSERA_ASSIGN_OR_RETURN(int64_t max_seq, t.IntIn("max_seq_length", kMaxSeqLength, 256));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> packing, t.Bool("packing"));
  TESSERA_ASSIGN_OR_RETURN(double heldout, t.FloatOr("heldout_fraction", 0.1));
  text.set_format(format.value_or("auto"));
  text.set_prompt_template(prompt.value_or("alpaca"));
  text.set_max_seq_length(static_cast<uint32_t>(max_seq));
  text.set_packing(packing.value_or(true));
  text.set_heldout_fraction(heldout);
  return absl::OkStatus();
}

absl::Status ParseCausalLm(const TableReader& t, wire::v1::CausalLmSpec& spec) {
  TESSERA_RETURN_IF_ERROR(
      t.CheckKeys({"base_sha256", "gradient_checkpointing", "lora", "text"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> sha, t.String("base_sha256"));
  if (!sha.has_value()) {
    return FieldError(t.Path("base_sha256"),
                      "is required (the SHA-256 of the base checkpoint files, 64 hex digits)");
  }
  TESSERA_ASSIGN_OR_RETURN(*spec.mutable_base_sha256(),
                           ParseSha256Hex(t.Path("base_sha256"), *sha));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> checkpointing,
                           t.Bool("gradient_checkpointing"));
  spec.set_gradient_checkpointing(checkpointing.value_or(false));
  TESSERA_ASSIGN_OR_RETURN(TableReader lora, t.Table("lora"));
  TESSERA_RETURN_IF_ERROR(ParseLora(lora, *spec.mutable_lora()));
  TESSERA_ASSIGN_OR_RETURN(TableReader text, t.Table("text"));
  return ParseText(text, *spec.mutable_text());
}

absl::Status CheckPositiveSeconds(absl::string_view path, double v,
                                  double max) {
  if (v > 0 && v <= max) return absl::OkStatus();
  return FieldError(path,
                    absl::StrCat("must be > 0 and <= ", max, ", got ", v));
}

std::string Resolve(absl::string_view base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(std::string(base_dir)) / p)
      .lexically_normal()
      .string();
}

absl::Status ParseModel(const TableReader& model, absl::string_view base_dir,
                        RunConfigFile& out) {
  TESSERA_RETURN_IF_ERROR(model.CheckKeys({"architecture", "torchscript", "initial_weights",
                                           "seed", "source", "license", "causal_lm"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> arch,
                           model.String("architecture"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> script,
                           model.String("torchscript"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> weights,
                           model.String("initial_weights"));
  TESSERA_ASSIGN_OR_RETURN(int64_t seed, model.IntIn("seed", kSeed, 1));
  TESSERA_ASSIGN_OR_RETURN(TableReader causal_lm, model.Table("causal_lm"));
  if (arch.has_value() + script.has_value() + causal_lm.present() != 1) {
    return FieldError("model", kExactlyOneModel);
  }
  if (causal_lm.present() && !weights.has_value()) {
    return FieldError("model.initial_weights",
                      "is required with [model.causal_lm]: the initial LoRA adapter "
                      "(safetensors, written by tessera-model lora-init)");
  }
  if (script.has_value() && script->empty())
    return FieldError("model.torchscript", "is empty");
  if (weights.has_value() && weights->empty()) {
    return FieldError("model.initial_weights", "is empty");
  }
  wire::v1::ModelSpec& spec = *out.config.mutable_model();
  spec.set_architecture(arch.value_or(""));
  spec.set_seed(seed);
  TESSERA_RETURN_IF_ERROR(config_internal::ParseModelProvenance(model, spec));
  if (causal_lm.present()) {
    TESSERA_RETURN_IF_ERROR(ParseCausalLm(causal_lm, *spec.mutable_causal_lm()));
  }
  if (script.has_value()) out.torchscript_path = Resolve(base_dir, *script);
  if (weights.has_value())
    out.initial_safetensors_path = Resolve(base_dir, *weights);
  if (weights.has_value()) {
    spec.set_initial_weights_source(absl::StrCat("safetensors:", *weights));
  } else if (script.has_value()) {
    spec.set_initial_weights_source(absl::StrCat("torchscript:", *script));
  } else {
    spec.set_initial_weights_source(
        absl::StrCat("architecture:", *arch, " seed=", seed));
  }
  return absl::OkStatus();
}

absl::Status ParseTrain(const TableReader& t, wire::v1::TrainConfig& train) {
  TESSERA_RETURN_IF_ERROR(t.CheckKeys(
      {"local_epochs", "batch_size", "learning_rate", "momentum", "weight_decay", "max_steps",
       "optimizer", "lr_schedule", "warmup_steps", "adam_beta1", "adam_beta2", "adam_epsilon",
       "max_grad_norm"}));
  TESSERA_ASSIGN_OR_RETURN(int64_t epochs,
                           t.IntIn("local_epochs", kLocalEpochs, 1));
  TESSERA_ASSIGN_OR_RETURN(int64_t batch,
                           t.IntIn("batch_size", kBatchSize, 32));
  TESSERA_ASSIGN_OR_RETURN(int64_t max_steps,
                           t.IntIn("max_steps", kMaxSteps, 0));
  TESSERA_ASSIGN_OR_RETURN(double lr, t.FloatOr("learning_rate", 0.01));
  TESSERA_ASSIGN_OR_RETURN(double momentum, t.FloatOr("momentum", 0.0));
  TESSERA_ASSIGN_OR_RETURN(double wd, t.FloatOr("weight_decay", 0.0));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> optimizer, t.String("optimizer"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> schedule, t.String("lr_schedule"));
  TESSERA_ASSIGN_OR_RETURN(int64_t warmup, t.IntIn("warmup_steps", kWarmupSteps, 0));
  TESSERA_ASSIGN_OR_RETURN(double beta1, t.FloatOr("adam_beta1", 0.9));
  TESSERA_ASSIGN_OR_RETURN(double beta2, t.FloatOr("adam_beta2", 0.999));
  TESSERA_ASSIGN_OR_RETURN(double epsilon, t.FloatOr("adam_epsilon", 1e-8));
  TESSERA_ASSIGN_OR_RETURN(double max_grad_norm, t.FloatOr("max_grad_norm", 0.0));
  // ValidateTrain accepts "" and 0 from an older proto; a TOML that sets them is wrong.
  if (optimizer.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckOneOf("train.optimizer", *optimizer, kOptimizers));
  }
  if (schedule.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckOneOf("train.lr_schedule", *schedule, kLrSchedules));
  }
  if (!(epsilon > 0 && std::isfinite(epsilon))) {
    return FieldError("train.adam_epsilon",
                      absl::StrCat("must be finite and > 0, got ", epsilon));
  }
  train.set_optimizer(optimizer.value_or("sgd"));
  train.set_lr_schedule(schedule.value_or("constant"));
  train.set_warmup_steps(static_cast<uint32_t>(warmup));
  train.set_adam_beta1(beta1);
  train.set_adam_beta2(beta2);
  train.set_adam_epsilon(epsilon);
  train.set_max_grad_norm(max_grad_norm);
  train.set_local_epochs(static_cast<uint32_t>(epochs));
  train.set_batch_size(static_cast<uint32_t>(batch));
  train.set_max_steps(static_cast<uint32_t>(max_steps));
  train.set_learning_rate(lr);
  train.set_momentum(momentum);
  train.set_weight_decay(wd);
  return absl::OkStatus();
}

absl::Status ParseSelection(const TableReader& s,
                            wire::v1::SelectionConfig& sel) {
  TESSERA_RETURN_IF_ERROR(
      s.CheckKeys({"clients_per_round", "fraction", "min_clients",
                   "wait_for_clients_seconds"}));
  TESSERA_ASSIGN_OR_RETURN(int64_t per_round,
                           s.IntIn("clients_per_round", kClientsPerRound, 0));
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> fraction, s.Float("fraction"));
  TESSERA_ASSIGN_OR_RETURN(int64_t min_clients,
                           s.IntIn("min_clients", kMinClients, 1));
  TESSERA_ASSIGN_OR_RETURN(double wait,
                           s.FloatOr("wait_for_clients_seconds", 60));
  if (per_round > 0 && fraction.has_value()) {
    return FieldError(
        "selection",
        "set only one of selection.clients_per_round and selection.fraction");
  }
  sel.set_clients_per_round(static_cast<uint32_t>(per_round));
  sel.set_fraction(per_round > 0 ? 0.0 : fraction.value_or(1.0));
  sel.set_min_clients(static_cast<uint32_t>(min_clients));
  sel.set_wait_for_clients_seconds(wait);
  return absl::OkStatus();
}

absl::Status ParseRoundAndEvaluation(const TableReader& r, const TableReader& e,
                                     wire::v1::RunConfig& config) {
  TESSERA_RETURN_IF_ERROR(r.CheckKeys({"deadline_seconds", "max_retries"}));
  TESSERA_ASSIGN_OR_RETURN(double deadline, r.FloatOr("deadline_seconds", 300));
  TESSERA_ASSIGN_OR_RETURN(int64_t retries,
                           r.IntIn("max_retries", kMaxRetries, 3));
  config.mutable_round()->set_deadline_seconds(deadline);
  config.mutable_round()->set_max_retries(static_cast<uint32_t>(retries));

  TESSERA_RETURN_IF_ERROR(e.CheckKeys({"every", "deadline_seconds"}));
  TESSERA_ASSIGN_OR_RETURN(int64_t every, e.IntIn("every", kEvaluateEvery, 1));
  TESSERA_ASSIGN_OR_RETURN(double eval_deadline,
                           e.FloatOr("deadline_seconds", 120));
  config.mutable_evaluation()->set_every(static_cast<uint32_t>(every));
  config.mutable_evaluation()->set_deadline_seconds(eval_deadline);
  return absl::OkStatus();
}

// [retention]: which round models the coordinator keeps (docs/operations.md).
absl::Status ParseRetention(const TableReader& t, wire::v1::RunConfig& config) {
  if (!t.present()) return absl::OkStatus();  // the coordinator's defaults
  TESSERA_RETURN_IF_ERROR(t.CheckKeys({"keep_last", "keep_every"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> keep_last, t.Int("keep_last"));
  if (!keep_last.has_value()) return FieldError("retention.keep_last", "is required");
  TESSERA_RETURN_IF_ERROR(CheckRange("retention.keep_last", *keep_last, kRetainRounds));
  TESSERA_ASSIGN_OR_RETURN(int64_t keep_every, t.IntIn("keep_every", kRetainEvery, 0));
  config.mutable_retention()->set_keep_last(static_cast<uint32_t>(*keep_last));
  config.mutable_retention()->set_keep_every(static_cast<uint32_t>(keep_every));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Validation of the proto.

absl::Status ValidateName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return FieldError(
      "name",
      absl::StrCat("must be 1-", kMaxNameLength,
                   " characters of [A-Za-z0-9._-], got \"", name, "\""));
}

absl::Status ValidateLora(const wire::v1::LoraSpec& lora) {
  TESSERA_RETURN_IF_ERROR(CheckRange("model.causal_lm.lora.rank", lora.rank(), kLoraRank));
  if (!(lora.alpha() > 0 && std::isfinite(lora.alpha()))) {
    return FieldError("model.causal_lm.lora.alpha",
                      absl::StrCat("must be finite and > 0, got ", lora.alpha()));
  }
  if (!(lora.dropout() >= 0 && lora.dropout() < 1)) {
    return FieldError("model.causal_lm.lora.dropout",
                      absl::StrCat("must be in [0, 1), got ", lora.dropout()));
  }
  if (lora.target_modules().empty()) {
    return FieldError(
        "model.causal_lm.lora.target_modules",
        absl::StrCat("must name at least one of ", absl::StrJoin(kLoraTargets, ", ")));
  }
  for (int i = 0; i < lora.target_modules_size(); ++i) {
    const std::string path = absl::StrCat("model.causal_lm.lora.target_modules[", i, "]");
    TESSERA_RETURN_IF_ERROR(CheckOneOf(path, lora.target_modules(i), kLoraTargets));
    for (int j = 0; j < i; ++j) {
      if (lora.target_modules(j) == lora.target_modules(i)) {
        return FieldError(path, absl::StrCat("\"", lora.target_modules(i), "\" is repeated"));
      }
    }
  }
  if (lora.init_seed() > static_cast<uint64_t>(kI64Max)) {
    return FieldError("model.causal_lm.lora.init_seed",
                      absl::StrCat("must be in [0, ", kI64Max, "], got ", lora.init_seed()));
  }
  return absl::OkStatus();
}

absl::Status ValidateText(const wire::v1::TextSpec& text) {
  TESSERA_RETURN_IF_ERROR(CheckOneOf("model.causal_lm.text.format", text.format(), kTextFormats));
  TESSERA_RETURN_IF_ERROR(CheckOneOf("model.causal_lm.text.prompt_template",
                                     text.prompt_template(), kPromptTemplates));
  TESSERA_RETURN_IF_ERROR(
      CheckRange("model.causal_lm.text.max_seq_length", text.max_seq_length(), kMaxSeqLength));
  if (!(text.heldout_fraction() >= 0 && text.heldout_fraction() <= kMaxHeldoutFraction)) {
    return FieldError("model.causal_lm.text.heldout_fraction",
                      absl::StrCat("must be in [0, ", kMaxHeldoutFraction, "], got ",
                                   text.heldout_fraction()));
  }
  return absl::OkStatus();
}

absl::Status ValidateCausalLm(const wire::v1::ModelSpec& model) {
  const wire::v1::CausalLmSpec& lm = model.causal_lm();
  if (lm.base_sha256().size() != 32) {
    return FieldError("model.causal_lm.base_sha256",
                      absl::StrCat("must be 32 bytes, got ", lm.base_sha256().size()));
  }
  if (!absl::StartsWith(model.initial_weights_source(), "safetensors:")) {
    return FieldError("model.initial_weights",
                      "is required with [model.causal_lm]: the initial LoRA adapter "
                      "(safetensors, written by tessera-model lora-init)");
  }
  TESSERA_RETURN_IF_ERROR(ValidateLora(lm.lora()));
  return ValidateText(lm.text());
}

// `torchscript_pending`: the TOML named a TorchScript file whose hash is not
// computed yet.
absl::Status ValidateModel(const wire::v1::ModelSpec& model,
                           bool torchscript_pending) {
  const bool has_arch = !model.architecture().empty();
  const bool has_script =
      !model.torchscript_sha256().empty() || torchscript_pending;
  const bool has_causal_lm = model.has_causal_lm();
  if (has_arch + has_script + has_causal_lm != 1) return FieldError("model", kExactlyOneModel);
  if (has_causal_lm) TESSERA_RETURN_IF_ERROR(ValidateCausalLm(model));
  if (has_arch) {
    bool known = false;
    for (absl::string_view a : kArchitectures)
      known = known || model.architecture() == a;
    if (!known) {
      return FieldError(
          "model.architecture",
          absl::StrCat("must be one of ", absl::StrJoin(kArchitectures, ", "),
                       "; got \"", model.architecture(), "\""));
    }
  }
  if (!torchscript_pending && !model.torchscript_sha256().empty() &&
      model.torchscript_sha256().size() != 32) {
    return FieldError("model.torchscript_sha256",
                      absl::StrCat("must be 32 bytes, got ",
                                   model.torchscript_sha256().size()));
  }
  return CheckRange("model.seed", model.seed(), kSeed);
}

absl::Status ValidateTrain(const wire::v1::TrainConfig& t) {
  TESSERA_RETURN_IF_ERROR(
      CheckRange("train.local_epochs", t.local_epochs(), kLocalEpochs));
  TESSERA_RETURN_IF_ERROR(
      CheckRange("train.batch_size", t.batch_size(), kBatchSize));
  TESSERA_RETURN_IF_ERROR(
      CheckRange("train.max_steps", t.max_steps(), kMaxSteps));
  if (!(t.learning_rate() > 0 && t.learning_rate() <= 10)) {
    return FieldError(
        "train.learning_rate",
        absl::StrCat("must be > 0 and <= 10, got ", t.learning_rate()));
  }
  if (!(t.momentum() >= 0 && t.momentum() < 1)) {
    return FieldError("train.momentum",
                      absl::StrCat("must be in [0, 1), got ", t.momentum()));
  }
  if (!(t.weight_decay() >= 0 && std::isfinite(t.weight_decay()))) {
    return FieldError(
        "train.weight_decay",
        absl::StrCat("must be finite and >= 0, got ", t.weight_decay()));
  }
  if (!t.optimizer().empty()) {
    TESSERA_RETURN_IF_ERROR(CheckOneOf("train.optimizer", t.optimizer(), kOptimizers));
  }
  if (!t.lr_schedule().empty()) {
    TESSERA_RETURN_IF_ERROR(CheckOneOf("train.lr_schedule", t.lr_schedule(), kLrSchedules));
  }
  TESSERA_RETURN_IF_ERROR(CheckRange("train.warmup_steps", t.warmup_steps(), kWarmupSteps));
  for (const auto& [path, beta] : {std::pair<const char*, double>{"train.adam_beta1",
                                                                  t.adam_beta1()},
                                   {"train.adam_beta2", t.adam_beta2()}}) {
    if (!(beta >= 0 && beta < 1)) {
      return FieldError(path, absl::StrCat("must be in [0, 1), got ", beta));
    }
  }
  // 0: a proto from before the field existed; it must be set for adamw.
  const bool epsilon_ok = t.adam_epsilon() > 0 && std::isfinite(t.adam_epsilon());
  if (!epsilon_ok && (t.optimizer() == "adamw" || t.adam_epsilon() != 0)) {
    return FieldError("train.adam_epsilon",
                      absl::StrCat("must be finite and > 0, got ", t.adam_epsilon()));
  }
  if (!(t.max_grad_norm() >= 0 && std::isfinite(t.max_grad_norm()))) {
    return FieldError("train.max_grad_norm",
                      absl::StrCat("must be finite and >= 0, got ", t.max_grad_norm()));
  }
  return absl::OkStatus();
}

absl::Status ValidateSelection(const wire::v1::SelectionConfig& s) {
  if (s.clients_per_round() > 0) {
    if (s.fraction() != 0) {
      return FieldError(
          "selection",
          "set only one of selection.clients_per_round and selection.fraction");
    }
    if (s.min_clients() > s.clients_per_round()) {
      return FieldError(
          "selection.min_clients",
          absl::StrCat("must be <= selection.clients_per_round (",
                       s.clients_per_round(), "), got ", s.min_clients()));
    }
  } else if (!(s.fraction() > 0 && s.fraction() <= 1)) {
    return FieldError("selection.fraction",
                      absl::StrCat("must be > 0 and <= 1, got ", s.fraction()));
  }
  TESSERA_RETURN_IF_ERROR(
      CheckRange("selection.min_clients", s.min_clients(), kMinClients));
  if (!(s.wait_for_clients_seconds() > 0 &&
        std::isfinite(s.wait_for_clients_seconds()))) {
    return FieldError("selection.wait_for_clients_seconds",
                      absl::StrCat("must be finite and > 0, got ",
                                   s.wait_for_clients_seconds()));
  }
  return absl::OkStatus();
}

absl::Status Validate(const wire::v1::RunConfig& c, bool torchscript_pending) {
  TESSERA_RETURN_IF_ERROR(ValidateName(c.name()));
  TESSERA_RETURN_IF_ERROR(CheckRange("rounds", c.rounds(), kRounds));
  if (c.seed() > static_cast<uint64_t>(kI64Max)) {
    return FieldError(
        "seed", absl::StrCat("must be in [0, ", kI64Max, "], got ", c.seed()));
  }
  TESSERA_RETURN_IF_ERROR(ValidateModel(c.model(), torchscript_pending));
  TESSERA_RETURN_IF_ERROR(ValidateTrain(c.train()));
  TESSERA_RETURN_IF_ERROR(ValidateSelection(c.selection()));
  TESSERA_RETURN_IF_ERROR(CheckPositiveSeconds("round.deadline_seconds",
                                               c.round().deadline_seconds(),
                                               kMaxDeadlineSeconds));
  TESSERA_RETURN_IF_ERROR(
      CheckRange("round.max_retries", c.round().max_retries(), kMaxRetries));
  TESSERA_RETURN_IF_ERROR(
      CheckRange("evaluation.every", c.evaluation().every(), kEvaluateEvery));
  TESSERA_RETURN_IF_ERROR(CheckPositiveSeconds(
      "evaluation.deadline_seconds", c.evaluation().deadline_seconds(),
      kMaxDeadlineSeconds));
  // keep_last 0: unset (the coordinator fills in its defaults), then keep_every is too.
  if (c.retention().keep_last() != 0 || c.retention().keep_every() != 0) {
    TESSERA_RETURN_IF_ERROR(
        CheckRange("retention.keep_last", c.retention().keep_last(), kRetainRounds));
    TESSERA_RETURN_IF_ERROR(
        CheckRange("retention.keep_every", c.retention().keep_every(), kRetainEvery));
  }
  TESSERA_RETURN_IF_ERROR(config_internal::ValidateSecureAggregation(c));
  TESSERA_RETURN_IF_ERROR(config_internal::ValidateDifferentialPrivacy(c));
  TESSERA_RETURN_IF_ERROR(config_internal::ValidateGovernance(c));
  TESSERA_RETURN_IF_ERROR(config_internal::ValidateStrategy(c));
  return config_internal::ValidateCompression(c);
}

}  // namespace

absl::StatusOr<RunConfigFile> ParseRunConfigToml(
    absl::string_view toml_text, absl::string_view base_dir,
    std::initializer_list<absl::string_view> extra_tables) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(toml_text.data(), toml_text.size()));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", e.source().begin.line, ", column ", e.source().begin.column,
        ": ",
        absl::string_view(e.description().data(), e.description().size())));
  }
  for (absl::string_view extra : extra_tables) {
    root.erase(std::string_view(extra.data(), extra.size()));
  }
  const TableReader top(&root, "");
  TESSERA_RETURN_IF_ERROR(
      top.CheckKeys({"name", "rounds", "seed", "model", "train", "selection",
                     "round", "evaluation", "secure_aggregation",
                     "differential_privacy", "strategy", "governance", "retention",
                     "compression"}));

  RunConfigFile out;
  wire::v1::RunConfig& config = out.config;
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> name, top.String("name"));
  if (!name.has_value()) return FieldError("name", "is required");
  config.set_name(*name);
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> rounds, top.Int("rounds"));
  if (!rounds.has_value()) return FieldError("rounds", "is required");
  TESSERA_RETURN_IF_ERROR(CheckRange("rounds", *rounds, kRounds));
  config.set_rounds(static_cast<uint32_t>(*rounds));
  TESSERA_ASSIGN_OR_RETURN(int64_t seed, top.IntIn("seed", kSeed, 0));
  config.set_seed(static_cast<uint64_t>(seed));

  TESSERA_ASSIGN_OR_RETURN(TableReader model, top.Table("model"));
  if (!model.present()) {
    return FieldError(
        "model",
        "is required (set model.architecture, model.torchscript or [model.causal_lm])");
  }
  TESSERA_RETURN_IF_ERROR(ParseModel(model, base_dir, out));
  TESSERA_ASSIGN_OR_RETURN(TableReader train, top.Table("train"));
  TESSERA_RETURN_IF_ERROR(ParseTrain(train, *config.mutable_train()));
  TESSERA_ASSIGN_OR_RETURN(TableReader selection, top.Table("selection"));
  TESSERA_RETURN_IF_ERROR(
      ParseSelection(selection, *config.mutable_selection()));
  TESSERA_ASSIGN_OR_RETURN(TableReader round, top.Table("round"));
  TESSERA_ASSIGN_OR_RETURN(TableReader evaluation, top.Table("evaluation"));
  TESSERA_RETURN_IF_ERROR(ParseRoundAndEvaluation(round, evaluation, config));
  TESSERA_ASSIGN_OR_RETURN(TableReader secagg, top.Table("secure_aggregation"));
  TESSERA_ASSIGN_OR_RETURN(wire::v1::SecureAggregationConfig secure_aggregation,
                           config_internal::ParseSecureAggregation(secagg));
  if (secure_aggregation.enabled()) {
    *config.mutable_secure_aggregation() = std::move(secure_aggregation);
  }
  TESSERA_ASSIGN_OR_RETURN(TableReader dp, top.Table("differential_privacy"));
  TESSERA_ASSIGN_OR_RETURN(wire::v1::DifferentialPrivacyConfig differential_privacy,
                           config_internal::ParseDifferentialPrivacy(dp));
  if (differential_privacy.mode() != wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED ||
      differential_privacy.record().enabled()) {
    *config.mutable_differential_privacy() = std::move(differential_privacy);
    // Under DP every update weighs 1: secure aggregation's quantizer range defaults to
    // weight 1 (ValidateDifferentialPrivacy refuses any other max_examples).
    TESSERA_ASSIGN_OR_RETURN(std::optional<double> max_examples, secagg.Float("max_examples"));
    if (config.secure_aggregation().enabled() && !max_examples.has_value()) {
      config.mutable_secure_aggregation()->set_max_examples(1);
    }
  }

  config_internal::ResolveAutoValueBits(config);

  TESSERA_ASSIGN_OR_RETURN(TableReader strategy, top.Table("strategy"));
  TESSERA_ASSIGN_OR_RETURN(*config.mutable_strategy(),
                           config_internal::ParseStrategy(strategy));
  TESSERA_ASSIGN_OR_RETURN(TableReader governance, top.Table("governance"));
  TESSERA_ASSIGN_OR_RETURN(*config.mutable_governance(),
                           config_internal::ParseGovernance(governance));
  TESSERA_ASSIGN_OR_RETURN(TableReader retention, top.Table("retention"));
  TESSERA_RETURN_IF_ERROR(ParseRetention(retention, config));
  TESSERA_ASSIGN_OR_RETURN(TableReader compression, top.Table("compression"));
  TESSERA_ASSIGN_OR_RETURN(wire::v1::CompressionConfig compression_config,
                           config_internal::ParseCompression(compression));
  if (compression_config.method() != wire::v1::CompressionConfig::NONE) {
    *config.mutable_compression() = std::move(compression_config);
  }

  TESSERA_RETURN_IF_ERROR(
      Validate(config, /*torchscript_pending=*/!out.torchscript_path.empty()));
  return out;
}

absl::StatusOr<RunConfigFile> LoadRunConfigFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed)
    return absl::ErrnoToStatus(err, absl::StrCat("cannot read ", path));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<RunConfigFile> parsed = ParseRunConfigToml(text, dir);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::Status ValidateRunConfig(const wire::v1::RunConfig& config) {
  return Validate(config, /*torchscript_pending=*/false);
}

}  // namespace tessera
