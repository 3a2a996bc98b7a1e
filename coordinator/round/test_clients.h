// File: test_clients.h
// Test helpers for clients of a ClientRegistry without gRPC: a client's task stream lands in
// a map of queues the test reads. Shared by the RunManager fixture
// (run_manager_test_fixture.h) and the stage tests that use a registry directly
// (run_governance_test.cc).
#ifndef TESSERA_COORDINATOR_ROUND_TEST_CLIENTS_H_
#define TESSERA_COORDINATOR_ROUND_TEST_CLIENTS_H_

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "coordinator/round/client_registry.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {

// Tasks sent to each client, by client name, oldest first.
using TaskQueues = std::map<std::string, std::vector<wire::v1::Task>>;

// Attaches `session` (of client `name`) with a task stream that appends each task to
// (*tasks)[name] under `*mu`. `mu` and `tasks` must outlive the registry's use of the stream.
inline void AttachToQueue(ClientRegistry& registry, const std::string& session,
                          const std::string& name, absl::Mutex* mu, TaskQueues* tasks) {
  ASSERT_THAT(registry.Attach(session,
                              [mu, tasks, name](const wire::v1::Task& t) {
                                absl::MutexLock l(mu);
                                (*tasks)[name].push_back(t);
                                return true;
                              }),
              IsOk());
}

// Registers `name` of `org` with a data card under `license` ("" = no card) that allows a
// class histogram when `histogram`, and attaches it as AttachToQueue does.
inline void JoinWithDataCard(ClientRegistry& registry, const std::string& name,
                             const std::string& org, const std::string& license, bool histogram,
                             absl::Mutex* mu, TaskQueues* tasks) {
  wire::v1::DataCard card;
  card.set_name(name + " data");
  card.set_license(license);
  card.set_allow_class_histogram(histogram);
  absl::StatusOr<std::string> session =
      registry.Register(name, "cpu", "0.1.0+test", org, license.empty() ? nullptr : &card);
  ASSERT_THAT(session, IsOk());
  AttachToQueue(registry, *session, name, mu, tasks);
}

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_TEST_CLIENTS_H_
