// File: secagg_participant.h
// A client's side of a secure aggregation round (docs/secagg.md, "In a round"): quantize
// the local update, then run the SecAggClient state machine over the coordinator's
// SecAggExchange call, one exchange per phase, until the round completes or aborts. The
// plaintext update never leaves this process.
#ifndef TESSERA_CLIENT_RUNTIME_SECAGG_PARTICIPANT_H_
#define TESSERA_CLIENT_RUNTIME_SECAGG_PARTICIPANT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model/tensor.h"
#include "privacy/secagg/identity.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera {

struct SecAggParticipantOptions {
  secagg::Signer signer;    // this client's long-term identity
  secagg::VerifyFn verify;  // peers' identities
  // When set, the quantized input is written to DIR/round-R-<session>.u64 (little-endian
  // u64 values of every summed tensor, then the weight): an audit trail of exactly what
  // this client contributed, and how tests check the coordinator's sum bit for bit.
  std::string dump_dir;
  // Fault injection for tests: exit the process abruptly just before sending the message
  // of this phase ("advertise", "share", "masked" or "unmask"); empty: never.
  std::string drop_before;
  // How the fault drops out: exit the process (true), or hang while staying connected.
  bool drop_by_exit = true;
  // This client's policy on the threat model a task states (docs/secagg.md, "What a client
  // checks"): a task assuming fewer corrupt clients, more dropouts or fewer security bits
  // is refused before any key is advertised. The client then accepts only the k, t and
  // graph that the stated model gives for the roster it receives.
  double min_corrupt_fraction = 0.0;   // --secagg-min-corrupt-fraction
  double max_dropout_fraction = 0.5;   // --secagg-max-dropout-fraction
  uint32_t min_security_bits = 40;     // --secagg-min-security-bits
};

// OK iff the task's threat model satisfies `options`' policy. Errors: PERMISSION_DENIED
// naming the field and both values; INVALID_ARGUMENT for a malformed model.
absl::Status CheckThreatPolicy(const wire::v1::SecAggTask& task,
                               const SecAggParticipantOptions& options);

// Sends one protocol message and returns the coordinator's reply (when the phase closes).
using SecAggTransport = std::function<absl::StatusOr<secagg::v1::ServerToClient>(
    const secagg::v1::ClientToServer& message, double timeout_seconds)>;

// `once` retried with jittered backoff while it fails in transport (RESOURCE_EXHAUSTED when
// the coordinator's memory quota resets streams as many large masked inputs arrive at once,
// UNAVAILABLE, UNAUTHENTICATED after a reconnect renewed the session), until the call's
// timeout or `stop()`. Retries send the same bytes, which the coordinator treats as the same
// message while its phase is open (coordinator/round/secagg_round.h).
SecAggTransport WithTransientRetries(SecAggTransport once, std::function<bool()> stop);

// What a participation ended with.
struct SecAggOutcome {
  bool completed = false;   // our input is in the sum
  std::string state;        // the client state machine's last state
  uint32_t survivors = 0;   // from RoundCompleted
};

// Errors: INVALID_ARGUMENT for a task without secagg or bad quantizer options, the
// quantizer's errors (NaN in the update); the abort status of the client state machine
// (e.g. a peer's signature that does not verify); the transport's errors.
absl::StatusOr<SecAggOutcome> RunSecAggParticipant(const wire::v1::Task& task,
                                                   const ArrayRecord& delta,
                                                   uint64_t num_examples,
                                                   const SecAggParticipantOptions& options,
                                                   const SecAggTransport& transport);

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_SECAGG_PARTICIPANT_H_
