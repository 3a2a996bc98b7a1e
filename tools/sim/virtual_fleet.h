// File: virtual_fleet.h
// The simulator's clients: thousands of virtual clients that each hold only their data
// index, compute speed, availability and strategy state, connected to a real in-process
// coordinator (RunManager, ClientRegistry) and trained with the real client code
// (TaskExecutor), reaching it by direct calls or, optionally, over gRPC on loopback. A pool
// of worker threads, each with one materialized model, trains whichever clients the
// coordinator selects. Updates are handed to the coordinator in the
// order the tasks were dispatched, so a seed gives bit-identical aggregates whatever the
// threads' timing. A virtual clock turns model size, link rate and per-client speed into
// per-client round times; clients that drop out or would miss round.deadline_seconds give
// up their task, as they would in a deployment.
#ifndef TESSERA_TOOLS_SIM_VIRTUAL_FLEET_H_
#define TESSERA_TOOLS_SIM_VIRTUAL_FLEET_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/data/dataset.h"
#include "client/data/partition.h"
#include "client/runtime/grpc_transport.h"
#include "client/runtime/task_executor.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "core/config/simulation_config.h"
#include "tools/sim/rank_link.h"

namespace tessera::sim {

// Virtual client i's name: "client-00042" (five digits and more past 99,999). Training is
// seeded from it, so every rank names a client alike.
std::string VirtualClientName(size_t i);

// What the virtual clock and the workers measured in one round.
struct RoundTiming {
  double virtual_seconds = 0;  // as a deployment would have taken
  double train_seconds = 0;    // summed local training wall time over clients
  uint64_t examples_processed = 0;
  uint64_t steps = 0;  // local optimizer steps summed over clients
  uint32_t stragglers = 0;  // would have missed the deadline
  uint32_t dropouts = 0;
};

class VirtualFleet {
 public:
  // `train` must outlive the fleet; `parts[i]` indexes client i's examples in it.
  VirtualFleet(const SimulationConfig& config, const PartitionSpec& partition, uint64_t seed,
               double virtual_deadline, const Dataset* train, Partition parts, coordinator::RunManager* runs,
               coordinator::ClientRegistry* registry);
  ~VirtualFleet();  // stops the workers
  VirtualFleet(const VirtualFleet&) = delete;
  VirtualFleet& operator=(const VirtualFleet&) = delete;

  // Before Start: the clients fetch models and push updates (or run secure aggregation)
  // over gRPC on `channel`, to the coordinator's Fleet service, instead of direct calls.
  void UseGrpc(std::shared_ptr<FleetChannel> channel) { grpc_ = std::move(channel); }
  // Before Start, for a language-model run: client i reads its text from paths[i] (its
  // `parts` are then record indices) and holds train_examples[i] examples; every client's
  // LmWorkload uses the base checkpoint `base_checkpoint`, loaded once for all (LmBaseCache).
  // A worker builds a client's workload when it trains it and drops it after, so memory is
  // one base plus one adapter set (and its optimizer state) per worker thread.
  void UseText(std::string base_checkpoint, const std::vector<std::string>& paths,
               const std::vector<uint64_t>& train_examples);
  // Before Start, on rank 0 of an MPI job (link->size() > 1): the clients of the other ranks
  // (ShardOf) are trained there; a dispatcher thread sends each rank the round's model and its
  // clients' tasks, two at a time (one training, one waiting), and settles their updates as
  // they come back, so they reach the coordinator in dispatch order as local ones do.
  // With `partial_sums` (a linear strategy), a task without DP, compression or secure
  // aggregation is folded into its rank's exact partial sum for the round, which the rank
  // sends once it has trained all its clients of the round; rank 0 merges it
  // (RunManager::MergePartialUpdate) before it hands in those clients' reports
  // (SubmitFoldedUpdate), in dispatch order.
  // With `any_rank` (clients keep no state between tasks: no SCAFFOLD variate, no
  // compression error feedback), a client is trained wherever there is room: rank 0's
  // workers and the dispatcher take from one queue, the dispatcher handing each job to the
  // rank with the fewest jobs out, so a rank (rank 0 with its coordinator work above all)
  // trains as many clients as it has time for. Otherwise client i trains on rank ShardOf(i),
  // where its state lives.
  void UseRanks(RankLink* link, bool partial_sums, bool any_rank) {
    link_ = link;
    partial_sums_ = partial_sums;
    any_rank_ = any_rank;
  }
  // Updates whose values reached the coordinator in partial sums.
  uint64_t folded_updates() const { return folded_updates_; }
  // Stops the workers and, across ranks, ends the other ranks' training loops after their
  // outstanding jobs (they answer with their peak RSS). The destructor calls it too.
  void Stop();
  // The other ranks' peak RSS summed, known after Stop (0 in one process).
  uint64_t remote_peak_rss_bytes() const { return remote_peak_rss_; }
  // Registers every client (names client-00000, ...); loads the availability trace.
  absl::Status Start();
  // Connects the clients online for `round` at virtual time `now`, disconnects the rest.
  // Returns how many are online.
  size_t SetOnline(uint32_t round, double now);
  // Feed every RunStatus of the run (called on the coordinator's driver thread, before it
  // dispatches the round's tasks).
  void OnStatus(const wire::v1::RunStatus& status);
  // The timing of `round` once its tasks are all settled (blocks until then).
  RoundTiming FinishRound(uint32_t round);
  // The first error a worker hit (training failures are reported to the coordinator as
  // abandoned tasks too).
  absl::Status error();
  // Peak number of updates waiting for their turn (memory check).
  size_t max_pending() const { return max_pending_; }

 private:
  struct Client;
  struct Job;
  struct Result;
  struct Batch;

  bool Deliver(size_t client, const wire::v1::Task& task);
  // The client's Fleet API: in-process calls, or gRPC with its session after UseGrpc.
  std::unique_ptr<FleetTransport> TransportFor(const Client& c);
  void Worker();
  void Submitter();
  void Dispatcher();  // across ranks (virtual_fleet_ranks.cc)
  // Training time, round-trip time and fate of a client's task on the virtual clock.
  Result Plan(const Job& job);
  void Settle(const std::shared_ptr<Batch>& batch, size_t seq, Result result);

  const SimulationConfig config_;
  const uint64_t seed_;
  const double deadline_;
  const Dataset* const train_;
  coordinator::RunManager* const runs_;
  coordinator::ClientRegistry* const registry_;
  std::shared_ptr<FleetChannel> grpc_;  // null: in-process
  std::string base_checkpoint_;         // language-model runs (UseText)
  std::vector<std::unique_ptr<Client>> clients_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Job> remote_queue_ ABSL_GUARDED_BY(mu_);  // for other ranks' clients (pinned)
  std::shared_ptr<Batch> batch_ ABSL_GUARDED_BY(mu_);  // the round being dispatched
  std::map<uint32_t, std::shared_ptr<Batch>> batches_ ABSL_GUARDED_BY(mu_);  // by round
  std::deque<std::shared_ptr<Batch>> submit_order_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  size_t max_pending_ = 0;
  size_t num_workers_ = 1;  // set before the workers start
  std::vector<std::thread> workers_;
  std::thread submitter_;
  RankLink* link_ = nullptr;  // across ranks; the dispatcher's while it runs
  bool partial_sums_ = false;
  bool any_rank_ = false;
  std::atomic<uint64_t> folded_updates_{0};
  std::thread dispatcher_;
  uint64_t remote_peak_rss_ = 0;  // written by the dispatcher before it ends
  std::vector<std::thread> secagg_threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_VIRTUAL_FLEET_H_
