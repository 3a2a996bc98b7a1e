// CausalLm::Train and Evaluate: AdamW on the adapters (or, without LoRA, on every weight)
// against the token-level cross-entropy of next-token prediction.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/lm/transformer/causal_lm_impl.h"
#include "client/lm/transformer/fused_ops.h"
#include "client/lm/transformer/thread_split.h"
#include "client/lm/transformer/lm_dp_sgd.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using internal::GuardTorch;

absl::Status CheckExamples(const std::vector<TokenizedExample>& examples, int64_t vocab,
                           int64_t max_length) {
  if (examples.empty()) return absl::InvalidArgumentError("no examples");
  for (size_t e = 0; e < examples.size(); ++e) {
    const TokenizedExample& x = examples[e];
    if (x.input_ids.empty() || x.input_ids.size() != x.labels.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "example ", e, ": ", x.input_ids.size(), " input ids and ", x.labels.size(),
          " labels (need the same non-zero number)"));
    }
    if (static_cast<int64_t>(x.input_ids.size()) > max_length) {
      return absl::InvalidArgumentError(absl::StrCat("example ", e, ": ", x.input_ids.size(),
                                                     " tokens exceed the model's limit of ",
                                                     max_length, " positions"));
    }
    for (size_t i = 0; i < x.input_ids.size(); ++i) {
      const int32_t id = x.input_ids[i];
      const int32_t label = x.labels[i];
      if (id < 0 || id >= vocab || (label != kIgnoreLabel && (label < 0 || label >= vocab))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "example ", e, " position ", i, ": id ", id, " / label ", label,
            " outside the vocabulary [0, ", vocab, ")"));
      }
    }
  }
  return absl::OkStatus();
}

// A non-finite loss ends training: the adapters would become NaN.
absl::Status CheckLoss(double value, absl::string_view what, uint32_t step) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("training diverged: ", what, " at step ", step,
                                                 " is ", value, " (lower the learning rate)"));
}

absl::Status CheckTrainOptions(const LmTrainOptions& o) {
  if (o.steps == 0 || (o.batch_size == 0 && !o.dp_sgd.has_value())) {
    return absl::InvalidArgumentError("steps and batch_size must be > 0");
  }
  const double values[] = {o.learning_rate, o.adam_beta1, o.adam_beta2, o.adam_epsilon,
                           o.weight_decay, o.max_grad_norm};
  for (double v : values) {
    if (!std::isfinite(v) || v < 0) {
      return absl::InvalidArgumentError(
          "learning_rate, betas, epsilon, weight_decay and max_grad_norm must be finite and "
          ">= 0");
    }
  }
  if (o.learning_rate <= 0 || o.adam_epsilon <= 0 || o.adam_beta1 >= 1 ||
      o.adam_beta2 >= 1) {
    return absl::InvalidArgumentError(
        "need learning_rate > 0, adam_epsilon > 0 and betas in [0, 1)");
  }
  return ScheduledLearningRate(o.lr_schedule, 1, 0, 0, 1).status();
}

}  // namespace

std::pair<at::Tensor, at::Tensor> CausalLm::Impl::Batch(
    const std::vector<TokenizedExample>& examples, const std::vector<size_t>& order,
    size_t begin, size_t end) const {
  size_t longest = 0;
  for (size_t i = begin; i < end; ++i) {
    longest = std::max(longest, examples[order[i]].input_ids.size());
  }
  const int64_t rows = static_cast<int64_t>(end - begin);
  at::Tensor ids = torch::zeros({rows, static_cast<int64_t>(longest)}, torch::kLong);
  at::Tensor labels = torch::full({rows, static_cast<int64_t>(longest)}, kIgnoreLabel,
                                  torch::kLong);
  auto id_acc = ids.accessor<int64_t, 2>();
  auto label_acc = labels.accessor<int64_t, 2>();
  for (size_t r = 0; r < end - begin; ++r) {
    const TokenizedExample& x = examples[order[begin + r]];
    for (size_t i = 0; i < x.input_ids.size(); ++i) {
      id_acc[static_cast<int64_t>(r)][static_cast<int64_t>(i)] = x.input_ids[i];
      label_acc[static_cast<int64_t>(r)][static_cast<int64_t>(i)] = x.labels[i];
    }
  }
  return {ids.to(device), labels.to(device)};
}

std::pair<at::Tensor, int64_t> CausalLm::Impl::SummedLoss(const at::Tensor& ids,
                                                         const at::Tensor& labels,
                                                         const uint64_t* dropout_seed,
                                                         int64_t* correct) {
  const int64_t seq = ids.size(1);
  at::Tensor hidden = model.Hidden(ids, dropout_seed, nullptr, gradient_checkpointing);
  if (seq < 2) return {hidden.sum() * 0, 0};
  // Only positions whose next token is a target need logits.
  at::Tensor target = labels.narrow(1, 1, seq - 1).reshape({-1});
  at::Tensor h = hidden.narrow(1, 0, seq - 1).reshape({-1, hidden.size(-1)});
  at::Tensor keep = (target != kIgnoreLabel).nonzero().squeeze(1);
  const int64_t count = keep.numel();
  if (count == 0) return {hidden.sum() * 0, 0};
  at::Tensor selected = h.index_select(0, keep);
  at::Tensor kept = target.index_select(0, keep);
  if (internal::CanFuseLmHeadLoss(selected, model.lm_head)) {
    // The logits are made and consumed chunk by chunk (fused_ops.h).
    return {internal::LmHeadCrossEntropy(selected, model.lm_head, kept, correct), count};
  }
  at::Tensor logits = model.Logits(selected);
  if (correct != nullptr) *correct += (logits.argmax(-1) == kept).sum().item<int64_t>();
  at::Tensor loss = torch::nn::functional::cross_entropy(
      logits, kept,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  return {loss, count};
}

absl::StatusOr<LmTrainResult> CausalLm::Train(const std::vector<TokenizedExample>& examples,
                                              const LmTrainOptions& options) {
  TESSERA_RETURN_IF_ERROR(CheckTrainOptions(options));
  TESSERA_RETURN_IF_ERROR(
      CheckExamples(examples, impl_->model.config().vocab_size, impl_->MaxLength()));
  if (options.dp_sgd.has_value()) {
    TESSERA_RETURN_IF_ERROR(internal::CheckDpSgdOptions(*options.dp_sgd, examples.size()));
    return GuardTorch("Train", [&] { return TrainDpSgd(examples, options); });
  }
  return GuardTorch("Train", [&]() -> absl::StatusOr<LmTrainResult> {
    const auto start = std::chrono::steady_clock::now();
    internal::SerialBlasScope serial_blas;
    std::vector<at::Tensor> params = impl_->TrainableTensors();
    if (params.empty()) return absl::FailedPreconditionError("no trainable parameters");
    torch::optim::AdamW optimizer(
        params, torch::optim::AdamWOptions(options.learning_rate)
                    .betas({options.adam_beta1, options.adam_beta2})
                    .eps(options.adam_epsilon)
                    .weight_decay(options.weight_decay));
    const uint64_t total =
        options.total_steps > 0 ? options.total_steps : options.first_step + options.steps;
    std::mt19937_64 rng(options.seed);
    std::vector<size_t> order(examples.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    size_t cursor = 0;
    LmTrainResult result;
    double loss_sum = 0;
    for (uint32_t step = 0; step < options.steps; ++step) {
      if (cursor >= order.size()) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      const size_t end = std::min(order.size(), cursor + options.batch_size);
      auto [ids, labels] = impl_->Batch(examples, order, cursor, end);
      cursor = end;
      TESSERA_ASSIGN_OR_RETURN(
          double lr, ScheduledLearningRate(options.lr_schedule, options.learning_rate,
                                           options.first_step + step, options.warmup_steps,
                                           total));
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      optimizer.zero_grad();
      const uint64_t dropout_seed = rng();
      auto [loss_sum_t, count] = impl_->SummedLoss(ids, labels, &dropout_seed);
      if (count == 0) continue;
      at::Tensor loss = loss_sum_t / static_cast<double>(count);
      const double value = loss.item<double>();
      TESSERA_RETURN_IF_ERROR(CheckLoss(value, "the loss", step));
      loss.backward();
      if (options.max_grad_norm > 0) {
        torch::nn::utils::clip_grad_norm_(params, options.max_grad_norm);
      }
      optimizer.step();
      loss_sum += value;
      result.steps += 1;
      result.target_tokens += static_cast<uint64_t>(count);
      result.last_learning_rate = lr;
      if (options.on_progress) {
        options.on_progress(static_cast<double>(step + 1) / options.steps);
      }
    }
    result.train_loss = result.steps > 0 ? loss_sum / static_cast<double>(result.steps) : 0;
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  });
}

// Record-level DP-SGD (LmTrainOptions::dp_sgd): per step, the Poisson sample's examples one
// at a time (a batch of one, so no example's gradient depends on another's), each clipped
// jointly over all trainable tensors, then noise and AdamW (lm_dp_sgd.h).
absl::StatusOr<LmTrainResult> CausalLm::TrainDpSgd(const std::vector<TokenizedExample>& examples,
                                                   const LmTrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  internal::SerialBlasScope serial_blas;
  const DpSgdOptions& dp = *options.dp_sgd;
  std::vector<at::Tensor> params = impl_->TrainableTensors();
  if (params.empty()) return absl::FailedPreconditionError("no trainable parameters");
  TESSERA_ASSIGN_OR_RETURN(internal::DpSgdStep dp_step,
                           internal::DpSgdStep::Create(dp, examples.size(), params));
  torch::optim::AdamW optimizer(
      params, torch::optim::AdamWOptions(options.learning_rate)
                  .betas({options.adam_beta1, options.adam_beta2})
                  .eps(options.adam_epsilon)
                  .weight_decay(options.weight_decay));
  const uint64_t total =
      options.total_steps > 0 ? options.total_steps : options.first_step + options.steps;
  std::mt19937_64 rng(options.seed);  // LoRA dropout masks only
  LmTrainResult result;
  result.sampling_rate = dp_step.sampling_rate();
  double loss_sum = 0;
  uint64_t loss_examples = 0;
  std::vector<size_t> one(1);
  std::vector<at::Tensor> grads(params.size());
  for (uint32_t step = 0; step < options.steps; ++step) {
    TESSERA_ASSIGN_OR_RETURN(
        double lr, ScheduledLearningRate(options.lr_schedule, options.learning_rate,
                                         options.first_step + step, options.warmup_steps,
                                         total));
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    const std::vector<size_t>& sample = dp_step.Sample();
    for (size_t index : sample) {
      one[0] = index;
      auto [ids, labels] = impl_->Batch(examples, one, 0, 1);
      for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
      const uint64_t dropout_seed = rng();
      auto [summed, count] = impl_->SummedLoss(ids, labels, &dropout_seed);
      if (count == 0) continue;  // no targets: a zero gradient
      at::Tensor loss = summed / static_cast<double>(count);
      const double value = loss.item<double>();
      TESSERA_RETURN_IF_ERROR(CheckLoss(value, "an example's loss", step));
      loss.backward();
      for (size_t i = 0; i < params.size(); ++i) grads[i] = params[i].grad();
      const double norm = dp_step.AddClipped(grads);
      if (!std::isfinite(norm)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "training diverged: an example's gradient norm at step ", step, " is ", norm));
      }
      if (norm > dp.clip_norm) ++result.clipped_examples;
      loss_sum += value;
      ++loss_examples;
      result.target_tokens += static_cast<uint64_t>(count);
    }
    result.sampled_examples += sample.size();
    TESSERA_RETURN_IF_ERROR(dp_step.SetNoisedGradients());
    if (options.max_grad_norm > 0) {
      torch::nn::utils::clip_grad_norm_(params, options.max_grad_norm);
    }
    optimizer.step();
    result.steps += 1;
    result.last_learning_rate = lr;
    if (options.on_progress) {
      options.on_progress(static_cast<double>(step + 1) / options.steps);
    }
  }
  for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
  result.train_loss = loss_examples > 0 ? loss_sum / static_cast<double>(loss_examples) : 0;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

absl::StatusOr<LmEvalResult> CausalLm::Evaluate(const std::vector<TokenizedExample>& examples,
                                                uint32_t batch_size) {
  if (batch_size == 0) return absl::InvalidArgumentError("batch_size must be > 0");
  TESSERA_RETURN_IF_ERROR(
      CheckExamples(examples, impl_->model.config().vocab_size, impl_->MaxLength()));
  return GuardTorch("Evaluate", [&]() -> absl::StatusOr<LmEvalResult> {
    torch::NoGradGuard no_grad;
    internal::SerialBlasScope serial_blas;
    std::vector<size_t> order(examples.size());
    std::iota(order.begin(), order.end(), 0);
    double total = 0;
    int64_t tokens = 0;
    int64_t correct = 0;
    for (size_t begin = 0; begin < order.size(); begin += batch_size) {
      const size_t end = std::min(order.size(), begin + batch_size);
      auto [ids, labels] = impl_->Batch(examples, order, begin, end);
      auto [sum, count] = impl_->SummedLoss(ids, labels, nullptr, &correct);
      total += sum.item<double>();
      tokens += count;
    }
    LmEvalResult r;
    r.target_tokens = static_cast<uint64_t>(tokens);
    r.loss = tokens > 0 ? total / static_cast<double>(tokens) : 0;
    r.perplexity = std::exp(r.loss);
    r.accuracy = tokens > 0 ? static_cast<double>(correct) / static_cast<double>(tokens) : 0;
    return r;
  });
}

}  // namespace tessera::lm
