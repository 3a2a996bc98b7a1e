// The audit log's hash chain (audit_chain.h, docs/governance.md).
#include "privacy/provenance/audit_chain.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/crypto/sha256.h"
#include "core/governance/audit_json.h"
#include "privacy/crypto/signature.h"

namespace tessera::provenance {
namespace {

using wire::v1::AuditEntry;
using wire::v1::AuditHead;

// The algorithm of the head's signer, which the head does not name: it follows from the key.
std::string HeadAlgorithm(const std::string& signer_pem) {
  absl::StatusOr<crypto::SignatureKeyType> type =
      absl::StrContains(signer_pem, "-----BEGIN CERTIFICATE-----")
          ? crypto::CertificateKeyType(signer_pem)
          : crypto::PublicKeyType(signer_pem);
  if (!type.ok()) return "";  // VerifySignature reports an unknown algorithm
  return *type == crypto::SignatureKeyType::kEd25519 ? "ed25519" : "ecdsa-p256-sha256";
}

void CheckEntries(const std::vector<AuditEntry>& entries, AuditVerification& out) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const AuditEntry& e = entries[i];
    const size_t n = i + 1;  // entries are numbered from 1, as lines of the export
    if (AuditEntryHash(e) != e.hash()) {
      out.problems.push_back(absl::StrCat("entry ", n, " (seq ", e.seq(),
                                          "): hash does not match its content (edited?)"));
    }
    if (i == 0) {
      if (e.seq() != 1) {
        out.problems.push_back(absl::StrCat("entry 1: seq ", e.seq(),
                                            " but the log starts at seq 1 (entries removed "
                                            "from the start?)"));
      }
      if (e.prev_hash() != kGenesisHash) {
        out.problems.push_back(
            "entry 1: prev_hash is not the genesis hash (entries removed from the start?)");
      }
      continue;
    }
    const AuditEntry& prev = entries[i - 1];
    if (e.seq() != prev.seq() + 1) {
      out.problems.push_back(absl::StrCat(
          "entry ", n, ": seq ", e.seq(), " follows seq ", prev.seq(),
          e.seq() > prev.seq() ? " (entry removed?)" : " (reordered or duplicated?)"));
    }
    if (e.prev_hash() != prev.hash()) {
      out.problems.push_back(absl::StrCat("entry ", n, ": prev_hash is not the hash of seq ",
                                          prev.seq(), " (reordered or removed?)"));
    }
  }
}

void CheckHead(const std::vector<AuditEntry>& entries, const AuditHead& head,
               absl::string_view ca_pem, AuditVerification& out) {
  const uint64_t last_seq = entries.empty() ? 0 : entries.back().seq();
  const std::string last_hash = entries.empty() ? std::string(kGenesisHash) : entries.back().hash();
  if (last_seq < head.seq()) {
    out.problems.push_back(absl::StrCat("head: the log ends at seq ", last_seq,
                                        " but the signed head says seq ", head.seq(),
                                        " (entries cut off the end?)"));
  } else if (last_seq > head.seq()) {
    out.problems.push_back(absl::StrCat("head: the log ends at seq ", last_seq,
                                        " but the signed head says seq ", head.seq(),
                                        " (entries added after the head was signed?)"));
  } else if (last_hash != head.hash()) {
    out.problems.push_back(absl::StrCat("head: the hash of seq ", last_seq,
                                        " is not the signed head's hash (last entry replaced?)"));
  }
  Signature signature;
  signature.algorithm = HeadAlgorithm(head.signer());
  signature.value = head.signature();
  signature.signer = head.signer();
  absl::StatusOr<SignerIdentity> who =
      VerifySignature(governance::AuditHeadSignedJson(head), signature, ca_pem);
  if (!who.ok()) {
    out.problems.push_back(absl::StrCat("head: ", who.status().message()));
    return;
  }
  out.head_signer = *std::move(who);
}

}  // namespace

std::string AuditEntryHash(const AuditEntry& entry) {
  return crypto::HexEncode(
      crypto::Sha256Digest(governance::AuditEntryJson(entry, /*include_hash=*/false)));
}

void SealAuditEntry(const AuditEntry* previous, AuditEntry& entry) {
  entry.set_seq(previous == nullptr ? 1 : previous->seq() + 1);
  entry.set_prev_hash(previous == nullptr ? std::string(kGenesisHash) : previous->hash());
  entry.set_hash(AuditEntryHash(entry));
}

absl::StatusOr<AuditHead> SignAuditHead(const AuditEntry* last, int64_t unix_ms,
                                        const ProvenanceSigner& signer) {
  AuditHead head;
  head.set_seq(last == nullptr ? 0 : last->seq());
  head.set_hash(last == nullptr ? std::string(kGenesisHash) : last->hash());
  head.set_unix_ms(unix_ms);
  absl::StatusOr<Signature> signature = signer.Sign(governance::AuditHeadSignedJson(head));
  if (!signature.ok()) return signature.status();
  head.set_signature(std::move(signature->value));
  head.set_signer(std::move(signature->signer));
  return head;
}

AuditVerification VerifyAuditChain(const std::vector<AuditEntry>& entries,
                                   const AuditHead* head, absl::string_view ca_pem) {
  AuditVerification out;
  out.entries = entries.size();
  CheckEntries(entries, out);
  if (head != nullptr) CheckHead(entries, *head, ca_pem, out);
  return out;
}

}  // namespace tessera::provenance
