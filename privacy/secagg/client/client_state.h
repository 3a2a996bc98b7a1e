// File: client_state.h
// The client side of the secure aggregation protocol as a state machine (fcp/secagg style):
// one class per phase, each handling the server message that closes its phase and returning
// the next state as a value, with the reply to send. Shared by the states: ClientConfig (what
// the caller gives) and ClientContext (keys and shares gathered so far).
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_CLIENT_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_CLIENT_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/protocol.h"
#include "privacy/secagg/secagg_params.h"
#include "tessera/secagg/v1/secagg.pb.h"

namespace tessera::secagg {

// Why a client refused to go on.
enum class AbortReason {
  kRosterTooSmall,     // fewer clients, neighbours or survivors than t (or min_survivors)
  kUnsafeParameters,   // k, t or graph seed other than the agreed threat model gives
  kInconsistentView,   // the unmask request's survivor set is not the one t survivors signed
  kBadSignature,       // a peer's advertisement signature does not verify
  kRevealBothShares,   // asked for both the b-share and the s_sk-share of one peer
  kOutOfPhase,         // a message for another phase (reordered or replayed)
  kWrongSession,       // a message for another session or round
  kMalformedMessage,   // inconsistent content (unknown peer, bad ciphertext, ...)
  kServerAborted,      // the server aborted the round
  kInternal,           // a local failure (crypto, input)
};

absl::string_view AbortReasonName(AbortReason reason);

struct ClientConfig {
  uint32_t client_index = 0;
  std::string session_id;
  uint32_t round = 0;
  uint64_t modulus_mask = 0;             // 2^b - 1, as QuantizerParams::modulus_mask
  std::vector<QuantizedTensor> inputs;   // each value < 2^b
  uint64_t weight = 0;                   // quantized weight, < 2^b
  SignFn sign;                           // the client's long-term identity key
  v1::Identity identity;                 // what `sign`'s signatures verify under
  VerifyFn verify;                       // peers' identity signatures
  // The threat model this client agreed to (the task's, once checked against the client's
  // own policy); num_clients is ignored: k and t are derived for the roster's size, and a
  // roster with other k, t or graph seed is refused (kUnsafeParameters).
  ThreatModel threat_model;
  uint32_t max_clients = 0;    // the most clients the roster may list (0: no limit)
  // Refuse to sign or unmask a survivor set smaller than this (e.g. the DP task's
  // min_clients, whose noise shares need that many inputs); 0: only t applies.
  uint32_t min_survivors = 0;
};

// Everything the states accumulate. Secret fields are wiped by their owners' destructors.
struct ClientContext {
  ClientContext(ClientConfig c, crypto::X25519KeyPair ck, crypto::X25519KeyPair sk,
                std::string seed)
      : config(std::move(c)), c_keys(std::move(ck)), s_keys(std::move(sk)),
        self_seed(std::move(seed)) {}

  struct PeerKeys {
    std::string c_pk, s_pk;
    v1::Identity identity;  // as verified on the roster
  };
  struct HeldShares {
    std::string s_sk_share, b_share;  // serialized crypto::ShamirShare
  };

  ClientConfig config;
  crypto::X25519KeyPair c_keys;  // share encryption
  crypto::X25519KeyPair s_keys;  // pairwise masks
  std::string self_seed;         // b
  uint32_t threshold_t = 0;
  std::vector<uint32_t> neighbors;
  std::map<uint32_t, PeerKeys> peers;
  std::map<uint32_t, HeldShares> held;       // by owner, from RelayedShares
  std::map<uint32_t, bool> revealed_b_share; // by owner: true b-share, false s_sk-share
  // The sets this client signed in ConsistencyCheck (ascending); it reveals shares only
  // for exactly these.
  std::vector<uint32_t> signed_survivors, signed_dropped;
};

class ClientState;

// A transition: the next state and the message to send, if any.
struct ClientTransition {
  std::unique_ptr<ClientState> next;
  std::optional<v1::ClientToServer> reply;
};

class ClientState {
 public:
  virtual ~ClientState() = default;

  // Handles one server message. Protocol violations and local failures are not errors:
  // they transition to an AbortedState carrying the reason.
  virtual ClientTransition HandleMessage(const v1::ServerToClient& msg) = 0;

  virtual absl::string_view Name() const = 0;
  virtual bool IsTerminal() const { return false; }
  // Set only by AbortedState.
  virtual std::optional<AbortReason> abort_reason() const { return std::nullopt; }
  virtual absl::Status status() const { return absl::OkStatus(); }

 protected:
  // An abort transition.
  static ClientTransition Abort(AbortReason reason, absl::string_view message);
  // An abort transition if `msg` is not a `expected_case` message of `phase` for `ctx`'s
  // session and round (or is the server's abort notice); nullopt if it is.
  static std::optional<ClientTransition> CheckIncoming(
      const ClientContext& ctx, const v1::ServerToClient& msg, v1::Phase phase,
      v1::ServerToClient::MessageCase expected_case);
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_CLIENT_STATE_H_
