// File: secure_aggregation.h
// Secure aggregation at the round loop's stations (docs/secagg.md "In a round",
// docs/architecture.md "The round loop"): the run's parameters checked at creation, one
// session per training attempt opened for the selected clients, the secure aggregation
// section of their tasks at dispatch, the protocol's phases while the masked updates come
// in (accept update), and the mean update from the unmasked sum (aggregate). The
// coordinator only ever holds masked inputs and, at the end, their sum. With
// differential privacy the clients send clipped updates of weight 1, and with the
// distributed mechanism discrete-Gaussian-noised encodings of one padded, rotated vector
// (RoundPrivacy turns their sum into the mean).
#ifndef TESSERA_COORDINATOR_ROUND_SECURE_AGGREGATION_H_
#define TESSERA_COORDINATOR_ROUND_SECURE_AGGREGATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/model_snapshot.h"
#include "coordinator/round/round_privacy.h"
#include "coordinator/round/secagg_round.h"
#include "coordinator/state/coordinator_state.h"
#include "core/model/tensor.h"
#include "privacy/secagg/identity.h"
#include "privacy/secagg/update_codec.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera::coordinator {

// One training attempt's secure aggregation. Used by the run's driver thread; the
// session() it opens takes the clients' messages from any thread.
class SecureAggregation {
 public:
  // What every session uses; `state` and `registry` must outlive it.
  struct Services {
    CoordinatorState* state = nullptr;
    ClientRegistry* registry = nullptr;
    // Under mTLS clients' advertised certificates must chain to this source; with
    // `insecure`, Ed25519 identities are accepted instead.
    secagg::TrustSource peer_trust;
    bool insecure = false;
  };
  // The attempt: run, round, attempt, the run's config, and the global model it trains.
  struct Attempt {
    std::string run_id;
    uint32_t round = 0;
    uint32_t attempt = 0;
    wire::v1::RunConfig config;
    std::shared_ptr<const ModelSnapshot> global;
    const RoundPrivacy* dp = nullptr;  // null without differential privacy
    double dp_clip = 0;                // this round's clip norm under DP
  };

  // CreateRun: INVALID_ARGUMENT naming the field when a secure aggregation run cannot
  // work: no k and t for its threat model, a modulus over 62 bits, masked inputs over
  // `max_message_bytes`.
  static absl::Status CheckRun(const wire::v1::RunConfig& config, const ArrayRecord& weights,
                               uint64_t max_message_bytes);
  // Recover: marks the sessions a previous process left ACTIVE as ABORTED, charging a
  // distributed-DP session that may have revealed its sum first, and records each
  // interrupted attempt as failed.
  static absl::Status AbortInterruptedSessions(CoordinatorState& state);

  // After select: the session of `attempt` for the selected `clients` (by index, sorted),
  // stored durably as it advances. FAILED_PRECONDITION for fewer than 3 clients.
  static absl::StatusOr<std::unique_ptr<SecureAggregation>> Open(
      const Services& services, Attempt attempt, std::vector<std::string> clients);

  // The session that takes the clients' messages (Fleet's SecAggExchange).
  std::shared_ptr<SecAggRound> session() const { return session_; }
  uint32_t num_clients() const { return static_cast<uint32_t>(clients_.size()); }

  // ---- Stations ----
  // Dispatch: the secure aggregation (and DP) section of client `index`'s task.
  void Dispatch(size_t index, wire::v1::Task& task) const;
  // Accept update: runs the protocol's phases (the first waits for training, the round's
  // deadline; the others the per-phase deadline), calling `publish` whenever the session's
  // status changes; each phase's wall time goes into `summary`. CANCELLED (the session
  // cancelled) once `stop` returns true; otherwise the outcome of the last phase.
  absl::Status RunPhases(const std::function<bool()>& stop,
                         const std::function<void()>& publish, wire::v1::RoundSummary* summary);
  // Aggregate: the mean update of the survivors (noised under DP); fills `summary`'s
  // reported, dropped, participants, example count and sum digest, and counts each
  // survivor's participation.
  absl::StatusOr<ArrayRecord> Aggregate(wire::v1::RoundSummary* summary);

 private:
  SecureAggregation(const Services& services, Attempt attempt,
                    std::vector<std::string> clients, secagg::QuantizerParams quantizer,
                    std::string rotation_seed)
      : services_(services),
        attempt_(std::move(attempt)),
        clients_(std::move(clients)),
        quantizer_(quantizer),
        rotation_seed_(std::move(rotation_seed)) {}
  bool distributed_dp() const;

  const Services services_;
  const Attempt attempt_;
  const std::vector<std::string> clients_;
  const secagg::QuantizerParams quantizer_;
  const std::string rotation_seed_;  // distributed DP only
  std::shared_ptr<SecAggRound> session_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_SECURE_AGGREGATION_H_
