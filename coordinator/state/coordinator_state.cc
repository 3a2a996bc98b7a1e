// CoordinatorState on RocksDB. Key layout (docs/storage_format.md has the
// full description; numbers are zero-padded so byte order is numeric order):
//
//   meta/format_version                 "2" (raw), checked on Open ("1" upgraded)
//   run/<id>                            storage::v1::RunRecord
//   runorder/<seq %020u>                run id (raw), creation order
//   round/<id>/<round %08u>/<att %04u>  wire::v1::RoundSummary
//   model/<id>/<round %08u>/m           storage::v1::ModelManifest
//   model/<id>/<round %08u>/t/<%06u>    storage::v1::StoredTensor (or its piece 0)
//   model/<id>/<round %08u>/t/<%06u>/<%06u>  piece 1.. of a tensor over 1 MiB (raw)
//   artifact/<id>                       TorchScript bytes (raw), optional
//   client/<name>                       storage::v1::ClientRecord
//
// Ids contain no '/', so "<prefix>/<id>/" never matches a longer id. Round 0
// is the initial model. A model and the run record that points at it are
// always written in one synced batch.
//
// Writes: a method takes the lanes of the records it checks (Lanes), then reads,
// checks and builds its batch, writes it (synced) and releases the lanes. write_mu_
// guards only the lane bookkeeping, so no thread waits on it for a disk.
#include "coordinator/state/coordinator_state.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/state/db_access.h"
#include "coordinator/state/model_store.h"
#include "coordinator/state/record_codec.h"
#include "coordinator/state/rocksdb_status.h"
#include "coordinator/state/state_lanes.h"
#include "coordinator/state/state_limits.h"
#include "coordinator/state/storage_keys.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera {
namespace coordinator {
namespace {

using state_internal::FromRocksDbStatus;
using storage::v1::ClientRecord;
using storage::v1::ModelManifest;
using storage::v1::RunRecord;
using wire::v1::RoundSummary;
namespace si = state_internal;

absl::StatusOr<RunRecord> ReadRun(rocksdb::DB* db,
                                  const rocksdb::ReadOptions& options,
                                  absl::string_view run_id) {
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(
      bool found, si::ReadKey(db, options, si::RunKey(run_id), &value));
  if (!found)
    return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  RunRecord run;
  TESSERA_RETURN_IF_ERROR(
      si::ParseRecord(value, absl::StrCat("run ", run_id), &run));
  return run;
}

absl::Status CheckNextRound(const RunRecord& stored, uint32_t round) {
  if (round != stored.completed_rounds() + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", stored.run_id(), " has completed ", stored.completed_rounds(),
        " rounds; round ", round, " is not the next one"));
  }
  return absl::OkStatus();
}

absl::Status CheckNoSummary(rocksdb::DB* db, absl::string_view run_id,
                            uint32_t round, uint32_t attempt) {
  std::string ignored;
  TESSERA_ASSIGN_OR_RETURN(
      bool found, si::ReadKey(db, rocksdb::ReadOptions(),
                              si::RoundKey(run_id, round, attempt), &ignored));
  if (found) {
    return absl::AlreadyExistsError(absl::StrCat("run ", run_id, " round ",
                                                 round, " attempt ", attempt,
                                                 " is already stored"));
  }
  return absl::OkStatus();
}

absl::Status CheckFormatVersion(rocksdb::DB* db, const std::string& dir) {
  std::string version;
  TESSERA_ASSIGN_OR_RETURN(
      bool found,
      si::ReadKey(db, rocksdb::ReadOptions(), si::kFormatVersionKey, &version));
  if (found) {
    if (version == si::kFormatVersion) return absl::OkStatus();
    if (version == si::kFormatVersionV1) {
      // Version 2 reads version 1's layout as it is (no tensor in pieces); from now on this
      // database may hold pieces, which a version-1 build must refuse rather than misread.
      return FromRocksDbStatus(
          db->Put(si::SyncedWrite(), si::ToSlice(si::kFormatVersionKey),
                  si::ToSlice(si::kFormatVersion)),
          "upgrading the format version");
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "coordinator state in ", dir, " has format version \"", version,
        "\"; this build reads version ", si::kFormatVersion));
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  if (it->Valid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " holds a RocksDB database without ", si::kFormatVersionKey,
        "; it is not a Tessera coordinator state"));
  }
  TESSERA_RETURN_IF_ERROR(
      FromRocksDbStatus(it->status(), "scanning a new database"));
  return FromRocksDbStatus(
      db->Put(si::SyncedWrite(), si::ToSlice(si::kFormatVersionKey),
              si::ToSlice(si::kFormatVersion)),
      "writing the format version");
}

// The sequence number after the last runorder key.
absl::StatusOr<uint64_t> NextRunSeq(rocksdb::DB* db) {
  std::string past_end(si::kRunOrderPrefix);
  past_end.back() = static_cast<char>(past_end.back() + 1);
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(past_end);
  uint64_t seq = 0;
  if (it->Valid() && si::ParseRunOrderKey(si::ToView(it->key()), &seq))
    return seq + 1;
  TESSERA_RETURN_IF_ERROR(
      FromRocksDbStatus(it->status(), "scanning the run order"));
  return 1;
}

}  // namespace

std::string CoordinatorState::RunLane(absl::string_view run_id) {
  return absl::StrCat("run/", run_id);
}

std::string CoordinatorState::LedgerLane(absl::string_view dataset) {
  return absl::StrCat("ledger/", dataset);
}

absl::StatusOr<std::unique_ptr<CoordinatorState>> CoordinatorState::Open(
    const std::string& dir) {
  return OpenImpl(dir, nullptr);
}

absl::StatusOr<std::unique_ptr<CoordinatorState>> CoordinatorState::TEST_OpenWithEnv(
    const std::string& dir, rocksdb::Env* env) {
  return OpenImpl(dir, env);
}

uint64_t CoordinatorState::MemtableBytes() const {
  uint64_t bytes = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes);
  return bytes;
}

absl::StatusOr<std::unique_ptr<CoordinatorState>> CoordinatorState::OpenImpl(
    const std::string& dir, rocksdb::Env* env) {
  rocksdb::Options options;
  if (env != nullptr) options.env = env;
  options.create_if_missing = true;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  options.keep_log_file_num = 4;
  options.max_open_files = kStateMaxOpenFiles;
  // Model tensors are large and written once: keep them out of the LSM tree so
  // compactions do not rewrite them.
  // Memtables hold whole values until a flush moves them to blob files: small memtables
  // keep the coordinator's memory near the model size rather than 2 x 64 MiB above it.
  options.write_buffer_size = 8 << 20;
  options.max_write_buffer_number = 2;
  options.enable_blob_files = true;
  options.min_blob_size = 64 << 10;
  options.enable_blob_garbage_collection = true;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("opening coordinator state ", dir,
                     ": cannot create it: ", ec.message()));
  }
  rocksdb::DB* raw = nullptr;
  TESSERA_RETURN_IF_ERROR(
      FromRocksDbStatus(rocksdb::DB::Open(options, dir, &raw),
                        absl::StrCat("opening coordinator state ", dir)));
  std::unique_ptr<rocksdb::DB> db(raw);
  TESSERA_RETURN_IF_ERROR(CheckFormatVersion(db.get(), dir));
  TESSERA_ASSIGN_OR_RETURN(uint64_t next_run_seq, NextRunSeq(db.get()));
  return std::unique_ptr<CoordinatorState>(
      new CoordinatorState(std::move(db), next_run_seq));
}

CoordinatorState::CoordinatorState(std::unique_ptr<rocksdb::DB> db,
                                   uint64_t next_run_seq)
    : db_(std::move(db)), next_run_seq_(next_run_seq) {}

CoordinatorState::~CoordinatorState() = default;

absl::Status CoordinatorState::CreateRun(const RunRecord& run,
                                         const ArrayRecord& initial_model,
                                         absl::string_view artifact) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run.run_id()));
  if (run.completed_rounds() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("new run ", run.run_id(),
                                                   " has completed_rounds ",
                                                   run.completed_rounds()));
  }
  RunRecord stored = run;
  stored.set_has_artifact(!artifact.empty());
  TESSERA_ASSIGN_OR_RETURN(
      std::string run_value,
      si::SerializeRecord(stored, absl::StrCat("run ", run.run_id())));
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(initial_model));
  rocksdb::WriteBatch batch;
  if (!artifact.empty()) {
    TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
        batch.Put(si::ArtifactKey(run.run_id()), si::ToSlice(artifact)),
        "batching an artifact"));
  }
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      batch.Put(si::RunKey(run.run_id()), run_value), "batching a run"));

  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, {RunLane(run.run_id())}, absl::StrCat("creating run ", run.run_id())));
  std::string ignored;
  TESSERA_ASSIGN_OR_RETURN(bool exists,
                           si::ReadKey(db_.get(), rocksdb::ReadOptions(),
                                       si::RunKey(run.run_id()), &ignored));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("run ", run.run_id(), " already exists"));
  }
  // The run does not exist: its round-0 tensors may be written now, one at a time; the
  // manifest commits with the run record below.
  TESSERA_RETURN_IF_ERROR(si::WriteModelTensorsAndBatchManifest(
      db_.get(), run.run_id(), 0, initial_model, &batch));
  // A sequence number of a create that then fails is skipped: the order stays the
  // creation order.
  uint64_t seq;
  {
    NoIoMutexLock l(&write_mu_);
    seq = next_run_seq_++;
  }
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      batch.Put(si::RunOrderKey(seq), si::ToSlice(run.run_id())), "batching a run"));
  return FromRocksDbStatus(db_->Write(si::SyncedWrite(), &batch),
                           absl::StrCat("creating run ", run.run_id()));
}

absl::StatusOr<RunRecord> CoordinatorState::GetRun(absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  return ReadRun(db_.get(), rocksdb::ReadOptions(), run_id);
}

absl::StatusOr<std::vector<RunRecord>> CoordinatorState::ListRuns() {
  si::ReadSnapshot snapshot(db_.get());
  std::vector<RunRecord> runs;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), snapshot.options(), si::kRunOrderPrefix,
      [&](absl::string_view key, absl::string_view run_id) -> absl::Status {
        absl::StatusOr<RunRecord> run =
            ReadRun(db_.get(), snapshot.options(), run_id);
        if (absl::IsNotFound(run.status())) {
          return absl::DataLossError(
              absl::StrCat(key, " names missing run ", run_id));
        }
        TESSERA_RETURN_IF_ERROR(run.status());
        runs.push_back(*std::move(run));
        return absl::OkStatus();
      }));
  return runs;
}

absl::Status CoordinatorState::UpdateRun(const RunRecord& run) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run.run_id()));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, {RunLane(run.run_id())}, absl::StrCat("updating run ", run.run_id())));
  TESSERA_ASSIGN_OR_RETURN(
      RunRecord stored,
      ReadRun(db_.get(), rocksdb::ReadOptions(), run.run_id()));
  if (run.completed_rounds() != stored.completed_rounds()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "UpdateRun of run ", run.run_id(), " changes completed_rounds from ",
        stored.completed_rounds(), " to ", run.completed_rounds(),
        "; only CommitRound may"));
  }
  RunRecord updated = run;
  updated.set_has_artifact(stored.has_artifact());
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(updated, absl::StrCat("run ", run.run_id())));
  return FromRocksDbStatus(
      db_->Put(si::SyncedWrite(), si::RunKey(run.run_id()), value),
      absl::StrCat("updating run ", run.run_id()));
}

absl::Status CoordinatorState::CommitRound(const RunRecord& run,
                                           const RoundSummary& summary,
                                           const ArrayRecord& model,
                                           const storage::v1::PrivacyLedgerRecord* charge) {
  const std::string& run_id = run.run_id();
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  TESSERA_RETURN_IF_ERROR(
      si::ValidateRoundAttempt(summary.round(), summary.attempt()));
  if (run.completed_rounds() != summary.round()) {
    return absl::InvalidArgumentError(
        absl::StrCat("committing round ", summary.round(), " of run ", run_id,
                     " with completed_rounds ", run.completed_rounds()));
  }
  rocksdb::WriteBatch batch;
  TESSERA_ASSIGN_OR_RETURN(std::string summary_value,
                           si::SerializeRecord(summary, "round summary"));
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      batch.Put(si::RoundKey(run_id, summary.round(), summary.attempt()),
                summary_value),
      "batching a round summary"));

  std::vector<std::string> lane_names = {RunLane(run_id)};
  if (charge != nullptr) lane_names.push_back(LedgerLane(charge->dataset()));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, std::move(lane_names),
                  absl::StrCat("committing round ", summary.round(), " of run ", run_id)));
  TESSERA_ASSIGN_OR_RETURN(RunRecord stored,
                           ReadRun(db_.get(), rocksdb::ReadOptions(), run_id));
  TESSERA_RETURN_IF_ERROR(CheckNextRound(stored, summary.round()));
  TESSERA_RETURN_IF_ERROR(
      CheckNoSummary(db_.get(), run_id, summary.round(), summary.attempt()));
  if (charge != nullptr) {
    TESSERA_RETURN_IF_ERROR(
        BatchLedgerCharge(run_id, summary.round(), summary.attempt(), *charge, &batch));
  }
  // Checked above that the round is not committed: only now may its tensor keys be written.
  TESSERA_RETURN_IF_ERROR(si::WriteModelTensorsAndBatchManifest(
      db_.get(), run_id, summary.round(), model, &batch));
  RunRecord updated = run;
  updated.set_has_artifact(stored.has_artifact());
  TESSERA_ASSIGN_OR_RETURN(
      std::string run_value,
      si::SerializeRecord(updated, absl::StrCat("run ", run_id)));
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      batch.Put(si::RunKey(run_id), run_value), "batching a run"));
  std::function<void()> hook;
  {
    NoIoMutexLock l(&write_mu_);
    hook = before_commit_write_;
  }
  if (hook) hook();
  return FromRocksDbStatus(
      db_->Write(si::SyncedWrite(), &batch),
      absl::StrCat("committing round ", summary.round(), " of run ", run_id));
}

absl::Status CoordinatorState::RecordFailedAttempt(
    absl::string_view run_id, const RoundSummary& summary,
    const storage::v1::PrivacyLedgerRecord* charge) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  TESSERA_RETURN_IF_ERROR(
      si::ValidateRoundAttempt(summary.round(), summary.attempt()));
  TESSERA_ASSIGN_OR_RETURN(std::string value,
                           si::SerializeRecord(summary, "round summary"));
  std::vector<std::string> lane_names = {RunLane(run_id)};
  if (charge != nullptr) lane_names.push_back(LedgerLane(charge->dataset()));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, std::move(lane_names),
                  absl::StrCat("recording a failed attempt of run ", run_id)));
  TESSERA_ASSIGN_OR_RETURN(RunRecord stored,
                           ReadRun(db_.get(), rocksdb::ReadOptions(), run_id));
  TESSERA_RETURN_IF_ERROR(CheckNextRound(stored, summary.round()));
  TESSERA_RETURN_IF_ERROR(
      CheckNoSummary(db_.get(), run_id, summary.round(), summary.attempt()));
  rocksdb::WriteBatch batch;
  if (charge != nullptr) {
    TESSERA_RETURN_IF_ERROR(
        BatchLedgerCharge(run_id, summary.round(), summary.attempt(), *charge, &batch));
  }
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      batch.Put(si::RoundKey(run_id, summary.round(), summary.attempt()), value),
      "batching a failed attempt"));
  return FromRocksDbStatus(
      db_->Write(si::SyncedWrite(), &batch),
      absl::StrCat("recording a failed attempt of run ", run_id));
}

absl::Status CoordinatorState::ChargeRelease(
    absl::string_view run_id, uint32_t round, uint32_t attempt,
    const storage::v1::PrivacyLedgerRecord& charge) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  TESSERA_RETURN_IF_ERROR(si::ValidateRoundAttempt(round, attempt));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<Lanes> lanes,
      Lanes::Take(this, {RunLane(run_id), LedgerLane(charge.dataset())},
                  absl::StrCat("charging a release of run ", run_id)));
  TESSERA_ASSIGN_OR_RETURN(RunRecord stored,
                           ReadRun(db_.get(), rocksdb::ReadOptions(), run_id));
  TESSERA_RETURN_IF_ERROR(CheckNextRound(stored, round));
  rocksdb::WriteBatch batch;
  TESSERA_RETURN_IF_ERROR(BatchLedgerCharge(run_id, round, attempt, charge, &batch));
  if (batch.Count() == 0) return absl::OkStatus();  // already charged
  return FromRocksDbStatus(
      db_->Write(si::SyncedWrite(), &batch),
      absl::StrCat("charging the release of round ", round, " attempt ", attempt,
                   " of run ", run_id, " to the privacy ledger of ",
                   charge.dataset()));
}

absl::StatusOr<std::vector<RoundSummary>> CoordinatorState::ListRounds(
    absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  si::ReadSnapshot snapshot(db_.get());
  TESSERA_RETURN_IF_ERROR(
      ReadRun(db_.get(), snapshot.options(), run_id).status());
  std::vector<RoundSummary> rounds;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), snapshot.options(), si::RoundPrefix(run_id),
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        TESSERA_RETURN_IF_ERROR(
            si::ParseRecord(value, key, &rounds.emplace_back()));
        return absl::OkStatus();
      }));
  return rounds;
}

absl::StatusOr<ArrayRecord> CoordinatorState::LoadModel(
    absl::string_view run_id, uint32_t round) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  si::ReadSnapshot snapshot(db_.get());
  return si::ReadModel(db_.get(), snapshot.options(), run_id, round);
}

absl::StatusOr<ModelManifest> CoordinatorState::GetModelManifest(
    absl::string_view run_id, uint32_t round) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  return si::ReadModelManifest(db_.get(), rocksdb::ReadOptions(), run_id,
                               round);
}

absl::StatusOr<std::string> CoordinatorState::LoadArtifact(
    absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  si::ReadSnapshot snapshot(db_.get());
  TESSERA_RETURN_IF_ERROR(
      ReadRun(db_.get(), snapshot.options(), run_id).status());
  std::string artifact;
  TESSERA_ASSIGN_OR_RETURN(bool found,
                           si::ReadKey(db_.get(), snapshot.options(),
                                       si::ArtifactKey(run_id), &artifact));
  if (!found)
    return absl::NotFoundError(
        absl::StrCat("run ", run_id, " has no artifact"));
  return artifact;
}

absl::Status CoordinatorState::PutClient(const ClientRecord& client) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("client name", client.name()));
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(absl::StrCat("storing client ", client.name())));
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(client, absl::StrCat("client ", client.name())));
  return FromRocksDbStatus(
      db_->Put(rocksdb::WriteOptions(), si::ClientKey(client.name()), value),
      absl::StrCat("storing client ", client.name()));
}

absl::StatusOr<std::vector<ClientRecord>> CoordinatorState::ListClients() {
  std::vector<ClientRecord> clients;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), rocksdb::ReadOptions(), si::kClientPrefix,
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        return si::ParseRecord(value, key, &clients.emplace_back());
      }));
  return clients;
}

void CoordinatorState::TEST_SetBeforeCommitWrite(std::function<void()> hook) {
  NoIoMutexLock l(&write_mu_);
  before_commit_write_ = std::move(hook);
}

void CoordinatorState::TEST_FailLedgerCharges(absl::Status error) {
  NoIoMutexLock l(&write_mu_);
  fail_ledger_charges_ = std::move(error);
}

absl::Status CoordinatorState::TEST_PutRaw(absl::string_view key,
                                           absl::string_view value) {
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(absl::StrCat("writing ", key)));
  return FromRocksDbStatus(
      db_->Put(si::SyncedWrite(), si::ToSlice(key), si::ToSlice(value)),
      absl::StrCat("writing ", key));
}

absl::StatusOr<std::string> CoordinatorState::TEST_GetRaw(absl::string_view key) {
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(bool found, si::ReadKey(db_.get(), rocksdb::ReadOptions(), key, &value));
  if (!found) return absl::NotFoundError(absl::StrCat(key, " not found"));
  return value;
}

}  // namespace coordinator
}  // namespace tessera
