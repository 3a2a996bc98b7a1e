// File: task_executor.h
// What a client does with one task, whatever carries it: make sure the model is built,
// fetch the global weights, train (with the run's strategy: FedProx's proximal term,
// SCAFFOLD's control variates, FedNova's step count; with record-level DP-SGD charged to the
// site's own ledger first) or evaluate, and send the result.
// The long-running client (node_runner.h) runs it over gRPC; the simulator (sim/) runs the
// same code for thousands of virtual clients over an in-process transport.
#ifndef TESSERA_CLIENT_RUNTIME_TASK_EXECUTOR_H_
#define TESSERA_CLIENT_RUNTIME_TASK_EXECUTOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/data/dataset.h"
#include "client/runtime/lm_workload.h"
#include "client/runtime/secagg_participant.h"
#include "client/runtime/site_ledger.h"
#include "client/training/local_model.h"
#include "core/model/tensor.h"
#include "core/serde/update_codec.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera {

// How a client reaches the coordinator for one task (the Fleet API of fleet.proto).
class FleetTransport {
 public:
  virtual ~FleetTransport() = default;
  // The task's global model, verified against task.model_sha256().
  virtual absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task& task) = 0;
  // The run's TorchScript program, verified against the task's model spec.
  virtual absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task& task) = 0;
  // `update` is encoded as task.compression() says (CompressUpdate; float32 when unset).
  virtual absl::Status PushUpdate(const wire::v1::Task& task, uint64_t num_examples,
                                  const std::map<std::string, double>& metrics,
                                  const ArrayRecord& update) = 0;
  virtual absl::Status PushEvaluation(const wire::v1::Task& task, const EvalResult& eval) = 0;
  // The secure aggregation exchange of `task` (one call per protocol phase).
  virtual SecAggTransport SecAgg(const wire::v1::Task& task) = 0;
  // What the client tells about its data, answering a TRAIN task's data_report request
  // (data_report.h, docs/data_cards.md). Never called for a task that did not ask.
  virtual absl::Status ReportData(const wire::v1::Task& task,
                                  const wire::v1::DataReport& report) = 0;
  // Record-level DP: what the task costs this site's privacy budget, or its refusal
  // (report.refused), sent before training (site_ledger.h, docs/privacy.md). Never called
  // for a task without dp.record.
  virtual absl::Status ReportSitePrivacy(const wire::v1::Task& task,
                                         const wire::v1::SitePrivacyReport& report) = 0;
};

// What a client keeps from one task to the next.
struct ClientState {
  // SCAFFOLD's client control variate c_i per trainable parameter (empty: all zero).
  ArrayRecord scaffold_variate;
  // The site's record-level privacy ledger (site_ledger.h); nullptr when the site stated no
  // budget, and then it refuses every record-level DP task.
  std::shared_ptr<SiteLedger> ledger;
  // With a ledger, TRAIN tasks without record-level DP are refused unless this is set
  // (tessera-client --train-without-record-dp).
  bool train_without_record_dp = false;
  // Update compression's error feedback (docs/compression.md): what the last encoding of
  // this client's update lost, for its run. In memory only: a restarted client starts again
  // from zero (the lost residual is dropped, not resent).
  ErrorFeedback compression_feedback;
};

// Record-level DP (task.dp().record()): before a TRAIN task trains on `num_examples`
// records, plans its DP-SGD steps against the site's ledger. It refuses — reporting the
// refusal to the coordinator (ReportSitePrivacy, refused) and returning FAILED_PRECONDITION
// "refused: REASON" — when the budget cannot pay, the site has none, has fewer examples than
// the expected batch, the DP-SGD parameters are invalid, the task was already charged once
// (a replay), or (for a site with a ledger, unless state.train_without_record_dp) the task
// has no record-level DP at all. Otherwise it charges the ledger (on disk) and reports the
// site's epsilon after the task. Does nothing for other tasks.
// Errors: the refusal; those of the ledger and of the transport.
absl::Status ChargeSiteBudget(const wire::v1::Task& task, uint64_t num_examples,
                              ClientState& state, FleetTransport& transport);

struct TaskReport {
  wire::v1::TaskType type = wire::v1::TASK_TYPE_UNSPECIFIED;
  TrainResult train;  // TRAIN tasks
  EvalResult eval;    // EVALUATE tasks
  uint32_t secagg_survivors = 0;
};

// A trained update, ready to send.
struct PreparedUpdate {
  ArrayRecord update;  // delta (SCAFFOLD: plus the variate change); DP-clipped if central DP
  uint64_t weight = 0;  // the FedAvg weight: examples (1 for SCAFFOLD)
  std::map<std::string, double> metrics;
  TrainResult train;
};

// What every trained update gets before it is sent: its FedAvg weight (1 when
// `uniform_weight`, as SCAFFOLD's uniform mean, or under any DP; else the example count), the
// metrics a client may release (none that DP would not cover), and, under central DP without
// secure aggregation, the clipping (with the bit adaptive clipping uses).
void FinishUpdate(const wire::v1::Task& task, bool uniform_weight, PreparedUpdate& out);

// Encodes out.update for PushUpdate as task.compression() says (core/serde/update_codec.h),
// adding and keeping the error feedback in `state` when the task asks for it; `seed` drives
// int8's stochastic rounding. Does nothing without compression or with secure aggregation
// (whose quantization is its compression). Errors: INVALID_ARGUMENT from the encoder (a NaN
// or Inf in the update, a float16 overflow, an unknown method).
absl::Status CompressUpdate(const wire::v1::Task& task, uint64_t seed, ClientState& state,
                            PreparedUpdate& out);

// Sends a prepared update: PushUpdate, or the secure aggregation protocol when the task has
// secagg (blocking until the round's secure sum completes). Returns the survivors of the
// secure sum (0 without secure aggregation).
absl::StatusOr<uint32_t> SendUpdate(const wire::v1::Task& task, const PreparedUpdate& prepared,
                                    const SecAggParticipantOptions& secagg,
                                    FleetTransport& transport);

struct TaskExecutorOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  // Benchmark mode: skip training and send a zero update of the right layout.
  bool bench_fixed_update = false;
  // Mixed into the task's seed for local shuffling (the client's name).
  std::string name;
  // Language-model runs (lm_workload.h): the partner's copy of the base checkpoint
  // (--base-checkpoint) and its JSONL text (--data jsonl:FILE).
  std::string base_checkpoint;
  std::string text_path;
};

// Not thread-safe: one executor per thread; it caches one model between tasks.
class TaskExecutor {
 public:
  explicit TaskExecutor(TaskExecutorOptions options);
  ~TaskExecutor();
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  // Runs `task` with `train`/`test` as this client's data, for client `name` (which
  // overrides options.name when not empty: the simulator's executors serve many clients).
  // Errors: those of the transport, of training (LocalModel::Train) and of the update's
  // encoding; INVALID_ARGUMENT for a SCAFFOLD model without its control variate.
  absl::StatusOr<TaskReport> Run(const wire::v1::Task& task, const Dataset& train,
                                 const Dataset& test, ClientState& state,
                                 const SecAggParticipantOptions& secagg,
                                 FleetTransport& transport, absl::string_view name = "");

  // The steps of Run, for callers that schedule them apart (the simulator trains on a
  // pool and sends in a fixed order): build the task's model (fetching a TorchScript
  // program through `transport`), then train on `global` (a language-model task trains on
  // the executor's own text, options.text_path, and ignores `train`).
  absl::Status EnsureModel(const wire::v1::Task& task, FleetTransport& transport);
  absl::StatusOr<PreparedUpdate> Train(const wire::v1::Task& task, const ArrayRecord& global,
                                       const Dataset& train, ClientState& state,
                                       absl::string_view name = "");
  // Evaluates `global` (SCAFFOLD's variate left out) on `test`.
  absl::StatusOr<EvalResult> Evaluate(const ArrayRecord& global, const Dataset& test);

  // The model the last task used (nullptr before the first).
  LocalModel* model() { return model_.get(); }
  // The language-model side (nullptr before the first language-model task).
  LmWorkload* lm() { return lm_.get(); }

 private:
  // A language-model run's task (task.model().causal_lm()).
  absl::StatusOr<PreparedUpdate> TrainLm(const wire::v1::Task& task, const ArrayRecord& global,
                                         absl::string_view name);
  uint64_t Seed(const wire::v1::Task& task, absl::string_view name) const;

  const TaskExecutorOptions options_;
  std::unique_ptr<LocalModel> model_;
  std::string model_key_;  // what model_ was built from
  std::unique_ptr<LmWorkload> lm_;
};

// SCAFFOLD on the client (Karimireddy et al. 2020, option II). `global` holds the model and
// the server variate c ("scaffold.c/X"); `trained` the weights after K steps of rate lr.
// Returns the update to send (trained - model, then c_i+ - c_i for every "scaffold.c/X" of
// `global`, in its order) and replaces state.scaffold_variate with c_i+ = c_i - c +
// (x - y) / (K lr) for the trainable parameters `trainable` (others keep c_i = 0).
absl::StatusOr<ArrayRecord> ScaffoldUpdate(const ArrayRecord& global, const ArrayRecord& trained,
                                           const std::vector<std::string>& trainable,
                                           uint64_t steps, double learning_rate,
                                           ClientState& state);
// The model part of a SCAFFOLD global model (without "scaffold.c/" tensors) and the
// correction c - c_i for the trainable parameters.
absl::StatusOr<std::pair<ArrayRecord, ArrayRecord>> ScaffoldSplit(
    const ArrayRecord& global, const std::vector<std::string>& trainable,
    const ClientState& state);

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_TASK_EXECUTOR_H_
