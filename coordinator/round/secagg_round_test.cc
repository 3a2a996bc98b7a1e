// SecAggRound driven by real SecAggClients (as secagg_harness_test_util.h drives a bare
// SecAggServer), its trace stored in a RocksDB CoordinatorState. Every reply callback is
// counted: accepted messages are answered exactly once, rejected ones never (TearDown).
#include "coordinator/round/secagg_round.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"
#include "privacy/crypto/signature.h"
#include "privacy/secagg/client/secagg_client.h"
#include "privacy/secagg/identity.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Property;
using ::testing::SizeIs;
using ::testing::StartsWith;
using Record = storage::v1::SecAggSessionRecord;
using Code = absl::StatusCode;

constexpr uint32_t kClients = 5;
constexpr uint64_t kMask = (uint64_t{1} << 20) - 1;
constexpr char kSession[] = "session-1";
constexpr uint32_t kRound = 4;

// One Submit and its reply callback.
struct Call {
  uint32_t client = 0;
  bool accepted = false;   // Submit returned OK: the reply must come exactly once
  bool delivered = false;  // handed to the client's state machine
  int calls = 0;
  absl::StatusOr<secagg::v1::ServerToClient> reply = absl::UnknownError("no reply");
};

// Per phase "Name responded/expected", " -name" per silent client, " !name: why" per rejected.
std::vector<std::string> Phases(const wire::v1::SecAggRoundStatus& s) {
  std::vector<std::string> out;
  for (const auto& p : s.phases()) {
    std::string line = absl::StrCat(p.phase(), " ", p.responded(), "/", p.expected());
    for (const auto& name : p.dropped()) absl::StrAppend(&line, " -", name);
    for (const auto& why : p.rejected()) absl::StrAppend(&line, " !", why);
    out.push_back(std::move(line));
  }
  return out;
}

const secagg::ThreatModel kThreat = {.num_clients = kClients, .dropout_fraction = 0.2,
                                     .corrupt_fraction = 0.0};

class SecAggRoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("secagg-round-test-" + crypto::RandomHexId(6));
    auto state = CoordinatorState::Open(dir_.string());
    ASSERT_THAT(state, IsOk());
    state_ = *std::move(state);
    for (uint32_t i = 0; i < kClients; ++i) {
      signers_.push_back(*crypto::Ed25519Signer::Generate());
      // Values near the modulus, so the sum wraps.
      secagg::ClientConfig cc{
          .client_index = i, .session_id = kSession, .round = kRound, .modulus_mask = kMask,
          .inputs = {{"a", {kMask - i, 17 * i + 1, kMask / 2 + i, 3}}, {"b", {i * 1000, kMask}}},
          .weight = 10 + i,
          .sign = [this, i](absl::string_view m) { return signers_[i].Sign(m); },
          .identity = {}, .verify = secagg::InsecureVerifier(), .threat_model = kThreat,
          .max_clients = kClients};
      cc.identity.set_ed25519_public_key(signers_[i].public_key());
      plain_.emplace_back(cc.inputs[0].values);
      plain_[i].insert(plain_[i].end(), cc.inputs[1].values.begin(), cc.inputs[1].values.end());
      plain_[i].push_back(cc.weight);
      clients_.push_back(*secagg::SecAggClient::Create(std::move(cc)));
      pending_[i] = *clients_[i]->Start();
    }
  }

  void TearDown() override {
    round_.reset();  // answers the calls still waiting
    for (const auto& c : calls_) EXPECT_EQ(c->calls, c->accepted ? 1 : 0) << c->client;
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  SecAggRound::Options MakeOptions() {
    // n = 5, C = 0 and D = 1: the complete graph (k = 4) with t > (4 + 0) / 2, t <= 3.
    SecAggRound::Options o{
        .run_id = "run-1", .round = kRound, .attempt = 2, .session_id = kSession, .clients = {},
        .threat_model = kThreat,
        .modulus_mask = kMask, .tensors = {{"a", 4}, {"b", 2}},
        .verify = secagg::InsecureVerifier(), .persist = nullptr};
    for (uint32_t i = 0; i < kClients; ++i) o.clients.push_back(absl::StrCat("site-", i));
    o.persist = [this](const Record& r) -> absl::Status {
      persisted_.push_back(r);
      trace_.push_back(absl::StrCat(Record::State_Name(r.state()), " ", r.status().phases_size(),
                                    " phases, ", Replies(), " replies"));
      return static_cast<int>(persisted_.size()) == fail_persist_at_
                 ? absl::UnavailableError("disk full")
                 : state_->PutSecAggSession(r);
    };
    return o;
  }

  void Create() {
    auto round = SecAggRound::Create(MakeOptions());
    ASSERT_THAT(round, IsOk());
    round_ = *std::move(round);
  }

  // Submits `msg` as client `i`; its reply lands in calls_.
  absl::Status Submit(uint32_t i, const secagg::v1::ClientToServer& msg) {
    auto call = std::make_shared<Call>();
    call->client = i;
    absl::Status s = round_->Submit(i, msg, [call](auto r) {
      ++call->calls;
      call->reply = std::move(r);
    });
    call->accepted = s.ok();
    calls_.push_back(std::move(call));
    return s;
  }

  // Submits every pending client message except those of `silent`.
  void SubmitAll(const std::set<uint32_t>& silent = {}) {
    for (const auto& [i, msg] : pending_) {
      if (silent.count(i) > 0) continue;
      EXPECT_THAT(Submit(i, msg), IsOk()) << "client " << i;
    }
    pending_.clear();
  }

  // Hands each new reply to its client; the client's answer becomes pending.
  void Deliver() {
    for (const auto& c : calls_) {
      if (!c->accepted || c->delivered) continue;
      c->delivered = true;
      ASSERT_EQ(c->calls, 1) << "client " << c->client;
      ASSERT_THAT(c->reply, IsOk());
      auto next = clients_[c->client]->HandleMessage(*c->reply);
      ASSERT_THAT(next, IsOk()) << "client " << c->client;
      if (next->has_value()) pending_[c->client] = **next;
    }
  }

  // One phase: the clients not `silent` submit, the phase closes, the replies go out.
  void RunPhase(const std::set<uint32_t>& silent = {}) {
    SubmitAll(silent);
    EXPECT_EQ(round_->AllResponded(), silent.empty());
    ASSERT_THAT(round_->Advance(), IsOk());
    Deliver();
  }

  // The `n` calls accepted from call number `from` on were each answered once, matching `m`.
  template <typename M>
  void ExpectAnswered(size_t from, size_t n, M m) {
    std::vector<std::shared_ptr<Call>> got;
    for (size_t i = from; i < calls_.size(); ++i) {
      if (calls_[i]->accepted) got.push_back(calls_[i]);
    }
    ASSERT_THAT(got, SizeIs(n));
    for (const auto& c : got) {
      EXPECT_EQ(c->calls, 1) << "client " << c->client;
      EXPECT_THAT(c->reply, m) << "client " << c->client;
    }
  }

  int Replies() const {
    int n = 0;
    for (const auto& c : calls_) n += c->calls;
    return n;
  }

  Record Stored() {
    auto list = state_->ListSecAggSessions();
    EXPECT_THAT(list, IsOkAndHolds(SizeIs(1)));
    return list.ok() && list->size() == 1 ? list->front() : Record();
  }

  // Checks `r` against the plain modular sum of `who`'s inputs and weights, bit for bit.
  void ExpectPlainSum(const absl::StatusOr<secagg::SecAggResult>& r,
                      const std::vector<uint32_t>& who) {
    ASSERT_THAT(r, IsOk());
    std::vector<uint64_t> want(plain_[0].size(), 0), got;
    for (uint32_t c : who) {
      for (size_t j = 0; j < want.size(); ++j) want[j] = (want[j] + plain_[c][j]) & kMask;
    }
    for (const auto& t : r->sums) got.insert(got.end(), t.values.begin(), t.values.end());
    got.push_back(r->weight_sum);
    EXPECT_EQ(got, want);
    EXPECT_EQ(r->survivors, who);
  }

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorState> state_;
  std::vector<crypto::Ed25519Signer> signers_;
  std::vector<std::vector<uint64_t>> plain_;  // per client: "a", "b", then the weight
  std::vector<std::unique_ptr<secagg::SecAggClient>> clients_;
  std::map<uint32_t, secagg::v1::ClientToServer> pending_;
  std::vector<std::shared_ptr<Call>> calls_;
  std::vector<Record> persisted_;  // every Persist call's record
  std::vector<std::string> trace_;  // per Persist call: state, phases, replies made before
  int fail_persist_at_ = 0;         // the Persist call that fails (1-based); 0: none
  std::unique_ptr<SecAggRound> round_;
};

TEST_F(SecAggRoundTest, CompletesWithThePlainSumAndStoresTheTraceBeforeEachPhase) {
  Create();
  for (int phase = 1; phase <= 5; ++phase) RunPhase();
  EXPECT_TRUE(round_->Done());
  for (const auto& c : clients_) EXPECT_TRUE(c->IsCompleted());
  ExpectPlainSum(round_->Result(), {0, 1, 2, 3, 4});
  const wire::v1::SecAggRoundStatus s = round_->Status();
  EXPECT_EQ(s.session_id(), kSession);
  EXPECT_EQ(s.state(), "Completed");
  EXPECT_EQ(s.survivors(), 5u);
  EXPECT_EQ(std::pair(s.degree_k(), s.threshold_t()), std::pair(4u, 3u));
  EXPECT_THAT(Phases(s), ElementsAre("AdvertiseKeys 5/5", "ShareKeys 5/5", "MaskedInput 5/5",
                                     "ConsistencyCheck 5/5", "Unmasking 5/5"));
  // One write at Create and one per phase, each before any reply of that phase went out.
  EXPECT_THAT(trace_, ElementsAre("ACTIVE 1 phases, 0 replies", "ACTIVE 2 phases, 0 replies",
                                  "ACTIVE 3 phases, 5 replies", "ACTIVE 4 phases, 10 replies",
                                  "ACTIVE 5 phases, 15 replies",
                                  "COMPLETED 5 phases, 20 replies"));
  const Record r = Stored();
  EXPECT_EQ(r.state(), Record::COMPLETED);
  EXPECT_EQ(absl::StrCat(r.run_id(), " ", r.round(), " ", r.attempt(), " ", r.session_id()),
            absl::StrCat("run-1 ", kRound, " 2 ", kSession));
  EXPECT_THAT(r.clients(), ElementsAre("site-0", "site-1", "site-2", "site-3", "site-4"));
  EXPECT_EQ(std::pair(r.degree_k(), r.threshold_t()), std::pair(4u, 3u));
  EXPECT_THAT(r.unmask_survivors(), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(r.unmask_dropped(), IsEmpty());
  EXPECT_EQ(Phases(r.status()), Phases(s));
}

TEST_F(SecAggRoundTest, ClientSilentInMaskedInputIsUnmaskedAway) {
  Create();
  RunPhase();
  RunPhase();
  RunPhase({2});  // client 2 never sends its masked input
  // The survivor set was durable before the consistency request went out.
  ASSERT_THAT(persisted_, SizeIs(4));
  EXPECT_THAT(persisted_[3].unmask_dropped(), ElementsAre(2));
  EXPECT_THAT(persisted_[3].unmask_survivors(), ElementsAre(0, 1, 3, 4));
  RunPhase();
  RunPhase();

  ExpectPlainSum(round_->Result(), {0, 1, 3, 4});
  EXPECT_FALSE(clients_[2]->IsCompleted());
  const wire::v1::SecAggRoundStatus s = round_->Status();
  EXPECT_EQ(s.survivors(), 4u);
  EXPECT_THAT(Phases(s), ElementsAre("AdvertiseKeys 5/5", "ShareKeys 5/5",
                                     "MaskedInput 4/5 -site-2", "ConsistencyCheck 4/4",
                                     "Unmasking 4/4"));
  const Record r = Stored();
  EXPECT_EQ(r.state(), Record::COMPLETED);
  EXPECT_THAT(r.unmask_dropped(), ElementsAre(2));
  EXPECT_EQ(Phases(r.status()), Phases(s));
}

TEST_F(SecAggRoundTest, RejectedMessagesAreNeverAnsweredAndListedByName) {
  Create();
  // Client 1 speaks for another session: rejected, and out of the round.
  secagg::v1::ClientToServer wrong = pending_[1];
  wrong.mutable_advertise_keys()->mutable_header()->set_session_id("other-session");
  EXPECT_THAT(Submit(1, wrong), StatusIs(Code::kInvalidArgument, HasSubstr("other-session")));
  pending_.erase(1);
  // A retry of the same bytes takes over the waiting call (the first one is CANCELLED);
  // different bytes while a call waits are refused.
  EXPECT_THAT(Submit(0, pending_[0]), IsOk());
  std::shared_ptr<Call> first = calls_.back();
  EXPECT_THAT(Submit(0, pending_[0]), IsOk());
  EXPECT_EQ(first->calls, 1);
  EXPECT_THAT(first->reply, StatusIs(Code::kCancelled));
  first->delivered = true;
  secagg::v1::ClientToServer other = pending_[0];
  other.mutable_advertise_keys()->set_signature("x");
  EXPECT_THAT(Submit(0, other), StatusIs(Code::kAlreadyExists, HasSubstr("different")));
  pending_.erase(0);
  const secagg::v1::ClientToServer advertise3 = pending_[3];
  SubmitAll();
  EXPECT_TRUE(round_->AllResponded());  // client 1 is no longer expected
  ASSERT_THAT(round_->Advance(), IsOk());
  Deliver();

  // Client 3 replays its advertisement during ShareKeys: rejected too.
  EXPECT_THAT(Submit(3, advertise3), StatusIs(Code::kAlreadyExists, HasSubstr("replayed")));
  EXPECT_THAT(Submit(3, pending_[3]), StatusIs(Code::kFailedPrecondition));
  pending_.erase(3);
  for (int phase = 2; phase <= 5; ++phase) RunPhase();
  ExpectPlainSum(round_->Result(), {0, 2, 4});
  const wire::v1::SecAggRoundStatus s = round_->Status();
  EXPECT_EQ(s.survivors(), 3u);
  EXPECT_THAT(Phases(s), ElementsAre(StartsWith("AdvertiseKeys 4/5 !site-1: message for "
                                                "session 'other-session'"),
                                     StartsWith("ShareKeys 3/4 !site-3: client 3 replayed"),
                                     "MaskedInput 3/3", "ConsistencyCheck 3/3",
                                     "Unmasking 3/3"));
  EXPECT_EQ(Phases(Stored().status()), Phases(s));
}

TEST_F(SecAggRoundTest, TooManyDropoutsAbortAndAnswerTheWaitingOnce) {
  Create();
  RunPhase();
  const size_t from = calls_.size();
  SubmitAll({2, 3, 4});  // ShareKeys needs t + 1 = 4 clients; only 0 and 1 send
  EXPECT_THAT(round_->Advance(), StatusIs(Code::kAborted, HasSubstr("TOO_FEW_CLIENTS")));
  ExpectAnswered(from, 2, IsOkAndHolds(Property(&secagg::v1::ServerToClient::has_aborted, true)));
  EXPECT_TRUE(round_->Done());
  EXPECT_THAT(round_->Result(), StatusIs(Code::kAborted));
  const wire::v1::SecAggRoundStatus s = round_->Status();
  EXPECT_EQ(s.state(), "Aborted");
  EXPECT_THAT(s.abort_reason(), HasSubstr("TOO_FEW_CLIENTS"));
  const Record r = Stored();
  EXPECT_EQ(r.state(), Record::ABORTED);
  EXPECT_THAT(r.abort_reason(), HasSubstr("TOO_FEW_CLIENTS"));
  EXPECT_THAT(Phases(r.status()),
              ElementsAre("AdvertiseKeys 5/5", "ShareKeys 2/5 -site-2 -site-3 -site-4"));
  // A late message is refused, never answered.
  EXPECT_THAT(Submit(2, pending_[2]), StatusIs(Code::kFailedPrecondition));
}

TEST_F(SecAggRoundTest, CancelAnswersTheWaitingOnceAndEndsTheSession) {
  Create();
  RunPhase();
  const size_t from = calls_.size();
  const secagg::v1::ClientToServer late = pending_[3];
  SubmitAll({3, 4});
  const absl::Status why = absl::UnavailableError("the coordinator is stopping the run");
  round_->Cancel(why);
  ExpectAnswered(from, 3, StatusIs(why.code(), why.message()));
  EXPECT_TRUE(round_->Done());
  EXPECT_EQ(round_->Status().abort_reason(), why.message());
  ASSERT_THAT(persisted_, SizeIs(3));
  const Record r = Stored();
  EXPECT_EQ(r.state(), Record::ABORTED);
  EXPECT_EQ(r.abort_reason(), why.message());
  EXPECT_THAT(Phases(r.status()), ElementsAre("AdvertiseKeys 5/5", StartsWith("ShareKeys ")));
  EXPECT_THAT(Submit(3, late), StatusIs(Code::kFailedPrecondition, HasSubstr("stopping")));
  EXPECT_THAT(round_->Advance(), StatusIs(Code::kFailedPrecondition));
  round_->Cancel(absl::CancelledError("again"));  // no-op
  EXPECT_THAT(persisted_, SizeIs(3));
  const absl::Time start = absl::Now();
  round_->WaitForSubmit(start + absl::Seconds(30));  // returns at once when cancelled
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(SecAggRoundTest, PersistFailureAbortsTheSessionAndAnswersUnavailable) {
  fail_persist_at_ = 1;
  EXPECT_THAT(SecAggRound::Create(MakeOptions()),
              StatusIs(Code::kUnavailable, HasSubstr("disk full")));
  persisted_.clear();
  fail_persist_at_ = 2;
  Create();
  const secagg::v1::ClientToServer advertise0 = pending_[0];
  SubmitAll();
  EXPECT_THAT(round_->Advance(), StatusIs(Code::kInternal, HasSubstr("disk full")));
  ExpectAnswered(0, 5, StatusIs(Code::kUnavailable));
  EXPECT_TRUE(round_->Done());
  EXPECT_EQ(round_->Status().state(), "Aborted");
  EXPECT_THAT(Submit(0, advertise0), StatusIs(Code::kFailedPrecondition));
  // The failed write left the stored trace ACTIVE; a restarted coordinator abandons it.
  EXPECT_EQ(Stored().state(), Record::ACTIVE);
  ClientRegistry registry{ClientRegistry::Options{}};
  RunManager runs(RunManagerOptions{}, state_.get(), &registry);
  ASSERT_THAT(runs.Recover(), IsOk());
  const Record r = Stored();
  EXPECT_EQ(r.state(), Record::ABORTED);
  EXPECT_THAT(r.abort_reason(), HasSubstr("restarted during AdvertiseKeys"));
}

TEST_F(SecAggRoundTest, DestructorAnswersTheWaitingWithUnavailable) {
  Create();
  SubmitAll({4});
  EXPECT_EQ(Replies(), 0);
  round_.reset();
  ExpectAnswered(0, 4, StatusIs(Code::kUnavailable));
}

// Record-level DP: a site whose budget cannot pay for the round withdraws before it
// advertises keys; the phase stops waiting for it and the sum is that of the other three.
TEST_F(SecAggRoundTest, ClientWithdrawnBeforeAdvertiseKeysLeavesTheSumOfTheOthers) {
  SecAggRound::Options options = MakeOptions();
  options.clients.resize(4);  // a round of 4: site-0 .. site-3
  auto created = SecAggRound::Create(std::move(options));
  ASSERT_THAT(created, IsOk());
  round_ = *std::move(created);
  pending_.erase(4);
  const secagg::v1::ClientToServer advertise3 = pending_[3];
  // WaitForSubmit wakes on the withdrawal (the driver then sees every remaining answer).
  SubmitAll({3});
  EXPECT_FALSE(round_->AllResponded());
  std::thread withdraw([this] {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_THAT(round_->Withdraw(3, absl::ResourceExhaustedError("budget spent")), IsOk());
  });
  const absl::Time start = absl::Now();
  round_->WaitForSubmit(start + absl::Seconds(30));
  withdraw.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(round_->AllResponded());
  EXPECT_THAT(round_->Pending(), IsEmpty());
  // Gone for good: a second withdrawal or a late message is refused.
  EXPECT_THAT(round_->Withdraw(3, absl::ResourceExhaustedError("again")),
              StatusIs(Code::kFailedPrecondition, HasSubstr("no longer in the round")));
  EXPECT_THAT(round_->Withdraw(7, absl::ResourceExhaustedError("x")),
              StatusIs(Code::kNotFound));
  EXPECT_THAT(Submit(3, advertise3), StatusIs(Code::kFailedPrecondition));
  ASSERT_THAT(round_->Advance(), IsOk());
  Deliver();
  for (int phase = 2; phase <= 5; ++phase) RunPhase();
  ExpectPlainSum(round_->Result(), {0, 1, 2});
  const wire::v1::SecAggRoundStatus s = round_->Status();
  EXPECT_EQ(s.survivors(), 3u);
  EXPECT_THAT(Phases(s), ElementsAre("AdvertiseKeys 3/4 !site-3: budget spent", "ShareKeys 3/3",
                                     "MaskedInput 3/3", "ConsistencyCheck 3/3",
                                     "Unmasking 3/3"));
}

TEST_F(SecAggRoundTest, WithdrawingAWaitingClientAnswersItsCallOnce) {
  Create();
  SubmitAll();
  const size_t from = calls_.size() - 1;  // client 4's call
  ASSERT_EQ(calls_[from]->client, 4u);
  EXPECT_THAT(round_->Withdraw(4, absl::ResourceExhaustedError("budget spent")), IsOk());
  EXPECT_EQ(calls_[from]->calls, 1);
  EXPECT_THAT(calls_[from]->reply, StatusIs(Code::kAborted, HasSubstr("budget spent")));
  calls_[from]->delivered = true;
  ASSERT_THAT(round_->Advance(), IsOk());
  Deliver();
  for (int phase = 2; phase <= 5; ++phase) RunPhase();
  ExpectPlainSum(round_->Result(), {0, 1, 2, 3});
}

// The driver's loop (SecureAggregation::RunPhases): each accepted message wakes WaitForSubmit.
TEST_F(SecAggRoundTest, WaitForSubmitWakesOnEachAcceptedMessage) {
  Create();
  std::thread clients([this] {
    for (const auto& [i, msg] : pending_) {
      absl::SleepFor(absl::Milliseconds(20));
      EXPECT_THAT(Submit(i, msg), IsOk());
    }
  });
  const absl::Time start = absl::Now();
  while (!round_->AllResponded()) round_->WaitForSubmit(start + absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  clients.join();
}

}  // namespace
}  // namespace tessera::coordinator
