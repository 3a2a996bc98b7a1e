// VirtualFleet across MPI ranks: rank 0's dispatcher thread, which has the other ranks train
// their shards of the clients (shard_trainer.h) and settles their updates like local ones.
#include <map>
#include <memory>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/sim/rank_messages.h"
#include "tools/sim/virtual_fleet.h"
#include "tools/sim/virtual_fleet_internal.h"

namespace tessera::sim {
namespace {

// Jobs a rank holds at once: one it trains and one waiting, so it never waits for rank 0.
constexpr size_t kJobsInFlight = 2;
// How often the dispatcher looks for results while jobs are out.
constexpr absl::Duration kPoll = absl::Microseconds(500);

}  // namespace

void VirtualFleet::Dispatcher() {
  const int ranks = link_->size();
  struct Flight {
    Job job;
    Result result;
  };
  std::vector<std::map<uint64_t, Flight>> flights(static_cast<size_t>(ranks));
  // The model each rank has last been sent (held, so a pointer is never reused meanwhile).
  std::vector<std::shared_ptr<const coordinator::ModelSnapshot>> sent(flights.size());
  std::shared_ptr<const coordinator::ModelSnapshot> encoded_for;
  std::string encoded;
  uint64_t next_id = 0;
  size_t out = 0;  // jobs in flight, all ranks

  auto fail = [this](Result& r, const absl::Status& s) {
    r.abandon = true;
    r.reason = absl::StrCat("training failed: ", s.message());
    absl::MutexLock l(&mu_);
    if (error_.ok()) error_ = s;
  };
  // Sends one job to its rank, or settles it at once when the virtual clock gives it up.
  auto dispatch = [&](Job job) {
    Result r = Plan(job);
    const Client& c = *clients_[job.client];
    const int rank = ShardOf(job.client, ranks);
    if (!r.abandon) {
      absl::StatusOr<std::shared_ptr<const coordinator::ModelSnapshot>> model =
          runs_->ModelForTask(job.task.task_id(), c.name);
      absl::StatusOr<std::string> job_bytes =
          EncodeJob(JobMessage{next_id, job.client, job.task.SerializeAsString()});
      absl::Status s = !model.ok() ? model.status() : job_bytes.status();
      if (s.ok() && sent[static_cast<size_t>(rank)] != *model) {
        if (encoded_for != *model) {
          absl::StatusOr<std::string> bytes = EncodeModel((*model)->weights);
          s = bytes.status();
          if (s.ok()) {
            encoded = *std::move(bytes);
            encoded_for = *model;
          }
        }
        if (s.ok()) {
          link_->Post(rank, encoded);
          sent[static_cast<size_t>(rank)] = *model;
        }
      }
      if (s.ok()) {
        runs_->CountBytesDown(job.task.task_id(), (*model)->weights.TotalBytes());
        link_->Post(rank, *std::move(job_bytes));
        flights[static_cast<size_t>(rank)].emplace(next_id++, Flight{std::move(job), std::move(r)});
        ++out;
        return;
      }
      fail(r, s);
    }
    Settle(job.batch, job.seq, std::move(r));
  };
  // Settles a rank's RESULT; a message that is not one ends the job (a rank out of step).
  auto receive = [&](int from, const std::string& bytes) {
    absl::StatusOr<ResultMessage> m = DecodeResult(bytes);
    if (!m.ok()) {
      link_->Abort(absl::StrCat("tessera-sim: error: rank 0: from rank ", from, ": ",
                                m.status().message()));
    }
    auto& mine = flights[static_cast<size_t>(from)];
    auto it = mine.find(m->id);
    if (it == mine.end()) {
      link_->Abort(absl::StrCat("tessera-sim: error: rank 0: rank ", from,
                                " answered job ", m->id, ", which it was not given"));
    }
    Flight f = std::move(it->second);
    mine.erase(it);
    --out;
    if (m->status.ok()) {
      f.result.update = std::make_shared<PreparedUpdate>(std::move(m->update));
    } else {
      fail(f.result, absl::Status(m->status.code(),
                                  absl::StrCat("rank ", from, ": ", m->status.message())));
    }
    Settle(f.job.batch, f.job.seq, std::move(f.result));
  };

  while (true) {
    std::vector<Job> take;
    bool stop = false;
    {
      absl::MutexLock l(&mu_);
      auto room = [&](const Job& j) {
        return flights[static_cast<size_t>(ShardOf(j.client, ranks))].size() < kJobsInFlight;
      };
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        for (const Job& j : remote_queue_) {
          if (room(j)) return true;
        }
        return false;
      };
      if (out > 0) {
        mu_.AwaitWithTimeout(absl::Condition(&ready), kPoll);
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      stop = stopping_;
      // In dispatch order; a rank's own jobs stay in order, so its results do too.
      std::vector<size_t> taken(flights.size(), 0);
      for (auto it = remote_queue_.begin(); !stop && it != remote_queue_.end();) {
        const size_t rank = static_cast<size_t>(ShardOf(it->client, ranks));
        if (flights[rank].size() + taken[rank] < kJobsInFlight) {
          ++taken[rank];
          take.push_back(std::move(*it));
          it = remote_queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (stop) break;
    for (Job& job : take) dispatch(std::move(job));
    while (out > 0) {
      std::optional<std::pair<int, std::string>> m = link_->TryReceive(RankLink::kAnyRank);
      if (!m.has_value()) break;
      receive(m->first, m->second);
    }
  }
  // The run is over: collect what is still out (a rank blocks until its answer is taken),
  // then end every rank.
  while (out > 0) {
    std::pair<int, std::string> m = link_->Receive(RankLink::kAnyRank);
    receive(m.first, m.second);
  }
  for (int r = 1; r < ranks; ++r) link_->Post(r, EncodeStop());
  uint64_t rss = 0;
  for (int r = 1; r < ranks; ++r) {
    std::pair<int, std::string> m = link_->Receive(r);
    absl::StatusOr<uint64_t> peak = DecodeStopped(m.second);
    if (!peak.ok()) {
      link_->Abort(absl::StrCat("tessera-sim: error: rank 0: from rank ", r, " at the end: ",
                                peak.status().message()));
    }
    rss += *peak;
  }
  remote_peak_rss_ = rss;
}

}  // namespace tessera::sim
