// File: audit_chain.h
// The hash chain of the coordinator's audit log (docs/governance.md). Each entry's hash is
// the SHA-256 (lowercase hex) of its canonical JSON without the "hash" member
// (core/governance/audit_json.h); the JSON includes prev_hash, the hash of the entry before
// (kGenesisHash for seq 1). Editing an entry changes its hash; removing or reordering entries
// breaks seq or prev_hash; cutting entries off the end shows against the signed head.
#ifndef TESSERA_PRIVACY_PROVENANCE_AUDIT_CHAIN_H_
#define TESSERA_PRIVACY_PROVENANCE_AUDIT_CHAIN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/provenance/signer.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera::provenance {

// prev_hash of the first entry: 64 '0'.
inline constexpr absl::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The hash `entry` must carry (ignores entry.hash()).
std::string AuditEntryHash(const wire::v1::AuditEntry& entry);

// Makes `entry` the successor of `previous` (nullptr: the first entry): sets seq, prev_hash
// and hash. The caller fills unix_ms, actor, action, run_id, round and details first.
void SealAuditEntry(const wire::v1::AuditEntry* previous, wire::v1::AuditEntry& entry);

// The signed head of a log whose last entry is `last` (nullptr: an empty log).
absl::StatusOr<wire::v1::AuditHead> SignAuditHead(const wire::v1::AuditEntry* last,
                                                  int64_t unix_ms,
                                                  const ProvenanceSigner& signer);

struct AuditVerification {
  uint64_t entries = 0;
  // One line per problem, naming the entry: "entry 7 (seq 7): hash does not match its
  // content (edited?)", "entry 4: seq 5 follows seq 3 (entry removed?)", "entry 5: prev_hash
  // is not the hash of seq 4 (reordered or removed?)", "head: the log ends at seq 9 but the
  // signed head says seq 10 (entries cut off the end?)", "head: signature does not verify".
  std::vector<std::string> problems;
  SignerIdentity head_signer;  // when the head verified
  bool ok() const { return problems.empty(); }
};

// Checks the chain of `entries` (in file order) and, when `head` is not null, that the log
// ends where the head says and the head's signature verifies (against `ca_pem` when not
// empty, see VerifySignature). Never fails: every problem is reported.
AuditVerification VerifyAuditChain(const std::vector<wire::v1::AuditEntry>& entries,
                                   const wire::v1::AuditHead* head, absl::string_view ca_pem);

}  // namespace tessera::provenance

#endif  // TESSERA_PRIVACY_PROVENANCE_AUDIT_CHAIN_H_
