// File: model_card.cc
// The layout is documented in docs/governance_formats.md; keep the two in step.
#include "core/governance/model_card.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/governance/export_facts.h"
#include "core/governance/markup.h"
#include "core/governance/model_card_sections.h"
#include "core/model/image_input.h"

namespace tessera::governance {
namespace {

using wire::v1::RoundSummary;

std::string RunName(const ExportInputs& in) {
  return in.config.name().empty() ? in.run_id : in.config.name();
}

// Hugging Face license ids are lowercase SPDX ids; anything that is not a license id goes
// under "other" with its name.
std::string LicenseYaml(const std::string& license) {
  const std::string lower = absl::AsciiStrToLower(license);
  if (license.empty()) return "license: \"other\"\nlicense_name: \"unspecified\"\n";
  if (lower == "proprietary" || lower == "other" || lower == "custom" ||
      lower.find_first_of(" \t\n\"'") != std::string::npos) {
    return absl::StrCat("license: \"other\"\nlicense_name: ", YamlQuote(license), "\n");
  }
  return absl::StrCat("license: ", YamlQuote(lower), "\n");
}

std::string YamlList(absl::string_view key, const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string out = absl::StrCat(key, ":\n");
  for (const std::string& item : items) absl::StrAppend(&out, "- ", YamlQuote(item), "\n");
  return out;
}

std::string FrontMatter(const ExportInputs& in) {
  std::vector<std::string> tags = {"federated-learning", "tessera"};
  if (UsesDifferentialPrivacy(in.config)) tags.push_back("differential-privacy");
  if (UsesSecureAggregation(in.config)) tags.push_back("secure-aggregation");
  for (const std::string& tag : in.config.governance().tags()) {
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(tag);
  }
  const std::vector<std::string> datasets = DataCardNames(in);
  const RoundSummary* evaluated = LastEvaluatedRound(in);

  std::string out = "---\n";
  absl::StrAppend(&out, LicenseYaml(in.config.governance().model_license()));
  absl::StrAppend(&out, "library_name: \"tessera\"\n");
  absl::StrAppend(&out, YamlList("tags", tags));
  absl::StrAppend(&out, YamlList("datasets", datasets));
  if (evaluated != nullptr) {
    absl::StrAppend(&out, YamlList("metrics", {"accuracy", "loss"}));
    const std::string dataset_name =
        datasets.empty() ? "federated data" : absl::StrJoin(datasets, ", ");
    const std::string when = absl::StrCat("round ", evaluated->round(), ", federated evaluation");
    absl::StrAppend(&out, "model-index:\n- name: ", YamlQuote(RunName(in)), "\n");
    absl::StrAppend(&out, "  results:\n  - task:\n      type: \"other\"\n",
                    "      name: \"Federated evaluation\"\n");
    absl::StrAppend(&out, "    dataset:\n      type: \"federated\"\n      name: ",
                    YamlQuote(dataset_name), "\n");
    absl::StrAppend(&out, "    metrics:\n");
    absl::StrAppend(
        &out, "    - type: \"accuracy\"\n      value: ", FormatNumber(evaluated->eval_accuracy()),
        "\n      name: ", YamlQuote(absl::StrCat("Accuracy (", when, ")")), "\n");
    absl::StrAppend(&out,
                    "    - type: \"loss\"\n      value: ", FormatNumber(evaluated->eval_loss()),
                    "\n      name: ", YamlQuote(absl::StrCat("Loss (", when, ")")), "\n");
  }
  absl::StrAppend(&out, "---\n\n");
  return out;
}

std::string Overview(const ExportInputs& in) {
  const wire::v1::RunConfig& c = in.config;
  const wire::v1::ModelSpec& spec = c.model();
  std::string out = absl::StrCat("# ", MarkdownInline(RunName(in)), "\n\n");
  const std::string description = MarkdownBlock(c.governance().description());
  if (!description.empty()) {
    absl::StrAppend(&out, description, "\n\n");
  } else {
    absl::StrAppend(&out, "A model trained with federated learning by Tessera.\n\n");
  }
  absl::StrAppend(&out, "- **Run:** ", MarkdownInline(in.run_id), " (", RunStateName(in.run_state),
                  ")\n");
  absl::StrAppend(&out, "- **Exported round:** ", in.round, " of ", CommittedRounds(in).size(),
                  " committed (", c.rounds(), " configured)\n");
  if (spec.has_causal_lm()) {
    const wire::v1::LoraSpec& lora = spec.causal_lm().lora();
    absl::StrAppend(
        &out, "- **Architecture:** LoRA adapter (rank ", lora.rank(), ", alpha ", lora.alpha(),
        ", on ", MarkdownInline(absl::StrJoin(lora.target_modules(), ", ")),
        lora.freeze_a() ? "; FFA-LoRA: A frozen at its seeded initialization" : "",
        ") for the causal language model whose checkpoint files have SHA-256 ",
        absl::BytesToHexString(spec.causal_lm().base_sha256()),
        " (the base stays with the partners; this file holds only the adapter)\n");
  } else if (!spec.architecture().empty()) {
    absl::StrAppend(&out, "- **Architecture:** ", MarkdownInline(spec.architecture()),
                    " (built into Tessera)\n");
  } else {
    const std::string& ts =
        in.artifact_sha256.empty() ? spec.torchscript_sha256() : in.artifact_sha256;
    absl::StrAppend(&out, "- **Architecture:** TorchScript program, SHA-256 ",
                    absl::BytesToHexString(ts), "\n");
  }
  absl::StrAppend(&out, "- **Parameters:** ", in.num_parameters, " in ", in.num_tensors,
                  " tensors (", MarkdownInline(in.weights_file_name), ", ", in.weights_file_bytes,
                  " bytes, safetensors)\n");
  const std::string& license = c.governance().model_license();
  absl::StrAppend(&out, "- **License:** ",
                  license.empty() ? "not specified" : MarkdownInline(license), "\n");
  absl::StrAppend(
      &out, "- **Base model:** ",
      spec.source().empty() ? "not specified" : MarkdownInline(spec.source()),
      " (license: ", spec.license().empty() ? "not specified" : MarkdownInline(spec.license()),
      "); initial weights: ",
      spec.initial_weights_source().empty() ? "not specified"
                                            : MarkdownInline(spec.initial_weights_source()),
      "\n\n");
  return out;
}

// How to prepare inputs (docs/governance_formats.md): the clients' IDX normalization, from
// core/model/image_input.h, the same constants client/data/idx_reader.cc normalizes with.
// Language-model adapters take the base checkpoint's tokenizer: no section.
std::string Preprocessing(const ExportInputs& in) {
  const wire::v1::ModelSpec& spec = in.config.model();
  if (spec.has_causal_lm()) return "";
  std::string out = "## Preprocessing\n\n";
  if (!spec.architecture().empty()) {
    absl::StrAppend(&out, "The built-in architecture ", MarkdownInline(spec.architecture()),
                    " takes a float32 tensor of shape [batch, ",
                    absl::StrJoin(kBuiltinImageShape, ", "),
                    "]: channels first, one grayscale channel, rows top to bottom. It returns ",
                    kBuiltinNumClasses, " logits per example; the prediction is the label of "
                    "the largest.\n\n");
  } else {
    absl::StrAppend(&out, "The TorchScript program defines the input shape and dtype.\n\n");
  }
  absl::StrAppend(
      &out,
      "Tessera clients reading IDX images (`--data idx:DIR`) trained and evaluated this model "
      "on pixels normalized as follows, x being a pixel byte (0 to 255):\n\n```\n",
      ImageNormalizationFormula(), "\n```\n\n",
      absl::StrFormat("%.4f and %.4f", kFashionMnistMean, kFashionMnistStd),
      " are the Fashion-MNIST training set's pixel mean and standard deviation (of x / ",
      absl::StrFormat("%g", kPixelScale),
      "); the clients apply them to every IDX dataset. Normalize your inputs the same way: "
      "raw pixels (0 to 255, or 0 to 1) lower the model's accuracy. CSV data "
      "(`--data csv:FILE`) is used as given, without normalization.\n\n"
      "Labels for Fashion-MNIST: ",
      FashionMnistLabelsText(), ".\n\n");
  return out;
}

std::string IntendedUse(const ExportInputs& in) {
  std::string out = "## Intended use\n\n";
  const std::string text = MarkdownBlock(in.config.governance().intended_use());
  if (text.empty()) {
    absl::StrAppend(&out,
                    "The operator did not state an intended use. Check the participants' "
                    "data cards (below) and the limitations before using this model.\n\n");
  } else {
    absl::StrAppend(&out, text, "\n\n");
  }
  return out;
}

std::string Provenance(const ExportInputs& in, absl::string_view bom_file_name) {
  std::string out = "## Provenance\n\n";
  absl::StrAppend(&out, "- **Run:** ", MarkdownInline(in.run_id), "\n");
  absl::StrAppend(&out, "- **Round:** ", in.round, "\n");
  absl::StrAppend(&out, "- **Tensor digest (SHA-256 of the canonical tensors):** ",
                  absl::BytesToHexString(in.model_sha256), "\n");
  absl::StrAppend(&out, "- **Weights file:** ", MarkdownInline(in.weights_file_name), ", SHA-256 ",
                  absl::BytesToHexString(in.weights_file_sha256), "\n");
  absl::StrAppend(&out, "- **Bill of materials:** ", MarkdownInline(bom_file_name),
                  ", signed by the coordinator; it lists every component of this model and "
                  "holds the SHA-256 of this model card\n");
  absl::StrAppend(&out, "- **Audit log head:** entry ", in.audit_head_seq, ", hash ",
                  MarkdownInline(in.audit_head_hash), "\n");
  absl::StrAppend(&out, "- **Exported by:** ",
                  in.exported_by.empty() ? "an unauthenticated operator (insecure mode)"
                                         : MarkdownInline(in.exported_by),
                  ", coordinator ", MarkdownInline(in.coordinator_version), ", at unix ms ",
                  in.exported_unix_ms, "\n\n");
  absl::StrAppend(&out,
                  "To check the signature, the weights and the chain back to the run:\n\n"
                  "```sh\ntessera model verify <dir>\n```\n");
  return out;
}

}  // namespace

std::string RenderModelCard(const ExportInputs& inputs, absl::string_view bom_file_name) {
  return absl::StrCat(
      FrontMatter(inputs), Overview(inputs), Preprocessing(inputs), IntendedUse(inputs),
      card_internal::TrainingProcedureSection(inputs), card_internal::ParticipantsSection(inputs),
      card_internal::PrivacySection(inputs), card_internal::EvaluationSection(inputs),
      card_internal::LimitationsSection(inputs), Provenance(inputs, bom_file_name));
}

}  // namespace tessera::governance
