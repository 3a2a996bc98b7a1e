// File: storage_keys.h
// The RocksDB key layout of the coordinator state (docs/storage_format.md).
// Internal to coordinator/state: nothing outside this folder may depend on the
// byte layout.
#ifndef TESSERA_COORDINATOR_STATE_STORAGE_KEYS_H_
#define TESSERA_COORDINATOR_STATE_STORAGE_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace coordinator {
namespace state_internal {

// The on-disk format this code reads and writes, stored under
// kFormatVersionKey.
// Version 2 (stored tensors of more than kTensorPieceBytes in pieces) reads every database
// of version 1, which Open upgrades in place.
inline constexpr absl::string_view kFormatVersion = "2";
inline constexpr absl::string_view kFormatVersionV1 = "1";
inline constexpr absl::string_view kFormatVersionKey = "meta/format_version";

// Limits that keep the fixed-width key fields sortable.
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr uint32_t kMaxRound = 99999999;     // %08u
inline constexpr uint32_t kMaxAttempt = 9999;       // %04u
inline constexpr size_t kMaxModelTensors = 999999;  // %06u
// A stored tensor's data is split into pieces of this size (the last one shorter) when it
// is larger, each under its own key, so that no RocksDB value (and no memtable entry, write
// batch or blob record holding one) is larger than this.
inline constexpr size_t kTensorPieceBytes = 1 << 20;
inline constexpr uint32_t kMaxTensorPieces = 999999;  // %06u

// INVALID_ARGUMENT unless `id` is non-empty, at most kMaxIdBytes, and free of
// '/' and of control characters. `what` names the field in the message ("run
// id", "client name").
absl::Status ValidateId(absl::string_view what, absl::string_view id);
// INVALID_ARGUMENT when the round or attempt does not fit its key field.
absl::Status ValidateRoundAttempt(uint32_t round, uint32_t attempt);

// run/<id>
std::string RunKey(absl::string_view run_id);
// runorder/<seq %020u> -> run id; lists runs in creation order.
inline constexpr absl::string_view kRunOrderPrefix = "runorder/";
std::string RunOrderKey(uint64_t seq);
// The sequence number of a runorder key; false when `key` is not one.
bool ParseRunOrderKey(absl::string_view key, uint64_t* seq);

// round/<id>/<round %08u>/<attempt %04u>
std::string RoundPrefix(absl::string_view run_id);
std::string RoundKey(absl::string_view run_id, uint32_t round,
                     uint32_t attempt);

// model/<id>/<round %08u>/m  and  model/<id>/<round %08u>/t/<index %06u>
std::string ModelManifestKey(absl::string_view run_id, uint32_t round);
std::string ModelTensorPrefix(absl::string_view run_id, uint32_t round);
std::string ModelTensorKey(absl::string_view run_id, uint32_t round,
                           size_t index);
// model/<id>/<round %08u>/t/<index %06u>/<piece %06u>: piece 1.. of a tensor stored in
// pieces; sorts after its tensor's key and before the next tensor's.
std::string ModelTensorPieceKey(absl::string_view run_id, uint32_t round, size_t index,
                                uint32_t piece);

// model/<id>/ (every model of a run) and model/<id>/<round %08u>/ (one model).
std::string RunModelsPrefix(absl::string_view run_id);
std::string ModelPrefix(absl::string_view run_id, uint32_t round);
// The round of a key under RunModelsPrefix(run_id); false when `key` is not one.
bool ParseModelRound(absl::string_view run_id, absl::string_view key, uint32_t* round);

// The first key after every key that starts with `prefix` (for range deletes).
std::string PrefixEnd(absl::string_view prefix);

// artifact/<id>
std::string ArtifactKey(absl::string_view run_id);
// deleted/<id>: storage::v1::DeletedRunRecord, what stays of a deleted run.
inline constexpr absl::string_view kDeletedRunPrefix = "deleted/";
std::string DeletedRunKey(absl::string_view run_id);

// client/<name>
inline constexpr absl::string_view kClientPrefix = "client/";
std::string ClientKey(absl::string_view name);
// secagg/<run id>/<session id>: storage::v1::SecAggSessionRecord.
inline constexpr absl::string_view kSecAggPrefix = "secagg/";
std::string SecAggKey(absl::string_view run_id, absl::string_view session_id);
std::string SecAggRunPrefix(absl::string_view run_id);
// ledger/<dataset>: storage::v1::PrivacyLedgerRecord.
inline constexpr absl::string_view kLedgerPrefix = "ledger/";
std::string LedgerKey(absl::string_view dataset);
// charge/<run id>/<round %08u>/<attempt %04u>: storage::v1::PrivacyLedgerRecord, the
// dataset's ledger as written by the charge of that attempt's release (the marker that
// makes a charge idempotent; docs/privacy.md, "What is charged when").
inline constexpr absl::string_view kChargePrefix = "charge/";
std::string ChargePrefix(absl::string_view run_id);
std::string ChargeKey(absl::string_view run_id, uint32_t round, uint32_t attempt);
// The round and attempt of a charge key under ChargePrefix(run_id); false when `key` is
// not one.
bool ParseChargeKey(absl::string_view run_id, absl::string_view key, uint32_t* round,
                    uint32_t* attempt);
// provenance/<run id>: wire::v1::RunProvenance.
inline constexpr absl::string_view kProvenancePrefix = "provenance/";
std::string ProvenanceKey(absl::string_view run_id);
// audit/<seq %020u>: wire::v1::AuditEntry; key order is seq order.
inline constexpr absl::string_view kAuditPrefix = "audit/";
std::string AuditKey(uint64_t seq);

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_STORAGE_KEYS_H_
