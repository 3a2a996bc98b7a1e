// File: secagg_round.h
// One secure aggregation session of a training round (docs/secagg.md, "In a round"): the
// SecAggServer state machine, the clients' calls waiting for their phase to close, and the
// durable trace of the session in RocksDB. gRPC-free: the Fleet service hands each
// SecAggExchange call in as a message and a reply callback.
//
// The driver thread runs the phases:
//   while (!round->AllResponded() && before deadline) round->WaitForSubmit(...);
//   TESSERA_RETURN_IF_ERROR(round->Advance());   // persists, then answers the clients
// and, after the fourth phase, takes Result().
#ifndef TESSERA_COORDINATOR_ROUND_SECAGG_ROUND_H_
#define TESSERA_COORDINATOR_ROUND_SECAGG_ROUND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/base/no_io_mutex.h"
#include "privacy/secagg/server/secagg_server.h"
#include "tessera/storage/v1/records.pb.h"
#include "tessera/wire/v1/control.pb.h"

namespace tessera::coordinator {

class SecAggRound {
 public:
  // Called exactly once per accepted message: with the coordinator's next message for that
  // client, or with an error if the round ended without one.
  using Reply = std::function<void(absl::StatusOr<secagg::v1::ServerToClient>)>;
  // Durably stores the session trace; called before each phase's messages go out.
  using Persist = std::function<absl::Status(const storage::v1::SecAggSessionRecord&)>;

  struct Options {
    std::string run_id;
    uint32_t round = 0;
    uint32_t attempt = 0;
    std::string session_id;
    std::vector<std::string> clients;  // client names by index
    secagg::ThreatModel threat_model;  // num_clients = clients.size()
    uint64_t modulus_mask = 0;
    std::vector<secagg::TensorSpec> tensors;
    secagg::VerifyFn verify;
    uint32_t min_survivors = 0;  // see secagg::ServerConfig::min_survivors
    Persist persist;
  };

  // Errors: those of SecAggServer::Create; the first Persist error.
  static absl::StatusOr<std::unique_ptr<SecAggRound>> Create(Options options);
  ~SecAggRound();  // answers waiting clients with UNAVAILABLE if Cancel was not called

  // Judges `msg` from client `index`. OK: `reply` will be called when the phase closes.
  // Otherwise the client is dropped from the round (see SecAggServer::HandleMessage) and
  // `reply` is never called; FAILED_PRECONDITION also when the session has ended.
  // A retransmission (the same bytes as the client's accepted message, while its phase is
  // still open) takes over the waiting call; the old call gets CANCELLED. Once the phase
  // has closed, the same bytes are a replay: rejected, and the client is dropped.
  absl::Status Submit(uint32_t index, const secagg::v1::ClientToServer& msg, Reply reply);

  // Client `index` leaves the round (it refused its task: record-level DP, record_privacy.h):
  // dropped as if its message of the current phase had been rejected for `why`, so the
  // phase stops waiting for it (and WaitForSubmit wakes). A call of it still waiting is
  // answered with ABORTED. Errors: those of SecAggServer::Withdraw; FAILED_PRECONDITION
  // when the session has ended.
  absl::Status Withdraw(uint32_t index, const absl::Status& why);

  // True when every client still in the round answered the current phase.
  bool AllResponded() const;
  // Names of the clients still in the round that have not answered the current phase.
  std::vector<std::string> Pending() const;
  // Waits until a message is accepted or `until`.
  void WaitForSubmit(absl::Time until);

  // Closes the current phase: stores the trace, then answers the waiting clients. Returns
  // the ABORTED status when the round aborted (too few clients or shares), or INTERNAL when
  // the trace cannot be stored (the session is then aborted).
  absl::Status Advance();
  // True once the session completed or aborted.
  bool Done() const;
  // Ends a session that is not done: waiting clients get `why`; the trace says ABORTED.
  void Cancel(const absl::Status& why);

  absl::StatusOr<secagg::SecAggResult> Result() const;
  wire::v1::SecAggRoundStatus Status() const;
  const std::vector<std::string>& clients() const { return options_.clients; }

 private:
  SecAggRound(Options options, std::unique_ptr<secagg::SecAggServer> server)
      : options_(std::move(options)), server_(std::move(server)) {}
  // Replies to run once mu_ is released (each is a gRPC completion: never under mu_).
  using Answers = std::vector<std::pair<Reply, absl::StatusOr<secagg::v1::ServerToClient>>>;

  wire::v1::SecAggRoundStatus StatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The trace as it is now (stored by Store, after mu_ is released).
  storage::v1::SecAggSessionRecord RecordLocked(storage::v1::SecAggSessionRecord::State state)
      const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Store(const storage::v1::SecAggSessionRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(persist_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves every waiting call into `answers` with `why`.
  void TakeWaitingLocked(const absl::Status& why, Answers& answers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the replies; REQUIRES: no NoIoMutex held (checked: a violation aborts).
  static void Answer(Answers answers);

  const Options options_;
  const std::unique_ptr<secagg::SecAggServer> server_;  // thread-safe itself

  // Orders the trace's writes: held by Advance and Cancel (and Create) from building a
  // record to the end of its durable write, so a later state is never overwritten by an
  // earlier one. Submit and the status calls never take it.
  absl::Mutex persist_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Guards the session's in-memory state; never held across the trace's fsync or a reply.
  mutable NoIoMutex mu_;
  std::map<uint32_t, Reply> waiting_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::string> last_digest_ ABSL_GUARDED_BY(mu_);  // SHA-256, by client
  uint64_t submits_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  std::string cancelled_phase_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> unmask_survivors_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> unmask_dropped_ ABSL_GUARDED_BY(mu_);
};

// INVALID_ARGUMENT starting with `what` when a masked input of `values` values of `bits`
// bits in `tensors` tensors would not fit `max_message_bytes`.
absl::Status CheckMaskedInputSize(absl::string_view what, uint64_t values, uint32_t bits,
                                  size_t tensors, uint64_t max_message_bytes);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_SECAGG_ROUND_H_
