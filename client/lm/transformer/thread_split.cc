#include "client/lm/transformer/thread_split.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "client/lm/transformer/split_pool.h"

namespace tessera::lm::internal {
namespace {

std::mutex& ScopeMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
int active_scopes = 0;       // guarded by ScopeMutex()
int saved_blas_threads = 0;  // guarded by ScopeMutex()
std::atomic<bool> serial_blas{false};

// Per thread: how many threads the outermost SerialBlasScope alive on this thread splits
// over (0 without one, and on the pool's workers), how deep the scopes are, and LibTorch's
// thread count to restore.
thread_local int split_threads = 0;
thread_local int scope_depth = 0;
thread_local int saved_torch_threads = 0;

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// This thread's OpenMP team size (the ICV omp_set_num_threads sets for the calling thread
// only, unlike at::set_num_threads, which also changes the count new threads start with).
// Tessera is compiled without -fopenmp (at::parallel_for in Tessera's own code runs
// serially); LibTorch's kernels use OpenMP from libgomp, found at run time.
void SetThisThreadsTorchThreads(int threads) {
  (void)at::get_num_threads();  // LibTorch's lazy per-thread initialization happens first
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) {
    set(threads);
  }
}

// The pool the splits run on; its workers run LibTorch single-threaded. It is never
// destroyed, but at exit the process waits until every worker has finished that set-up: a
// worker still inside LibTorch's per-thread set-up while exit tears LibTorch down corrupted
// the heap (FusedOps.SwiGluSplitOverThreadsIsBitIdentical, whose only split comes at the
// end of a short process, aborted at exit with "malloc_consolidate(): unaligned fastbin chunk
// detected" in 28 of 150 runs).
SplitPool& Pool() {
  static auto* pool = [] {
    auto* p = new SplitPool([] { SetThisThreadsTorchThreads(1); });
    std::atexit([] { Pool().WaitUntilWorkersStarted(); });
    return p;
  }();
  return *pool;
}

}  // namespace

SerialBlasScope::SerialBlasScope() {
  {
    std::lock_guard<std::mutex> lock(ScopeMutex());
    if (active_scopes++ == 0) {
      auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
      auto* get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
      if (set != nullptr && get != nullptr) {
        saved_blas_threads = get();
        set(1);
        serial_blas.store(true);
      }
    }
  }
  if (scope_depth++ > 0 || !serial_blas.load()) return;
  // LibTorch's own kernels (the element-wise passes between the products) run on this
  // thread alone, and the products on the pool: one set of threads, no OpenMP regions.
  saved_torch_threads = at::get_num_threads();
  split_threads = saved_torch_threads;
  if (split_threads > 1) SetThisThreadsTorchThreads(1);
}

SerialBlasScope::~SerialBlasScope() {
  if (--scope_depth == 0 && split_threads > 0) {
    if (split_threads > 1) SetThisThreadsTorchThreads(saved_torch_threads);
    split_threads = 0;
  }
  std::lock_guard<std::mutex> lock(ScopeMutex());
  if (--active_scopes > 0 || !serial_blas.load()) return;
  serial_blas.store(false);
  reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))(
      saved_blas_threads);
}

int SplitThreads() { return split_threads; }

bool SplitsOn(const at::Tensor& t) { return split_threads > 1 && t.device().is_cpu(); }

void ForEachPart(int64_t n, const at::Tensor& t, const std::function<void(int64_t)>& fn) {
  if (!SplitsOn(t) || n < 2) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  // The workers run each part with the caller's LibTorch thread-local state (grad mode off
  // inside an autograd Function's forward, for one), and an exception in a part is rethrown
  // here.
  const at::ThreadLocalState state;
  std::mutex mu;
  std::exception_ptr error;
  Pool().Run(n, split_threads, [&](int64_t i) {
    try {
      at::ThreadLocalStateGuard guard(state);
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

void ParallelRows(int64_t rows, int64_t grain, const at::Tensor& t,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  if (!SplitsOn(t)) {
    fn(0, rows);
    return;
  }
  const int64_t parts = std::max<int64_t>(
      1, std::min<int64_t>(split_threads, rows / std::max<int64_t>(1, grain)));
  ForEachPart(parts, t, [&](int64_t part) {
    const auto [begin, end] = PartRange(rows, part, parts);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace tessera::lm::internal
