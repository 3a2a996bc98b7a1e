// File: secagg_client.h
// The client of the secure aggregation protocol (docs/secagg.md, "Protocol"): a facade that
// holds the current phase state (client_state.h) and swaps it on each server message.
// Transport-agnostic: the caller sends what Start and HandleMessage return.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto client, SecAggClient::Create(std::move(config)));
//   TESSERA_ASSIGN_OR_RETURN(v1::ClientToServer advertise, client->Start());
//   Send(advertise);
//   for (each server message m) {
//     TESSERA_ASSIGN_OR_RETURN(auto reply, client->HandleMessage(m));
//     if (reply) Send(*reply);
//   }
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_SECAGG_CLIENT_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_SECAGG_CLIENT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "privacy/secagg/client/client_state.h"
#include "tessera/secagg/v1/secagg.pb.h"

namespace tessera::secagg {

// Thread-safe. Not copyable or movable.
class SecAggClient {
 public:
  // Generates the round's X25519 key pairs (c for share encryption, s for masks) and the
  // self-mask seed b. Errors: INVALID_ARGUMENT for an empty session id, a modulus_mask not
  // 2^b - 1, no inputs, duplicate or empty tensor names, a value or weight >= 2^b, or a
  // missing sign/verify function; INTERNAL if key generation fails.
  static absl::StatusOr<std::unique_ptr<SecAggClient>> Create(ClientConfig config);

  SecAggClient(const SecAggClient&) = delete;
  SecAggClient& operator=(const SecAggClient&) = delete;

  // The signed AdvertiseKeys message. Errors: FAILED_PRECONDITION if called twice;
  // the sign function's error.
  absl::StatusOr<v1::ClientToServer> Start();

  // Handles one server message and returns the reply to send, if any.
  // Errors: the AbortedState's status (AbortedState::status) when this message made the
  // client abort; FAILED_PRECONDITION before Start or after the round ended.
  absl::StatusOr<std::optional<v1::ClientToServer>> HandleMessage(
      const v1::ServerToClient& msg);

  std::string StateName() const;
  bool IsCompleted() const;
  bool IsAborted() const;
  std::optional<AbortReason> abort_reason() const;

 private:
  explicit SecAggClient(std::unique_ptr<ClientState> state, std::string advertisement)
      : state_(std::move(state)), advertisement_(std::move(advertisement)) {}

  mutable absl::Mutex mu_;
  std::unique_ptr<ClientState> state_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::string advertisement_;  // serialized ClientToServer, signed at Create
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_SECAGG_CLIENT_H_
