// Test fixture: a CoordinatorState in a fresh temporary directory, reopened at will (what a
// coordinator restart sees). Shared by the audit and provenance store tests.
#ifndef TESSERA_COORDINATOR_STATE_STATE_TEST_FIXTURE_H_
#define TESSERA_COORDINATOR_STATE_STATE_TEST_FIXTURE_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/state/coordinator_state.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {

class StateTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "state_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    state_.reset();
    absl::StatusOr<std::unique_ptr<CoordinatorState>> s = CoordinatorState::Open(dir_);
    ASSERT_THAT(s, IsOk());
    state_ = *std::move(s);
  }

  std::string dir_;
  std::unique_ptr<CoordinatorState> state_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STATE_STATE_TEST_FIXTURE_H_
