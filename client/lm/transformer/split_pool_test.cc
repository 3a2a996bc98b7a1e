// SplitPool (split_pool.h): which parts run, on which threads, and that the caller never
// waits for a worker that has not started.
#include "client/lm/transformer/split_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "client/lm/transformer/test_rendezvous.h"

namespace tessera::lm::internal {
namespace {

TEST(SplitPool, RunsEveryPartExactlyOnce) {
  SplitPool pool(nullptr);
  for (int threads : {1, 2, 3, 8}) {
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep) {
        pool.Run(n, threads, [&](int64_t i) { calls[static_cast<size_t>(i)].fetch_add(1); });
      }
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 20) << threads << " " << n << " " << i;
      }
    }
  }
  EXPECT_EQ(pool.workers(), 7);  // threads - 1 for the largest thread count asked for
}

TEST(SplitPool, PartsRunConcurrentlyOnTwoThreads) {
  SplitPool pool(nullptr);
  // Each of the two parts waits (up to a minute) until both have started: only two threads
  // at once get past it.
  std::atomic<int> started{0};
  std::mutex mu;
  std::set<std::thread::id> ids;
  bool both = true;
  pool.Run(2, 2, [&](int64_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    if (!ArriveAndWaitForAll(started, 2)) both = false;
  });
  EXPECT_TRUE(both);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);
}

TEST(SplitPool, CallerDoesEveryPartWhileTheWorkersAreHeldUp) {
  // The workers' start hook blocks until the test releases it: every part of every Run must
  // still be done, by the caller, and Run must return.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  SplitPool pool([released] { released.wait(); });
  const std::thread::id caller = std::this_thread::get_id();
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<int> calls(6, 0);
    bool only_caller = true;
    pool.Run(6, 4, [&](int64_t i) {
      ++calls[static_cast<size_t>(i)];
      only_caller = only_caller && std::this_thread::get_id() == caller;
    });
    EXPECT_TRUE(only_caller);
    EXPECT_EQ(calls, std::vector<int>(6, 1));
  }
  EXPECT_EQ(pool.workers(), 3);
  release.set_value();  // the destructor joins the workers
}

TEST(SplitPool, NestedAndConcurrentRunsCompleteOnTheirCallers) {
  SplitPool pool(nullptr);
  std::atomic<int64_t> sum{0};
  // fn calls Run again: the inner Run finds the pool busy and runs its parts itself.
  pool.Run(4, 2, [&](int64_t i) {
    pool.Run(3, 2, [&](int64_t j) { sum.fetch_add(10 * i + j); });
  });
  // sum over i < 4, j < 3 of 10 i + j = 10 * 6 * 3 + 3 * 4 = 192.
  EXPECT_EQ(sum.load(), 192);
  // Two threads calling Run at the same time: both get all their parts done.
  std::atomic<int64_t> a{0}, b{0};
  std::thread other([&] {
    for (int rep = 0; rep < 200; ++rep) pool.Run(7, 2, [&](int64_t i) { b.fetch_add(i); });
  });
  for (int rep = 0; rep < 200; ++rep) pool.Run(5, 2, [&](int64_t i) { a.fetch_add(i); });
  other.join();
  EXPECT_EQ(a.load(), 200 * 10);  // 0 + 1 + 2 + 3 + 4
  EXPECT_EQ(b.load(), 200 * 21);  // 0 + ... + 6
}

}  // namespace
}  // namespace tessera::lm::internal
