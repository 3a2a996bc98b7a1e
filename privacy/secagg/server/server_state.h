// File: server_state.h
// The server side of the secure aggregation protocol as a state machine: one class per
// phase collecting that phase's client messages (HandleMessage judges each one) and, when
// the phase closes (Advance), returning the next state as a value. ServerContext is what the
// states share: config, roster, graph, per-phase statistics and the outbox.
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_STATE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/protocol.h"
#include "privacy/secagg/secagg_params.h"
#include "tessera/secagg/v1/secagg.pb.h"

namespace tessera::secagg {

// Why the server aborted a round.
enum class ServerAbortReason {
  kTooFewClients,         // fewer clients (or neighbours of one) than the threshold t needs
  kTooFewShares,          // an owner's secret has fewer than t revealed (consistent) shares
  kReconstructionFailed,  // a reconstructed key does not match its advertised public key
  kInternal,              // a local failure
};

absl::string_view ServerAbortReasonName(ServerAbortReason reason);

struct ServerConfig {
  std::string session_id;
  uint32_t round = 0;
  ThreatModel threat_model;        // num_clients = n; clients are indexed 0..n-1
  uint64_t modulus_mask = 0;       // 2^b - 1
  std::vector<TensorSpec> tensors; // what every masked input must hold, in order
  VerifyFn verify;                 // clients' identity signatures
  // The fewest masked inputs whose sum may be unmasked (besides t): with fewer, the round
  // aborts at the close of MaskedInput, before the survivor set goes out. 0: only t.
  uint32_t min_survivors = 0;
};

// Who took part in one phase.
struct PhaseStats {
  uint32_t expected = 0;               // clients in the round when the phase began
  uint32_t responded = 0;              // valid messages accepted (by clients still in)
  std::vector<uint32_t> dropped;       // never responded before the phase closed
  std::vector<std::pair<uint32_t, absl::Status>> rejected;  // dropped for invalid messages
};

struct ServerContext {
  ServerConfig config;
  std::array<PhaseStats, 5> stats;  // by phase: ADVERTISE_KEYS .. UNMASKING
  std::set<uint32_t> alive;         // clients still in the round
  // From AdvertiseKeys.
  std::map<uint32_t, v1::RosterEntry> roster;
  uint32_t degree_k = 0, threshold_t = 0;
  std::map<uint32_t, std::vector<uint32_t>> graph;
  std::set<uint32_t> shared;     // U2: completed ShareKeys
  std::set<uint32_t> survivors;  // U3: sent masked input
  std::set<uint32_t> dropped;    // U2 \ U3
  // The running masked sum, by tensor; the last entry is the weight.
  std::vector<std::vector<uint64_t>> sum;
  std::vector<std::pair<uint32_t, v1::ServerToClient>> outbox;

  PhaseStats& Stats(v1::Phase phase) { return stats[static_cast<size_t>(phase) - 1]; }
  bool IsNeighbor(uint32_t a, uint32_t b) const;
  // Drops `client` from the round for `why` (an invalid message in `phase`).
  void Reject(uint32_t client, v1::Phase phase, const absl::Status& why);
  // Closes `phase`: alive clients not in `responded` are dropped as silent.
  void CloseSilent(v1::Phase phase, const std::set<uint32_t>& responded);
  // Queues `msg` for every alive client.
  void Broadcast(const v1::ServerToClient& msg);
};

class ServerState {
 public:
  explicit ServerState(std::unique_ptr<ServerContext> ctx) : ctx_(std::move(ctx)) {}
  virtual ~ServerState() = default;

  // Judges one message of this phase from alive client `from` (header and kind already
  // checked). A non-OK status means the message is invalid; the caller drops the client.
  virtual absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) = 0;
  // Closes the phase and returns the next state (ServerAbortedState when fewer than t
  // remain where t are needed).
  virtual std::unique_ptr<ServerState> Advance() = 0;

  virtual v1::Phase phase() const = 0;
  virtual absl::string_view Name() const = 0;
  virtual bool IsTerminal() const { return false; }
  virtual bool Responded(uint32_t client) const = 0;

  ServerContext& ctx() { return *ctx_; }
  const ServerContext& ctx() const { return *ctx_; }

 protected:
  // Aborts the round: notifies alive clients and returns a ServerAbortedState.
  std::unique_ptr<ServerState> Abort(ServerAbortReason reason, absl::string_view message);

  std::unique_ptr<ServerContext> ctx_;
};

// The round is over: `sums` holds the exact modular sum of the survivors' inputs.
class ServerCompletedState : public ServerState {
 public:
  explicit ServerCompletedState(std::unique_ptr<ServerContext> ctx) : ServerState(std::move(ctx)) {}
  absl::Status HandleMessage(uint32_t, const v1::ClientToServer&) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::PHASE_UNSPECIFIED; }
  absl::string_view Name() const override { return "Completed"; }
  bool IsTerminal() const override { return true; }
  bool Responded(uint32_t) const override { return false; }
};

class ServerAbortedState : public ServerState {
 public:
  ServerAbortedState(std::unique_ptr<ServerContext> ctx, ServerAbortReason reason,
                     absl::string_view message);
  absl::Status HandleMessage(uint32_t, const v1::ClientToServer&) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::PHASE_UNSPECIFIED; }
  absl::string_view Name() const override { return "Aborted"; }
  bool IsTerminal() const override { return true; }
  bool Responded(uint32_t) const override { return false; }
  ServerAbortReason reason() const { return reason_; }
  // ABORTED, naming the reason.
  const absl::Status& status() const { return status_; }

 private:
  ServerAbortReason reason_;
  absl::Status status_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_STATE_H_
