// Run provenance in CoordinatorState: stored, replaced and read back across reopening.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"
#include "google/protobuf/util/message_differencer.h"

namespace tessera {
namespace coordinator {
namespace {

using wire::v1::RunProvenance;

RunProvenance MakeProvenance() {
  RunProvenance p;
  p.set_run_id("mnist");
  p.set_created_by("alice");
  p.set_cli_version("0.1.0+abc");
  p.set_coordinator_version("0.1.0+abc");
  p.add_coordinator_versions("0.1.0+abc");
  p.set_initial_model_sha256(std::string(32, '\x01'));
  p.set_created_unix_ms(1700000000000);
  wire::v1::Participant* c = p.add_participants();
  c->set_client("hospital-a");
  c->set_organization("Acme Health");
  c->mutable_data_card()->set_name("chest-xray");
  c->mutable_data_report()->set_examples_rounded(1200);
  return p;
}

using ProvenanceStoreTest = StateTest;

TEST_F(ProvenanceStoreTest, RoundTripsAndSurvivesReopen) {
  EXPECT_THAT(state_->GetProvenance("mnist"), IsOkAndHolds(testing::Eq(std::nullopt)));
  RunProvenance p = MakeProvenance();
  ASSERT_THAT(state_->PutProvenance(p), IsOk());
  p.add_coordinator_versions("0.1.1+def");  // a later coordinator drove a round
  ASSERT_THAT(state_->PutProvenance(p), IsOk());
  Reopen();
  absl::StatusOr<std::optional<RunProvenance>> got = state_->GetProvenance("mnist");
  ASSERT_THAT(got, IsOk());
  ASSERT_TRUE(got->has_value());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(**got, p))
      << (*got)->ShortDebugString();
  EXPECT_THAT(state_->GetProvenance("other"), IsOkAndHolds(testing::Eq(std::nullopt)));
}

TEST_F(ProvenanceStoreTest, RejectsBadRunIdsAndReportsCorruptRecords) {
  RunProvenance p = MakeProvenance();
  p.set_run_id("a/b");
  EXPECT_THAT(state_->PutProvenance(p), StatusIs(absl::StatusCode::kInvalidArgument));
  p.set_run_id("");
  EXPECT_THAT(state_->PutProvenance(p), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(state_->GetProvenance("a/b"), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(state_->TEST_PutRaw("provenance/mnist", "\xff\xff\xff"), IsOk());
  EXPECT_THAT(state_->GetProvenance("mnist"), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera
