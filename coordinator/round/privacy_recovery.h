// File: privacy_recovery.h
// Differential privacy across a coordinator restart (docs/privacy.md): what a previous
// process released must stay charged, whatever it did or did not commit. Called by
// RunManager::Recover before any run resumes.
#ifndef TESSERA_COORDINATOR_ROUND_PRIVACY_RECOVERY_H_
#define TESSERA_COORDINATOR_ROUND_PRIVACY_RECOVERY_H_

#include <optional>

#include "absl/status/statusor.h"
#include "coordinator/state/coordinator_state.h"
#include "tessera/storage/v1/records.pb.h"

namespace tessera::coordinator {

// Every release a previous process charged but never committed becomes a stored failed
// attempt (still charged once; the next attempt gets a new number), and a distributed-DP
// session whose noised sum was computed but not yet charged is charged now.
absl::Status RecoverReleases(CoordinatorState& state);

// A distributed-DP session interrupted in Unmasking may have revealed its noised sum: the
// ledger with its round charged (not stored), or nullopt when nothing needs charging.
absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> ChargeInterruptedSession(
    CoordinatorState& state, const storage::v1::SecAggSessionRecord& session);

// The error that stops a restart when the charge of a distributed-DP session's possibly
// revealed sum cannot be written: `why`'s code, naming run, round and the session's phase.
absl::Status SessionChargeError(const storage::v1::SecAggSessionRecord& session,
                                const absl::Status& why);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_PRIVACY_RECOVERY_H_
