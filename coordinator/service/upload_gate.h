// File: upload_gate.h
// Bounds how many updates are staged in memory at once. A client-streaming upload holds one
// model-sized buffer until it is verified and folded; with N slots the coordinator needs at
// most (2 + N) x model memory however many clients upload (docs/architecture.md). Waiting
// uploads are not read, so gRPC flow control holds them back at the sender.
#ifndef TESSERA_COORDINATOR_SERVICE_UPLOAD_GATE_H_
#define TESSERA_COORDINATOR_SERVICE_UPLOAD_GATE_H_

#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::coordinator {

// Thread-safe.
class UploadGate {
 public:
  explicit UploadGate(size_t slots) : free_(slots == 0 ? 1 : slots) {}
  UploadGate(const UploadGate&) = delete;
  UploadGate& operator=(const UploadGate&) = delete;

  // Runs `granted` with a slot: now, or later on the thread that frees one. The holder must
  // call Leave() exactly once.
  void Enter(std::function<void()> granted) {
    {
      absl::MutexLock l(&mu_);
      if (free_ == 0) {
        waiting_.push_back(std::move(granted));
        return;
      }
      --free_;
    }
    granted();
  }

  void Leave() {
    std::function<void()> next;
    {
      absl::MutexLock l(&mu_);
      if (waiting_.empty()) {
        ++free_;
        return;
      }
      next = std::move(waiting_.front());
      waiting_.pop_front();
    }
    next();  // the slot passes straight to the next waiter
  }

 private:
  absl::Mutex mu_;
  size_t free_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_UPLOAD_GATE_H_
