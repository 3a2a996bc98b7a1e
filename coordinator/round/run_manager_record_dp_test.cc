// Record-level DP-SGD in RunManager (record_privacy.h): training tasks carry the run's DP-SGD
// settings, each site's report of its own budget shows in the round summary, a site that
// refuses is dropped from its round at once and never selected again in the run, and bad
// reports are refused with the code and the field that was wrong.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Code = absl::StatusCode;

class RunManagerRecordDpTest : public RunManagerTest {
 protected:
  // Record-level DP alone (no organization-level mode) over a, b and c, all selected.
  static wire::v1::RunConfig RecordConfig(uint32_t rounds, double deadline = 10,
                                          uint32_t eval_every = 0) {
    wire::v1::RunConfig c = Config(rounds, /*per_round=*/3, /*min_clients=*/2, deadline,
                                   eval_every);
    wire::v1::RecordDpConfig* r = c.mutable_differential_privacy()->mutable_record();
    r->set_enabled(true);
    r->set_noise_multiplier(1.1);
    r->set_clip_norm(0.7);
    r->set_expected_batch_size(32);
    r->set_max_physical_batch(16);
    return c;
  }
  static wire::v1::SitePrivacyReport Report(const wire::v1::Task& t, double epsilon) {
    wire::v1::SitePrivacyReport r;
    r.set_task_id(t.task_id());
    r.set_epsilon(epsilon);
    r.set_delta(1e-5);
    r.set_epsilon_budget(8);
    r.set_steps(120);
    r.set_sampling_rate(0.032);
    r.set_accountant("rdp");
    return r;
  }
  static wire::v1::SitePrivacyReport Refusal(const wire::v1::Task& t) {
    wire::v1::SitePrivacyReport r = Report(t, std::numeric_limits<double>::infinity());
    r.set_refused(true);
    r.set_reason("epsilon would reach 8.4 of budget 8");
    return r;
  }
  std::string StartRun(const wire::v1::RunConfig& config) {
    for (const char* c : {"a", "b", "c"}) Connect(c);
    return CreateAndStartRun(config, Weights(0));
  }
  // The last round of the run's status (the one in progress while it runs).
  wire::v1::RoundSummary LastRound(const std::string& run) {
    absl::StatusOr<wire::v1::RunStatus> s = runs_->GetRunStatus(run);
    EXPECT_THAT(s, IsOk());
    return s.ok() && s->rounds_size() > 0 ? s->rounds(s->rounds_size() - 1)
                                          : wire::v1::RoundSummary();
  }
  // "client epsilon/budget delta accountant steps q" or "client refused: reason".
  static std::vector<std::string> Sites(const wire::v1::RoundSummary& r) {
    std::vector<std::string> out;
    for (const wire::v1::SitePrivacy& p : r.site_privacy()) {
      out.push_back(p.refused() ? absl::StrCat(p.client(), " refused: ", p.reason(), " eps ",
                                               p.epsilon())
                                : absl::StrCat(p.client(), " ", p.epsilon(), "/",
                                               p.epsilon_budget(), " ", p.delta(), " ",
                                               p.accountant(), " ", p.steps(), " ",
                                               p.sampling_rate()));
    }
    return out;
  }
};

TEST_F(RunManagerRecordDpTest, TasksCarryDpSgdAndReportsShowInTheRoundSummary) {
  const wire::v1::RunConfig config = RecordConfig(/*rounds=*/1);
  const std::string run = StartRun(config);
  ASSERT_FALSE(run.empty());
  std::map<std::string, wire::v1::Task> tasks;
  for (const char* c : {"a", "b", "c"}) {
    tasks[c] = NextTask(c);
    const wire::v1::Task& t = tasks[c];
    ASSERT_EQ(t.type(), wire::v1::TRAIN);
    // The DpTask is there for DP-SGD alone: no organization-level mode, clip or noise.
    ASSERT_TRUE(t.has_dp());
    EXPECT_EQ(t.dp().mode(), wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED);
    EXPECT_EQ(t.dp().clip_norm(), 0);
    EXPECT_EQ(t.dp().noise_stddev(), 0);
    EXPECT_TRUE(t.dp().record().enabled());
    EXPECT_EQ(t.dp().record().noise_multiplier(), 1.1);
    EXPECT_EQ(t.dp().record().clip_norm(), 0.7);
    EXPECT_EQ(t.dp().record().expected_batch_size(), 32);
    EXPECT_EQ(t.dp().record().max_physical_batch(), 16u);
  }
  // Reports show in the round in progress as they arrive, sorted by client.
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(tasks["b"].task_id(), "b", Report(tasks["b"], 2.5)));
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(tasks["a"].task_id(), "a", Report(tasks["a"], 1.25)));
  wire::v1::RoundSummary live = LastRound(run);
  EXPECT_EQ(live.round(), 1u);
  EXPECT_THAT(Sites(live), ElementsAre("a 1.25/8 1e-05 rdp 120 0.032", "b 2.5/8 1e-05 rdp 120 0.032"));
  wire::v1::SitePrivacyReport pld = Report(tasks["c"], 0.5);
  pld.set_accountant("pld");
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(tasks["c"].task_id(), "c", pld));

  // DP-SGD sites send their example counts and no training loss; they are folded as usual.
  for (const char* c : {"a", "b", "c"}) {
    ASSERT_THAT(runs_->BeginUpdate(tasks[c].task_id(), c), IsOk());
    TESSERA_ASSERT_OK(runs_->SubmitUpdate(tasks[c].task_id(), c, 10, {}, Weights(0.5f, 1), 1));
  }
  const wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 1);
  EXPECT_THAT(Sites(s.rounds(0)),
              ElementsAre("a 1.25/8 1e-05 rdp 120 0.032", "b 2.5/8 1e-05 rdp 120 0.032",
                          "c 0.5/8 1e-05 pld 120 0.032"));
  EXPECT_EQ(s.rounds(0).reported(), 3u);
  EXPECT_EQ(s.rounds(0).num_examples(), 30u);
  EXPECT_FALSE(s.rounds(0).has_privacy());  // no organization-level ledger
  EXPECT_FALSE(s.has_privacy());
  EXPECT_THAT(s.budget_exhausted_clients(), IsEmpty());
  // Plain FedAvg of three updates of 0.5 (no organization-level clipping or noise).
  absl::StatusOr<RunManager::Export> model = runs_->ExportModel(run, -1);
  ASSERT_THAT(model, IsOk());
  EXPECT_FLOAT_EQ((*model).model->weights.tensors[0].values<float>()[0], 0.5f);
  // The committed summary is the stored one: it survives a restart.
  Restart();
  EXPECT_THAT(Sites(runs_->GetRunStatus(run)->rounds(0)), SizeIs(3));
}

TEST_F(RunManagerRecordDpTest, RefusalDropsTheSiteAtOnceAndTheRunStopsSelectingIt) {
  // A 60 s deadline: the round must end when a and b answered, not at the deadline.
  const std::string run = StartRun(RecordConfig(/*rounds=*/2, /*deadline=*/60));
  ASSERT_FALSE(run.empty());
  const absl::Time start = absl::Now();
  wire::v1::Task tc = NextTask("c");
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(tc.task_id(), "c", Refusal(tc)));
  // The refusal is the site's answer: a second report or a late update is refused.
  EXPECT_THAT(runs_->ReportSitePrivacy(tc.task_id(), "c", Report(tc, 1)),
              StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(Answer("c", tc, 0.5f, 10), StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(runs_->GetRunStatus(run)->budget_exhausted_clients(), ElementsAre("c"));
  for (const char* c : {"a", "b"}) {
    wire::v1::Task t = NextTask(c);
    ASSERT_EQ(t.round(), 1u);
    TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(t.task_id(), c, Report(t, 1)));
    TESSERA_ASSERT_OK(Answer(c, t, 0.5f, 10));
  }
  for (int i = 0; i < 500 && runs_->GetRunStatus(run)->completed_rounds() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  wire::v1::RunStatus s = *runs_->GetRunStatus(run);
  ASSERT_GE(s.rounds_size(), 1);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_COMPLETED);
  EXPECT_EQ(s.rounds(0).selected(), 3u);
  EXPECT_EQ(s.rounds(0).reported(), 2u);
  EXPECT_EQ(s.rounds(0).dropped(), 1u);
  // A refusal's infinite epsilon is not kept.
  EXPECT_THAT(Sites(s.rounds(0)),
              ElementsAre("a 1/8 1e-05 rdp 120 0.032", "b 1/8 1e-05 rdp 120 0.032",
                          "c refused: epsilon would reach 8.4 of budget 8 eps 0"));

  // Round 2 goes to a and b only, without waiting for c.
  for (const char* c : {"a", "b"}) {
    wire::v1::Task t = NextTask(c);
    ASSERT_EQ(t.round(), 2u);
    TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(t.task_id(), c, Report(t, 2)));
    TESSERA_ASSERT_OK(Answer(c, t, 0.5f, 10));
  }
  s = AwaitState(run, wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 2);
  EXPECT_EQ(s.rounds(1).selected(), 2u);
  EXPECT_THAT(s.rounds(1).participants(), ElementsAre("a", "b"));
  EXPECT_THAT(s.budget_exhausted_clients(), ElementsAre("c"));
  {
    absl::MutexLock l(&mu_);
    EXPECT_THAT(tasks_["c"], IsEmpty());
  }
  // The stored refusal keeps c out after a restart too.
  Restart();
  EXPECT_THAT(runs_->GetRunStatus(run)->budget_exhausted_clients(), ElementsAre("c"));
}

TEST_F(RunManagerRecordDpTest, BadReportsAreRefusedWithTheirCodeAndField) {
  const std::string run = StartRun(RecordConfig(/*rounds=*/1, /*deadline=*/10, /*eval=*/1));
  ASSERT_FALSE(run.empty());
  const wire::v1::Task t = NextTask("a");
  auto bad = [&](auto change) {
    wire::v1::SitePrivacyReport r = Report(t, 1);
    change(r);
    return runs_->ReportSitePrivacy(t.task_id(), "a", r);
  };
  const double nan = std::nan("");
  EXPECT_THAT(runs_->ReportSitePrivacy(t.task_id(), "b", Report(t, 1)),
              StatusIs(Code::kPermissionDenied));
  EXPECT_THAT(runs_->ReportSitePrivacy("no-such-task", "a", Report(t, 1)),
              StatusIs(Code::kNotFound));
  EXPECT_THAT(bad([](auto& r) { r.set_delta(0); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("delta must be in (0, 1), got 0")));
  EXPECT_THAT(bad([](auto& r) { r.set_delta(1); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("delta")));
  EXPECT_THAT(bad([&](auto& r) { r.set_epsilon(nan); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("epsilon must be finite")));
  EXPECT_THAT(bad([](auto& r) { r.set_epsilon(-0.5); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("epsilon")));
  EXPECT_THAT(bad([](auto& r) { r.set_epsilon_budget(0); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("epsilon_budget")));
  EXPECT_THAT(bad([](auto& r) { r.set_sampling_rate(1.5); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("sampling_rate")));
  EXPECT_THAT(bad([](auto& r) { r.set_accountant("moments"); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("accountant")));
  EXPECT_THAT(bad([](auto& r) { r.set_reason("spent\nFAKE LOG LINE"); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("reason \"spent\\nFAKE")));
  EXPECT_THAT(bad([](auto& r) { r.set_reason(std::string(1025, 'x')); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("reason must be at most 1024 bytes")));
  EXPECT_THAT(bad([](auto& r) { r.set_refused(true); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("reason must say why")));
  // A bare refusal (a site that states no budget has no delta, budget or accountant) still
  // needs its reason; with one it is taken (below, for b).
  EXPECT_THAT(runs_->ReportSitePrivacy(t.task_id(), "a",
                                       [&] {
                                         wire::v1::SitePrivacyReport r;
                                         r.set_task_id(t.task_id());
                                         r.set_refused(true);
                                         return r;
                                       }()),
              StatusIs(Code::kInvalidArgument, HasSubstr("reason must say why")));
  // None of those counted: the first valid report is accepted, a second is not.
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(t.task_id(), "a", Report(t, 1)));
  EXPECT_THAT(runs_->ReportSitePrivacy(t.task_id(), "a", Report(t, 1)),
              StatusIs(Code::kAlreadyExists));
  TESSERA_ASSERT_OK(Answer("a", t, 0.5f, 10));
  const wire::v1::Task tb = NextTask("b");
  wire::v1::SitePrivacyReport bare;
  bare.set_task_id(tb.task_id());
  bare.set_refused(true);
  bare.set_reason("this site states no record-level privacy budget");
  TESSERA_ASSERT_OK(runs_->ReportSitePrivacy(tb.task_id(), "b", bare));
  TESSERA_ASSERT_OK(Answer("c", NextTask("c"), 0.5f, 10));
  // Evaluation tasks take no report (and carry no DP-SGD section).
  const wire::v1::Task e = NextTask("a");
  ASSERT_EQ(e.type(), wire::v1::EVALUATE);
  EXPECT_FALSE(e.dp().record().enabled());
  EXPECT_THAT(runs_->ReportSitePrivacy(e.task_id(), "a", Report(e, 1)),
              StatusIs(Code::kFailedPrecondition, HasSubstr("not a training task")));
}

TEST_F(RunManagerRecordDpTest, RunsWithoutRecordDpTakeNoReport) {
  const std::string run = StartRun(Config(1, 3, 2));
  ASSERT_FALSE(run.empty());
  const wire::v1::Task t = NextTask("a");
  EXPECT_FALSE(t.has_dp());
  EXPECT_THAT(runs_->ReportSitePrivacy(t.task_id(), "a", Report(t, 1)),
              StatusIs(Code::kFailedPrecondition, HasSubstr("does not use record-level DP")));
}

}  // namespace
}  // namespace tessera::coordinator
