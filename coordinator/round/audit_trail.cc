// The coordinator's audit log (audit_trail.h, docs/governance.md).
#include "coordinator/round/audit_trail.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "privacy/provenance/audit_chain.h"

namespace tessera::coordinator {

std::string AuditTrail::OperatorActor(absl::string_view name) {
  return name.empty() ? "operator" : absl::StrCat("operator:", name);
}

void AuditTrail::Record(absl::string_view actor, absl::string_view action,
                        absl::string_view run_id, uint32_t round,
                        std::map<std::string, std::string> details) const {
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  entry.set_actor(std::string(actor));
  entry.set_action(std::string(action));
  entry.set_run_id(std::string(run_id));
  entry.set_round(round);
  for (auto& [k, v] : details) (*entry.mutable_details())[k] = std::move(v);
  absl::StatusOr<wire::v1::AuditEntry> sealed = state_->AppendAudit(std::move(entry));
  if (!sealed.ok()) {
    LOG(ERROR) << "cannot append \"" << action << "\" to the audit log: " << sealed.status();
  }
}

absl::StatusOr<wire::v1::AuditEntry> AuditTrail::RecordOperatorEvent(
    absl::string_view operator_name, absl::string_view action,
    const std::map<std::string, std::string>& details) const {
  if (action != "certificate.issued" && action != "certificate.revoked") {
    return absl::InvalidArgumentError(absl::StrCat(
        "action \"", action, "\" cannot be recorded by an operator; only certificate.issued "
        "and certificate.revoked"));
  }
  if (details.size() > 16) return absl::InvalidArgumentError("details: more than 16 entries");
  for (const auto& [k, v] : details) {
    if (k.empty() || k.size() > 64 || v.size() > 1024) {
      return absl::InvalidArgumentError(absl::StrCat(
          "details: key \"", k.substr(0, 64), "\" must be 1..64 bytes and its value at most "
          "1024 bytes"));
    }
  }
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  entry.set_actor(OperatorActor(operator_name));
  entry.set_action(std::string(action));
  for (const auto& [k, v] : details) (*entry.mutable_details())[k] = v;
  return state_->AppendAudit(std::move(entry));
}

absl::StatusOr<SignedAuditLog> AuditTrail::Export() const {
  if (signer_ == nullptr) {
    return absl::FailedPreconditionError("this coordinator has no provenance signing key");
  }
  SignedAuditLog log;
  TESSERA_ASSIGN_OR_RETURN(log.entries, state_->ListAudit());
  TESSERA_ASSIGN_OR_RETURN(
      log.head, provenance::SignAuditHead(log.entries.empty() ? nullptr : &log.entries.back(),
                                          absl::ToUnixMillis(absl::Now()), *signer_));
  return log;
}

}  // namespace tessera::coordinator
