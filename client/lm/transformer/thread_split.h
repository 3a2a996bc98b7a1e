// File: thread_split.h
// Internal to client/lm/transformer: how the transformer's products and fused passes are split
// over threads on the CPU. While a SerialBlasScope is alive on a thread, OpenBLAS and
// LibTorch's own kernels run single-threaded there, and the splits below run their parts on a
// SplitPool (split_pool.h), each part a single-threaded BLAS call or pass: one set of threads
// instead of LibTorch's OpenMP team plus OpenBLAS's own pthreads taking turns (the small
// per-head products of attention ran up to 9x slower with OpenBLAS's threads on a loaded
// 2-core machine; LibTorch's OpenMP regions cost more than they gained, issue 18).
// fused_ops.h and fused_pointwise.cc use these; lm_train.cc and causal_lm.cc open the scopes.
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_THREAD_SPLIT_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_THREAD_SPLIT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <utility>

namespace tessera::lm::internal {

// While at least one scope is alive, OpenBLAS (when LibTorch runs on it) is single-threaded
// and the splits below use LibTorch's thread count (at::get_num_threads() on the thread that
// opens its outermost scope) of SplitPool threads instead; the last scope to end restores
// OpenBLAS's thread count. On the thread that opened it, a scope also makes LibTorch's own
// kernels single-threaded until its outermost scope ends. Scopes may overlap across threads
// (the simulator's workers). Without OpenBLAS the scope does nothing and nothing is split.
class SerialBlasScope {
 public:
  SerialBlasScope();
  ~SerialBlasScope();
  SerialBlasScope(const SerialBlasScope&) = delete;
  SerialBlasScope& operator=(const SerialBlasScope&) = delete;
};

// How many threads the splits of this thread use: 0 outside a SerialBlasScope (and on the
// pool's workers), else LibTorch's thread count when the outermost scope began.
int SplitThreads();

// Whether work on `t` is split over threads here: this thread's scope splits (SplitThreads()
// > 1) and `t` is on the CPU.
bool SplitsOn(const at::Tensor& t);

// fn(i) for i in [0, n): over the pool's threads when SplitsOn(t) and n > 1 (each part with
// the caller's LibTorch thread-local state, e.g. grad mode; the first exception a part throws
// is rethrown here once every part has ended), else in order on this thread.
void ForEachPart(int64_t n, const at::Tensor& t, const std::function<void(int64_t)>& fn);

// fn(begin, end) over consecutive ranges covering rows [0, rows): one range per thread (at
// least `grain` rows each) over the pool while SplitsOn(t), else fn(0, rows) on this thread.
void ParallelRows(int64_t rows, int64_t grain, const at::Tensor& t,
                  const std::function<void(int64_t, int64_t)>& fn);

// Rows [begin, end) of `part` of `parts` near-equal parts of `extent`.
inline std::pair<int64_t, int64_t> PartRange(int64_t extent, int64_t part, int64_t parts) {
  return {extent * part / parts, extent * (part + 1) / parts};
}

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_THREAD_SPLIT_H_
