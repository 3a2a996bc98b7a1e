// File: client_registry.h
// Who is registered, who is connected (has an open task subscription), and how to reach
// them. Sessions are bearer tokens handed out by Register and presented on every later Fleet
// call; under mTLS the session must also belong to the certificate's identity.
#ifndef TESSERA_COORDINATOR_ROUND_CLIENT_REGISTRY_H_
#define TESSERA_COORDINATOR_ROUND_CLIENT_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera::coordinator {

// Sends one task to a connected client; false when its stream is gone.
using TaskSender = std::function<bool(const wire::v1::Task&)>;

// How ClientRegistry::Attach's message for a displaced stream begins.
inline constexpr char kDisplacedStream[] = "task stream displaced by a newer Subscribe";

// Thread-safe.
class ClientRegistry {
 public:
  struct Options {
    uint32_t max_clients = 10000;  // registered at once
  };
  explicit ClientRegistry(Options options) : options_(options) {}
  ClientRegistry(const ClientRegistry&) = delete;
  ClientRegistry& operator=(const ClientRegistry&) = delete;

  // A new session for `name` (replacing an older one of the same name). `organization`
  // (the certificate's O) and `data_card` (null: none) are kept with the client and replace
  // what an earlier registration said. `certificate_pem` is the certificate the client
  // registered with (empty without mTLS): EndSessionsIf looks at it.
  // Errors: INVALID_ARGUMENT on a bad name (ValidateClientName); RESOURCE_EXHAUSTED over
  // max_clients.
  absl::StatusOr<std::string> Register(absl::string_view name, absl::string_view device,
                                       absl::string_view version,
                                       absl::string_view organization = "",
                                       const wire::v1::DataCard* data_card = nullptr,
                                       absl::string_view certificate_pem = "");
  // What the registry knows about `name`; NOT_FOUND if it never registered.
  absl::StatusOr<wire::v1::ClientInfo> Info(absl::string_view name);
  // The client name behind a session. UNAUTHENTICATED for an unknown session.
  absl::StatusOr<std::string> Lookup(absl::string_view session_id);
  // Marks the session's client connected with `sender` as its task stream; returns a token
  // for Detach. `end_stream` (may be null) ends that stream at once with the status it is
  // given. The client's older streams not yet detached (a second Subscribe of the session, or
  // one of an earlier session) no longer get tasks: Attach ends them, without the registry's
  // lock held, with ABORTED "task stream displaced by a newer Subscribe of client NAME"
  // (kDisplacedStream). EndSessionsIf ends the rest. UNAUTHENTICATED for an unknown session.
  absl::StatusOr<uint64_t> Attach(absl::string_view session_id, TaskSender sender,
                                  std::function<void(const absl::Status&)> end_stream = nullptr);
  // Ends the subscription `token` (a newer one of the same client stays).
  void Detach(absl::string_view name, uint64_t token);
  // Ends the session, and every task stream still attached, of each client whose
  // registration certificate `revoked` is true for (clients without a certificate are
  // skipped). Such a client is no longer connected, so it is not selected, and its session
  // id is refused until it registers again (which needs a certificate the TLS handshake
  // accepts). `revoked` is called without the registry's lock held. Returns the names, sorted.
  std::vector<std::string> EndSessionsIf(
      const std::function<bool(const std::string& certificate_pem)>& revoked);
  // Sends a task; false if the client is not connected.
  bool Send(absl::string_view name, const wire::v1::Task& task);
  // Names of clients with an open subscription, sorted.
  std::vector<std::string> Connected();
  size_t NumConnected();
  void Touch(absl::string_view name);
  void CountParticipation(absl::string_view name);
  // Restores last-seen data of clients known from earlier coordinator runs.
  void Restore(const wire::v1::ClientInfo& info);
  std::vector<wire::v1::ClientInfo> List();
  // Blocks until NumConnected() >= n or the deadline passes; returns NumConnected().
  size_t AwaitConnected(size_t n, absl::Time deadline, const std::function<bool()>& stop);

 private:
  struct Entry {
    wire::v1::ClientInfo info;
    std::string session_id;
    TaskSender sender;
    uint64_t token = 0;
    std::string certificate_pem;  // the registration's; empty without mTLS
    // Every attached stream not yet detached, by token: how to end it.
    absl::flat_hash_map<uint64_t, std::function<void(const absl::Status&)>> streams;
  };

  size_t NumConnectedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> clients_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
};

// INVALID_ARGUMENT unless `name` is 1..128 characters of [A-Za-z0-9._-]. The message starts
// with "name: " (the RegisterRequest field) and quotes the name escaped and capped
// (PeerText), so it is safe to log and to send back.
absl::Status ValidateClientName(absl::string_view name);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_CLIENT_REGISTRY_H_
