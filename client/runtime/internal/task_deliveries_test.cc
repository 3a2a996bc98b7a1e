#include "client/runtime/internal/task_deliveries.h"

#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace tessera {
namespace {

using Action = TaskDeliveries::Action;

// The defect: a task whose run failed when the connection died was re-sent on reconnect and
// dropped as "already received", so its round waited for its deadline.
TEST(TaskDeliveriesTest, ACopyOfATaskThatFailedRunsAgain) {
  TaskDeliveries d;
  ASSERT_EQ(d.Receive("t1"), Action::kRun);
  d.Start("t1");
  EXPECT_FALSE(d.Finish("t1", absl::UnavailableError("Socket closed")));
  EXPECT_EQ(d.Receive("t1"), Action::kRun) << "the coordinator is still waiting for it";
  d.Start("t1");
  EXPECT_FALSE(d.Finish("t1", absl::OkStatus()));
  EXPECT_EQ(d.Receive("t1"), Action::kAnswered);
}

TEST(TaskDeliveriesTest, ACopyOfARunningTaskWaitsAndRunsAgainOnlyIfTheRunFails) {
  TaskDeliveries d;
  ASSERT_EQ(d.Receive("t1"), Action::kRun);
  d.Start("t1");
  EXPECT_EQ(d.Receive("t1"), Action::kRunning) << "never two runs of one task at once";
  EXPECT_EQ(d.Receive("t1"), Action::kRunning);
  EXPECT_TRUE(d.Finish("t1", absl::UnavailableError("upload lost with the old connection")));
  // Queued again by Finish: a further copy is dropped, not queued a second time.
  EXPECT_EQ(d.Receive("t1"), Action::kAlreadyQueued);
  d.Start("t1");
  EXPECT_FALSE(d.Finish("t1", absl::OkStatus()));

  ASSERT_EQ(d.Receive("t2"), Action::kRun);
  d.Start("t2");
  EXPECT_EQ(d.Receive("t2"), Action::kRunning);
  EXPECT_FALSE(d.Finish("t2", absl::OkStatus())) << "its upload answered the copy too";
  EXPECT_EQ(d.Receive("t2"), Action::kAnswered);
}

TEST(TaskDeliveriesTest, AFailedRunWithoutACopyWaitsForTheCoordinatorToResend) {
  TaskDeliveries d;
  ASSERT_EQ(d.Receive("t1"), Action::kRun);
  d.Start("t1");
  // No copy arrived: the task is not run again on the client's own initiative (the round may
  // have closed; the coordinator re-sends only what it still waits for).
  EXPECT_FALSE(d.Finish("t1", absl::FailedPreconditionError("round 3 is closed")));
}

TEST(TaskDeliveriesTest, AlreadyExistsMeansTheCoordinatorHasTheUpdate) {
  TaskDeliveries d;
  ASSERT_EQ(d.Receive("t1"), Action::kRun);
  d.Start("t1");
  ASSERT_EQ(d.Receive("t1"), Action::kRunning);
  EXPECT_FALSE(d.Finish("t1", absl::AlreadyExistsError("task t1 already has an update")));
  EXPECT_EQ(d.Receive("t1"), Action::kAnswered);
}

TEST(TaskDeliveriesTest, ACopyOfAQueuedTaskIsDropped) {
  TaskDeliveries d;
  ASSERT_EQ(d.Receive("t1"), Action::kRun);
  EXPECT_EQ(d.Receive("t1"), Action::kAlreadyQueued);
}

TEST(TaskDeliveriesTest, RemembersAtMostCapacityFinishedTasksButKeepsOpenOnes) {
  TaskDeliveries d(/*capacity=*/2);
  ASSERT_EQ(d.Receive("open"), Action::kRun);  // queued, never started
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_EQ(d.Receive(id), Action::kRun);
    d.Start(id);
    ASSERT_FALSE(d.Finish(id, absl::OkStatus()));
  }
  EXPECT_EQ(d.size(), 2u);  // "open" and "c"
  EXPECT_EQ(d.Receive("open"), Action::kAlreadyQueued) << "an open task is never forgotten";
  EXPECT_EQ(d.Receive("c"), Action::kAnswered) << "the newest finished task is remembered";
  EXPECT_EQ(d.Receive("a"), Action::kRun) << "the oldest finished one was forgotten";
}

}  // namespace
}  // namespace tessera
