#include "coordinator/round/client_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/peer_text.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {

absl::Status ValidateClientName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: must be 1..128 characters, got ", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("name: \"", PeerText(name), "\" may only use [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ClientRegistry::Register(absl::string_view name,
                                                     absl::string_view device,
                                                     absl::string_view version,
                                                     absl::string_view organization,
                                                     const wire::v1::DataCard* data_card,
                                                     absl::string_view certificate_pem) {
  if (absl::Status s = ValidateClientName(name); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  auto it = clients_.find(name);
  if (it == clients_.end()) {
    if (clients_.size() >= options_.max_clients) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the coordinator accepts at most ", options_.max_clients, " clients"));
    }
    it = clients_.emplace(std::string(name), Entry{}).first;
    it->second.info.set_name(std::string(name));
  }
  Entry& e = it->second;
  if (!e.session_id.empty()) sessions_.erase(e.session_id);
  e.session_id = crypto::RandomHexId(16);
  e.info.set_device(std::string(device));
  e.info.set_version(std::string(version));
  e.info.set_organization(std::string(organization));
  e.certificate_pem = std::string(certificate_pem);
  if (data_card != nullptr) {
    *e.info.mutable_data_card() = *data_card;
  } else {
    e.info.clear_data_card();
  }
  e.info.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  sessions_[e.session_id] = std::string(name);
  return e.session_id;
}

absl::StatusOr<wire::v1::ClientInfo> ClientRegistry::Info(absl::string_view name) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(name);
  if (it == clients_.end()) {
    return absl::NotFoundError(
        absl::StrCat("client \"", PeerText(name), "\" never registered"));
  }
  return it->second.info;
}

absl::StatusOr<std::string> ClientRegistry::Lookup(absl::string_view session_id) {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return absl::UnauthenticatedError("unknown or expired session: register again");
  }
  return it->second;
}

absl::StatusOr<uint64_t> ClientRegistry::Attach(
    absl::string_view session_id, TaskSender sender,
    std::function<void(const absl::Status&)> end_stream) {
  std::vector<std::function<void(const absl::Status&)>> displaced;
  uint64_t token = 0;
  std::string name;
  {
    absl::MutexLock l(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) {
      return absl::UnauthenticatedError("unknown or expired session: register again");
    }
    name = it->second;
    Entry& e = clients_[name];
    for (auto& [old_token, end] : e.streams) displaced.push_back(std::move(end));
    e.streams.clear();
    e.sender = std::move(sender);
    e.token = next_token_++;
    token = e.token;
    if (end_stream) e.streams[e.token] = std::move(end_stream);
    e.info.set_connected(true);
    e.info.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  }
  // Without the lock: a stream's end calls Detach (its token is no longer the client's).
  const absl::Status why =
      absl::AbortedError(absl::StrCat(kDisplacedStream, " of client ", PeerText(name)));
  for (auto& end : displaced) end(why);
  return token;
}

void ClientRegistry::Detach(absl::string_view name, uint64_t token) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(name);
  if (it == clients_.end()) return;
  it->second.streams.erase(token);
  if (it->second.token != token) return;
  it->second.sender = nullptr;
  it->second.info.set_connected(false);
  it->second.info.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
}

std::vector<std::string> ClientRegistry::EndSessionsIf(
    const std::function<bool(const std::string& certificate_pem)>& revoked) {
  std::vector<std::pair<std::string, std::string>> certificates;  // name, PEM
  {
    absl::MutexLock l(&mu_);
    for (const auto& [name, e] : clients_) {
      if (!e.certificate_pem.empty()) certificates.emplace_back(name, e.certificate_pem);
    }
  }
  std::vector<std::string> ended;
  std::vector<std::function<void(const absl::Status&)>> end_streams;
  for (const auto& [name, pem] : certificates) {
    if (!revoked(pem)) continue;
    absl::MutexLock l(&mu_);
    auto it = clients_.find(name);
    // A registration since the snapshot brought another certificate: that one is checked
    // on its own handshake.
    if (it == clients_.end() || it->second.certificate_pem != pem) continue;
    Entry& e = it->second;
    if (!e.session_id.empty()) sessions_.erase(e.session_id);
    e.session_id.clear();
    e.certificate_pem.clear();
    e.sender = nullptr;
    e.token = 0;
    for (auto& [token, end] : e.streams) end_streams.push_back(std::move(end));
    e.streams.clear();
    e.info.set_connected(false);
    e.info.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
    ended.push_back(name);
  }
  const absl::Status why = absl::PermissionDeniedError(
      "session ended: the client certificate is revoked or no longer trusted");
  for (auto& end : end_streams) end(why);  // without the lock: a stream's end calls Detach
  std::sort(ended.begin(), ended.end());
  return ended;
}

bool ClientRegistry::Send(absl::string_view name, const wire::v1::Task& task) {
  TaskSender sender;
  {
    absl::MutexLock l(&mu_);
    auto it = clients_.find(name);
    if (it == clients_.end() || !it->second.sender) return false;
    sender = it->second.sender;
  }
  return sender(task);
}

std::vector<std::string> ClientRegistry::Connected() {
  absl::MutexLock l(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, e] : clients_) {
    if (e.sender) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

size_t ClientRegistry::NumConnected() {
  absl::MutexLock l(&mu_);
  return NumConnectedLocked();
}

size_t ClientRegistry::NumConnectedLocked() {
  size_t n = 0;
  for (const auto& [name, e] : clients_) n += e.sender ? 1 : 0;
  return n;
}

void ClientRegistry::Touch(absl::string_view name) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(name);
  if (it != clients_.end()) {
    it->second.info.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  }
}

void ClientRegistry::CountParticipation(absl::string_view name) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(name);
  if (it != clients_.end()) {
    it->second.info.set_rounds_participated(it->second.info.rounds_participated() + 1);
  }
}

void ClientRegistry::Restore(const wire::v1::ClientInfo& info) {
  absl::MutexLock l(&mu_);
  Entry& e = clients_[info.name()];
  e.info = info;
  e.info.set_connected(false);
}

std::vector<wire::v1::ClientInfo> ClientRegistry::List() {
  absl::MutexLock l(&mu_);
  std::vector<wire::v1::ClientInfo> out;
  for (const auto& [name, e] : clients_) out.push_back(e.info);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return out;
}

size_t ClientRegistry::AwaitConnected(size_t n, absl::Time deadline,
                                      const std::function<bool()>& stop) {
  absl::MutexLock l(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return NumConnectedLocked() >= n;
  };
  // Wakes as soon as a subscription attaches; `stop` is outside this lock, so it is looked at
  // every 100 ms.
  while (!enough() && absl::Now() < deadline && !stop()) {
    mu_.AwaitWithDeadline(absl::Condition(&enough),
                          std::min(deadline, absl::Now() + absl::Milliseconds(100)));
  }
  return NumConnectedLocked();
}

}  // namespace tessera::coordinator
