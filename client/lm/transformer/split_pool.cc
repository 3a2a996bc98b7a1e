#include "client/lm/transformer/split_pool.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace tessera::lm::internal {
namespace {

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

SplitPool::SplitPool(std::function<void()> on_worker_start)
    : on_worker_start_(std::move(on_worker_start)) {}

SplitPool::~SplitPool() {
  stop_.store(true);
  epoch_.fetch_add(1);
  epoch_.notify_all();
  std::lock_guard<std::mutex> lock(mu_);
  for (std::thread& t : threads_) t.join();
}

int SplitPool::workers() const { return started_.load(); }

void SplitPool::WaitUntilWorkersStarted() {
  int count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    count = static_cast<int>(threads_.size());
  }
  while (ready_.load(std::memory_order_acquire) < count) std::this_thread::yield();
}

void SplitPool::EnsureWorkers(int count) {
  count = std::min(count, kMaxWorkers);
  if (started_.load(std::memory_order_acquire) >= count) return;
  std::lock_guard<std::mutex> lock(mu_);
  while (static_cast<int>(threads_.size()) < count) {
    const int index = static_cast<int>(threads_.size());
    threads_.emplace_back([this, index] { Work(index); });
  }
  started_.store(count, std::memory_order_release);
}

int64_t SplitPool::Claim(uint32_t gen, int64_t n) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  while (true) {
    if (static_cast<uint32_t>(c >> 32) != gen) return -1;
    const int64_t i = static_cast<int64_t>(c & 0xffffffffu);
    if (i >= n) return -1;
    if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) return i;
  }
}

void SplitPool::Work(int index) {
  if (on_worker_start_) on_worker_start_();
  ready_.fetch_add(1, std::memory_order_acq_rel);
  // Generation 0 is no job: a worker started by a Run sees that Run's job at once (if it is
  // still going, Claim gives it parts).
  uint32_t seen = 0;
  while (true) {
    // Spin a while for the next job, then sleep until Run (or the destructor) moves epoch_.
    uint32_t now = epoch_.load(std::memory_order_acquire);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int spin = 0; now == seen && !stop_.load(std::memory_order_relaxed); ++spin) {
      if ((spin & 255) == 255 && std::chrono::steady_clock::now() > deadline) {
        epoch_.wait(seen, std::memory_order_acquire);
      } else {
        Pause();
      }
      now = epoch_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = now;
    // The job's fields were written before claim_ and epoch_ were set to its generation; if
    // the caller has moved on since, Claim fails and nothing read here is used.
    const Job& job = jobs_[now % 2];
    if (index >= job.workers.load(std::memory_order_acquire)) continue;
    const int64_t n = job.n.load(std::memory_order_acquire);
    const auto* fn = job.fn.load(std::memory_order_acquire);
    for (int64_t i = Claim(now, n); i >= 0; i = Claim(now, n)) {
      (*fn)(i);
      jobs_[now % 2].done.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

void SplitPool::Run(int64_t n, int threads, absl::FunctionRef<void(int64_t)> fn) {
  if (n <= 0) return;
  // No more workers than parts after the caller's first.
  const int workers =
      static_cast<int>(std::min<int64_t>(std::min(threads - 1, kMaxWorkers), n - 1));
  bool idle = false;
  if (workers < 1 || n > int64_t{0xffffffff} ||
      !busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  EnsureWorkers(workers);
  const uint32_t gen = ++gen_;
  Job& job = jobs_[gen % 2];
  job.fn.store(&fn, std::memory_order_relaxed);
  job.n.store(n, std::memory_order_relaxed);
  job.workers.store(workers, std::memory_order_relaxed);
  job.done.store(0, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  epoch_.store(gen, std::memory_order_release);
  epoch_.notify_all();
  for (int64_t i = Claim(gen, n); i >= 0; i = Claim(gen, n)) {
    fn(i);
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
  // Every part is claimed; wait for the workers' parts to finish.
  for (int spin = 0; job.done.load(std::memory_order_acquire) < n; ++spin) {
    if ((spin & 1023) == 1023) {
      std::this_thread::yield();
    } else {
      Pause();
    }
  }
  busy_.store(false, std::memory_order_release);
}

}  // namespace tessera::lm::internal
