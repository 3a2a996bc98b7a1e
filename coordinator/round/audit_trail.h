// File: audit_trail.h
// The coordinator's audit log as the round loop and the operator actions use it
// (docs/governance.md): appending entries, operator events recorded elsewhere, and the
// whole log with a signed head. Thread-safe (CoordinatorState serializes the appends).
#ifndef TESSERA_COORDINATOR_ROUND_AUDIT_TRAIL_H_
#define TESSERA_COORDINATOR_ROUND_AUDIT_TRAIL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/state/coordinator_state.h"
#include "privacy/provenance/signer.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera::coordinator {

// The whole log in order and its head signed at export.
struct SignedAuditLog {
  std::vector<wire::v1::AuditEntry> entries;
  wire::v1::AuditHead head;
};

class AuditTrail {
 public:
  // `state` must outlive the trail; `signer` may be null (Export then fails).
  AuditTrail(CoordinatorState* state, std::shared_ptr<const provenance::ProvenanceSigner> signer)
      : state_(state), signer_(std::move(signer)) {}

  // The actor of an operator action: "operator" or "operator:NAME" (the certificate's CN).
  static std::string OperatorActor(absl::string_view name);

  // Appends an entry; a failure is logged, never fails the action it records.
  void Record(absl::string_view actor, absl::string_view action, absl::string_view run_id,
              uint32_t round, std::map<std::string, std::string> details) const;
  // Appends an operator action done elsewhere ("certificate.issued", "certificate.revoked")
  // by `operator_name`. INVALID_ARGUMENT for another action or details over the limits (16
  // entries, keys of 1..64 bytes, values of at most 1024).
  absl::StatusOr<wire::v1::AuditEntry> RecordOperatorEvent(
      absl::string_view operator_name, absl::string_view action,
      const std::map<std::string, std::string>& details) const;
  // The whole log and its head signed now. FAILED_PRECONDITION without a signer.
  absl::StatusOr<SignedAuditLog> Export() const;

 private:
  CoordinatorState* const state_;
  const std::shared_ptr<const provenance::ProvenanceSigner> signer_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_AUDIT_TRAIL_H_
