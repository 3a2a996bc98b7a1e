// RoundPrivacy alone, at the stations the round loop calls it: the round's charge planned
// against the dataset's ledger, sampling, the task's DP section, clipping, the release (a
// durable charge) and the commit (budget view, next clip norm). Epsilons come from the
// Gaussian mechanism's closed form (gaussian_epsilon_for_tests.h), not from the accountant.
#include "coordinator/round/round_privacy.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/round/gaussian_epsilon_for_tests.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using Dp = wire::v1::DifferentialPrivacyConfig;

constexpr double kZ = 2.0;
constexpr double kDelta = 1e-5;

ArrayRecord Vector(std::vector<float> v) {
  ArrayRecord r;
  const int64_t n = static_cast<int64_t>(v.size());
  r.tensors.push_back(*Tensor::FromFloats("w", {n}, std::move(v)));
  return r;
}

// Central DP, 3 clients all sampled every round (q = 1), noise multiplier 2.
wire::v1::RunConfig CentralConfig(double budget) {
  wire::v1::RunConfig c;
  c.set_name("privacy");
  c.set_rounds(5);
  c.mutable_model()->set_architecture("mlp");
  c.mutable_selection()->set_min_clients(2);
  c.mutable_selection()->set_fraction(1.0);
  Dp* dp = c.mutable_differential_privacy();
  dp->set_mode(Dp::CENTRAL);
  dp->set_noise_multiplier(kZ);
  dp->set_clip_norm(1.0);
  dp->set_population(3);
  dp->set_expected_clients_per_round(3);
  dp->set_epsilon_budget(budget);
  dp->set_delta(kDelta);
  dp->set_dataset("hospital-records");
  return c;
}

class RoundPrivacyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("round-privacy-" + crypto::RandomHexId(6));
    absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
        CoordinatorState::Open(dir_.string());
    ASSERT_THAT(state, IsOk());
    state_ = *std::move(state);
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<RoundPrivacy> Open(double budget) {
    absl::StatusOr<std::unique_ptr<RoundPrivacy>> p =
        RoundPrivacy::Open(CentralConfig(budget), Vector({0, 0}), state_.get(), 4 << 20);
    EXPECT_THAT(p, IsOk());
    return p.ok() ? *std::move(p) : nullptr;
  }
  wire::v1::RoundSummary Summary(uint32_t round, uint32_t attempt = 1) {
    wire::v1::RoundSummary s;
    s.set_round(round);
    s.set_attempt(attempt);
    return s;
  }

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorState> state_;
};

TEST_F(RoundPrivacyTest, OpenRefusesABudgetThatCannotPayForOneRound) {
  // One round costs 2.1657 (closed form); a budget of 2 cannot pay for it.
  ASSERT_GT(GaussianEpsilonForTests(1, kZ, kDelta), 2.0);
  EXPECT_THAT(RoundPrivacy::Open(CentralConfig(2.0), Vector({0, 0}), state_.get(), 4 << 20),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cannot pay for one round")));
}

TEST_F(RoundPrivacyTest, PlanReleaseAndCommitFollowTheLedger) {
  // eps(1) = 2.1657 and eps(2) = 3.1890: a budget of 2.5 pays for exactly one round.
  const double eps1 = GaussianEpsilonForTests(1, kZ, kDelta);
  const double eps2 = GaussianEpsilonForTests(2, kZ, kDelta);
  ASSERT_LT(eps1, 2.5);
  ASSERT_GT(eps2, 2.5);
  std::unique_ptr<RoundPrivacy> p = Open(2.5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->Budget().epsilon_spent(), 0);
  // The release is charged to a stored run.
  storage::v1::RunRecord record;
  record.set_run_id("run-1");
  *record.mutable_config() = CentralConfig(2.5);
  record.set_state(wire::v1::RUNNING);
  TESSERA_ASSERT_OK(state_->CreateRun(record, Vector({0, 0}), ""));

  wire::v1::RoundSummary s = Summary(1);
  absl::StatusOr<storage::v1::PrivacyLedgerRecord> charge = p->PlanRound("run-1", &s);
  ASSERT_THAT(charge, IsOk());
  EXPECT_NEAR(charge->epsilon_spent(), eps1, 1e-9);
  EXPECT_EQ(s.privacy().mode(), "central");
  EXPECT_EQ(s.privacy().clip_norm(), 1.0);
  EXPECT_EQ(s.privacy().sampling_rate(), 1.0);
  EXPECT_NEAR(s.privacy().epsilon(), eps1, 1e-9);
  // Planning stores nothing: the budget view and the ledger are unchanged.
  EXPECT_EQ(p->Budget().epsilon_spent(), 0);

  // Release: the charge is durable and the budget view follows it.
  s.mutable_privacy()->set_released(true);
  s.set_state(wire::v1::ROUND_FAILED);
  s.mutable_privacy()->set_next_clip_norm(0.5);
  TESSERA_ASSERT_OK(p->Release("run-1", s, *charge));
  EXPECT_NEAR(p->Budget().epsilon_spent(), eps1, 1e-9);
  absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> stored =
      state_->GetLedger("hospital-records");
  ASSERT_THAT(stored, IsOk());
  ASSERT_TRUE(stored->has_value());
  EXPECT_NEAR((*stored)->epsilon_spent(), eps1, 1e-9);

  // A failed attempt does not move the clip norm; the next round would reach eps(2) > 2.5.
  wire::v1::RoundSummary next = Summary(1, 2);
  EXPECT_THAT(p->PlanRound("run-1", &next),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("spent")));
}

TEST_F(RoundPrivacyTest, OnlyACompletedRoundMovesTheClipNorm) {
  std::unique_ptr<RoundPrivacy> p = Open(100);
  ASSERT_NE(p, nullptr);
  storage::v1::PrivacyLedgerRecord charge;
  {
    wire::v1::RoundSummary s = Summary(1);
    charge = *p->PlanRound("run-1", &s);
  }
  wire::v1::RoundSummary failed = Summary(1);
  failed.set_state(wire::v1::ROUND_FAILED);
  failed.mutable_privacy()->set_next_clip_norm(0.5);
  p->Commit(charge, failed);
  wire::v1::RoundSummary s = Summary(1, 2);
  ASSERT_THAT(p->PlanRound("run-1", &s), IsOk());
  EXPECT_EQ(s.privacy().clip_norm(), 1.0);

  wire::v1::RoundSummary completed = Summary(1, 2);
  completed.set_state(wire::v1::ROUND_COMPLETED);
  completed.mutable_privacy()->set_next_clip_norm(0.5);
  p->Commit(charge, completed);
  wire::v1::RoundSummary after = Summary(2);
  ASSERT_THAT(p->PlanRound("run-1", &after), IsOk());
  EXPECT_EQ(after.privacy().clip_norm(), 0.5);
}

TEST_F(RoundPrivacyTest, SamplesFromThePopulationOnly) {
  std::unique_ptr<RoundPrivacy> p = Open(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->population(), 3u);
  // q = expected 3 / population 3 = 1: everyone.
  EXPECT_THAT(p->Sample({"a", "b", "c"}), IsOkAndHolds(ElementsAre("a", "b", "c")));
  EXPECT_THAT(p->Sample({"a", "b", "c", "d"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("more than differential_privacy.population = 3")));
}

TEST_F(RoundPrivacyTest, CentralTaskCarriesModeAndClipOnly) {
  std::unique_ptr<RoundPrivacy> p = Open(100);
  ASSERT_NE(p, nullptr);
  wire::v1::Task task;
  p->Dispatch(0.75, "seed", 2, task);
  EXPECT_EQ(task.dp().mode(), Dp::CENTRAL);
  EXPECT_EQ(task.dp().clip_norm(), 0.75);
  EXPECT_EQ(task.dp().modulus_bits(), 0u);  // distributed DP's fields stay unset
  EXPECT_EQ(task.dp().rotation_seed(), "");
}

TEST(RoundPrivacyClipTest, ClipsToTheNormAndReadsTheUnclippedBit) {
  // (3, 4) has norm 5: clipped to norm 1 it is (0.6, 0.8).
  absl::StatusOr<RoundPrivacy::ClippedUpdate> c =
      RoundPrivacy::Clip(Vector({3, 4}), {{"dp_unclipped", 0}}, Vector({0, 0}), 1.0);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->update.tensors[0].values<float>(),
              ElementsAre(FloatNear(0.6f, 1e-6f), FloatNear(0.8f, 1e-6f)));
  EXPECT_EQ(c->unclipped, 0);
  // Within the clip: unchanged, and the client says so.
  c = RoundPrivacy::Clip(Vector({0.3f, 0.4f}), {{"dp_unclipped", 1}}, Vector({0, 0}), 1.0);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->update.tensors[0].values<float>(),
              ElementsAre(FloatNear(0.3f, 1e-7f), FloatNear(0.4f, 1e-7f)));
  EXPECT_EQ(c->unclipped, 1);
  EXPECT_THAT(RoundPrivacy::Clip(Vector({3, 4}), {{"dp_unclipped", 0.5}}, Vector({0, 0}), 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dp_unclipped")));
  EXPECT_THAT(RoundPrivacy::Clip(Vector({3, 4, 5}), {}, Vector({0, 0}), 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::coordinator
