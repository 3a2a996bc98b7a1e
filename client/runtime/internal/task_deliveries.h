// File: task_deliveries.h
// Internal to client/runtime: what node_runner.cc does with each copy of a task the
// coordinator sends. A coordinator re-sends every task it has no answer for when the client
// subscribes again (RunManager::ResendOpenTasks), so a copy is normal after a lost
// connection. Each task runs on the one worker thread, never twice at once:
//  - a copy of a queued task is dropped (the queued one runs, with the current session);
//  - a copy of a running task is remembered: the running one's calls use the new session, and
//    if it fails (its upload died with the old connection) it is queued again;
//  - a copy of a task that failed is queued again: the coordinator is still waiting for it;
//  - a copy of an answered task is dropped: an upload the coordinator accepted was recorded
//    before its reply, so such a copy only crossed the reply on the wire.
#ifndef TESSERA_CLIENT_RUNTIME_INTERNAL_TASK_DELIVERIES_H_
#define TESSERA_CLIENT_RUNTIME_INTERNAL_TASK_DELIVERIES_H_

#include <cstddef>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera {

class TaskDeliveries {
 public:
  enum class Action {
    kRun,            // queue it
    kAlreadyQueued,  // drop the copy
    kRunning,        // drop the copy; the running one is run again if it fails
    kAnswered,       // drop the copy
  };
  // Remembers the last `capacity` (>= 1) tasks; older answered or failed ones are forgotten.
  explicit TaskDeliveries(size_t capacity = 1024) : capacity_(capacity < 1 ? 1 : capacity) {}

  // A copy of task `task_id` arrived.
  Action Receive(absl::string_view task_id);
  // The worker takes the task off the queue.
  void Start(absl::string_view task_id);
  // The worker's run of the task ended with `result`. True: a copy arrived while it ran and
  // the run did not answer it, so the caller queues the task again (it is queued again here).
  // ALREADY_EXISTS (the coordinator has its update) counts as answered.
  bool Finish(absl::string_view task_id, const absl::Status& result);

  size_t size() const { return state_.size(); }

 private:
  enum class State { kQueued, kRunning, kRunningResent, kAnswered, kFailed };
  void Forget();

  size_t capacity_;
  absl::flat_hash_map<std::string, State> state_;
  std::deque<std::string> order_;  // arrival order, for Forget
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_INTERNAL_TASK_DELIVERIES_H_
