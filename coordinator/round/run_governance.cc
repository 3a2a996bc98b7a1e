// One run's governance at the round loop's stations (run_governance.h, docs/governance.md).
#include "coordinator/round/run_governance.h"

#include <algorithm>

#include <glog/logging.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "core/config/data_card.h"
#include "core/crypto/sha256.h"

namespace tessera::coordinator {
namespace {

constexpr uint64_t kDefaultExampleBucket = 100;
constexpr size_t kMaxHistogramClasses = 4096;

uint64_t ExampleBucket(const wire::v1::RunConfig& config) {
  const uint64_t b = config.governance().example_count_bucket();
  return b == 0 ? kDefaultExampleBucket : b;
}

// A new participant record for `client`, appended to `p`.
wire::v1::Participant& AddParticipant(wire::v1::RunProvenance& p, absl::string_view client) {
  wire::v1::Participant* q = p.add_participants();
  q->set_client(std::string(client));
  q->set_first_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  return *q;
}

// The participant record of `client` in `p`, added if missing.
wire::v1::Participant& ParticipantOf(wire::v1::RunProvenance& p, absl::string_view client) {
  for (wire::v1::Participant& q : *p.mutable_participants()) {
    if (q.client() == client) return q;
  }
  return AddParticipant(p, client);
}

// Why the run's license rules refuse a client with `info`, or "" when they accept it.
std::string RefusalReason(const wire::v1::RunConfig& config, const wire::v1::ClientInfo& info) {
  const auto& allowed = config.governance().allowed_data_licenses();
  if (allowed.empty()) return "";
  const std::string list = absl::StrCat("[", absl::StrJoin(allowed, ", "), "]");
  if (!info.has_data_card()) {
    return absl::StrCat("no data card; the run accepts only data licensed ", list,
                        " (governance.allowed_data_licenses)");
  }
  const std::string& license = info.data_card().license();
  if (LicenseAllowed(license, allowed)) return "";
  return absl::StrCat("data card license \"", license,
                      "\" is not in governance.allowed_data_licenses ", list);
}

}  // namespace

RunGovernance::RunGovernance(Services services, std::string run_id, wire::v1::RunConfig config)
    : services_(std::move(services)), run_id_(std::move(run_id)), config_(std::move(config)) {}

absl::Status RunGovernance::Create(absl::string_view operator_name,
                                   absl::string_view cli_version, int64_t created_unix_ms,
                                   const ModelSnapshot& initial) {
  wire::v1::RunProvenance p;
  p.set_created_unix_ms(created_unix_ms);
  p.set_run_id(run_id_);
  p.set_created_by(std::string(operator_name));
  p.set_cli_version(std::string(cli_version));
  p.set_coordinator_version(services_.coordinator_version);
  p.add_coordinator_versions(services_.coordinator_version);
  p.set_initial_model_sha256(initial.digest);
  p.set_initial_file_sha256(config_.model().initial_weights_file_sha256());
  p.set_torchscript_sha256(config_.model().torchscript_sha256());
  {
    absl::MutexLock sequence(&sequence_);
    TESSERA_RETURN_IF_ERROR(services_.state->PutProvenance(p));
    NoIoMutexLock l(&mu_);
    provenance_ = p;
  }
  services_.audit->Record(AuditTrail::OperatorActor(operator_name), "run.created", run_id_, 0,
                          {{"name", config_.name()},
                           {"rounds", absl::StrCat(config_.rounds())},
                           {"base_model_source", config_.model().source()},
                           {"base_model_license", config_.model().license()},
                           {"initial_model_sha256", crypto::HexEncode(initial.digest)},
                           {"model_license", config_.governance().model_license()},
                           {"cli_version", std::string(cli_version)}});
  return absl::OkStatus();
}

absl::Status RunGovernance::Restore(bool add_this_build) {
  absl::MutexLock sequence(&sequence_);
  TESSERA_ASSIGN_OR_RETURN(std::optional<wire::v1::RunProvenance> stored,
                           services_.state->GetProvenance(run_id_));
  // A run stored before provenance existed gets an empty record (nothing is invented).
  wire::v1::RunProvenance p = stored.value_or(wire::v1::RunProvenance());
  p.set_run_id(run_id_);
  const auto& versions = p.coordinator_versions();
  if (add_this_build && std::find(versions.begin(), versions.end(),
                                  services_.coordinator_version) == versions.end()) {
    p.add_coordinator_versions(services_.coordinator_version);
    TESSERA_RETURN_IF_ERROR(services_.state->PutProvenance(p));
  }
  NoIoMutexLock l(&mu_);
  provenance_ = std::move(p);
  return absl::OkStatus();
}

std::vector<std::string> RunGovernance::Select(std::vector<std::string> connected) {
  std::vector<std::string> eligible;
  std::vector<std::pair<std::string, std::string>> refused_now;  // client, reason
  {
    // A copy is updated, stored (synced) without mu_, and published after, so status calls
    // never wait for the put.
    absl::MutexLock sequence(&sequence_);
    wire::v1::RunProvenance provenance;
    {
      NoIoMutexLock l(&mu_);
      provenance = provenance_;
    }
    bool changed = false;
    // Participants by client: a scan per connected client made selection quadratic in the
    // fleet (100,000 simulated clients: minutes per round).
    absl::flat_hash_map<std::string, int> index;
    for (int i = 0; i < provenance.participants_size(); ++i) {
      index.emplace(provenance.participants(i).client(), i);
    }
    for (std::string& client : connected) {
      absl::StatusOr<wire::v1::ClientInfo> info = services_.registry->Info(client);
      if (!info.ok()) continue;
      auto [at, added] = index.try_emplace(client, provenance.participants_size());
      wire::v1::Participant& p = added ? AddParticipant(provenance, client)
                                       : *provenance.mutable_participants(at->second);
      const std::string before = p.SerializeAsString();
      p.set_organization(info->organization());
      p.set_client_version(info->version());
      if (info->has_data_card()) {
        *p.mutable_data_card() = info->data_card();
      } else {
        p.clear_data_card();
      }
      const std::string reason = RefusalReason(config_, *info);
      if (!reason.empty() && reason != p.refused()) refused_now.emplace_back(client, reason);
      p.set_refused(reason);
      changed = changed || p.SerializeAsString() != before;
      if (reason.empty()) eligible.push_back(std::move(client));
    }
    if (changed) {
      // A failed put is logged; the selection still uses what the clients told us now.
      if (absl::Status s = services_.state->PutProvenance(provenance); !s.ok()) {
        LOG(ERROR) << "run " << run_id_ << ": cannot store participants: " << s;
      }
      NoIoMutexLock l(&mu_);
      provenance_ = std::move(provenance);
    }
  }
  for (const auto& [client, reason] : refused_now) {
    LOG(WARNING) << "run " << run_id_ << " refused client " << client << ": " << reason;
    services_.audit->Record("coordinator", "client.refused", run_id_, 0,
                            {{"client", client}, {"reason", reason}});
    wire::v1::Task notice;
    notice.set_type(wire::v1::REFUSED);
    notice.set_run_id(run_id_);
    notice.set_refusal(reason);
    services_.registry->Send(client, notice);
  }
  return eligible;
}

void RunGovernance::Dispatch(absl::string_view client, wire::v1::Task& task) const {
  if (task.type() != wire::v1::TRAIN) return;
  {
    NoIoMutexLock l(&mu_);
    for (const wire::v1::Participant& p : provenance_.participants()) {
      if (p.client() == client && p.has_data_report()) return;
    }
  }
  task.mutable_data_report()->set_example_count_bucket(ExampleBucket(config_));
  task.mutable_data_report()->set_class_histogram(config_.governance().class_histogram());
}

absl::Status RunGovernance::AcceptDataReport(absl::string_view client,
                                             const wire::v1::DataReportRequest& asked,
                                             const wire::v1::DataReport& report) {
  if (report.example_count_bucket() != asked.example_count_bucket()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data report: example_count_bucket must be ", asked.example_count_bucket(), ", got ",
        report.example_count_bucket()));
  }
  if (report.examples_rounded() % asked.example_count_bucket() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data report: examples_rounded ", report.examples_rounded(),
        " is not a multiple of the bucket ", asked.example_count_bucket()));
  }
  TESSERA_ASSIGN_OR_RETURN(wire::v1::ClientInfo info, services_.registry->Info(client));
  if (report.class_histogram_size() > 0) {
    if (!asked.class_histogram()) {
      return absl::InvalidArgumentError(
          "data report: the run did not ask for a class histogram; it is not accepted");
    }
    if (!info.has_data_card() || !info.data_card().allow_class_histogram()) {
      return absl::InvalidArgumentError(
          "data report: the client's data card does not allow a class histogram");
    }
    if (static_cast<size_t>(report.class_histogram_size()) > kMaxHistogramClasses) {
      return absl::InvalidArgumentError(absl::StrCat("data report: more than ",
                                                     kMaxHistogramClasses, " classes"));
    }
  }
  // Prepared under mu_, stored (synced) without it, published once stored.
  absl::MutexLock sequence(&sequence_);
  wire::v1::RunProvenance provenance;
  {
    NoIoMutexLock l(&mu_);
    provenance = provenance_;
  }
  wire::v1::Participant& p = ParticipantOf(provenance, client);
  *p.mutable_data_report() = report;
  // Exact class counts would sum to the exact example count the bucket hides: each class is
  // kept (and so published) rounded down to the bucket, like the count (docs/data_cards.md).
  for (uint64_t& n : *p.mutable_data_report()->mutable_class_histogram()) {
    n = n / asked.example_count_bucket() * asked.example_count_bucket();
  }
  TESSERA_RETURN_IF_ERROR(services_.state->PutProvenance(provenance));
  NoIoMutexLock l(&mu_);
  provenance_ = std::move(provenance);
  return absl::OkStatus();
}

void RunGovernance::Commit(const wire::v1::RoundSummary& summary) const {
  std::map<std::string, std::string> details = {
      {"attempt", absl::StrCat(summary.attempt())},
      {"participants", absl::StrJoin(summary.participants(), ",")},
      {"selected", absl::StrCat(summary.selected())},
      {"reported", absl::StrCat(summary.reported())}};
  const bool ok = summary.state() == wire::v1::ROUND_COMPLETED;
  if (ok) {
    details["model_sha256"] = crypto::HexEncode(summary.model_sha256());
  } else {
    details["reason"] = summary.failure_reason();
  }
  if (summary.has_privacy()) details["epsilon"] = absl::StrCat(summary.privacy().epsilon());
  services_.audit->Record("coordinator", ok ? "round.committed" : "round.failed", run_id_,
                          summary.round(), std::move(details));
}

wire::v1::RunProvenance RunGovernance::Provenance() const {
  NoIoMutexLock l(&mu_);
  return provenance_;
}

void RunGovernance::AddRefusedClients(wire::v1::RunStatus& status) const {
  NoIoMutexLock l(&mu_);
  for (const wire::v1::Participant& p : provenance_.participants()) {
    if (!p.refused().empty()) {
      status.add_refused_clients(absl::StrCat(p.client(), ": ", p.refused()));
    }
  }
}

}  // namespace tessera::coordinator
