#include "client/runtime/internal/task_deliveries.h"

namespace tessera {

TaskDeliveries::Action TaskDeliveries::Receive(absl::string_view task_id) {
  auto it = state_.find(task_id);
  if (it == state_.end()) {
    state_.emplace(std::string(task_id), State::kQueued);
    order_.push_back(std::string(task_id));
    Forget();
    return Action::kRun;
  }
  switch (it->second) {
    case State::kQueued:
      return Action::kAlreadyQueued;
    case State::kRunning:
    case State::kRunningResent:
      it->second = State::kRunningResent;
      return Action::kRunning;
    case State::kAnswered:
      return Action::kAnswered;
    case State::kFailed:
      it->second = State::kQueued;
      return Action::kRun;
  }
  return Action::kRun;
}

void TaskDeliveries::Start(absl::string_view task_id) {
  auto it = state_.find(task_id);
  if (it != state_.end()) it->second = State::kRunning;
}

bool TaskDeliveries::Finish(absl::string_view task_id, const absl::Status& result) {
  auto it = state_.find(task_id);
  if (it == state_.end()) return false;
  if (result.ok() || absl::IsAlreadyExists(result)) {
    it->second = State::kAnswered;
    return false;
  }
  const bool again = it->second == State::kRunningResent;
  it->second = again ? State::kQueued : State::kFailed;
  return again;
}

void TaskDeliveries::Forget() {
  // Queued and running tasks are kept whatever their age: their copies must still be told apart.
  for (size_t scanned = 0; state_.size() > capacity_ && scanned < order_.size();) {
    auto it = state_.find(order_.front());
    if (it != state_.end() &&
        (it->second == State::kAnswered || it->second == State::kFailed)) {
      state_.erase(it);
      order_.pop_front();
    } else {
      order_.push_back(order_.front());
      order_.pop_front();
      ++scanned;
    }
  }
}

}  // namespace tessera
