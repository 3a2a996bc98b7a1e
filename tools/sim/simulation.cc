#include "tools/sim/simulation.h"

#include <cmath>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/data/partition.h"
#include "client/runtime/grpc_transport.h"
#include "client/runtime/local_data.h"
#include "client/training/local_model.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/round_strategy.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/service/server.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/config/run_config.h"
#include "core/crypto/sha256.h"
#include "core/model/safetensors.h"
#include "tools/sim/lm_text.h"
#include "tools/sim/shard_trainer.h"
#include "tools/sim/virtual_fleet.h"

namespace tessera::sim {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Wall-clock limits of the in-process coordinator: the config's deadlines are virtual.
constexpr double kWallDeadlineSeconds = 3600;
constexpr double kWallWaitForClientsSeconds = 0.2;

// Completed rounds (or the end of the run), handed from the coordinator's thread to ours.
struct Events {
  absl::Mutex mu;
  std::deque<std::pair<wire::v1::RoundSummary, RoundTiming>> rounds ABSL_GUARDED_BY(mu);
  bool ended ABSL_GUARDED_BY(mu) = false;
  wire::v1::RunStatus last ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<LocalModel>> NewModel(const RunConfigFile& rc,
                                                     const std::string& artifact,
                                                     const std::string& device) {
  if (!rc.config.model().architecture().empty()) {
    return LocalModel::CreateBuiltin(rc.config.model().architecture(), rc.config.model().seed(),
                                     device);
  }
  return LocalModel::LoadTorchScriptBytes(artifact, device);
}

// Across MPI ranks, the options whose clients must share one process with the coordinator.
absl::Status CheckAcrossRanks(const wire::v1::RunConfig& c, const SimulationConfig& sc) {
  constexpr absl::string_view kOne = "; run tessera-sim in one process (without mpirun/srun)";
  if (c.model().has_causal_lm()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.causal_lm: a language-model run keeps its text and base checkpoint in one "
        "process", kOne));
  }
  if (sc.transport == "grpc") {
    return absl::InvalidArgumentError(
        "simulation.transport: \"grpc\" serves the coordinator on this process's loopback; "
        "across MPI ranks updates travel over MPI: use \"in_process\"");
  }
  if (c.secure_aggregation().enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secure_aggregation.enabled: the protocol's clients talk to the coordinator in one "
        "process", kOne));
  }
  if (c.differential_privacy().record().enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "differential_privacy.record: each virtual client's privacy ledger reports to the "
        "coordinator in one process", kOne));
  }
  return absl::OkStatus();
}

// Whether a run's clients keep nothing between tasks (no SCAFFOLD variate, no compression
// error feedback; record-level DP's ledger is refused across ranks), so that any rank may
// train any of them.
bool StatelessClients(const wire::v1::RunConfig& c) {
  return c.strategy().kind() != wire::v1::StrategyConfig::SCAFFOLD &&
         c.compression().method() == wire::v1::CompressionConfig::NONE;
}

// What every rank must agree on: the config file, the command line's overrides, the model's
// program and initial weights, and the training data (each rank reads its own copy).
std::string RankDigest(const std::string& text, const SimulationOptions& o,
                       const wire::v1::RunConfig& config, const Dataset& train) {
  crypto::Sha256 h;
  auto add = [&h](absl::string_view field) {
    h.Update(absl::StrCat(field.size(), ":"));
    h.Update(field);
  };
  add(text);
  add(absl::StrCat(o.output, "|", o.threads, "|", o.device, "|", o.transport, "|", o.limit,
                   "|", o.rounds));
  add(config.model().torchscript_sha256());
  add(config.model().initial_weights_file_sha256());
  add(absl::StrCat(train.size(), "|", train.num_classes, "|",
                   absl::StrJoin(train.example_shape, ",")));
  add(absl::string_view(reinterpret_cast<const char*>(train.labels.data()),
                        train.labels.size() * sizeof(int64_t)));
  add(absl::string_view(reinterpret_cast<const char*>(train.features.data()),
                        train.features.size() * sizeof(float)));
  return std::move(h).Finish();
}

}  // namespace

absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options) {
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(options.config_path));
  const std::string dir = std::filesystem::path(options.config_path).parent_path().string();
  absl::StatusOr<RunConfigFile> parsed = ParseRunConfigToml(text, dir, {"simulation"});
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.config_path, ": ", parsed.status().message()));
  }
  RunConfigFile rc = *std::move(parsed);
  absl::StatusOr<SimulationConfig> sim_config = ParseSimulationConfig(text, dir);
  if (!sim_config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.config_path, ": ", sim_config.status().message()));
  }
  SimulationConfig sc = *std::move(sim_config);
  if (!options.output.empty()) sc.output = options.output;
  if (options.threads > 0) sc.threads = options.threads;
  if (!options.transport.empty()) sc.transport = options.transport;
  if (!options.device.empty()) sc.device = options.device;
  if (options.limit > 0) sc.limit = options.limit;
  if (options.rounds > 0) rc.config.set_rounds(options.rounds);
  RankLink* const link = options.link != nullptr && options.link->size() > 1 ? options.link
                                                                            : nullptr;
  if (link != nullptr) {
    absl::Status s = CheckAcrossRanks(rc.config, sc);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(options.config_path, ": ", s.message()));
    }
    if (sc.threads == 0) sc.threads = 1;  // one rank per core
  }
  const bool lm = rc.config.model().has_causal_lm();
  absl::StatusOr<PartitionSpec> spec = ParsePartitionSpec(sc.partition);
  if (!spec.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.config_path, ": simulation.partition: ", spec.status().message()));
  }

  // Data: the whole dataset in memory once; each virtual client holds indices into it. A
  // language model's text: each client's records in its own JSONL file.
  LocalData data;
  Partition parts;
  std::unique_ptr<LmSimulation> lm_sim;
  if (lm) {
    TESSERA_ASSIGN_OR_RETURN(
        lm_sim, LmSimulation::Create(sc, rc.config.model().causal_lm(), *spec, rc.config.seed()));
    parts = lm_sim->shards().records;
  } else {
    if (!sc.base_checkpoint.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.config_path,
          ": simulation.base_checkpoint: only a [model.causal_lm] run has a base checkpoint"));
    }
    if (sc.dataset.rfind("jsonl:", 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.config_path, ": simulation.dataset: \"jsonl:FILE\" is text, for a "
                               "[model.causal_lm] run; this run's model takes idx: or csv: data"));
    }
    LocalDataOptions data_options;
    data_options.source = sc.dataset;
    data_options.limit = sc.limit;
    TESSERA_ASSIGN_OR_RETURN(data, LoadLocalData(data_options));
    TESSERA_ASSIGN_OR_RETURN(parts, MakePartition(*spec, data.train.labels,
                                                  data.train.num_classes, sc.clients,
                                                  rc.config.seed()));
  }

  std::string artifact;
  if (!rc.torchscript_path.empty()) {
    TESSERA_ASSIGN_OR_RETURN(artifact, ReadFileToString(rc.torchscript_path));
    rc.config.mutable_model()->set_torchscript_sha256(crypto::Sha256Digest(artifact));
  }
  // The initial weights (a language model's: its initial adapter), as `tessera run create`
  // reads them: the file's digest goes into the run's provenance.
  ArrayRecord initial;
  if (!rc.initial_safetensors_path.empty()) {
    absl::StatusOr<std::string> bytes = ReadFileToString(rc.initial_safetensors_path);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("model.initial_weights: ", bytes.status().message()));
    }
    rc.config.mutable_model()->set_initial_weights_file_sha256(crypto::Sha256Digest(*bytes));
    absl::StatusOr<ArrayRecord> read = ParseSafetensors(*bytes);
    if (!read.ok()) {
      return absl::Status(read.status().code(),
                          absl::StrCat("model.initial_weights: ", rc.initial_safetensors_path,
                                       ": ", read.status().message()));
    }
    initial = *std::move(read);
  }
  if (link != nullptr) {
    const std::string mine = RankDigest(text, options, rc.config, data.train);
    const std::string root = link->Broadcast(mine);
    if (root != mine) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this rank's config, command-line overrides or dataset differ from rank 0's "
          "(SHA-256 ", crypto::HexEncode(mine), ", rank 0's ",
          crypto::HexEncode(root), "): every rank must run the same command on the same files"));
    }
  }
  // Across ranks, how updates are weighed and whether they may be summed on their rank
  // (linear strategies) or must travel one by one (robust rules).
  std::optional<coordinator::RoundStrategy> strategy;
  if (link != nullptr) {
    absl::StatusOr<coordinator::RoundStrategy> s =
        coordinator::RoundStrategy::Create(rc.config.strategy(), ArrayRecord(), nullptr);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.config_path, ": strategy: ", s.status().message()));
    }
    strategy = *std::move(s);
    if (link->rank() > 0) {
      ShardTrainer trainer(sc, *spec, rc.config.seed(), &data.train, std::move(parts), artifact,
                           *strategy, StatelessClients(rc.config), link->rank(), link->size());
      TESSERA_RETURN_IF_ERROR(trainer.Serve(*link));
      return SimulationResult();
    }
  }
  // The server-side evaluation of each new global model.
  std::function<absl::StatusOr<EvalResult>(const ArrayRecord&)> evaluate;
  std::unique_ptr<LocalModel> evaluator;
  if (lm && sc.test_every == 0) {
    evaluate = [](const ArrayRecord&) -> absl::StatusOr<EvalResult> {
      return absl::InternalError("no held-out text to evaluate on");
    };
  } else if (lm) {
    absl::StatusOr<EvalResult> before = lm_sim->Evaluate(initial);
    if (!before.ok()) {
      return absl::Status(before.status().code(),
                          absl::StrCat("model.initial_weights: ", rc.initial_safetensors_path,
                                       ": ", before.status().message()));
    }
    LOG(INFO) << "simulation: initial adapter's held-out loss " << before->loss << " over "
              << before->num_examples << " tokens";
    evaluate = [&lm_sim](const ArrayRecord& w) { return lm_sim->Evaluate(w); };
  } else {
    TESSERA_ASSIGN_OR_RETURN(evaluator, NewModel(rc, artifact, sc.device));
    if (initial.tensors.empty()) {
      TESSERA_ASSIGN_OR_RETURN(initial, evaluator->GetWeights());
    } else if (absl::Status s = evaluator->SetWeights(initial); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("model.initial_weights: ",
                                                  rc.initial_safetensors_path, ": ", s.message()));
    }
    evaluate = [&evaluator, &data](const ArrayRecord& w) -> absl::StatusOr<EvalResult> {
      TESSERA_RETURN_IF_ERROR(evaluator->SetWeights(w));
      return evaluator->Evaluate(data.test);
    };
  }

  // The coordinator, as in a deployment but in this process and without TLS.
  const std::string state_dir = sc.output + "/state";
  std::error_code ec;
  std::filesystem::remove_all(state_dir, ec);
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::CoordinatorState> state,
                           coordinator::CoordinatorState::Open(state_dir));
  coordinator::ClientRegistry registry({.max_clients = sc.clients});
  coordinator::RunManagerOptions manager_options;
  manager_options.insecure = true;
  const bool grpc = sc.transport == "grpc";
  const coordinator::CoordinatorServerOptions limits;  // over gRPC: a deployment's defaults
  manager_options.max_message_bytes = grpc ? limits.max_message_bytes : 1ull << 31;
  coordinator::RunManager runs(manager_options, state.get(), &registry);

  wire::v1::RunConfig config = rc.config;
  const double virtual_deadline = config.round().deadline_seconds();
  config.mutable_round()->set_deadline_seconds(kWallDeadlineSeconds);
  config.mutable_selection()->set_wait_for_clients_seconds(kWallWaitForClientsSeconds);
  config.mutable_evaluation()->set_every(0);  // evaluated here, on the server side
  TESSERA_ASSIGN_OR_RETURN(wire::v1::RunStatus created,
                           runs.CreateRun(config, std::move(initial), artifact));
  const std::string run_id = created.run_id();

  std::unique_ptr<coordinator::LoopbackFleetServer> loopback;  // outlives the fleet's calls
  std::shared_ptr<FleetChannel> channel;
  if (grpc) {
    TESSERA_ASSIGN_OR_RETURN(loopback, coordinator::LoopbackFleetServer::Start(
                                           &runs, &registry, state.get(), limits));
    FleetChannelOptions o;
    o.address = absl::StrCat("127.0.0.1:", loopback->port());
    o.insecure = true;  // one process, loopback only
    TESSERA_ASSIGN_OR_RETURN(channel, MakeFleetChannel(o));
  }
  VirtualFleet fleet(sc, *spec, config.seed(), virtual_deadline, &data.train, std::move(parts), &runs,
                     &registry);
  if (channel != nullptr) fleet.UseGrpc(channel);
  if (link != nullptr) {
    fleet.UseRanks(link, !strategy->HoldsUpdates(), StatelessClients(rc.config));
  }
  if (lm_sim != nullptr) {
    fleet.UseText(sc.base_checkpoint, lm_sim->shards().paths, lm_sim->shards().train_examples);
  }
  TESSERA_RETURN_IF_ERROR(fleet.Start());
  fleet.SetOnline(1, 0);

  Events events;
  double virtual_clock = 0;
  uint32_t seen = 0;
  TESSERA_ASSIGN_OR_RETURN(
      uint64_t watcher, runs.AddWatcher(run_id, [&](const wire::v1::RunStatus& s) {
        // The driver thread: before the next round selects, settle this one's virtual time
        // and decide who is online next.
        fleet.OnStatus(s);
        const bool ended = s.state() == wire::v1::COMPLETED || s.state() == wire::v1::FAILED ||
                           s.state() == wire::v1::CANCELLED;
        std::vector<std::pair<wire::v1::RoundSummary, RoundTiming>> done;
        while (seen < s.completed_rounds()) {
          ++seen;
          for (const wire::v1::RoundSummary& r : s.rounds()) {
            if (r.round() != seen || r.state() != wire::v1::ROUND_COMPLETED) continue;
            RoundTiming t = fleet.FinishRound(seen);
            virtual_clock += t.virtual_seconds;
            done.emplace_back(r, t);
          }
          if (!ended) fleet.SetOnline(seen + 1, virtual_clock);
        }
        absl::MutexLock l(&events.mu);
        for (auto& d : done) events.rounds.push_back(std::move(d));
        events.ended = events.ended || ended;
        events.last = s;
      }));
  const absl::Time start = absl::Now();
  TESSERA_RETURN_IF_ERROR(runs.StartRun(run_id).status());

  SimulationResult result;
  result.run.name = config.name();
  result.run.strategy = std::string(StrategyName(config.strategy().kind()));
  result.run.partition = PartitionSpecToString(*spec);
  result.run.clients = sc.clients;
  result.run.threads = sc.threads;
  result.run.seed = config.seed();
  while (true) {
    std::pair<wire::v1::RoundSummary, RoundTiming> next;
    {
      absl::MutexLock l(&events.mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(events.mu) {
        return !events.rounds.empty() || events.ended;
      };
      events.mu.Await(absl::Condition(&ready));
      if (events.rounds.empty()) break;
      next = std::move(events.rounds.front());
      events.rounds.pop_front();
    }
    const wire::v1::RoundSummary& s = next.first;
    RoundRow row;
    row.round = s.round();
    row.selected = s.selected();
    row.completed = s.reported();
    row.dropped = s.dropped();
    row.train_loss = s.train_loss() != 0 ? s.train_loss() : kNaN;
    row.epsilon = s.has_privacy() ? s.privacy().epsilon() : kNaN;
    row.bytes_up = s.bytes_up();
    row.bytes_down = s.bytes_down();
    row.wall_seconds = s.seconds();
    row.virtual_seconds = next.second.virtual_seconds;
    row.train_seconds = next.second.train_seconds;
    row.examples = next.second.examples_processed;
    row.steps = next.second.steps;
    row.test_loss = row.test_accuracy = kNaN;
    if (sc.test_every > 0 &&
        (s.round() % sc.test_every == 0 || s.round() == config.rounds())) {
      TESSERA_ASSIGN_OR_RETURN(coordinator::RunManager::Export model,
                               runs.ExportModel(run_id, static_cast<int32_t>(s.round())));
      TESSERA_ASSIGN_OR_RETURN(EvalResult eval, evaluate(model.model->weights));
      row.test_loss = eval.loss;
      row.test_accuracy = eval.accuracy;
    }
    if (options.on_round) options.on_round(row, config.rounds());
    result.rows.push_back(row);
  }
  runs.RemoveWatcher(watcher);
  result.run.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.run.virtual_seconds = virtual_clock;
  wire::v1::RunStatus last;
  {
    absl::MutexLock l(&events.mu);
    last = events.last;
  }
  result.run.state = absl::StrCat(wire::v1::RunState_Name(last.state()), ": ", last.message());
  if (!result.rows.empty()) {  // the final global model's digest (bit-for-bit comparisons)
    absl::StatusOr<coordinator::RunManager::Export> model =
        runs.ExportModel(run_id, static_cast<int32_t>(result.rows.back().round));
    absl::StatusOr<std::string> bytes =
        model.ok() ? SerializeSafetensors(model->model->weights) : model.status();
    if (bytes.ok()) {
      result.run.model_sha256 = crypto::HexEncode(crypto::Sha256Digest(*bytes));
    } else {
      LOG(WARNING) << "no digest of the final model: " << bytes.status();
    }
  }
  runs.Shutdown();
  fleet.Stop();  // across ranks: ends the other ranks, which report their peak RSS
  result.run.peak_rss_bytes = PeakRssBytes();
  result.run.ranks = link != nullptr ? static_cast<uint32_t>(link->size()) : 1;
  result.run.peak_rss_bytes_all_ranks =
      result.run.peak_rss_bytes + fleet.remote_peak_rss_bytes();
  result.run.updates_in_partial_sums = fleet.folded_updates();
  TESSERA_RETURN_IF_ERROR(WriteMetrics(sc.output, result.run, result.rows));
  if (options.plot) {
    absl::Status plot = PlotMetrics(
        sc.output, absl::StrCat(config.name(), ": ", result.run.strategy, ", ",
                                result.run.partition, ", ", sc.clients, " clients"));
    if (!plot.ok()) LOG(WARNING) << "no plot: " << plot.message();
  }
  if (last.state() == wire::v1::FAILED) {
    return absl::AbortedError(absl::StrCat("the run failed: ", last.message()));
  }
  TESSERA_RETURN_IF_ERROR(fleet.error());
  return result;
}

}  // namespace tessera::sim
