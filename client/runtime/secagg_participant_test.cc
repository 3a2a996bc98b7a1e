// The client's own policy on the secure aggregation threat model a task states
// (docs/secagg.md, "What a client checks").
#include "client/runtime/secagg_participant.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

wire::v1::SecAggTask Task(double dropout, double corrupt, uint32_t bits) {
  wire::v1::SecAggTask t;
  t.set_dropout_fraction(dropout);
  t.set_corrupt_fraction(corrupt);
  t.set_security_bits(bits);
  return t;
}

TEST(SecAggPolicyTest, RefusesATaskWeakerThanThePolicyByName) {
  SecAggParticipantOptions policy;
  policy.min_corrupt_fraction = 0.1;
  policy.max_dropout_fraction = 0.3;
  policy.min_security_bits = 40;
  EXPECT_THAT(CheckThreatPolicy(Task(0.2, 0.1, 40), policy), IsOk());
  EXPECT_THAT(CheckThreatPolicy(Task(0.2, 0.05, 40), policy),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("corrupt_fraction 0.05 of the task is below this client's "
                                 "--secagg-min-corrupt-fraction 0.1")));
  EXPECT_THAT(CheckThreatPolicy(Task(0.35, 0.1, 40), policy),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("--secagg-max-dropout-fraction 0.3")));
  EXPECT_THAT(CheckThreatPolicy(Task(0.2, 0.1, 20), policy),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("--secagg-min-security-bits 40")));
  EXPECT_THAT(CheckThreatPolicy(Task(std::nan(""), 0.1, 40), policy),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckThreatPolicy(Task(0.2, 1.0, 40), policy),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A task refused by policy never reaches the protocol: no key is advertised.
TEST(SecAggPolicyTest, ParticipantStopsBeforeAdvertising) {
  wire::v1::Task task;
  *task.mutable_secagg() = Task(0.2, 0.0, 40);
  task.mutable_secagg()->set_session_id("s");
  task.mutable_secagg()->set_num_clients(5);
  SecAggParticipantOptions policy;
  policy.min_corrupt_fraction = 0.1;
  bool sent = false;
  SecAggTransport transport = [&sent](const secagg::v1::ClientToServer&, double)
      -> absl::StatusOr<secagg::v1::ServerToClient> {
    sent = true;
    return absl::UnavailableError("unused");
  };
  EXPECT_THAT(RunSecAggParticipant(task, ArrayRecord(), 10, policy, transport),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("corrupt_fraction")));
  EXPECT_FALSE(sent);
}

}  // namespace
}  // namespace tessera
