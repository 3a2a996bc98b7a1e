// The audit log in CoordinatorState: appends are sealed after the last stored entry, the
// chain continues across reopening, and a raw edit of a stored entry shows in
// VerifyAuditChain.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/provenance/audit_chain.h"

namespace tessera {
namespace coordinator {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using wire::v1::AuditEntry;

AuditEntry Event(absl::string_view action, uint32_t round) {
  AuditEntry e;
  e.set_unix_ms(1700000000000 + round);
  e.set_actor("coordinator");
  e.set_action(std::string(action));
  e.set_run_id("mnist");
  e.set_round(round);
  (*e.mutable_details())["clients"] = absl::StrCat(round * 2);
  return e;
}

class AuditStoreTest : public StateTest {
 protected:
  std::vector<AuditEntry> List() {
    absl::StatusOr<std::vector<AuditEntry>> all = state_->ListAudit();
    EXPECT_THAT(all, IsOk());
    return all.value_or(std::vector<AuditEntry>());
  }
};

TEST_F(AuditStoreTest, EmptyLog) {
  EXPECT_THAT(state_->LastAudit(), IsOkAndHolds(testing::Eq(std::nullopt)));
  EXPECT_TRUE(List().empty());
}

TEST_F(AuditStoreTest, AppendSealsAfterTheLastEntry) {
  AuditEntry given = Event("run.created", 0);
  given.set_seq(42);  // ignored: the store numbers entries
  given.set_hash("forged");
  absl::StatusOr<AuditEntry> first = state_->AppendAudit(given);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->seq(), 1u);
  EXPECT_EQ(first->prev_hash(), provenance::kGenesisHash);
  EXPECT_EQ(first->hash(), provenance::AuditEntryHash(*first));
  absl::StatusOr<AuditEntry> second = state_->AppendAudit(Event("round.committed", 1));
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->seq(), 2u);
  EXPECT_EQ(second->prev_hash(), first->hash());
  absl::StatusOr<std::optional<AuditEntry>> last = state_->LastAudit();
  ASSERT_THAT(last, IsOk());
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->hash(), second->hash());
}

TEST_F(AuditStoreTest, ChainContinuesAcrossReopenAndVerifies) {
  for (uint32_t r = 0; r < 3; ++r) ASSERT_THAT(state_->AppendAudit(Event("round", r)), IsOk());
  const std::string hash3 = List().back().hash();
  Reopen();
  absl::StatusOr<AuditEntry> fourth = state_->AppendAudit(Event("run.stopped", 3));
  ASSERT_THAT(fourth, IsOk());
  EXPECT_EQ(fourth->seq(), 4u);
  EXPECT_EQ(fourth->prev_hash(), hash3);
  // Past the 9th and 10th entries too: keys sort numerically.
  for (uint32_t r = 4; r < 12; ++r) ASSERT_THAT(state_->AppendAudit(Event("round", r)), IsOk());
  Reopen();
  const std::vector<AuditEntry> all = List();
  ASSERT_EQ(all.size(), 12u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq(), i + 1);
  const provenance::AuditVerification v = provenance::VerifyAuditChain(all, nullptr, "");
  EXPECT_TRUE(v.ok()) << testing::PrintToString(v.problems);
}

TEST_F(AuditStoreTest, RawEditOfAStoredEntryIsDetected) {
  for (uint32_t r = 0; r < 4; ++r) ASSERT_THAT(state_->AppendAudit(Event("round", r)), IsOk());
  AuditEntry edited = List()[1];
  (*edited.mutable_details())["clients"] = "999";
  ASSERT_THAT(state_->TEST_PutRaw("audit/00000000000000000002", edited.SerializeAsString()),
              IsOk());
  EXPECT_THAT(provenance::VerifyAuditChain(List(), nullptr, "").problems,
              ElementsAre("entry 2 (seq 2): hash does not match its content (edited?)"));
}

TEST_F(AuditStoreTest, RefusesInvalidUtf8AndReportsCorruptEntries) {
  AuditEntry bad = Event("round", 0);
  (*bad.mutable_details())["note"] = "\xff";
  EXPECT_THAT(state_->AppendAudit(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("details[note]")));
  ASSERT_THAT(state_->AppendAudit(Event("round", 0)), IsOk());
  ASSERT_THAT(state_->TEST_PutRaw("audit/00000000000000000001", "\xff\xff"), IsOk());
  EXPECT_THAT(state_->ListAudit(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(state_->LastAudit(), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera
