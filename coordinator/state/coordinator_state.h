// File: coordinator_state.h
// The coordinator's durable state: runs, round history, the global model of
// every completed round, TorchScript artifacts and known clients, kept in
// RocksDB so that a restarted coordinator continues exactly where the last
// committed round left off. The key layout is described in
// docs/storage_format.md.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<CoordinatorState> state,
//                            CoordinatorState::Open("/var/lib/tessera/state"));
//   TESSERA_RETURN_IF_ERROR(state->CreateRun(run, initial_model,
//   /*artifact=*/""));
//   ...
//   run.set_completed_rounds(summary.round());
//   TESSERA_RETURN_IF_ERROR(state->CommitRound(run, summary, new_model));
#ifndef TESSERA_COORDINATOR_STATE_COORDINATOR_STATE_H_
#define TESSERA_COORDINATOR_STATE_COORDINATOR_STATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/base/no_io_mutex.h"
#include "core/model/tensor.h"
#include "tessera/storage/v1/records.pb.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/governance.pb.h"

namespace rocksdb {
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace tessera {
namespace coordinator {

// Durable coordinator state on RocksDB.
//
// Thread-safe: every method may be called concurrently. Writers of the same records
// are serialized so that the read-check-write of CreateRun, UpdateRun and
// CommitRound is atomic: each write holds the "lanes" of what it checks (its run,
// the ledger of its dataset, the audit chain) from its checks to the end of its
// durable write, so writes of one run form a sequence while other runs' writes and
// all reads proceed. The mutex that guards the lanes is never held across I/O; the
// write itself runs unlocked. Reads run against a consistent snapshot. Every write
// except PutClient is one synced WriteBatch, so a method that returned OK survives
// a process crash or power loss (coordinator_state_durability_test drops every
// unsynced byte to prove it). One process at a time can hold a database open
// (RocksDB's LOCK file).
//
// Every write method fails with INTERNAL, writing nothing, when the calling thread
// holds a NoIoMutex (a run's lock, core/base/no_io_mutex.h): status calls must not
// wait for a disk.
//
// Run ids and client names must be non-empty, at most 256 bytes, with no '/'
// and no control characters; otherwise INVALID_ARGUMENT. `has_artifact` of a
// RunRecord is owned by the store: CreateRun sets it from the artifact, later
// writes keep the stored value.
class CoordinatorState {
 public:
  // Opens or creates the database in `dir` (creating `dir` and its parents if
  // missing). Errors: UNAVAILABLE with the RocksDB message when the database
  // cannot be opened (e.g. "lock hold by another process"), DATA_LOSS if it is
  // corrupt, FAILED_PRECONDITION if it was written in an unknown format version
  // or is not a coordinator database.
  static absl::StatusOr<std::unique_ptr<CoordinatorState>> Open(
      const std::string& dir);
  // Test only: Open with RocksDB's file access going through `env` (a file system that
  // drops unsynced data at a simulated power loss). `env` must outlive the state.
  static absl::StatusOr<std::unique_ptr<CoordinatorState>> TEST_OpenWithEnv(
      const std::string& dir, rocksdb::Env* env);

  ~CoordinatorState();
  CoordinatorState(const CoordinatorState&) = delete;
  CoordinatorState& operator=(const CoordinatorState&) = delete;

  // Atomically stores the run, its round-0 global model and the optional
  // TorchScript `artifact` (empty = none). Errors: ALREADY_EXISTS if the run id
  // exists, INVALID_ARGUMENT for a bad run id, a non-zero completed_rounds or
  // an unstorable model.
  absl::Status CreateRun(const storage::v1::RunRecord& run,
                         const ArrayRecord& initial_model,
                         absl::string_view artifact);

  // NOT_FOUND "run X not found".
  absl::StatusOr<storage::v1::RunRecord> GetRun(absl::string_view run_id);
  // All runs in creation order.
  absl::StatusOr<std::vector<storage::v1::RunRecord>> ListRuns();

  // Replaces the stored run record (state, message, config...). Errors:
  // NOT_FOUND if absent; FAILED_PRECONDITION if run.completed_rounds() differs
  // from the stored value (only CommitRound advances it; this catches writes
  // from a stale copy).
  absl::Status UpdateRun(const storage::v1::RunRecord& run);

  // The atomic round commit: stores the round's summary, the global model after
  // that round (under round summary.round()) and `run`. REQUIRES:
  // run.completed_rounds() == summary.round() (else INVALID_ARGUMENT). Errors:
  // NOT_FOUND if the run is absent; FAILED_PRECONDITION unless summary.round()
  // is the stored completed_rounds + 1 (protects against double commits after a
  // restart); ALREADY_EXISTS if a summary with the same (round, attempt) is
  // stored.
  //
  // `charge`, when set, is the privacy ledger of the run's dataset with this
  // round's cost added; it is written in the same batch, so a round is never
  // stored without its privacy cost (or charged without being stored).
  // FAILED_PRECONDITION unless charge->rounds_charged() is the stored ledger's
  // + 1 (a stale ledger copy) or the budget and delta differ from the stored.
  absl::Status CommitRound(const storage::v1::RunRecord& run,
                           const wire::v1::RoundSummary& summary,
                           const ArrayRecord& model,
                           const storage::v1::PrivacyLedgerRecord* charge = nullptr);

  // Keeps a failed attempt of the round in progress for history. Errors:
  // NOT_FOUND if the run is absent; FAILED_PRECONDITION unless summary.round()
  // is the stored completed_rounds + 1; ALREADY_EXISTS if that (round, attempt)
  // is already stored.
  // `charge` as for CommitRound: for an attempt that may have released a
  // noised aggregate before failing.
  absl::Status RecordFailedAttempt(
      absl::string_view run_id, const wire::v1::RoundSummary& summary,
      const storage::v1::PrivacyLedgerRecord* charge = nullptr);

  // The "charge, then release" station (docs/privacy.md): stores `charge`, the
  // ledger of the run's dataset with the cost of attempt `attempt` of round
  // `round` added, together with the attempt's charge marker, in one synced
  // batch. Called before anything derived from the attempt's noised aggregate
  // leaves the coordinator. Idempotent per (run, round, attempt): when the
  // attempt is already charged nothing is written and OK is returned; the
  // charge that CommitRound and RecordFailedAttempt carry for an attempt is
  // skipped the same way, so an attempt is charged exactly once. Errors:
  // NOT_FOUND if the run is absent; FAILED_PRECONDITION unless `round` is the
  // stored completed_rounds + 1, or for a charge the ledger refuses (as for
  // CommitRound).
  absl::Status ChargeRelease(absl::string_view run_id, uint32_t round,
                             uint32_t attempt,
                             const storage::v1::PrivacyLedgerRecord& charge);
  // The charged releases of a run, in (round, attempt) order: what each charge
  // wrote to the ledger.
  struct ReleaseCharge {
    uint32_t round = 0;
    uint32_t attempt = 0;
    storage::v1::PrivacyLedgerRecord ledger;
  };
  absl::StatusOr<std::vector<ReleaseCharge>> ListReleaseCharges(
      absl::string_view run_id);

  // The privacy ledger of `dataset` (privacy_ledger_store.cc), nullopt when no
  // run has used the dataset yet. DATA_LOSS if the stored record does not parse.
  absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> GetLedger(
      absl::string_view dataset);
  // Every ledger, by dataset.
  absl::StatusOr<std::vector<storage::v1::PrivacyLedgerRecord>> ListLedgers();
  // The ledger of initial.dataset(): the stored one if it exists (whatever
  // `initial` says: the first run on a dataset fixes its budget), else
  // `initial`, stored now (synced).
  absl::StatusOr<storage::v1::PrivacyLedgerRecord> OpenLedger(
      const storage::v1::PrivacyLedgerRecord& initial);

  // Completed rounds and failed attempts in (round, attempt) order. NOT_FOUND
  // if the run is absent; DATA_LOSS if a stored summary does not parse.
  absl::StatusOr<std::vector<wire::v1::RoundSummary>> ListRounds(
      absl::string_view run_id);

  // The global model after `round` (0 = the initial model). NOT_FOUND if there
  // is none; DATA_LOSS if the stored bytes fail validation or do not match the
  // manifest's digest.
  absl::StatusOr<ArrayRecord> LoadModel(absl::string_view run_id,
                                        uint32_t round);
  // NOT_FOUND if there is no model for `round`.
  absl::StatusOr<storage::v1::ModelManifest> GetModelManifest(
      absl::string_view run_id, uint32_t round);

  // The TorchScript program given to CreateRun. NOT_FOUND if the run is absent
  // or has none.
  absl::StatusOr<std::string> LoadArtifact(absl::string_view run_id);

  // ---- Run lifecycle (run_lifecycle_store.cc; docs/operations.md, "Runs and retention") ----
  // A run whose stored record cannot be read, and why.
  struct UnreadableRun {
    std::string run_id;
    absl::Status error;
  };
  // ListRuns that never fails for one bad run: a record that is missing or does not parse
  // is appended to `unreadable` and skipped. Errors only when the database cannot be read.
  absl::StatusOr<std::vector<storage::v1::RunRecord>> ListReadableRuns(
      std::vector<UnreadableRun>* unreadable);
  // The rounds of the run that have a stored model, ascending (reads no tensor data).
  absl::StatusOr<std::vector<uint32_t>> ListModelRounds(absl::string_view run_id);
  // Deletes the models of `rounds` in one synced batch; RocksDB's compactions give the disk
  // space back as writes go on (DeleteRun compacts at once). FAILED_PRECONDITION for the run's
  // current model
  // (completed_rounds): a run always keeps it. Rounds without a model are ignored.
  absl::Status DeleteModels(absl::string_view run_id, const std::vector<uint32_t>& rounds);
  // Deletes tombstone.run_id()'s record, run order entry, round summaries, models, program
  // and secure aggregation traces, and stores `tombstone`, in one synced batch. Keeps the
  // run's provenance, privacy charges and ledgers, and the audit log. NOT_FOUND if no run
  // record exists (whether or not it parses).
  absl::Status DeleteRun(const storage::v1::DeletedRunRecord& tombstone);
  // What stays of a deleted run; nullopt when `run_id` was never deleted.
  absl::StatusOr<std::optional<storage::v1::DeletedRunRecord>> GetDeletedRun(
      absl::string_view run_id);

  // Inserts or replaces a client by name. Not synced: it survives a process
  // crash but the last updates may be lost on power loss (it is refreshed on
  // every check-in).
  absl::Status PutClient(const storage::v1::ClientRecord& client);
  // All clients ordered by name.
  absl::StatusOr<std::vector<storage::v1::ClientRecord>> ListClients();

  // Stores a secure aggregation session's trace (one synced write, so it is durable before
  // the coordinator sends the messages of the phase it records). Errors: INVALID_ARGUMENT
  // for a bad run or session id.
  absl::Status PutSecAggSession(const storage::v1::SecAggSessionRecord& session);
  // All session records, by run id then session id.
  absl::StatusOr<std::vector<storage::v1::SecAggSessionRecord>> ListSecAggSessions();

  // The provenance of a run (provenance_store.cc): inserts or replaces it, one synced put.
  // Errors: INVALID_ARGUMENT for a bad run id.
  absl::Status PutProvenance(const wire::v1::RunProvenance& provenance);
  // nullopt when none is stored; DATA_LOSS if the stored record does not parse.
  absl::StatusOr<std::optional<wire::v1::RunProvenance>> GetProvenance(
      absl::string_view run_id);

  // The audit log (audit_store.cc, docs/governance.md). Seals `entry` as the successor of
  // the last stored entry (seq = last + 1, prev_hash, hash; see
  // privacy/provenance/audit_chain.h), overwriting whatever seq, prev_hash and hash it had,
  // stores it with one synced put and returns it. Appends are serialized with the other
  // writes, so seqs have no gaps. Errors: INVALID_ARGUMENT when a string field or details
  // key or value is not valid UTF-8; DATA_LOSS if the last stored entry does not parse.
  absl::StatusOr<wire::v1::AuditEntry> AppendAudit(wire::v1::AuditEntry entry);
  // Every entry in seq order. DATA_LOSS if one does not parse.
  absl::StatusOr<std::vector<wire::v1::AuditEntry>> ListAudit();
  // The entry with the highest seq; nullopt for an empty log. DATA_LOSS as ListAudit.
  absl::StatusOr<std::optional<wire::v1::AuditEntry>> LastAudit();

  // Test only: writes `value` under `key` verbatim (to simulate corruption).
  absl::Status TEST_PutRaw(absl::string_view key, absl::string_view value);
  // Test only: the value stored under `key` verbatim; NOT_FOUND when there is none.
  absl::StatusOr<std::string> TEST_GetRaw(absl::string_view key);
  // Test only: `hook` (null: none) runs in CommitRound right before its synced batch is
  // written, with the commit's lanes held and no mutex: a test blocks it to look at the
  // coordinator while a commit is on its way to disk.
  void TEST_SetBeforeCommitWrite(std::function<void()> hook);
  // Test only: every write that would charge a privacy ledger fails with
  // `error` (OK again: writes work), as a full or failing disk would.
  void TEST_FailLedgerCharges(absl::Status error);

  // Bytes in RocksDB's memtables now (rocksdb.cur-size-all-mem-tables): what the state holds
  // in memory beside its caches. Writing a model leaves none of its tensors there
  // (model_store.h).
  uint64_t MemtableBytes() const;

 private:
  CoordinatorState(std::unique_ptr<rocksdb::DB> db, uint64_t next_run_seq);
  static absl::StatusOr<std::unique_ptr<CoordinatorState>> OpenImpl(const std::string& dir,
                                                                    rocksdb::Env* env);

  // Holds write lanes (RunLane, LedgerLane, kAuditLane) from construction to destruction:
  // waits until no other writer holds any of them, then takes them all at once (so two
  // writers never wait for each other in a cycle). Fails with INTERNAL, taking nothing,
  // when the calling thread holds a NoIoMutex (see the class comment).
  class Lanes;
  static std::string RunLane(absl::string_view run_id);
  static std::string LedgerLane(absl::string_view dataset);
  static constexpr absl::string_view kAuditLane = "audit";

  // Adds `charge` and the charge marker of (run_id, round, attempt) to `batch`
  // after checking it against the stored ledger; adds nothing when that attempt
  // is already charged. REQUIRES: the caller holds the lanes of the run and of
  // charge.dataset().
  absl::Status BatchLedgerCharge(absl::string_view run_id, uint32_t round,
                                 uint32_t attempt,
                                 const storage::v1::PrivacyLedgerRecord& charge,
                                 rocksdb::WriteBatch* batch) ABSL_LOCKS_EXCLUDED(write_mu_);

  const std::unique_ptr<rocksdb::DB> db_;
  // Guards the bookkeeping of writers (held lanes, the next run sequence number, the
  // cached audit head); held for microseconds, never across a read or write of the disk.
  NoIoMutex write_mu_;
  std::vector<std::string> held_lanes_ ABSL_GUARDED_BY(write_mu_);
  uint64_t next_run_seq_ ABSL_GUARDED_BY(write_mu_);
  // The last audit entry, read from the database by the first AppendAudit after Open;
  // changed only by the holder of kAuditLane, after its entry is durable.
  bool last_audit_loaded_ ABSL_GUARDED_BY(write_mu_) = false;
  std::optional<wire::v1::AuditEntry> last_audit_ ABSL_GUARDED_BY(write_mu_);
  absl::Status fail_ledger_charges_ ABSL_GUARDED_BY(write_mu_);
  std::function<void()> before_commit_write_ ABSL_GUARDED_BY(write_mu_);
};

}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_COORDINATOR_STATE_H_
