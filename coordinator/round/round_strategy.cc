// The run's strategy at the round loop's stations (round_strategy.h, docs/strategies.md).
#include "coordinator/round/round_strategy.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "aggregation/robust.h"
#include "aggregation/server_optimizer.h"
#include "core/base/status_macros.h"
#include "core/config/run_config.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {
namespace {

using wire::v1::StrategyConfig;

constexpr char kServerStatePrefix[] = "server_opt.";

std::optional<aggregation::ServerOptimizerOptions> OptimizerOptions(const StrategyConfig& s) {
  aggregation::ServerOptimizerOptions o;
  using K = aggregation::ServerOptimizerOptions::Kind;
  switch (s.kind()) {
    case StrategyConfig::FEDAVGM:
      o.kind = K::kMomentum;
      break;
    case StrategyConfig::FEDADAM:
      o.kind = K::kAdam;
      break;
    case StrategyConfig::FEDYOGI:
      o.kind = K::kYogi;
      break;
    case StrategyConfig::FEDADAGRAD:
      o.kind = K::kAdagrad;
      break;
    default:
      return std::nullopt;
  }
  // Only the fields the kind takes: the others are 0 in the config (ParseStrategy leaves
  // them unset), and Create checks every field, so they keep the valid defaults.
  o.learning_rate = s.server_learning_rate();
  if (o.kind == K::kMomentum) {
    o.momentum = s.server_momentum();
  } else {
    o.beta1 = s.beta1();
    o.tau = s.tau();
    if (o.kind != K::kAdagrad) o.beta2 = s.beta2();
  }
  return o;
}

// values *= factor for the float32 tensors that are (or are not) SCAFFOLD's variate.
void ScaleScaffold(ArrayRecord& r, bool variate, double factor) {
  for (Tensor& t : r.tensors) {
    if (t.dtype() != DType::kFloat32 || IsScaffoldVariate(t) != variate) continue;
    for (float& v : t.mutable_values<float>()) v = static_cast<float>(v * factor);
  }
}

bool IsRobustRule(const StrategyConfig& s) {
  return s.kind() == StrategyConfig::MEDIAN || s.kind() == StrategyConfig::TRIMMED_MEAN ||
         s.kind() == StrategyConfig::KRUM || s.kind() == StrategyConfig::MULTI_KRUM;
}

absl::StatusOr<ArrayRecord> CombineHeld(const StrategyConfig& s,
                                        const std::vector<ArrayRecord>& held) {
  switch (s.kind()) {
    case StrategyConfig::MEDIAN:
      return aggregation::CoordinateMedian(held);
    case StrategyConfig::TRIMMED_MEAN:
      return aggregation::TrimmedMean(held, s.trim_fraction());
    case StrategyConfig::KRUM:
      return aggregation::MultiKrum(held, s.byzantine_clients(), 1);
    case StrategyConfig::MULTI_KRUM: {
      const size_t f = s.byzantine_clients();
      const size_t m = s.krum_selected() > 0 ? s.krum_selected()
                                             : (held.size() > f ? held.size() - f : 1);
      return aggregation::MultiKrum(held, f, m);
    }
    default:
      return absl::InternalError("not a robust rule");
  }
}

}  // namespace

void UpdateFold::CountSteps(const UpdateWeight& w) {
  if (w.local_steps > 0) {
    p_ += static_cast<double>(w.num_examples);
    p_tau_ += static_cast<double>(w.num_examples) * w.local_steps;
    p_over_tau_ += w.weight;
  }
}

absl::Status UpdateFold::Add(const ArrayRecord& update, const UpdateWeight& w) {
  if (IsRobustRule(config_)) {
    held_.push_back(update);
  } else if (staging_ != nullptr) {
    TESSERA_ASSIGN_OR_RETURN(StagedFile file, staging_->Write(update));
    return AddStaged(std::move(file), w);
  } else {
    TESSERA_RETURN_IF_ERROR(accumulator_->AddFinite(update, w.weight));
  }
  CountSteps(w);
  return absl::OkStatus();
}

absl::Status UpdateFold::Merge(const aggregation::WeightedAccumulator& partial) {
  if (IsRobustRule(config_) || staging_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "strategy \"", StrategyName(config_.kind()), "\"",
        staging_ != nullptr ? " with staged uploads" : " combines individual updates",
        ": a partial sum cannot be folded"));
  }
  return accumulator_->Merge(partial);
}

absl::Status UpdateFold::AddStaged(StagedFile file, const UpdateWeight& w) {
  if (staging_ == nullptr) return absl::FailedPreconditionError("the fold is not staged");
  // A staged fold's accumulator has no tensors: it sums the weights exactly, and refuses a
  // weight as a fold in memory would.
  TESSERA_RETURN_IF_ERROR(accumulator_->AddFinite(ArrayRecord(), w.weight));
  staged_.push_back(std::move(file));
  staged_weights_.push_back(w.weight);
  CountSteps(w);
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> UpdateFold::Aggregate() && {
  double total_weight = 0;
  absl::StatusOr<ArrayRecord> mean;
  if (IsRobustRule(config_)) {
    mean = CombineHeld(config_, held_);
  } else if (staging_ != nullptr) {
    total_weight = accumulator_->total_weight();
    std::vector<const StagedFile*> files;
    files.reserve(staged_.size());
    for (const StagedFile& f : staged_) files.push_back(&f);
    mean = staged_.empty() ? absl::FailedPreconditionError("no updates to average")
                           : staging_->WeightedMean(files, staged_weights_);
  } else {
    total_weight = accumulator_->total_weight();
    mean = std::move(*accumulator_).Average();
  }
  if (config_.kind() == StrategyConfig::FEDNOVA && p_over_tau_ > 0) {
    // FedNova's sum of examples / local_steps is the accumulator's weight sum: take its exact
    // value, not the running double (whose last bit depends on the arrival order).
    p_over_tau_ = total_weight;
  }
  accumulator_.reset();
  held_.clear();
  staged_.clear();  // removes the files
  staged_weights_.clear();
  if (!mean.ok()) return mean.status();
  if (config_.kind() == StrategyConfig::FEDNOVA) {
    if (!(p_ > 0 && p_over_tau_ > 0)) {
      return absl::InternalError("FedNova: no weight in the round");
    }
    TESSERA_RETURN_IF_ERROR(aggregation::ScaleInPlace(
        *mean, aggregation::FedNovaScale(p_over_tau_, p_, p_tau_)));
  }
  return mean;
}

absl::Status UpdateFold::AddMeanTo(ArrayRecord& base) && {
  if (staging_ == nullptr || IsRobustRule(config_) ||
      config_.kind() == StrategyConfig::FEDNOVA || config_.kind() == StrategyConfig::SCAFFOLD) {
    return absl::FailedPreconditionError(
        "only a staged fold of a plain weighted mean adds its mean in place");
  }
  std::vector<const StagedFile*> files;
  files.reserve(staged_.size());
  for (const StagedFile& f : staged_) files.push_back(&f);
  absl::Status s = staged_.empty() ? absl::FailedPreconditionError("no updates to average")
                                   : staging_->AddWeightedMeanTo(files, staged_weights_, base);
  accumulator_.reset();
  staged_.clear();  // removes the files
  staged_weights_.clear();
  return s;
}

absl::StatusOr<RoundStrategy> RoundStrategy::Create(const StrategyConfig& config,
                                                    const ArrayRecord& layout,
                                                    const ArrayRecord* stored_state) {
  RoundStrategy out;
  out.config_ = config;
  std::optional<aggregation::ServerOptimizerOptions> o = OptimizerOptions(config);
  if (!o.has_value()) return out;
  TESSERA_ASSIGN_OR_RETURN(aggregation::ServerOptimizer opt,
                           aggregation::ServerOptimizer::Create(*o, layout));
  if (stored_state != nullptr && !stored_state->tensors.empty()) {
    TESSERA_RETURN_IF_ERROR(opt.Restore(*stored_state));
  }
  out.optimizer_ = std::make_shared<aggregation::ServerOptimizer>(std::move(opt));
  return out;
}

absl::Status RoundStrategy::PrepareInitialModel(const StrategyConfig& config,
                                                ArrayRecord& weights) {
  if (config.kind() != StrategyConfig::SCAFFOLD) return absl::OkStatus();
  const size_t n = weights.tensors.size();
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = weights.tensors[i];
    if (t.dtype() != DType::kFloat32 || IsScaffoldVariate(t)) continue;
    TESSERA_ASSIGN_OR_RETURN(
        Tensor c, Tensor::Zeros(absl::StrCat(kScaffoldVariatePrefix, t.name()), t.dtype(), t.shape()));
    weights.tensors.push_back(std::move(c));
  }
  return absl::OkStatus();
}

bool RoundStrategy::HoldsUpdates() const { return IsRobustRule(config_); }

bool RoundStrategy::AddsMeanToGlobal() const {
  return !IsRobustRule(config_) && config_.kind() != StrategyConfig::FEDNOVA &&
         config_.kind() != StrategyConfig::SCAFFOLD && optimizer_ == nullptr;
}

absl::Status RoundStrategy::CheckHeldBytes(size_t clients, uint64_t update_bytes,
                                           uint64_t limit) const {
  if (!HoldsUpdates()) return absl::OkStatus();
  const uint64_t held = clients * update_bytes;
  if (held <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "strategy \"", StrategyName(config_.kind()), "\" would hold ", clients, " updates of ",
      update_bytes, " bytes (", held, " bytes), over the coordinator's limit of ", limit,
      " bytes; select fewer clients per round"));
}

void RoundStrategy::Dispatch(wire::v1::Task& task) const {
  if (config_.kind() == StrategyConfig::FEDPROX) {
    task.mutable_strategy()->set_proximal_mu(config_.proximal_mu());
  }
  if (config_.kind() == StrategyConfig::SCAFFOLD) task.mutable_strategy()->set_scaffold(true);
}

absl::StatusOr<UpdateWeight> RoundStrategy::Weigh(
    uint64_t num_examples, const std::map<std::string, double>& metrics) const {
  UpdateWeight w;
  w.num_examples = num_examples;
  if (config_.kind() == StrategyConfig::SCAFFOLD) return w;  // the paper's uniform mean
  if (config_.kind() != StrategyConfig::FEDNOVA) {
    w.weight = static_cast<double>(num_examples);
    return w;
  }
  auto it = metrics.find("local_steps");
  if (it == metrics.end() || !(it->second >= 1 && it->second <= 1e9)) {
    return absl::InvalidArgumentError(
        "FedNova needs metric \"local_steps\" (the client's optimizer steps, 1..1e9)");
  }
  w.local_steps = it->second;
  w.weight = static_cast<double>(num_examples) / it->second;  // p_i / tau_i
  return w;
}

absl::StatusOr<UpdateFold> RoundStrategy::NewFold(const ArrayRecord& layout,
                                                  std::shared_ptr<UpdateStaging> staging) const {
  // Robust rules hold the updates themselves (no running sum: it used to be made anyway, 25
  // unused bytes per parameter); a staged fold's updates are files, and its accumulator only
  // sums the weights.
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(layout));
  if (IsRobustRule(config_)) return UpdateFold(config_, std::nullopt, nullptr);
  if (staging != nullptr) {
    TESSERA_ASSIGN_OR_RETURN(aggregation::WeightedAccumulator weights,
                             aggregation::WeightedAccumulator::Create(ArrayRecord()));
    return UpdateFold(config_, std::move(weights), std::move(staging));
  }
  TESSERA_ASSIGN_OR_RETURN(aggregation::WeightedAccumulator acc,
                           aggregation::WeightedAccumulator::Create(layout));
  return UpdateFold(config_, std::move(acc), nullptr);
}

std::pair<ArrayRecord, ArrayRecord> SplitStoredModel(ArrayRecord stored) {
  ArrayRecord weights, state;
  for (Tensor& t : stored.tensors) {
    if (absl::StartsWith(t.name(), kServerStatePrefix)) {
      const std::string name = t.name().substr(sizeof(kServerStatePrefix) - 1);
      absl::StatusOr<Tensor> renamed =
          Tensor::Create(name, t.dtype(), t.shape(), t.data());
      if (renamed.ok()) state.tensors.push_back(*std::move(renamed));
    } else {
      weights.tensors.push_back(std::move(t));
    }
  }
  return {std::move(weights), std::move(state)};
}

absl::StatusOr<ArrayRecord> StoredModel(const ModelSnapshot& model) {
  if (model.server_state.tensors.empty()) return model.weights;
  ArrayRecord out = model.weights;
  for (const Tensor& t : model.server_state.tensors) {
    TESSERA_ASSIGN_OR_RETURN(Tensor c, Tensor::Create(absl::StrCat(kServerStatePrefix, t.name()),
                                                      t.dtype(), t.shape(),
                                                      t.data()));
    out.tensors.push_back(std::move(c));
  }
  return out;
}

ArrayRecord TakeWeights(std::shared_ptr<const ModelSnapshot> model) {
#if defined(__SANITIZE_THREAD__)
  // GCC refuses atomic_thread_fence under ThreadSanitizer (-Werror=tsan): TSan builds copy.
  return model->weights;
#else
  if (model.use_count() == 1) {
    // The only owner: nobody else can read the snapshot now or later. The acquire fence
    // orders this thread's writes after the other owners' reads, which they finished before
    // releasing their references.
    std::atomic_thread_fence(std::memory_order_acquire);
    return std::move(const_cast<ModelSnapshot&>(*model).weights);
  }
  return model->weights;
#endif
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> NextModel(ArrayRecord mean_delta,
                                                               const ModelSnapshot& global,
                                                               uint32_t round) {
  // new global = old global + weighted mean of the deltas, computed in the delta's buffers.
  if (absl::Status s = aggregation::ApplyDelta(mean_delta, global.weights); !s.ok()) return s;
  for (const Tensor& t : mean_delta.tensors) {
    if (absl::Status s = CheckFinite(t); !s.ok()) {
      return absl::InternalError(absl::StrCat("aggregate is not finite: ", s.message()));
    }
  }
  auto next = std::make_shared<ModelSnapshot>();
  next->round = round;
  next->digest = DigestArrayRecord(mean_delta);
  next->weights = std::move(mean_delta);
  return next;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RoundStrategy::NextModel(
    ArrayRecord mean_delta, const ModelSnapshot& global, uint32_t round, uint32_t reported,
    uint64_t population) {
  if (config_.kind() == StrategyConfig::SCAFFOLD) {
    // x += eta_g * mean(dy); c += (|S| / N) * mean(dc)  (Karimireddy et al., Alg. 1)
    ScaleScaffold(mean_delta, /*variate=*/false, config_.server_learning_rate());
    const double share =
        population > 0 ? std::min(1.0, static_cast<double>(reported) / population) : 1.0;
    ScaleScaffold(mean_delta, /*variate=*/true, share);
  }
  if (optimizer_ == nullptr) {
    return coordinator::NextModel(std::move(mean_delta), global, round);
  }
  ArrayRecord next = global.weights;
  TESSERA_RETURN_IF_ERROR(optimizer_->Step(next, mean_delta));
  auto snapshot = std::make_shared<ModelSnapshot>();
  snapshot->round = round;
  snapshot->digest = DigestArrayRecord(next);
  snapshot->weights = std::move(next);
  TESSERA_ASSIGN_OR_RETURN(snapshot->server_state, optimizer_->State());
  return snapshot;
}

std::shared_ptr<const ModelSnapshot> ModelForExport(std::shared_ptr<const ModelSnapshot> model) {
  ArrayRecord weights = WithoutScaffoldVariate(model->weights);
  if (weights.tensors.size() == model->weights.tensors.size()) return model;
  auto out = std::make_shared<ModelSnapshot>();
  out->round = model->round;
  out->weights = std::move(weights);
  out->digest = DigestArrayRecord(out->weights);
  return out;
}

}  // namespace tessera::coordinator
