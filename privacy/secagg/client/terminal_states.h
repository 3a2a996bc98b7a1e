// File: terminal_states.h
// The client's final states: CompletedState (the server finished the round) and
// AbortedState (the client refused, or the server aborted, with an AbortReason).
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_TERMINAL_STATES_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_TERMINAL_STATES_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class CompletedState : public ClientState {
 public:
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "Completed"; }
  bool IsTerminal() const override { return true; }
};

class AbortedState : public ClientState {
 public:
  AbortedState(AbortReason reason, absl::string_view message);
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "Aborted"; }
  bool IsTerminal() const override { return true; }
  std::optional<AbortReason> abort_reason() const override { return reason_; }
  // The abort as a status: PERMISSION_DENIED (bad signature, reveal both shares),
  // INVALID_ARGUMENT (wrong session, malformed), FAILED_PRECONDITION (out of phase, roster
  // too small), ABORTED (server aborted), INTERNAL; the message names the reason.
  absl::Status status() const override { return status_; }

 private:
  AbortReason reason_;
  absl::Status status_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_TERMINAL_STATES_H_
