#include "coordinator/service/revocation_watcher.h"

#include <glog/logging.h>

#include "absl/strings/str_join.h"

namespace tessera::coordinator {

RevocationWatcher::RevocationWatcher(TrustStore* trust, ClientRegistry* registry,
                                     RunManager* runs, absl::Duration period)
    : trust_(trust), registry_(registry), runs_(runs), period_(period) {
  thread_ = std::thread([this] { Loop(); });
}

RevocationWatcher::~RevocationWatcher() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

uint64_t RevocationWatcher::AddStream(std::string certificate_pem, std::function<void()> end) {
  absl::MutexLock l(&mu_);
  const uint64_t id = next_stream_++;
  streams_[id] = Stream{std::move(certificate_pem), std::move(end)};
  return id;
}

void RevocationWatcher::RemoveStream(uint64_t id) {
  absl::MutexLock l(&mu_);
  streams_.erase(id);
}

std::vector<std::string> RevocationWatcher::Sweep() {
  auto refused = [this](const std::string& pem) { return !trust_->Verify(pem).ok(); };
  std::vector<std::string> ended = registry_->EndSessionsIf(refused);
  for (const std::string& client : ended) {
    const size_t tasks = runs_->AbandonClientTasks(client, "certificate revoked");
    LOG(WARNING) << "client " << client << ": certificate no longer trusted; ended its session "
                 << "and task streams, abandoned " << tasks << " open tasks";
  }
  std::map<uint64_t, Stream> streams;
  {
    absl::MutexLock l(&mu_);
    streams = streams_;
  }
  for (auto& [id, stream] : streams) {
    if (!refused(stream.certificate_pem)) continue;
    RemoveStream(id);
    stream.end();
  }
  return ended;
}

void RevocationWatcher::Loop() {
  uint64_t seen = trust_->generation();
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopped), period_)) return;
    }
    const uint64_t now = trust_->generation();
    if (now == seen) continue;
    seen = now;
    std::vector<std::string> ended = Sweep();
    if (!ended.empty()) {
      LOG(INFO) << "trust store changed: ended the sessions of " << absl::StrJoin(ended, ", ");
    }
  }
}

}  // namespace tessera::coordinator
