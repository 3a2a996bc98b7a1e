// VirtualFleet across MPI ranks: rank 0's dispatcher thread, which has the other ranks train
// their shards of the clients (shard_trainer.h) and settles their updates like local ones;
// with partial sums, it collects each rank's sum of a round and merges it into the round
// before that rank's clients report.
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "aggregation/fed_avg.h"
#include "tools/sim/rank_messages.h"
#include "tools/sim/virtual_fleet.h"
#include "tools/sim/virtual_fleet_internal.h"

namespace tessera::sim {
namespace {

// Jobs a rank holds at once: one it trains and one waiting, so it never waits for rank 0.
constexpr size_t kJobsInFlight = 2;
// How often the dispatcher looks for results while jobs are out.
constexpr absl::Duration kPoll = absl::Microseconds(500);

// Whether a task's update may travel in a partial sum: DP clips (or accounts) each update,
// compression's decoding needs each payload, secure aggregation masks each.
bool Foldable(const wire::v1::Task& task) {
  return !task.has_dp() && !task.has_secagg() &&
         task.compression().method() == wire::v1::CompressionConfig::NONE;
}

}  // namespace

void VirtualFleet::Dispatcher() {
  const int ranks = link_->size();
  struct Flight {
    Job job;
    Result result;
    uint64_t partial = 0;
  };
  // A partial sum being collected: one batch's foldable jobs on the other ranks.
  struct Partial {
    std::shared_ptr<Batch> batch;
    std::shared_ptr<const coordinator::ModelSnapshot> model;  // its layout
    std::vector<size_t> jobs;                  // per rank: jobs sent naming this sum
    std::vector<bool> flushed;                 // per rank: FLUSH sent
    std::vector<std::vector<Flight>> folded;   // per rank: answered, values in the sum
  };
  std::map<uint64_t, Partial> partials;     // by number
  std::map<const Batch*, uint64_t> number;  // the open sum of each batch
  uint64_t next_partial = 1;
  std::vector<std::map<uint64_t, Flight>> flights(static_cast<size_t>(ranks));
  // The model each rank has last been sent (held, so a pointer is never reused meanwhile).
  std::vector<std::shared_ptr<const coordinator::ModelSnapshot>> sent(flights.size());
  std::shared_ptr<const coordinator::ModelSnapshot> encoded_for;
  std::string encoded;
  uint64_t next_id = 0;
  size_t out = 0;  // jobs and FLUSHes unanswered, all ranks

  auto fail = [this](Result& r, const absl::Status& s) {
    r.abandon = true;
    r.reason = absl::StrCat("training failed: ", s.message());
    absl::MutexLock l(&mu_);
    if (error_.ok()) error_ = s;
  };
  // Sends one job to its rank, or settles it at once when the virtual clock gives it up.
  auto dispatch = [&](Job job, int rank) {
    Result r = Plan(job);
    const Client& c = *clients_[job.client];
    if (!r.abandon) {
      absl::StatusOr<std::shared_ptr<const coordinator::ModelSnapshot>> model =
          runs_->ModelForTask(job.task.task_id(), c.name);
      uint64_t partial = 0;
      if (partial_sums_ && model.ok() && Foldable(job.task)) {
        auto [at, fresh] = number.try_emplace(job.batch.get(), next_partial);
        partial = at->second;
        if (fresh) {
          ++next_partial;
          Partial& p = partials[partial];
          p.batch = job.batch;
          p.model = *model;
          p.jobs.assign(flights.size(), 0);
          p.flushed.assign(flights.size(), false);
          p.folded.resize(flights.size());
        }
      }
      absl::StatusOr<std::string> job_bytes =
          EncodeJob(JobMessage{next_id, job.client, partial, job.task.SerializeAsString()});
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
        if (partial != 0) ++partials[partial].jobs[static_cast<size_t>(rank)];
        flights[static_cast<size_t>(rank)].emplace(
            next_id++, Flight{std::move(job), std::move(r), partial});
        ++out;
        return;
      }
      fail(r, s);
    }
    Settle(job.batch, job.seq, std::move(r));
  };
  // Merges rank `from`'s PARTIAL into its round, then settles the clients folded into it
  // (their reports must not reach the coordinator before their values).
  auto merge = [&](int from, const std::string& bytes) {
    absl::StatusOr<PartialMessage> m = DecodePartial(bytes);
    auto it = m.ok() ? partials.find(m->partial) : partials.end();
    if (!m.ok() || it == partials.end()) {
      link_->Abort(absl::StrCat("tessera-sim: error: rank 0: from rank ", from, ": ",
                                m.ok() ? absl::StrCat("PARTIAL ", m->partial, " was not asked for")
                                       : m.status().message()));
    }
    --out;
    Partial& p = it->second;
    std::vector<Flight>& folded = p.folded[static_cast<size_t>(from)];
    if (m->sums.empty() != folded.empty()) {
      link_->Abort(absl::StrCat("tessera-sim: error: rank 0: rank ", from, "'s PARTIAL ",
                                m->partial, " does not hold the ", folded.size(),
                                " updates it reported folded"));
    }
    absl::Status s;
    if (!folded.empty()) {
      absl::StatusOr<aggregation::WeightedAccumulator> sums =
          aggregation::WeightedAccumulator::Deserialize(p.model->weights, m->sums);
      s = sums.status();
      if (s.ok() && sums->count() != folded.size()) {
        s = absl::DataLossError(absl::StrCat("the partial sum holds ", sums->count(),
                                             " updates, not ", folded.size()));
      }
      if (s.ok()) {
        const Flight& first = folded.front();
        s = runs_->MergePartialUpdate(first.job.task.task_id(),
                                      clients_[first.job.client]->name, *sums);
      }
    }
    for (Flight& f : folded) {
      if (s.ok()) {
        ++folded_updates_;
      } else {
        f.result.update = nullptr;
        f.result.folded = false;
        fail(f.result, absl::Status(s.code(), absl::StrCat("rank ", from, "'s partial sum: ",
                                                           s.message())));
      }
      Settle(f.job.batch, f.job.seq, std::move(f.result));
    }
    folded.clear();
    p.jobs[static_cast<size_t>(from)] = 0;
    bool done = true;
    for (size_t r = 0; r < p.jobs.size(); ++r) done = done && p.jobs[r] == 0;
    if (done) {
      number.erase(p.batch.get());
      partials.erase(it);
    }
  };
  // Settles a rank's RESULT (or merges its PARTIAL); a message that is neither ends the job
  // (a rank out of step).
  auto receive = [&](int from, const std::string& bytes) {
    if (absl::StatusOr<RankMessageKind> kind = PeekKind(bytes);
        kind.ok() && *kind == RankMessageKind::kPartial) {
      merge(from, bytes);
      return;
    }
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
    if (m->status.ok() && m->folded) {
      if (f.partial == 0) {
        link_->Abort(absl::StrCat("tessera-sim: error: rank 0: rank ", from, " folded job ",
                                  m->id, ", which named no partial sum"));
      }
      f.result.update = std::make_shared<PreparedUpdate>(std::move(m->update));
      f.result.folded = true;
      f.result.update_bytes = m->update_bytes;
      partials[f.partial].folded[static_cast<size_t>(from)].push_back(std::move(f));
      return;
    }
    if (m->status.ok()) {
      f.result.update = std::make_shared<PreparedUpdate>(std::move(m->update));
    } else {
      fail(f.result, absl::Status(m->status.code(),
                                  absl::StrCat("rank ", from, ": ", m->status.message())));
    }
    Settle(f.job.batch, f.job.seq, std::move(f.result));
  };

  while (true) {
    std::vector<std::pair<Job, int>> take;  // and the rank to train it
    std::vector<uint64_t> complete;  // partial sums to ask for
    bool stop = false;
    {
      absl::MutexLock l(&mu_);
      auto room = [&](const Job& j) {
        return flights[static_cast<size_t>(ShardOf(j.client, ranks))].size() < kJobsInFlight;
      };
      auto any_room = [&] {
        for (size_t r = 1; r < flights.size(); ++r) {
          if (flights[r].size() < kJobsInFlight) return true;
        }
        return false;
      };
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        if (any_rank_ && !queue_.empty() && any_room()) return true;
        for (const Job& j : remote_queue_) {
          if (room(j)) return true;
        }
        return false;
      };
      if (out > 0 || !partials.empty()) {
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
          take.emplace_back(std::move(*it), static_cast<int>(rank));
          it = remote_queue_.erase(it);
        } else {
          ++it;
        }
      }
      // Clients that may train anywhere: the oldest queued job to the rank with the fewest
      // jobs out while any has room (rank 0's workers take from the same queue).
      while (any_rank_ && !stop && !queue_.empty()) {
        size_t best = 0;
        for (size_t r = 1; r < flights.size(); ++r) {
          const size_t load = flights[r].size() + taken[r];
          if (load < kJobsInFlight &&
              (best == 0 || load < flights[best].size() + taken[best])) {
            best = r;
          }
        }
        if (best == 0) break;
        ++taken[best];
        take.emplace_back(std::move(queue_.front()), static_cast<int>(best));
        queue_.pop_front();
      }
      // A batch's sums are complete once it will get no more jobs: all its tasks delivered
      // (or a newer batch begun) and none still queued here.
      for (auto& [n, p] : partials) {
        if (p.batch == batch_ && p.batch->assigned < p.batch->expected) continue;
        bool queued = false;
        for (const Job& j : remote_queue_) queued = queued || j.batch == p.batch;
        for (const Job& j : queue_) queued = queued || (any_rank_ && j.batch == p.batch);
        if (!queued) complete.push_back(n);
      }
    }
    if (stop) break;
    for (auto& [job, rank] : take) dispatch(std::move(job), rank);
    // FLUSH after the batch's last JOB to each rank: a rank answers in order.
    for (uint64_t n : complete) {
      Partial& p = partials[n];
      bool any = false;
      for (size_t r = 1; r < p.jobs.size(); ++r) {
        any = any || p.jobs[r] > 0;
        if (p.jobs[r] == 0 || p.flushed[r]) continue;
        p.flushed[r] = true;
        link_->Post(static_cast<int>(r), EncodeFlush(n));
        ++out;
      }
      if (!any) {  // no job went out naming it
        number.erase(p.batch.get());
        partials.erase(n);
      }
    }
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
