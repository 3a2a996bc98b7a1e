// The audit log of CoordinatorState (audit/<seq %020u>, docs/storage_format.md,
// docs/governance.md): hash-chained entries, appended one synced put at a time under the
// audit lane, so seqs have no gaps and each entry links to the one stored before it.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/db_access.h"
#include "coordinator/state/record_codec.h"
#include "coordinator/state/rocksdb_status.h"
#include "coordinator/state/state_lanes.h"
#include "coordinator/state/storage_keys.h"
#include "core/base/status_macros.h"
#include "core/governance/canonical_json.h"
#include "privacy/provenance/audit_chain.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace tessera {
namespace coordinator {
namespace {

namespace si = state_internal;
using si::FromRocksDbStatus;
using wire::v1::AuditEntry;

// The entry under the highest audit/ key, nullopt when there is none.
absl::StatusOr<std::optional<AuditEntry>> ReadLastAudit(rocksdb::DB* db) {
  std::string past_end(si::kAuditPrefix);
  past_end.back() = static_cast<char>(past_end.back() + 1);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(past_end);
  if (it->Valid() && absl::StartsWith(si::ToView(it->key()), si::kAuditPrefix)) {
    AuditEntry entry;
    TESSERA_RETURN_IF_ERROR(si::ParseRecord(si::ToView(it->value()), si::ToView(it->key()),
                                            &entry));
    return entry;
  }
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(it->status(), "reading the last audit entry"));
  return std::nullopt;
}

// INVALID_ARGUMENT unless every string of `entry` is UTF-8 (proto3 would store it, but no
// longer parse it, and JSON cannot carry it).
absl::Status CheckUtf8(const AuditEntry& entry) {
  auto check = [](absl::string_view what, absl::string_view text) -> absl::Status {
    if (governance::IsValidUtf8(text)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("audit entry: ", what, " is not valid UTF-8"));
  };
  TESSERA_RETURN_IF_ERROR(check("actor", entry.actor()));
  TESSERA_RETURN_IF_ERROR(check("action", entry.action()));
  TESSERA_RETURN_IF_ERROR(check("run_id", entry.run_id()));
  for (const auto& [key, value] : entry.details()) {
    TESSERA_RETURN_IF_ERROR(check("a details key", key));
    TESSERA_RETURN_IF_ERROR(check(absl::StrCat("details[", key, "]"), value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AuditEntry> CoordinatorState::AppendAudit(AuditEntry entry) {
  TESSERA_RETURN_IF_ERROR(CheckUtf8(entry));
  // The lane orders appends; write_mu_ is taken only to read and publish the cached head.
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, {std::string(kAuditLane)}, "appending to the audit log"));
  std::optional<AuditEntry> last;
  bool loaded;
  {
    NoIoMutexLock l(&write_mu_);
    loaded = last_audit_loaded_;
    last = last_audit_;
  }
  if (!loaded) {
    TESSERA_ASSIGN_OR_RETURN(last, ReadLastAudit(db_.get()));
  }
  provenance::SealAuditEntry(last.has_value() ? &*last : nullptr, entry);
  TESSERA_ASSIGN_OR_RETURN(
      std::string value, si::SerializeRecord(entry, absl::StrCat("audit entry ", entry.seq())));
  TESSERA_RETURN_IF_ERROR(
      FromRocksDbStatus(db_->Put(si::SyncedWrite(), si::AuditKey(entry.seq()), value),
                        absl::StrCat("appending audit entry ", entry.seq())));
  NoIoMutexLock l(&write_mu_);
  last_audit_ = entry;
  last_audit_loaded_ = true;
  return entry;
}

absl::StatusOr<std::vector<AuditEntry>> CoordinatorState::ListAudit() {
  std::vector<AuditEntry> entries;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), rocksdb::ReadOptions(), si::kAuditPrefix,
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        return si::ParseRecord(value, key, &entries.emplace_back());
      }));
  return entries;
}

absl::StatusOr<std::optional<AuditEntry>> CoordinatorState::LastAudit() {
  return ReadLastAudit(db_.get());
}

}  // namespace coordinator
}  // namespace tessera
