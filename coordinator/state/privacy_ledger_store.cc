// The privacy ledgers of CoordinatorState (docs/storage_format.md, docs/privacy.md): one
// record per dataset holding the composed Renyi DP of every round charged to it. Charges
// are written by the "charge, then release" station (ChargeRelease) before anything derived
// from a noised aggregate leaves the coordinator, or inside the batch of the attempt they
// pay for (CommitRound, RecordFailedAttempt), always with a marker per (run, round, attempt)
// so an attempt is charged once, and after checking that the caller's copy extends the
// stored one by exactly one round, so a stale or concurrent copy can never overwrite spent
// budget.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/db_access.h"
#include "coordinator/state/record_codec.h"
#include "coordinator/state/rocksdb_status.h"
#include "coordinator/state/state_lanes.h"
#include "coordinator/state/storage_keys.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera {
namespace coordinator {
namespace {

namespace si = state_internal;
using si::FromRocksDbStatus;
using storage::v1::PrivacyLedgerRecord;

absl::StatusOr<std::optional<PrivacyLedgerRecord>> ReadLedger(rocksdb::DB* db,
                                                              absl::string_view dataset) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("dataset", dataset));
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(
      bool found, si::ReadKey(db, rocksdb::ReadOptions(), si::LedgerKey(dataset), &value));
  if (!found) return std::nullopt;
  PrivacyLedgerRecord record;
  TESSERA_RETURN_IF_ERROR(
      si::ParseRecord(value, absl::StrCat("privacy ledger ", dataset), &record));
  return record;
}

}  // namespace

absl::StatusOr<std::optional<PrivacyLedgerRecord>> CoordinatorState::GetLedger(
    absl::string_view dataset) {
  return ReadLedger(db_.get(), dataset);
}

absl::StatusOr<std::vector<PrivacyLedgerRecord>> CoordinatorState::ListLedgers() {
  std::vector<PrivacyLedgerRecord> ledgers;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), rocksdb::ReadOptions(), si::kLedgerPrefix,
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        return si::ParseRecord(value, key, &ledgers.emplace_back());
      }));
  return ledgers;
}

absl::StatusOr<PrivacyLedgerRecord> CoordinatorState::OpenLedger(
    const PrivacyLedgerRecord& initial) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("dataset", initial.dataset()));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, {LedgerLane(initial.dataset())},
                  absl::StrCat("opening the privacy ledger of ", initial.dataset())));
  TESSERA_ASSIGN_OR_RETURN(std::optional<PrivacyLedgerRecord> stored,
                           ReadLedger(db_.get(), initial.dataset()));
  if (stored.has_value()) return *std::move(stored);
  if (initial.rounds_charged() != 0 || initial.rdp_size() != initial.orders_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a new privacy ledger for ", initial.dataset(),
                     " must have no charged rounds and one RDP value per order"));
  }
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(initial, absl::StrCat("privacy ledger ", initial.dataset())));
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      db_->Put(si::SyncedWrite(), si::LedgerKey(initial.dataset()), value),
      absl::StrCat("creating the privacy ledger of ", initial.dataset())));
  return initial;
}

absl::StatusOr<std::vector<CoordinatorState::ReleaseCharge>>
CoordinatorState::ListReleaseCharges(absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  std::vector<ReleaseCharge> charges;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), rocksdb::ReadOptions(), si::ChargePrefix(run_id),
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        ReleaseCharge c;
        if (!si::ParseChargeKey(run_id, key, &c.round, &c.attempt)) {
          return absl::DataLossError(absl::StrCat("bad charge key ", key));
        }
        TESSERA_RETURN_IF_ERROR(si::ParseRecord(value, key, &c.ledger));
        charges.push_back(std::move(c));
        return absl::OkStatus();
      }));
  return charges;
}

absl::Status CoordinatorState::BatchLedgerCharge(absl::string_view run_id, uint32_t round,
                                                 uint32_t attempt,
                                                 const PrivacyLedgerRecord& charge,
                                                 rocksdb::WriteBatch* batch) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  TESSERA_RETURN_IF_ERROR(si::ValidateRoundAttempt(round, attempt));
  const std::string marker = si::ChargeKey(run_id, round, attempt);
  std::string ignored;
  TESSERA_ASSIGN_OR_RETURN(bool charged,
                           si::ReadKey(db_.get(), rocksdb::ReadOptions(), marker, &ignored));
  if (charged) return absl::OkStatus();  // the station wrote it: one charge per attempt
  {
    NoIoMutexLock l(&write_mu_);
    TESSERA_RETURN_IF_ERROR(fail_ledger_charges_);
  }
  TESSERA_ASSIGN_OR_RETURN(std::optional<PrivacyLedgerRecord> stored,
                           ReadLedger(db_.get(), charge.dataset()));
  if (!stored.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no privacy ledger for dataset ", charge.dataset()));
  }
  if (charge.rounds_charged() != stored->rounds_charged() + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger of ", charge.dataset(), " has ", stored->rounds_charged(),
        " charged rounds; a charge must add exactly one, got ", charge.rounds_charged()));
  }
  if (charge.epsilon_budget() != stored->epsilon_budget() ||
      charge.delta() != stored->delta() || charge.orders_size() != stored->orders_size() ||
      charge.rdp_size() != charge.orders_size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger of ", charge.dataset(),
        ": a charge may not change the budget, delta or orders"));
  }
  for (int i = 0; i < charge.rdp_size(); ++i) {
    // Spent privacy never decreases.
    if (!(charge.rdp(i) >= stored->rdp(i)) || charge.orders(i) != stored->orders(i)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "privacy ledger of ", charge.dataset(), ": a charge may not lower spent RDP"));
    }
  }
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(charge, absl::StrCat("privacy ledger ", charge.dataset())));
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(batch->Put(si::LedgerKey(charge.dataset()), value),
                                            "batching a privacy ledger charge"));
  return FromRocksDbStatus(batch->Put(marker, value), "batching a charge marker");
}

}  // namespace coordinator
}  // namespace tessera
