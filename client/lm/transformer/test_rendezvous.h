// Test support for the split tests (fused_ops_test, split_pool_test): checks that parts of a
// split really run at the same time.
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_TEST_RENDEZVOUS_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_TEST_RENDEZVOUS_H_

#include <atomic>
#include <chrono>
#include <thread>

namespace tessera::lm::internal {

// Counts the calling part as started and waits, up to a minute, until `parts` parts have
// started. False when they did not: the parts did not all run at once.
inline bool ArriveAndWaitForAll(std::atomic<int>& started, int parts) {
  started.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (started.load() < parts) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_TEST_RENDEZVOUS_H_
