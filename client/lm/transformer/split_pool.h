// File: split_pool.h
// Internal to client/lm/transformer (LibTorch-free): the worker threads that the products and
// fused passes of fused_ops.h are split over while a SerialBlasScope (thread_split.h) is alive.
//
// Run(n, threads, fn) hands out the parts 0..n-1 one at a time to whichever thread asks
// first: the calling thread and up to threads - 1 workers. The caller takes every part that
// no worker has claimed yet, so a worker the scheduler has not run yet never holds the caller
// up (a split is never slower than the caller doing all the parts alone, short of the parts a
// worker has already started). Between splits a worker spins for kSpinMicros (the next split
// of a training step usually comes sooner) and then sleeps on a futex. OpenMP with
// OMP_WAIT_POLICY=passive sleeps at once and waits at its barrier for the slowest thread:
// with LibTorch's ~270 parallel regions per step of the tiny LoRA benchmark, two threads were
// slower than one (issue 18, docs/benchmarks.md).
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_SPLIT_POOL_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_SPLIT_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace tessera::lm::internal {

class SplitPool {
 public:
  // How long an idle worker spins before it sleeps.
  static constexpr int64_t kSpinMicros = 200;
  // Most workers a pool starts (threads beyond kMaxWorkers + 1 are not used).
  static constexpr int kMaxWorkers = 255;

  // `on_worker_start` runs first on every worker thread (fused_ops.cc makes LibTorch
  // single-threaded there).
  explicit SplitPool(std::function<void()> on_worker_start);
  ~SplitPool();  // stops and joins the workers
  SplitPool(const SplitPool&) = delete;
  SplitPool& operator=(const SplitPool&) = delete;

  // Calls fn(i) exactly once for every i in [0, n), on the calling thread and at most
  // threads - 1 workers (started on first need), and returns when all calls have returned.
  // When another Run of this pool is in progress (another thread's, or fn calling Run), all
  // parts run on the calling thread. fn must not throw.
  void Run(int64_t n, int threads, absl::FunctionRef<void(int64_t)> fn);

  // Workers started so far.
  int workers() const;

  // Returns once every worker started so far has run on_worker_start_. Run never waits for
  // that (a worker the scheduler has not run yet must not hold the caller up); a program's
  // exit must (thread_split.cc calls this at exit).
  void WaitUntilWorkersStarted();

 private:
  struct Job {
    std::atomic<const absl::FunctionRef<void(int64_t)>*> fn{nullptr};
    std::atomic<int64_t> n{0};
    std::atomic<int> workers{0};
    std::atomic<int64_t> done{0};
  };

  void Work(int index);
  // The next part of job `gen`, or -1 when it has none left (or is not the current job).
  int64_t Claim(uint32_t gen, int64_t n);
  void EnsureWorkers(int count);

  const std::function<void()> on_worker_start_;
  Job jobs_[2];  // job g in jobs_[g % 2]: a late worker of job g - 1 never reads job g's
  // The current job's generation (high 32 bits) and its next unclaimed part (low 32 bits).
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> epoch_{0};  // the current generation; workers sleep on it
  std::atomic<bool> busy_{false};   // a Run is in progress
  std::atomic<bool> stop_{false};
  uint32_t gen_ = 0;                // owned by the Run that set busy_
  mutable std::mutex mu_;           // guards threads_
  std::vector<std::thread> threads_;
  std::atomic<int> started_{0};
  std::atomic<int> ready_{0};  // workers that have run on_worker_start_
};

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_SPLIT_POOL_H_
