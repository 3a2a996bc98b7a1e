#include "core/config/governance_config.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status_macros.h"
#include "core/config/data_card.h"
#include "core/config/text_checks.h"

namespace tessera {
namespace config_internal {
namespace {

using wire::v1::GovernanceConfig;

constexpr Range kBucket{1, kMaxExampleCountBucket};

absl::Status CheckLicenses(absl::string_view key,
                           const google::protobuf::RepeatedPtrField<std::string>& ids) {
  for (int i = 0; i < ids.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(
        CheckLicenseId(absl::StrCat("governance.", key, "[", i, "]"), ids[i]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GovernanceConfig> ParseGovernance(const TableReader& t) {
  GovernanceConfig out;
  out.set_example_count_bucket(kDefaultExampleCountBucket);
  if (!t.present()) return out;
  TESSERA_RETURN_IF_ERROR(t.CheckKeys({"model_license", "allowed_data_licenses",
                                       "allowed_base_model_licenses", "example_count_bucket",
                                       "class_histogram", "description", "intended_use",
                                       "limitations", "tags"}));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> model_license,
                           t.String("model_license"));
  if (model_license.has_value()) {
    // Set but empty would read as "unset" in the proto: refuse it here.
    TESSERA_RETURN_IF_ERROR(CheckLicenseId(t.Path("model_license"), *model_license));
    out.set_model_license(*model_license);
  }
  for (absl::string_view key : {"allowed_data_licenses", "allowed_base_model_licenses"}) {
    TESSERA_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> ids, t.StringArray(key));
    if (!ids.has_value()) continue;
    auto* field = key == "allowed_data_licenses" ? out.mutable_allowed_data_licenses()
                                                 : out.mutable_allowed_base_model_licenses();
    for (std::string& id : *ids) field->Add(std::move(id));
  }
  TESSERA_ASSIGN_OR_RETURN(
      int64_t bucket,
      t.IntIn("example_count_bucket", kBucket, static_cast<int64_t>(kDefaultExampleCountBucket)));
  out.set_example_count_bucket(static_cast<uint64_t>(bucket));
  TESSERA_ASSIGN_OR_RETURN(std::optional<bool> histogram, t.Bool("class_histogram"));
  out.set_class_histogram(histogram.value_or(false));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> description, t.String("description"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> intended_use, t.String("intended_use"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> limitations, t.String("limitations"));
  out.set_description(description.value_or(""));
  out.set_intended_use(intended_use.value_or(""));
  out.set_limitations(limitations.value_or(""));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> tags, t.StringArray("tags"));
  if (tags.has_value()) {
    for (std::string& tag : *tags) out.add_tags(std::move(tag));
  }
  return out;
}

absl::Status ParseModelProvenance(const TableReader& model, wire::v1::ModelSpec& spec) {
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> source, model.String("source"));
  TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> license, model.String("license"));
  if (license.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckLicenseId(model.Path("license"), *license));
  }
  if (source.has_value() && source->empty()) return FieldError(model.Path("source"), "is empty");
  spec.set_source(source.value_or(""));
  spec.set_license(license.value_or(""));
  return absl::OkStatus();
}

absl::Status ValidateGovernance(const wire::v1::RunConfig& config) {
  const wire::v1::ModelSpec& model = config.model();
  const GovernanceConfig& g = config.governance();
  TESSERA_RETURN_IF_ERROR(CheckText("model.source", model.source()));
  if (!model.license().empty()) {
    TESSERA_RETURN_IF_ERROR(CheckLicenseId("model.license", model.license()));
  }
  if (!g.model_license().empty()) {
    TESSERA_RETURN_IF_ERROR(CheckLicenseId("governance.model_license", g.model_license()));
  }
  TESSERA_RETURN_IF_ERROR(CheckLicenses("allowed_data_licenses", g.allowed_data_licenses()));
  TESSERA_RETURN_IF_ERROR(
      CheckLicenses("allowed_base_model_licenses", g.allowed_base_model_licenses()));
  // 0: the default, 100 (a config built in code without the table).
  if (g.example_count_bucket() > static_cast<uint64_t>(kMaxExampleCountBucket)) {
    return FieldError("governance.example_count_bucket",
                      absl::StrCat("must be in [1, ", kMaxExampleCountBucket, "], got ",
                                   g.example_count_bucket()));
  }
  TESSERA_RETURN_IF_ERROR(CheckText("governance.description", g.description()));
  TESSERA_RETURN_IF_ERROR(CheckText("governance.intended_use", g.intended_use()));
  TESSERA_RETURN_IF_ERROR(CheckText("governance.limitations", g.limitations()));
  if (static_cast<size_t>(g.tags_size()) > kMaxTags) {
    return FieldError("governance.tags",
                      absl::StrCat("must have at most ", kMaxTags, " tags, got ", g.tags_size()));
  }
  for (int i = 0; i < g.tags_size(); ++i) {
    const std::string path = absl::StrCat("governance.tags[", i, "]");
    if (g.tags(i).empty()) return FieldError(path, "is empty");
    TESSERA_RETURN_IF_ERROR(CheckLine(path, g.tags(i), kMaxTagChars));
  }
  if (!LicenseAllowed(model.license(), g.allowed_base_model_licenses())) {
    return FieldError("model.license",
                      absl::StrCat("\"", model.license(),
                                   "\" is not in governance.allowed_base_model_licenses [",
                                   absl::StrJoin(g.allowed_base_model_licenses(), ", "), "]",
                                   model.license().empty() ? " (set model.license)" : ""));
  }
  return absl::OkStatus();
}

}  // namespace config_internal
}  // namespace tessera
