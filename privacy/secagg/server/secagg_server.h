// File: secagg_server.h
// The server of the secure aggregation protocol (docs/secagg.md, "Protocol"): a facade that
// holds the current phase state (server_state.h), judges each client message and advances
// the phase when the caller says it is over (all alive clients answered, or a deadline
// passed). Transport-agnostic: the caller delivers what TakeOutgoing returns.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto server, SecAggServer::Create(std::move(config)));
//   server->HandleMessage(from, msg);  // per client message; a non-OK status dropped `from`
//   if (server->AllResponded() || deadline_passed) server->AdvancePhase();
//   for (auto& [to, m] : server->TakeOutgoing()) Send(to, m);
//   ... after UNMASKING: TESSERA_ASSIGN_OR_RETURN(SecAggResult r, server->Result());
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SECAGG_SERVER_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SECAGG_SERVER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "privacy/secagg/server/server_state.h"
#include "tessera/secagg/v1/secagg.pb.h"

namespace tessera::secagg {

struct SecAggResult {
  std::vector<QuantizedTensor> sums;  // exact sum mod 2^b of the survivors' inputs
  uint64_t weight_sum = 0;            // sum mod 2^b of the survivors' quantized weights
  std::vector<uint32_t> survivors;    // whose inputs are in the sum
};

// For `tessera run status`: where the round is and who dropped where.
struct SecAggStatus {
  v1::Phase phase = v1::PHASE_UNSPECIFIED;  // the phase collecting; UNSPECIFIED when over
  std::string state;                        // state name
  std::array<PhaseStats, 5> phases;         // ADVERTISE_KEYS .. UNMASKING
  uint32_t alive = 0;
  uint32_t degree_k = 0, threshold_t = 0;   // once the roster is out
  uint32_t survivors = 0;                   // inputs in the sum, once completed
  std::optional<ServerAbortReason> abort_reason;
  absl::Status abort_status;
};

// Thread-safe. Not copyable or movable.
class SecAggServer {
 public:
  // Errors: INVALID_ARGUMENT for an empty session id, a modulus_mask not 2^b - 1, no
  // tensors, a missing verify function; and the errors of DeriveParams for the configured
  // threat model.
  static absl::StatusOr<std::unique_ptr<SecAggServer>> Create(ServerConfig config);

  SecAggServer(const SecAggServer&) = delete;
  SecAggServer& operator=(const SecAggServer&) = delete;

  // Judges message `msg` from client `from` (its transport-authenticated index). OK: the
  // message is accepted. Otherwise `from` is dropped from the round (unless it was not in
  // it) and the status says why: NOT_FOUND (index outside 0..n-1), FAILED_PRECONDITION
  // (client not in the round any more, message of a later phase, round over),
  // INVALID_ARGUMENT (wrong session or round, malformed content), PERMISSION_DENIED (bad
  // signature), ALREADY_EXISTS (a second message for this or an earlier phase).
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg);

  // Client `index` leaves the round of its own accord (it will not take part, e.g. its
  // privacy budget cannot pay for the round): it is dropped as if its message of the
  // current phase had been rejected for `why` (listed in that phase's `rejected`), so the
  // phase no longer waits for it. Errors: NOT_FOUND (index outside 0..n-1),
  // FAILED_PRECONDITION (the round is over, or the client is no longer in it).
  absl::Status Withdraw(uint32_t index, const absl::Status& why);

  // Closes the current phase: clients that did not answer are dropped for it. Returns OK,
  // or the ABORTED status of the round if fewer than t clients (or shares) remain.
  // Errors: FAILED_PRECONDITION if the round is already over.
  absl::Status AdvancePhase();

  // True when every client still in the round has answered the current phase.
  bool AllResponded() const;

  // Clients still in the round that have not answered the current phase (ascending).
  std::vector<uint32_t> Pending() const;

  // Messages to deliver, as (client index, message); clears the outbox.
  std::vector<std::pair<uint32_t, v1::ServerToClient>> TakeOutgoing();

  SecAggStatus Status() const;

  // The unmasked sums. Errors: FAILED_PRECONDITION before completion; the abort status.
  absl::StatusOr<SecAggResult> Result() const;

 private:
  explicit SecAggServer(std::unique_ptr<ServerState> state) : state_(std::move(state)) {}

  mutable absl::Mutex mu_;
  std::unique_ptr<ServerState> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SECAGG_SERVER_H_
