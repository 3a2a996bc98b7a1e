#include "tools/sim/shard_trainer.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "tools/sim/rank_messages.h"
#include "tools/sim/sim_output.h"
#include "tools/sim/virtual_fleet.h"

namespace tessera::sim {
namespace {

// What TaskExecutor::EnsureModel may ask of a client here: the TorchScript program, which
// this rank read from the run config itself. The rest of the Fleet API is rank 0's.
class ShardTransport : public FleetTransport {
 public:
  ShardTransport(const ArrayRecord* model, const std::string* artifact)
      : model_(model), artifact_(artifact) {}
  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task&) override { return *model_; }
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task&) override {
    return *artifact_;
  }
  absl::Status PushUpdate(const wire::v1::Task&, uint64_t, const std::map<std::string, double>&,
                          const ArrayRecord&) override {
    return Elsewhere("PushUpdate");
  }
  absl::Status PushEvaluation(const wire::v1::Task&, const EvalResult&) override {
    return Elsewhere("PushEvaluation");
  }
  SecAggTransport SecAgg(const wire::v1::Task&) override {
    return [](const secagg::v1::ClientToServer&,
              double) -> absl::StatusOr<secagg::v1::ServerToClient> {
      return Elsewhere("secure aggregation");
    };
  }
  absl::Status ReportData(const wire::v1::Task&, const wire::v1::DataReport&) override {
    return Elsewhere("ReportData");
  }
  absl::Status ReportSitePrivacy(const wire::v1::Task&,
                                 const wire::v1::SitePrivacyReport&) override {
    return Elsewhere("ReportSitePrivacy");
  }

 private:
  static absl::Status Elsewhere(absl::string_view call) {
    return absl::FailedPreconditionError(
        absl::StrCat(call, " is rank 0's: a training rank only trains"));
  }
  const ArrayRecord* model_;
  const std::string* artifact_;
};

}  // namespace

ShardTrainer::ShardTrainer(const SimulationConfig& config, const PartitionSpec& partition,
                           uint64_t seed, const Dataset* train, Partition parts,
                           std::string artifact, coordinator::RoundStrategy strategy,
                           bool any_client, int rank, int ranks)
    : config_(config), seed_(seed), train_(train), artifact_(std::move(artifact)), rank_(rank),
      ranks_(ranks), strategy_(std::move(strategy)), any_client_(any_client) {
  clients_.resize(any_client ? parts.size() : ShardSize(parts.size(), rank, ranks));
  for (size_t i = 0; i < clients_.size(); ++i) {
    const size_t index =
        any_client ? i : static_cast<size_t>(rank) + i * static_cast<size_t>(ranks);
    Client& c = clients_[i];
    c.name = VirtualClientName(index);
    c.indices = std::move(parts[index]);
    if (partition.kind == PartitionSpec::kFeatureNoise) {
      c.noise_std = FeatureNoiseStd(partition.sigma, index, parts.size());
    }
  }
}

absl::StatusOr<PreparedUpdate> ShardTrainer::Train(const wire::v1::Task& task, uint64_t index,
                                                   Client& c, const ArrayRecord& model,
                                                   TaskExecutor& executor) {
  // As VirtualFleet::Worker trains a client of rank 0's (the options refused across ranks,
  // language models and record-level DP, are not here).
  ShardTransport transport(&model, &artifact_);
  TESSERA_RETURN_IF_ERROR(executor.EnsureModel(task, transport));
  TESSERA_ASSIGN_OR_RETURN(Dataset data, Subset(*train_, c.indices));
  if (c.noise_std > 0) AddFeatureNoise(data, c.noise_std, seed_ + index);
  return executor.Train(task, model, data, c.state, c.name);
}

bool ShardTrainer::Fold(uint64_t partial, const PreparedUpdate& p) {
  // What RunManager::SubmitUpdate checks before it folds (the example count's upper bound is
  // the coordinator's option; an update beyond it is refused after its merge, which ends the
  // simulation with that error rather than changing a bit).
  if (p.weight == 0) return false;
  for (const auto& [name, value] : p.metrics) {
    if (!std::isfinite(value)) return false;
  }
  for (const Tensor& t : p.update.tensors) {
    if (!CheckFinite(t).ok()) return false;
  }
  // The partial sum travels as one MPI message (WeightedAccumulator::Serialize: 25 bytes per
  // parameter and the weight sum, plus the count): past its limit the updates travel whole
  // (4 bytes per float32 parameter).
  constexpr uint64_t kSumBytesPerParameter = 25;
  uint64_t parameters = 1;
  for (const Tensor& t : p.update.tensors) parameters += static_cast<uint64_t>(t.numel());
  if (parameters > (kMaxRankMessageBytes - 64) / kSumBytesPerParameter) return false;
  absl::StatusOr<coordinator::UpdateWeight> w = strategy_.Weigh(p.weight, p.metrics);
  if (!w.ok()) return false;
  auto it = partials_.find(partial);
  if (it == partials_.end()) {
    absl::StatusOr<aggregation::WeightedAccumulator> acc =
        aggregation::WeightedAccumulator::Create(p.update);
    if (!acc.ok()) return false;
    it = partials_.emplace(partial, *std::move(acc)).first;
  }
  return it->second.AddFinite(p.update, w->weight).ok();
}

absl::Status ShardTrainer::Serve(RankLink& link) {
  TaskExecutorOptions options;
  options.device = config_.device;
  TaskExecutor executor(options);
  ArrayRecord model;
  bool have_model = false;
  const std::string me = absl::StrCat("rank ", rank_, ": ");
  while (true) {
    std::string bytes = link.Receive(0).second;
    absl::StatusOr<RankMessageKind> kind = PeekKind(bytes);
    if (!kind.ok()) return absl::DataLossError(absl::StrCat(me, kind.status().message()));
    switch (*kind) {
      case RankMessageKind::kModel: {
        absl::StatusOr<ArrayRecord> m = DecodeModel(bytes);
        if (!m.ok()) return absl::DataLossError(absl::StrCat(me, m.status().message()));
        model = *std::move(m);
        have_model = true;
        break;
      }
      case RankMessageKind::kJob: {
        absl::StatusOr<JobMessage> job = DecodeJob(bytes);
        if (!job.ok()) return absl::DataLossError(absl::StrCat(me, job.status().message()));
        wire::v1::Task task;
        if (!task.ParseFromString(job->task)) {
          return absl::DataLossError(absl::StrCat(me, "JOB ", job->id, ": unparsable task"));
        }
        const uint64_t i =
            any_client_ ? job->client : job->client / static_cast<uint64_t>(ranks_);
        if ((!any_client_ && ShardOf(job->client, ranks_) != rank_) || i >= clients_.size()) {
          return absl::FailedPreconditionError(absl::StrCat(
              me, "JOB ", job->id, " is for client ", job->client, ", which this rank of ",
              ranks_, " does not hold"));
        }
        if (!have_model) {
          return absl::FailedPreconditionError(
              absl::StrCat(me, "JOB ", job->id, " came before any MODEL"));
        }
        ResultMessage result;
        result.id = job->id;
        absl::StatusOr<PreparedUpdate> update =
            Train(task, job->client, clients_[i], model, executor);
        if (update.ok()) {
          result.update = *std::move(update);
          if (job->partial != 0 && Fold(job->partial, result.update)) {
            result.folded = true;
            result.update_bytes = result.update.update.TotalBytes();
            result.update.update = ArrayRecord();
          }
        } else {
          result.status = update.status();
        }
        absl::StatusOr<std::string> reply = EncodeResult(result);
        if (!reply.ok()) {  // too large to send: report that instead of the update
          result.status = reply.status();
          result.update = PreparedUpdate();
          reply = EncodeResult(result);
        }
        link.Post(0, *std::move(reply));
        break;
      }
      case RankMessageKind::kFlush: {
        absl::StatusOr<uint64_t> partial = DecodeFlush(bytes);
        if (!partial.ok()) {
          return absl::DataLossError(absl::StrCat(me, partial.status().message()));
        }
        PartialMessage out{*partial, ""};
        auto it = partials_.find(*partial);
        if (it != partials_.end()) {
          out.sums = it->second.Serialize();
          partials_.erase(it);
        }
        absl::StatusOr<std::string> reply = EncodePartial(out);
        if (!reply.ok()) {  // over MPI's message limit (25 bytes per parameter)
          return absl::Status(reply.status().code(), absl::StrCat(me, reply.status().message()));
        }
        link.Post(0, *std::move(reply));
        break;
      }
      case RankMessageKind::kStop:
        TESSERA_RETURN_IF_ERROR(DecodeStop(bytes));
        link.Post(0, EncodeStopped(PeakRssBytes()));
        return absl::OkStatus();
      case RankMessageKind::kResult:
      case RankMessageKind::kStopped:
      case RankMessageKind::kPartial:
        return absl::DataLossError(
            absl::StrCat(me, "rank 0 sent a message only training ranks send"));
    }
  }
}

}  // namespace tessera::sim
