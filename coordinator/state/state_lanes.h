// File: state_lanes.h
// CoordinatorState::Lanes: the per-record write sequences of the coordinator state
// (see coordinator_state.h). Internal to coordinator/state.
#ifndef TESSERA_COORDINATOR_STATE_STATE_LANES_H_
#define TESSERA_COORDINATOR_STATE_STATE_LANES_H_

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/no_io_mutex.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace coordinator {

class CoordinatorState::Lanes {
 public:
  static absl::StatusOr<std::unique_ptr<Lanes>> Take(CoordinatorState* state,
                                                     std::vector<std::string> lanes,
                                                     absl::string_view what) {
    TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(what));
    NoIoMutexLock l(&state->write_mu_);
    auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->write_mu_) {
      for (const std::string& lane : lanes) {
        if (std::find(state->held_lanes_.begin(), state->held_lanes_.end(), lane) !=
            state->held_lanes_.end()) {
          return false;
        }
      }
      return true;
    };
    state->write_mu_.Await(absl::Condition(&free));
    for (const std::string& lane : lanes) state->held_lanes_.push_back(lane);
    return std::unique_ptr<Lanes>(new Lanes(state, std::move(lanes)));
  }
  ~Lanes() {
    NoIoMutexLock l(&state_->write_mu_);
    for (const std::string& lane : lanes_) {
      auto it = std::find(state_->held_lanes_.begin(), state_->held_lanes_.end(), lane);
      if (it != state_->held_lanes_.end()) state_->held_lanes_.erase(it);
    }
  }
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

 private:
  Lanes(CoordinatorState* state, std::vector<std::string> lanes)
      : state_(state), lanes_(std::move(lanes)) {}
  CoordinatorState* const state_;
  const std::vector<std::string> lanes_;
};

}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_STATE_LANES_H_
