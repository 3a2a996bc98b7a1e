// File: shard_trainer.h
// A tessera-sim rank other than 0 (docs/simulation.md, "Across machines with Open MPI"). It
// holds its shard of the virtual clients (ShardOf in rank_messages.h), or all of them when
// they keep no state between tasks: their example indices
// into its own copy of the dataset, their feature noise and their strategy state (SCAFFOLD's
// variate), and trains whichever of them rank 0 sends a JOB for with the client code rank 0's
// workers run (TaskExecutor), on the round's MODEL, answering each JOB with a RESULT in the
// order the JOBs came, until STOP. Training is seeded from the task and the client's name, so
// a client's update is the same bits on whichever rank trains it. A JOB that names a partial
// sum has its update folded into that exact sum with the strategy's weight (the RESULT then
// carries everything but the values), and FLUSH sends the sum; an update the coordinator
// would refuse (a NaN, a metric that is not finite, no valid weight) travels whole instead,
// so the coordinator refuses it as in one process.
#ifndef TESSERA_TOOLS_SIM_SHARD_TRAINER_H_
#define TESSERA_TOOLS_SIM_SHARD_TRAINER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/data/dataset.h"
#include "client/data/partition.h"
#include "aggregation/fed_avg.h"
#include "client/runtime/task_executor.h"
#include "coordinator/round/round_strategy.h"
#include "core/config/simulation_config.h"
#include "tools/sim/rank_link.h"

namespace tessera::sim {

class ShardTrainer {
 public:
  // `train` must outlive the trainer; `parts[i]` indexes client i's examples in it (only this
  // rank's clients are kept). `artifact`: the run's TorchScript program (empty for a built-in
  // architecture). `strategy` weighs the updates folded into partial sums as the coordinator
  // does (RoundStrategy::Weigh). `any_client`: the clients keep no state between tasks, so
  // rank 0 may send this rank a job for any client (VirtualFleet::UseRanks); every client's
  // indices are kept. Otherwise only this rank's shard.
  ShardTrainer(const SimulationConfig& config, const PartitionSpec& partition, uint64_t seed,
               const Dataset* train, Partition parts, std::string artifact,
               coordinator::RoundStrategy strategy, bool any_client, int rank, int ranks);
  ShardTrainer(const ShardTrainer&) = delete;
  ShardTrainer& operator=(const ShardTrainer&) = delete;

  // Serves rank 0 over `link` until its STOP, which it answers with `peak_rss()`. Errors
  // (the job then ends): a malformed message, a JOB for a client this rank does not hold or
  // before any MODEL. A training error is not one: it goes back to rank 0 in the RESULT.
  absl::Status Serve(RankLink& link);

 private:
  struct Client {
    std::string name;
    std::vector<size_t> indices;
    double noise_std = 0;
    ClientState state;
  };
  absl::StatusOr<PreparedUpdate> Train(const wire::v1::Task& task, uint64_t index,
                                       Client& client, const ArrayRecord& model,
                                       TaskExecutor& executor);
  // Folds `update` into partial sum `partial` when the coordinator would accept it whole;
  // false (nothing folded) otherwise.
  bool Fold(uint64_t partial, const PreparedUpdate& update);

  const SimulationConfig config_;
  const uint64_t seed_;
  const Dataset* const train_;
  const std::string artifact_;
  const int rank_;
  const int ranks_;
  const coordinator::RoundStrategy strategy_;
  const bool any_client_;
  std::vector<Client> clients_;  // client rank_ + i * ranks_ at i (any_client_: client i)
  std::map<uint64_t, aggregation::WeightedAccumulator> partials_;  // until their FLUSH
};

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_SHARD_TRAINER_H_
