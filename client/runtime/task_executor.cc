#include "client/runtime/task_executor.h"

#include <cmath>
#include <functional>
#include <optional>

#include <glog/logging.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/runtime/update_delta.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "core/serde/compressed_upload.h"
#include "core/serde/tensor_stream.h"

namespace tessera {
namespace {

bool HasVariate(const ArrayRecord& global) {
  for (const Tensor& t : global.tensors) {
    if (IsScaffoldVariate(t)) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::pair<ArrayRecord, ArrayRecord>> ScaffoldSplit(
    const ArrayRecord& global, const std::vector<std::string>& trainable,
    const ClientState& state) {
  ArrayRecord model = WithoutScaffoldVariate(global);
  ArrayRecord correction;
  for (const std::string& name : trainable) {
    const Tensor* c = global.Find(absl::StrCat(kScaffoldVariatePrefix, name));
    if (c == nullptr || c->dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SCAFFOLD: the global model has no float32 control variate for \"", name, "\""));
    }
    TESSERA_ASSIGN_OR_RETURN(Tensor diff, Tensor::Create(name, c->dtype(), c->shape(), c->data()));
    const Tensor* mine = state.scaffold_variate.Find(name);
    if (mine != nullptr) {
      if (mine->shape() != c->shape() || mine->dtype() != c->dtype()) {
        return absl::InvalidArgumentError(
            absl::StrCat("SCAFFOLD: the client variate of \"", name, "\" has another shape"));
      }
      absl::Span<float> d = diff.mutable_values<float>();
      absl::Span<const float> ci = mine->values<float>();
      for (size_t i = 0; i < d.size(); ++i) d[i] -= ci[i];
    }
    correction.tensors.push_back(std::move(diff));
  }
  return std::make_pair(std::move(model), std::move(correction));
}

absl::StatusOr<ArrayRecord> ScaffoldUpdate(const ArrayRecord& global, const ArrayRecord& trained,
                                           const std::vector<std::string>& trainable,
                                           uint64_t steps, double learning_rate,
                                           ClientState& state) {
  const ArrayRecord x = WithoutScaffoldVariate(global);
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord update, ComputeDelta(trained, x));
  if (steps == 0 || !(learning_rate > 0)) {
    return absl::InvalidArgumentError("SCAFFOLD: needs at least one step with a positive rate");
  }
  absl::flat_hash_map<std::string, bool> is_trainable;
  for (const std::string& n : trainable) is_trainable[n] = true;
  const double inv = 1.0 / (static_cast<double>(steps) * learning_rate);
  ArrayRecord next;
  for (const Tensor& c : global.tensors) {
    if (!IsScaffoldVariate(c)) continue;
    const std::string name = c.name().substr(sizeof(kScaffoldVariatePrefix) - 1);
    TESSERA_ASSIGN_OR_RETURN(Tensor dc, Tensor::Zeros(c.name(), c.dtype(), c.shape()));
    if (is_trainable.contains(name) && c.dtype() == DType::kFloat32) {
      const Tensor* xt = x.Find(name);
      const Tensor* yt = trained.Find(name);
      if (xt == nullptr || yt == nullptr || xt->shape() != c.shape()) {
        return absl::InvalidArgumentError(
            absl::StrCat("SCAFFOLD: variate \"", c.name(), "\" has no matching parameter"));
      }
      const Tensor* mine = state.scaffold_variate.Find(name);
      if (mine != nullptr && (mine->shape() != c.shape() || mine->dtype() != c.dtype())) {
        return absl::InvalidArgumentError(
            absl::StrCat("SCAFFOLD: the client variate of \"", name, "\" has another shape"));
      }
      TESSERA_ASSIGN_OR_RETURN(Tensor ci_next, Tensor::Zeros(name, c.dtype(), c.shape()));
      absl::Span<float> out = ci_next.mutable_values<float>();
      absl::Span<float> delta = dc.mutable_values<float>();
      absl::Span<const float> cv = c.values<float>(), xv = xt->values<float>(),
                              yv = yt->values<float>();
      for (size_t i = 0; i < out.size(); ++i) {
        const float ci = mine != nullptr ? mine->values<float>()[i] : 0.0f;
        // c_i+ = c_i - c + (x - y) / (K lr)
        out[i] = static_cast<float>(ci - cv[i] + (xv[i] - yv[i]) * inv);
        delta[i] = out[i] - ci;
      }
      next.tensors.push_back(std::move(ci_next));
    }
    update.tensors.push_back(std::move(dc));
  }
  state.scaffold_variate = std::move(next);
  return update;
}

absl::Status ChargeSiteBudget(const wire::v1::Task& task, uint64_t num_examples,
                              ClientState& state, FleetTransport& transport) {
  if (task.type() != wire::v1::TRAIN) return absl::OkStatus();
  const wire::v1::RecordDpConfig& r = task.dp().record();
  wire::v1::SitePrivacyReport report;
  report.set_task_id(task.task_id());
  auto refuse = [&](const std::string& reason) {
    report.set_refused(true);
    // The coordinator takes printable ASCII only (a data card name may hold more).
    std::string ascii = reason;
    for (char& c : ascii) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    report.set_reason(ascii.substr(0, 1024));
    if (absl::Status s = transport.ReportSitePrivacy(task, report); !s.ok()) {
      LOG(WARNING) << "could not tell the coordinator that task " << task.task_id()
                   << " is refused: " << s;
    }
    LOG(WARNING) << "refusing task " << task.task_id() << " (round " << task.round()
                 << "): " << reason;
    return absl::FailedPreconditionError(absl::StrCat("refused: ", reason));
  };
  if (!r.enabled()) {
    // A site that states a budget trains only with record-level DP (unless it opted out):
    // the coordinator cannot have its data trained on without DP-SGD by leaving it out.
    if (state.ledger == nullptr || state.train_without_record_dp) return absl::OkStatus();
    return refuse(
        "this site states a record-level privacy budget and trains only with record-level "
        "DP-SGD; the task has none (tessera-client --train-without-record-dp allows it)");
  }
  if (state.ledger == nullptr) {
    return refuse(
        "this site states no record-level privacy budget (tessera-client --privacy-budget "
        "epsilon=E,delta=D, or privacy_budget in its data card)");
  }
  SiteLedger& ledger = *state.ledger;
  auto finite_positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!finite_positive(r.noise_multiplier()) || !finite_positive(r.clip_norm()) ||
      !(std::isfinite(r.expected_batch_size()) && r.expected_batch_size() >= 1) ||
      r.max_physical_batch() == 0) {
    return refuse(absl::StrCat("the task's DP-SGD parameters are invalid (noise multiplier ",
                               r.noise_multiplier(), ", clip ", r.clip_norm(),
                               ", expected batch ", r.expected_batch_size(),
                               ", physical batch ", r.max_physical_batch(), ")"));
  }
  if (ledger.HasTask(task.task_id())) {
    return refuse(absl::StrCat("task ", task.task_id(), " was already charged and trained "
                               "once; a second training would release a second model"));
  }
  report.set_delta(ledger.budget().delta);
  report.set_epsilon_budget(ledger.budget().epsilon);
  report.set_accountant(std::string(SiteAccountantName(ledger.accountant())));
  if (r.expected_batch_size() > static_cast<double>(num_examples)) {
    return refuse(absl::StrCat("the run's expected batch size ", r.expected_batch_size(),
                               " exceeds this site's ", num_examples, " training examples"));
  }
  SiteLedgerEntry entry;
  entry.sampling_rate = r.expected_batch_size() / static_cast<double>(num_examples);
  entry.noise_multiplier = r.noise_multiplier();
  entry.steps = DpSgdSteps(num_examples, task.train().local_epochs(), r.expected_batch_size(),
                           task.train().max_steps());
  entry.run_id = task.run_id();
  entry.round = task.round();
  entry.task_id = task.task_id();
  entry.unix_ms = absl::ToUnixMillis(absl::Now());
  TESSERA_ASSIGN_OR_RETURN(SiteLedger::Plan plan, ledger.PlanTask(entry));
  report.set_steps(entry.steps);
  report.set_sampling_rate(entry.sampling_rate);
  report.set_epsilon(plan.epsilon_after);
  if (!plan.allowed) {
    report.set_epsilon(plan.epsilon_before);
    return refuse(plan.reason);
  }
  // Charged (and synced) before the first step: a crash can only over-count.
  TESSERA_RETURN_IF_ERROR(ledger.Charge(entry));
  LOG(INFO) << "record-level DP: task " << task.task_id() << " (round " << task.round()
            << ") takes " << entry.steps << " DP-SGD steps at q=" << entry.sampling_rate
            << ", z=" << entry.noise_multiplier << "; dataset \"" << ledger.dataset()
            << "\" epsilon " << plan.epsilon_before << " -> " << plan.epsilon_after << " of "
            << ledger.budget().epsilon << " (delta " << ledger.budget().delta << ")";
  return transport.ReportSitePrivacy(task, report);
}

TaskExecutor::TaskExecutor(TaskExecutorOptions options) : options_(std::move(options)) {}
TaskExecutor::~TaskExecutor() = default;

absl::Status TaskExecutor::EnsureModel(const wire::v1::Task& task, FleetTransport& transport) {
  const auto& spec = task.model();
  if (spec.has_causal_lm()) {
    if (lm_ == nullptr) {
      LmWorkloadOptions lm;
      lm.base_checkpoint = options_.base_checkpoint;
      lm.text_path = options_.text_path;
      lm.device = options_.device;
      lm_ = std::make_unique<LmWorkload>(std::move(lm));
    }
    return lm_->Ensure(spec);
  }
  if (!spec.architecture().empty()) {
    const std::string key = absl::StrCat("arch:", spec.architecture());
    if (model_ != nullptr && model_key_ == key) return absl::OkStatus();
    TESSERA_ASSIGN_OR_RETURN(model_, LocalModel::CreateBuiltin(spec.architecture(), spec.seed(),
                                                               options_.device));
    model_key_ = key;
    VLOG(1) << "model " << spec.architecture() << " on " << model_->device() << ", "
            << model_->num_parameters() << " parameters";
    return absl::OkStatus();
  }
  const std::string key = absl::StrCat("ts:", crypto::HexEncode(spec.torchscript_sha256()));
  if (model_ != nullptr && model_key_ == key) return absl::OkStatus();
  TESSERA_ASSIGN_OR_RETURN(std::string program, transport.FetchArtifact(task));
  if (crypto::Sha256Digest(program) != spec.torchscript_sha256()) {
    return absl::DataLossError("the TorchScript program does not match its SHA-256");
  }
  TESSERA_ASSIGN_OR_RETURN(model_, LocalModel::LoadTorchScriptBytes(program, options_.device));
  model_key_ = key;
  LOG(INFO) << "TorchScript model (" << program.size() << " bytes) on " << model_->device();
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> TaskExecutor::Evaluate(const ArrayRecord& global,
                                                  const Dataset& test) {
  if (model_ == nullptr) return absl::FailedPreconditionError("no model built yet");
  TESSERA_RETURN_IF_ERROR(model_->SetWeights(HasVariate(global) ? WithoutScaffoldVariate(global) : global));
  return model_->Evaluate(test);
}

absl::StatusOr<uint32_t> SendUpdate(const wire::v1::Task& task, const PreparedUpdate& prepared,
                                    const SecAggParticipantOptions& secagg,
                                    FleetTransport& transport) {
  if (task.has_secagg()) {
    TESSERA_ASSIGN_OR_RETURN(SecAggOutcome outcome,
                             RunSecAggParticipant(task, prepared.update, prepared.weight, secagg,
                                                  transport.SecAgg(task)));
    return outcome.survivors;
  }
  TESSERA_RETURN_IF_ERROR(
      transport.PushUpdate(task, prepared.weight, prepared.metrics, prepared.update));
  return 0;
}

absl::StatusOr<TaskReport> TaskExecutor::Run(const wire::v1::Task& task, const Dataset& train,
                                             const Dataset& test, ClientState& state,
                                             const SecAggParticipantOptions& secagg,
                                             FleetTransport& transport,
                                             absl::string_view name) {
  if (!options_.bench_fixed_update) TESSERA_RETURN_IF_ERROR(EnsureModel(task, transport));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord global, transport.FetchModel(task));
  TaskReport report;
  report.type = task.type();
  if (task.type() == wire::v1::EVALUATE) {
    if (options_.bench_fixed_update) {
      report.eval.num_examples = 1;
    } else {
      if (task.model().has_causal_lm()) {
        TESSERA_ASSIGN_OR_RETURN(report.eval, lm_->Evaluate(global));
      } else {
        TESSERA_ASSIGN_OR_RETURN(report.eval, Evaluate(global, test));
      }
    }
    // Logged before the report goes out, so the partner's log holds every evaluation it ran,
    // also one whose report a coordinator that died meanwhile never answered.
    LOG(INFO) << "round " << task.round() << " evaluation: accuracy " << report.eval.accuracy
              << ", loss " << report.eval.loss << " on " << report.eval.num_examples
              << " examples";
    TESSERA_RETURN_IF_ERROR(transport.PushEvaluation(task, report.eval));
    return report;
  }
  const bool lm = task.model().has_causal_lm();
  if (!options_.bench_fixed_update) {
    TESSERA_RETURN_IF_ERROR(ChargeSiteBudget(
        task, lm && lm_ != nullptr ? lm_->num_train_examples() : train.size(), state,
        transport));
  }
  PreparedUpdate prepared;
  if (options_.bench_fixed_update) {
    for (const Tensor& t : global.tensors) {
      TESSERA_ASSIGN_OR_RETURN(Tensor z, Tensor::Zeros(t.name(), t.dtype(), t.shape()));
      prepared.update.tensors.push_back(std::move(z));
    }
    prepared.weight = 1;
    prepared.metrics["train_loss"] = 0;
    TESSERA_RETURN_IF_ERROR(CompressUpdate(task, Seed(task, name), state, prepared));
  } else {
    TESSERA_ASSIGN_OR_RETURN(prepared, Train(task, global, train, state, name));
  }
  report.train = prepared.train;
  TESSERA_ASSIGN_OR_RETURN(report.secagg_survivors, SendUpdate(task, prepared, secagg, transport));
  return report;
}

uint64_t TaskExecutor::Seed(const wire::v1::Task& task, absl::string_view name) const {
  return task.seed() ^ std::hash<std::string>{}(std::string(name.empty() ? options_.name : name));
}

absl::StatusOr<PreparedUpdate> TaskExecutor::TrainLm(const wire::v1::Task& task,
                                                     const ArrayRecord& global,
                                                     absl::string_view name) {
  if (lm_ == nullptr) return absl::FailedPreconditionError("no language model loaded yet");
  if (task.strategy().scaffold() || task.strategy().proximal_mu() > 0) {
    return absl::InvalidArgumentError(
        "strategy: SCAFFOLD and FedProx are not available for language models (FedAvg, "
        "FedAvgM, FedAdam, FedYogi, FedAdagrad and the robust aggregators are)");
  }
  PreparedUpdate out;
  TESSERA_ASSIGN_OR_RETURN(out.update, lm_->Train(task, global, Seed(task, name), &out.train));
  FinishUpdate(task, /*uniform_weight=*/false, out);
  return out;
}

absl::StatusOr<PreparedUpdate> TaskExecutor::Train(const wire::v1::Task& task,
                                                   const ArrayRecord& global,
                                                   const Dataset& data, ClientState& state,
                                                   absl::string_view name) {
  if (task.model().has_causal_lm()) {  // its own text
    TESSERA_ASSIGN_OR_RETURN(PreparedUpdate out, TrainLm(task, global, name));
    TESSERA_RETURN_IF_ERROR(CompressUpdate(task, Seed(task, name), state, out));
    return out;
  }
  if (model_ == nullptr) return absl::FailedPreconditionError("no model built yet");
  const bool scaffold = task.strategy().scaffold();
  std::vector<std::string> trainable;
  ArrayRecord correction;
  if (scaffold) {
    trainable = model_->TrainableParameterNames();
    TESSERA_ASSIGN_OR_RETURN(auto split, ScaffoldSplit(global, trainable, state));
    TESSERA_RETURN_IF_ERROR(model_->SetWeights(split.first));
    correction = std::move(split.second);
  } else {
    TESSERA_RETURN_IF_ERROR(model_->SetWeights(global));
  }
  TrainOptions train;
  train.epochs = task.train().local_epochs();
  train.batch_size = task.train().batch_size();
  train.learning_rate = task.train().learning_rate();
  train.momentum = task.train().momentum();
  train.weight_decay = task.train().weight_decay();
  train.max_steps = task.train().max_steps();
  train.seed = Seed(task, name);
  train.proximal_mu = task.strategy().proximal_mu();
  if (scaffold) train.scaffold_correction = &correction;
  if (task.dp().record().enabled()) {
    const wire::v1::RecordDpConfig& r = task.dp().record();
    train.dp_sgd = DpSgdOptions{};
    train.dp_sgd->noise_multiplier = r.noise_multiplier();
    train.dp_sgd->clip_norm = r.clip_norm();
    train.dp_sgd->expected_batch_size = r.expected_batch_size();
    train.dp_sgd->max_physical_batch = r.max_physical_batch();
  }
  PreparedUpdate out;
  TESSERA_ASSIGN_OR_RETURN(out.train, model_->Train(data, train));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord trained, model_->GetWeights());
  if (scaffold) {
    TESSERA_ASSIGN_OR_RETURN(out.update, ScaffoldUpdate(global, trained, trainable,
                                                        out.train.steps, train.learning_rate,
                                                        state));
  } else {
    TESSERA_ASSIGN_OR_RETURN(out.update, ComputeDelta(std::move(trained), global));
  }
  FinishUpdate(task, /*uniform_weight=*/scaffold, out);
  TESSERA_RETURN_IF_ERROR(CompressUpdate(task, Seed(task, name), state, out));
  return out;
}

absl::Status CompressUpdate(const wire::v1::Task& task, uint64_t seed, ClientState& state,
                            PreparedUpdate& out) {
  if (!IsCompressed(task.compression()) || task.has_secagg()) return absl::OkStatus();
  TESSERA_ASSIGN_OR_RETURN(CompressionOptions options,
                           CompressionOptionsFromProto(task.compression()));
  // Apart from training's shuffling seed: "compress" in ASCII.
  TESSERA_ASSIGN_OR_RETURN(
      out.update, state.compression_feedback.Encode(task.run_id(), std::move(out.update),
                                                    options, seed ^ 0x636F6D7072657373ull,
                                                    task.compression().error_feedback()));
  return absl::OkStatus();
}

void FinishUpdate(const wire::v1::Task& task, bool uniform_weight, PreparedUpdate& out) {
  // SCAFFOLD's mean is uniform: every client weighs 1 (also inside a secure sum). Under DP
  // (organization- or record-level) every update weighs 1 too, and the client sends no exact
  // example or step count, loss or training time (docs/privacy.md): the coordinator never
  // learns them.
  out.weight = uniform_weight || task.has_dp() ? 1 : out.train.num_examples;
  if (!task.has_dp()) {
    out.metrics["train_loss"] = out.train.train_loss;
    out.metrics["train_seconds"] = out.train.seconds;
    out.metrics["local_steps"] = static_cast<double>(out.train.steps);
  } else if (task.dp().mode() == wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED) {
    // Record-level DP alone: the step count (FedNova's tau) is already public, in the site's
    // privacy report (ReportSitePrivacy), as a function of its dataset size.
    out.metrics["local_steps"] = static_cast<double>(out.train.steps);
  }
  if (task.dp().mode() == wire::v1::DifferentialPrivacyConfig::CENTRAL && !task.has_secagg()) {
    // Clipped here and by the coordinator; the bit feeds adaptive clipping (Andrew et al.).
    bool within = false;
    out.update = DpDelta(out.update, task.dp().clip_norm(), &within);
    out.metrics["dp_unclipped"] = within ? 1 : 0;
  }
}

}  // namespace tessera
