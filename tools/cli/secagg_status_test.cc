#include "tools/cli/secagg_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/cli/format.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

void AddPhase(wire::v1::SecAggRoundStatus& s, const std::string& name, uint32_t expected,
              uint32_t responded, std::initializer_list<const char*> dropped = {},
              std::initializer_list<const char*> rejected = {}) {
  wire::v1::SecAggPhaseStatus* p = s.add_phases();
  p->set_phase(name);
  p->set_expected(expected);
  p->set_responded(responded);
  for (const char* d : dropped) p->add_dropped(d);
  for (const char* r : rejected) p->add_rejected(r);
}

// A round in MaskedInput: one client dropped in ShareKeys, one rejected in MaskedInput.
wire::v1::RoundSummary InProgressRound() {
  wire::v1::RoundSummary r;
  r.set_round(3);
  r.set_attempt(1);
  r.set_state(wire::v1::ROUND_TRAINING);
  r.set_selected(10);
  wire::v1::SecAggRoundStatus& s = *r.mutable_secagg();
  s.set_session_id("3f2a0c1d9e8b7a65");
  s.set_state("MaskedInput");
  s.set_degree_k(9);
  s.set_threshold_t(5);
  s.set_survivors(8);
  AddPhase(s, "AdvertiseKeys", 10, 10);
  AddPhase(s, "ShareKeys", 10, 9, {"c7"});
  AddPhase(s, "MaskedInput", 9, 8, {}, {"c3: bad signature"});
  return r;
}

TEST(SecAggStatusTest, RoundInProgressShowsEveryPhase) {
  EXPECT_EQ(SecAggRoundText(InProgressRound()),
            "  secure aggregation: state MaskedInput, k=9 t=5, survivors 8   "
            "(session 3f2a0c1d...)\n"
            "    AdvertiseKeys     10/10\n"
            "    ShareKeys          9/10  dropped: c7\n"
            "    MaskedInput        8/9   rejected: c3 (bad signature)\n");
}

TEST(SecAggStatusTest, FailedAttemptShowsTheAbortReason) {
  wire::v1::RoundSummary r = InProgressRound();
  r.set_state(wire::v1::ROUND_FAILED);
  wire::v1::SecAggRoundStatus& s = *r.mutable_secagg();
  s.set_state("Aborted");
  s.set_survivors(0);
  s.set_abort_reason("fewer than t=5 survivors");
  s.mutable_phases(1)->add_dropped("c8");
  s.mutable_phases(2)->add_rejected("c4");  // no reason given
  EXPECT_EQ(SecAggRoundText(r),
            "  secure aggregation: state Aborted, k=9 t=5   (session 3f2a0c1d...)\n"
            "    AdvertiseKeys     10/10\n"
            "    ShareKeys          9/10  dropped: c7, c8\n"
            "    MaskedInput        8/9   rejected: c3 (bad signature), c4\n"
            "    aborted: fewer than t=5 survivors\n");
}

TEST(SecAggStatusTest, BeforeKAndTAreDerived) {
  wire::v1::SecAggRoundStatus s;
  s.set_session_id("ab12");
  s.set_state("AdvertiseKeys");
  AddPhase(s, "AdvertiseKeys", 4, 2);
  EXPECT_EQ(SecAggDetailText(s),
            "  secure aggregation: state AdvertiseKeys   (session ab12)\n"
            "    AdvertiseKeys     2/4\n");
}

TEST(SecAggStatusTest, ConsistencyCheckAndUnmaskingAlign) {
  wire::v1::SecAggRoundStatus s;
  s.set_session_id("ab12");
  s.set_state("Unmasking");
  AddPhase(s, "ConsistencyCheck", 8, 7, {"c2"});
  AddPhase(s, "Unmasking", 7, 7);
  EXPECT_EQ(SecAggDetailText(s),
            "  secure aggregation: state Unmasking   (session ab12)\n"
            "    ConsistencyCheck  7/8  dropped: c2\n"
            "    Unmasking         7/7\n");
}

TEST(SecAggStatusTest, CompletedRoundNamesWhoDroppedInWhichPhase) {
  wire::v1::RoundSummary r = InProgressRound();
  r.set_state(wire::v1::ROUND_COMPLETED);
  r.mutable_secagg()->set_state("Completed");
  EXPECT_EQ(SecAggRoundText(r),
            "  secure aggregation: k=9 t=5, survivors 8/10\n"
            "    dropped in ShareKeys: c7\n"
            "    rejected in MaskedInput: c3 (bad signature)\n");
}

// The case: 7 selected, 5 survivors. Before, only "survivors 5/7" was printed.
TEST(SecAggStatusTest, CompletedRoundOfFiveOfSevenNamesBothDropouts) {
  wire::v1::RoundSummary r;
  r.set_round(4);
  r.set_state(wire::v1::ROUND_COMPLETED);
  r.set_selected(7);
  wire::v1::SecAggRoundStatus& s = *r.mutable_secagg();
  s.set_state("Completed");
  s.set_degree_k(6);
  s.set_threshold_t(4);
  s.set_survivors(5);
  AddPhase(s, "AdvertiseKeys", 7, 7);
  AddPhase(s, "ShareKeys", 7, 6, {"site-f"});
  AddPhase(s, "MaskedInput", 6, 5, {"site-b"});
  AddPhase(s, "ConsistencyCheck", 5, 5);
  AddPhase(s, "Unmasking", 5, 5);
  EXPECT_EQ(SecAggRoundText(r),
            "  secure aggregation: k=6 t=4, survivors 5/7\n"
            "    dropped in ShareKeys: site-f\n"
            "    dropped in MaskedInput: site-b\n");
  // Nobody dropped: one line.
  for (auto& p : *s.mutable_phases()) p.clear_dropped();
  s.set_survivors(7);
  EXPECT_EQ(SecAggRoundText(r), "  secure aggregation: k=6 t=4, survivors 7/7\n");
}

TEST(SecAggStatusTest, NothingWithoutSecAgg) {
  wire::v1::RoundSummary r = InProgressRound();
  r.clear_secagg();
  EXPECT_EQ(SecAggRoundText(r), "");
  EXPECT_EQ(SecAggConfigText(wire::v1::SecureAggregationConfig()), "");
}

TEST(SecAggStatusTest, ConfigLine) {
  wire::v1::SecureAggregationConfig c;
  c.set_enabled(true);
  c.set_dropout_fraction(0.1);
  c.set_corrupt_fraction(0.05);
  c.set_security_bits(40);
  EXPECT_EQ(SecAggConfigText(c),
            "  secure aggregation: on (dropout ≤ 0.1, corrupt ≤ 0.05, σ=40)\n");
}

TEST(SecAggStatusTest, RunStatusTextPutsTheLinesUnderTheirRows) {
  wire::v1::RunStatus status;
  status.set_run_id("r1");
  status.set_name("demo");
  status.set_state(wire::v1::RUNNING);
  status.set_total_rounds(5);
  status.set_completed_rounds(2);
  wire::v1::SecureAggregationConfig& c = *status.mutable_config()->mutable_secure_aggregation();
  c.set_enabled(true);
  c.set_dropout_fraction(0.1);
  c.set_corrupt_fraction(0.1);
  c.set_security_bits(40);
  wire::v1::RoundSummary done = InProgressRound();
  done.set_round(2);
  done.set_state(wire::v1::ROUND_COMPLETED);
  *status.add_rounds() = done;
  *status.add_rounds() = InProgressRound();

  const std::string text = RunStatusText(status);
  EXPECT_EQ(text, absl::StrCat("run r1 (demo): RUNNING, 2/5 rounds completed\n",
                               "  secure aggregation: on (dropout ≤ 0.1, corrupt ≤ 0.1, σ=40)\n",
                               RoundTableHeader(), "\n", RoundTableRow(done), "\n",
                               "  secure aggregation: k=9 t=5, survivors 8/10\n",
                               "    dropped in ShareKeys: c7\n",
                               "    rejected in MaskedInput: c3 (bad signature)\n",
                               RoundTableRow(InProgressRound()), "\n",
                               SecAggRoundText(InProgressRound())));

  status.clear_config();
  for (auto& r : *status.mutable_rounds()) r.clear_secagg();
  EXPECT_THAT(RunStatusText(status), Not(HasSubstr("secure aggregation")));
}

}  // namespace
}  // namespace tessera::cli
