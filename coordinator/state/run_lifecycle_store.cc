// Run lifecycle in CoordinatorState (docs/storage_format.md, docs/operations.md "Runs and
// retention"): listing runs past an unreadable record, pruning round models, deleting a
// run while keeping what verifies its exports (provenance, privacy charges, audit log).
#include <memory>
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
#include "core/base/no_io_mutex.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera {
namespace coordinator {
namespace {

namespace si = state_internal;
using si::FromRocksDbStatus;
using storage::v1::DeletedRunRecord;
using storage::v1::RunRecord;

// Compacts the keys in [begin, end) so deleted values (and the blob files that held only
// them) leave the disk now rather than at some later compaction (a deleted run).
absl::Status CompactRange(rocksdb::DB* db, const std::string& begin, const std::string& end) {
  const rocksdb::Slice b = si::ToSlice(begin);
  const rocksdb::Slice e = si::ToSlice(end);
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // background compactions go on meanwhile
  return FromRocksDbStatus(db->CompactRange(options, &b, &e),
                           absl::StrCat("compacting ", begin, " .. ", end));
}

absl::Status BatchDeletePrefix(rocksdb::WriteBatch& batch, absl::string_view prefix) {
  return FromRocksDbStatus(
      batch.DeleteRange(si::ToSlice(prefix), si::ToSlice(si::PrefixEnd(prefix))),
      absl::StrCat("batching the deletion of ", prefix));
}

}  // namespace

absl::StatusOr<std::vector<RunRecord>> CoordinatorState::ListReadableRuns(
    std::vector<UnreadableRun>* unreadable) {
  si::ReadSnapshot snapshot(db_.get());
  std::vector<RunRecord> runs;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), snapshot.options(), si::kRunOrderPrefix,
      [&](absl::string_view key, absl::string_view run_id) -> absl::Status {
        std::string value;
        absl::StatusOr<bool> found =
            si::ReadKey(db_.get(), snapshot.options(), si::RunKey(run_id), &value);
        TESSERA_RETURN_IF_ERROR(found.status());  // the database itself fails
        RunRecord run;
        absl::Status parsed =
            *found ? si::ParseRecord(value, absl::StrCat("run ", run_id), &run)
                   : absl::DataLossError(absl::StrCat(key, " names missing run ", run_id));
        if (parsed.ok() && run.run_id() != run_id) {
          parsed = absl::DataLossError(absl::StrCat("run ", run_id, " holds the record of run ",
                                                    run.run_id()));
        }
        if (!parsed.ok()) {
          if (unreadable != nullptr) unreadable->push_back({std::string(run_id), parsed});
          return absl::OkStatus();
        }
        runs.push_back(std::move(run));
        return absl::OkStatus();
      }));
  return runs;
}

absl::StatusOr<std::vector<uint32_t>> CoordinatorState::ListModelRounds(
    absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  si::ReadSnapshot snapshot(db_.get());
  const std::string prefix = si::RunModelsPrefix(run_id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(snapshot.options()));
  std::vector<uint32_t> rounds;
  // Each model's manifest ("m") sorts before its tensors ("t/"): seeking from round to
  // round lands on manifests only and never reads tensor data.
  for (it->Seek(si::ToSlice(prefix)); it->Valid();) {
    uint32_t round = 0;
    if (!si::ParseModelRound(run_id, si::ToView(it->key()), &round)) break;
    rounds.push_back(round);
    if (round == si::kMaxRound) break;
    it->Seek(si::ToSlice(si::ModelPrefix(run_id, round + 1)));
  }
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(it->status(), "listing stored models"));
  return rounds;
}

absl::Status CoordinatorState::DeleteModels(absl::string_view run_id,
                                            const std::vector<uint32_t>& rounds) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  if (rounds.empty()) return absl::OkStatus();
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(absl::StrCat("deleting models of run ", run_id)));
  rocksdb::WriteBatch batch;
  {
    TESSERA_ASSIGN_OR_RETURN(
        std::unique_ptr<Lanes> lanes,
        Lanes::Take(this, {RunLane(run_id)}, absl::StrCat("deleting models of run ", run_id)));
    std::string value;
    TESSERA_ASSIGN_OR_RETURN(
        bool found, si::ReadKey(db_.get(), rocksdb::ReadOptions(), si::RunKey(run_id), &value));
    if (!found) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
    RunRecord stored;
    TESSERA_RETURN_IF_ERROR(si::ParseRecord(value, absl::StrCat("run ", run_id), &stored));
    for (uint32_t round : rounds) {
      TESSERA_RETURN_IF_ERROR(si::ValidateRoundAttempt(round, 0));
      if (round == stored.completed_rounds()) {
        return absl::FailedPreconditionError(
            absl::StrCat("round ", round, " holds the current model of run ", run_id,
                         "; it is never deleted"));
      }
      TESSERA_RETURN_IF_ERROR(BatchDeletePrefix(batch, si::ModelPrefix(run_id, round)));
    }
    TESSERA_RETURN_IF_ERROR(
        FromRocksDbStatus(db_->Write(si::SyncedWrite(), &batch),
                          absl::StrCat("deleting ", rounds.size(), " models of run ", run_id)));
  }
  // No compaction here: RocksDB's own compactions and blob garbage collection give the
  // space back as rounds go on (a synchronous compaction per commit cost up to seconds in a
  // database of 1,000 runs; tools/bench/startup_bench.cc measures the disk this leaves).
  return absl::OkStatus();
}

absl::Status CoordinatorState::DeleteRun(const DeletedRunRecord& tombstone) {
  const std::string& run_id = tombstone.run_id();
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(absl::StrCat("deleting run ", run_id)));
  TESSERA_ASSIGN_OR_RETURN(std::string tombstone_value,
                           si::SerializeRecord(tombstone, absl::StrCat("deleted run ", run_id)));
  {
    TESSERA_ASSIGN_OR_RETURN(
        std::unique_ptr<Lanes> lanes,
        Lanes::Take(this, {RunLane(run_id)}, absl::StrCat("deleting run ", run_id)));
    std::string ignored;
    TESSERA_ASSIGN_OR_RETURN(
        bool found,
        si::ReadKey(db_.get(), rocksdb::ReadOptions(), si::RunKey(run_id), &ignored));
    if (!found) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
    rocksdb::WriteBatch batch;
    // The run order entry that names the run (one per run; a scan of small keys).
    TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
        db_.get(), rocksdb::ReadOptions(), si::kRunOrderPrefix,
        [&](absl::string_view key, absl::string_view value) -> absl::Status {
          if (value != run_id) return absl::OkStatus();
          return FromRocksDbStatus(batch.Delete(si::ToSlice(key)), "batching a run order key");
        }));
    TESSERA_RETURN_IF_ERROR(
        FromRocksDbStatus(batch.Delete(si::RunKey(run_id)), "batching a run deletion"));
    TESSERA_RETURN_IF_ERROR(
        FromRocksDbStatus(batch.Delete(si::ArtifactKey(run_id)), "batching a run deletion"));
    for (const std::string& prefix : {si::RoundPrefix(run_id), si::RunModelsPrefix(run_id),
                                      si::SecAggRunPrefix(run_id)}) {
      TESSERA_RETURN_IF_ERROR(BatchDeletePrefix(batch, prefix));
    }
    TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
        batch.Put(si::DeletedRunKey(run_id), tombstone_value), "batching a run deletion"));
    TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(db_->Write(si::SyncedWrite(), &batch),
                                              absl::StrCat("deleting run ", run_id)));
  }
  const std::string models = si::RunModelsPrefix(run_id);
  return CompactRange(db_.get(), models, si::PrefixEnd(models));
}

absl::StatusOr<std::optional<DeletedRunRecord>> CoordinatorState::GetDeletedRun(
    absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(bool found, si::ReadKey(db_.get(), rocksdb::ReadOptions(),
                                                   si::DeletedRunKey(run_id), &value));
  if (!found) return std::nullopt;
  DeletedRunRecord record;
  TESSERA_RETURN_IF_ERROR(
      si::ParseRecord(value, absl::StrCat("deleted run ", run_id), &record));
  return record;
}

}  // namespace coordinator
}  // namespace tessera
