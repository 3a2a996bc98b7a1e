// LocalModel's Train and Evaluate loops: mini-batch SGD and record-level DP-SGD, both with
// the client-side gradient terms of FedProx and SCAFFOLD.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/training/local_model_impl.h"
#include "client/training/per_example_grads.h"
#include "client/training/torch_convert.h"
#include "core/base/status_macros.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/random_source.h"

namespace tessera {
namespace {

using training_internal::ClippedBatch;
using training_internal::DTypeOf;
using training_internal::PerExampleNet;
using training_internal::ShapeString;
using training_internal::ViewAsTorch;

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Built-in networks take 1x28x28 examples.
constexpr int64_t kBuiltinExampleSize = 28 * 28;

// SCAFFOLD's c - c_i as one tensor per trainable parameter, aligned with `params` and
// copied onto each parameter's device.
// Errors: INVALID_ARGUMENT naming a missing, unknown, mis-typed, mis-shaped or non-finite
// tensor.
absl::StatusOr<std::vector<at::Tensor>> CorrectionTensors(const ArrayRecord& correction,
                                                          const NamedTensors& params) {
  std::vector<at::Tensor> out;
  std::set<std::string> names;
  for (const auto& [name, p] : params) {
    names.insert(name);
    const Tensor* c = correction.Find(name);
    if (c == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Train: scaffold_correction lacks the trainable parameter \"", name, "\""));
    }
    TESSERA_ASSIGN_OR_RETURN(DType dtype, DTypeOf(name, p));
    if (c->dtype() != dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Train: scaffold_correction tensor \"", name, "\" has dtype ",
          DTypeName(c->dtype()), ", the parameter's is ", DTypeName(dtype)));
    }
    if (!std::equal(c->shape().begin(), c->shape().end(), p.sizes().begin(),
                    p.sizes().end())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Train: scaffold_correction tensor \"", name, "\" has shape [",
          absl::StrJoin(c->shape(), ","), "], the parameter's is ", ShapeString(p.sizes())));
    }
    if (absl::Status finite = CheckFinite(*c); !finite.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Train: scaffold_correction: ", finite.message()));
    }
    out.push_back(ViewAsTorch(*c).to(p.device(), p.scalar_type(), /*non_blocking=*/false,
                                     /*copy=*/true));
  }
  for (const Tensor& t : correction.tensors) {
    if (!names.count(t.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("Train: scaffold_correction has \"", t.name(),
                       "\", which is not a trainable parameter of the model"));
    }
  }
  if (correction.tensors.size() != params.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Train: scaffold_correction has ", correction.tensors.size(),
                     " tensors for ", params.size(), " trainable parameters (duplicates?)"));
  }
  return out;
}

// What FedProx and SCAFFOLD add to each trainable parameter's loss gradient before the
// optimizer step: mu * (w - w_start) + (c - c_i).
class GradientTerms {
 public:
  // Snapshots the parameters as w_start when `mu` > 0. `corrections` is empty or aligned
  // with `params`.
  GradientTerms(std::vector<at::Tensor> params, double mu,
                std::vector<at::Tensor> corrections)
      : params_(std::move(params)), mu_(mu), corrections_(std::move(corrections)) {
    if (mu_ == 0) return;
    torch::NoGradGuard no_grad;
    for (const at::Tensor& p : params_) {
      start_.push_back(p.detach().clone());
      scratch_.push_back(torch::empty_like(p));
    }
  }

  bool empty() const { return mu_ == 0 && corrections_.empty(); }

  // A parameter the loss does not reach (undefined gradient) gets the terms alone.
  void AddToGradients() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& grad = params_[i].mutable_grad();
      if (!grad.defined()) grad = torch::zeros_like(params_[i]);
      if (mu_ != 0) {
        at::sub_out(scratch_[i], params_[i], start_[i]);
        grad.add_(scratch_[i], mu_);
      }
      if (!corrections_.empty()) grad.add_(corrections_[i]);
    }
  }

 private:
  std::vector<at::Tensor> params_;
  double mu_;
  std::vector<at::Tensor> corrections_;
  std::vector<at::Tensor> start_;    // w_start, when mu_ > 0
  std::vector<at::Tensor> scratch_;  // w - w_start, when mu_ > 0
};

// Plain mini-batch SGD over shuffled epochs.
// `forward(inputs, batch)` returns the logits (absl::StatusOr<at::Tensor>).
template <typename ForwardFn>
absl::StatusOr<TrainResult> SgdLoop(ForwardFn forward, const torch::Device& device,
                                    const at::Tensor& x, const at::Tensor& y,
                                    const TrainOptions& options, GradientTerms& terms,
                                    torch::optim::SGD& sgd) {
  const uint64_t n = static_cast<uint64_t>(x.size(0));
  const uint64_t batch = options.batch_size;
  uint64_t total_steps = options.epochs * ((n + batch - 1) / batch);
  if (options.max_steps > 0) total_steps = std::min<uint64_t>(total_steps, options.max_steps);

  TrainResult result;
  at::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(torch::kDouble).device(device));
  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> order(n);
  for (uint32_t epoch = 0; epoch < options.epochs && result.steps < total_steps; ++epoch) {
    std::iota(order.begin(), order.end(), int64_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    at::Tensor perm = torch::from_blob(order.data(), {static_cast<int64_t>(n)}, torch::kLong);
    if (!device.is_cpu()) perm = perm.to(device);
    for (uint64_t begin = 0; begin < n && result.steps < total_steps; begin += batch) {
      const int64_t len = static_cast<int64_t>(std::min(batch, n - begin));
      const at::Tensor index = perm.narrow(0, static_cast<int64_t>(begin), len);
      sgd.zero_grad();
      TESSERA_ASSIGN_OR_RETURN(at::Tensor logits, forward(x.index_select(0, index), len));
      at::Tensor loss =
          torch::nn::functional::cross_entropy(logits, y.index_select(0, index));
      loss.backward();
      if (!terms.empty()) terms.AddToGradients();
      sgd.step();
      loss_sum += loss.detach();
      ++result.steps;
      result.examples_processed += static_cast<uint64_t>(len);
      if (options.on_progress) {
        options.on_progress(static_cast<double>(result.steps) /
                            static_cast<double>(total_steps));
      }
    }
  }
  result.train_loss = loss_sum.item<double>() / static_cast<double>(result.steps);
  return result;
}

// DP-SGD steps (LocalModel::Train with options.dp_sgd; see DpSgdOptions).
absl::StatusOr<TrainResult> DpSgdLoop(const at::Tensor& x, const at::Tensor& y,
                                      const TrainOptions& options, PerExampleNet& net,
                                      GradientTerms& terms, torch::optim::SGD& sgd) {
  const DpSgdOptions& dp = *options.dp_sgd;
  const int64_t n = x.size(0);
  const double q = std::min(1.0, dp.expected_batch_size / static_cast<double>(n));
  const uint64_t total_steps =
      DpSgdSteps(static_cast<uint64_t>(n), options.epochs, dp.expected_batch_size,
                 options.max_steps);
  absl::StatusOr<dp::SecureRandom> made = dp.random_seed.empty()
                                              ? dp::SecureRandom::Create()
                                              : dp::SecureRandom::FromSeed(dp.random_seed);
  if (!made.ok()) return made.status();
  dp::SecureRandom rng = *std::move(made);
  const std::vector<at::Tensor>& params = net.parameters();
  const double stddev = dp.noise_multiplier * dp.clip_norm;
  const double inverse_batch = 1.0 / dp.expected_batch_size;
  const int64_t physical = static_cast<int64_t>(dp.max_physical_batch);

  TrainResult result;
  result.sampling_rate = q;
  double loss_sum = 0;
  uint64_t loss_examples = 0;
  std::vector<int64_t> picked;
  std::vector<at::Tensor> sums;
  for (const at::Tensor& p : params) sums.push_back(torch::zeros_like(p));
  std::vector<float> noise;
  for (uint64_t step = 0; step < total_steps; ++step) {
    // Poisson sampling: every example independently with probability q, from the CSPRNG.
    picked.clear();
    for (int64_t i = 0; i < n; ++i) {
      if (rng.UniformUnit() < q) picked.push_back(i);
    }
    if (dp.on_sample) dp.on_sample(picked.size());
    for (at::Tensor& s : sums) s.zero_();
    at::Tensor index = torch::from_blob(picked.data(), {static_cast<int64_t>(picked.size())},
                                        torch::kLong);
    if (!x.device().is_cpu()) index = index.to(x.device());
    for (int64_t begin = 0; begin < index.size(0); begin += physical) {
      const at::Tensor chunk = index.narrow(0, begin, std::min(physical, index.size(0) - begin));
      ClippedBatch batch = net.AccumulateClipped(x.index_select(0, chunk),
                                                 y.index_select(0, chunk), dp.clip_norm, sums);
      loss_sum += batch.loss_sum.item<double>();
      result.clipped_examples +=
          static_cast<uint64_t>(batch.norms.gt(dp.clip_norm).sum().item<int64_t>());
    }
    loss_examples += picked.size();
    // N(0, (z C)^2) on every coordinate of the clipped sum, then the expected-batch mean.
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      if (sums[i].is_cpu() && sums[i].is_contiguous() &&
          sums[i].scalar_type() == torch::kFloat) {
        // In place: no second buffer of the model's size per step.
        TESSERA_RETURN_IF_ERROR(dp::AddGaussianNoise(
            absl::MakeSpan(sums[i].data_ptr<float>(), static_cast<size_t>(sums[i].numel())),
            stddev, rng));
      } else {
        // Drawn on the CPU from the CSPRNG, then moved to the sum's device and dtype.
        noise.assign(static_cast<size_t>(sums[i].numel()), 0.0f);
        TESSERA_RETURN_IF_ERROR(dp::AddGaussianNoise(absl::MakeSpan(noise), stddev, rng));
        sums[i].add_(torch::from_blob(noise.data(), sums[i].sizes(), torch::kFloat)
                         .to(sums[i].device(), sums[i].scalar_type()));
      }
      at::Tensor& grad = params[i].mutable_grad();
      if (grad.defined()) {
        grad.copy_(sums[i]).mul_(inverse_batch);
      } else {
        grad = sums[i] * inverse_batch;
      }
    }
    if (!terms.empty()) terms.AddToGradients();
    sgd.step();
    ++result.steps;
    result.examples_processed += picked.size();
    if (options.on_progress) {
      options.on_progress(static_cast<double>(result.steps) /
                          static_cast<double>(total_steps));
    }
  }
  result.train_loss = loss_examples > 0 ? loss_sum / static_cast<double>(loss_examples) : 0;
  return result;
}

}  // namespace

absl::StatusOr<at::Tensor> LocalModel::Impl::Forward(const at::Tensor& x, int64_t batch) {
  at::Tensor logits;
  if (net) {
    logits = net->forward(x);
  } else {
    c10::IValue out = script->forward({x});
    if (!out.isTensor()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TorchScript forward returned ", out.tagKind(), ", want a logits tensor"));
    }
    logits = out.toTensor();
  }
  if (logits.dim() != 2 || logits.size(0) != batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("model output has shape ", ShapeString(logits.sizes()),
                     ", want [batch=", batch, ", classes]"));
  }
  return logits;
}

absl::StatusOr<at::Tensor> LocalModel::Impl::Inputs(const Dataset& data) const {
  std::vector<int64_t> shape = {static_cast<int64_t>(data.size())};
  if (net) {
    if (data.ExampleSize() != kBuiltinExampleSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "architecture ", architecture, " takes 1x28x28 examples (784 values); the "
          "dataset's examples have ", data.ExampleSize()));
    }
    shape.insert(shape.end(), {1, 28, 28});
  } else {
    shape.insert(shape.end(), data.example_shape.begin(), data.example_shape.end());
  }
  at::Tensor x =
      torch::from_blob(const_cast<float*>(data.features.data()), shape, torch::kFloat);
  return device.is_cpu() ? x : x.to(device);
}

at::Tensor LocalModel::Impl::Labels(const Dataset& data) const {
  at::Tensor y = torch::from_blob(const_cast<int64_t*>(data.labels.data()),
                                  {static_cast<int64_t>(data.size())}, torch::kLong);
  return device.is_cpu() ? y : y.to(device);
}

uint64_t DpSgdSteps(uint64_t num_examples, uint32_t epochs, double expected_batch_size,
                    uint32_t max_steps) {
  // B < 1 (or NaN) is treated as 1: at most n steps per epoch, never an out-of-range cast.
  const double batch = expected_batch_size >= 1 ? expected_batch_size : 1.0;
  const double per_epoch =
      std::clamp(std::floor(static_cast<double>(num_examples) / batch), 1.0,
                 static_cast<double>(std::max<uint64_t>(num_examples, 1)));
  uint64_t steps = static_cast<uint64_t>(epochs) * static_cast<uint64_t>(per_epoch);
  if (max_steps > 0) steps = std::min<uint64_t>(steps, max_steps);
  return steps;
}

absl::StatusOr<TrainResult> LocalModel::Impl::Train(const Dataset& data,
                                                    const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  TESSERA_ASSIGN_OR_RETURN(at::Tensor x, Inputs(data));
  const at::Tensor y = Labels(data);
  const NamedTensors named = TrainableParameters();
  if (named.empty()) {
    return absl::FailedPreconditionError("Train: the model has no trainable parameters");
  }
  std::vector<at::Tensor> corrections;
  if (options.scaffold_correction != nullptr) {
    TESSERA_ASSIGN_OR_RETURN(corrections,
                             CorrectionTensors(*options.scaffold_correction, named));
  }
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : named) params.push_back(p);
  std::optional<PerExampleNet> per_example;
  if (options.dp_sgd.has_value()) {
    if (!net) {
      return absl::InvalidArgumentError(
          "Train: DP-SGD needs a built-in architecture (TorchScript programs are not "
          "walked for per-example gradients)");
    }
    TESSERA_ASSIGN_OR_RETURN(per_example, PerExampleNet::Create(net));
    if (per_example->parameters().size() != params.size()) {
      return absl::InternalError("Train: DP-SGD parameter walk disagrees with the model");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (!per_example->parameters()[i].is_same(params[i])) {
        return absl::InternalError(absl::StrCat(
            "Train: DP-SGD parameter order disagrees at \"", named[i].first, "\""));
      }
    }
  }
  GradientTerms terms(params, options.proximal_mu, std::move(corrections));
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(options.learning_rate)
                                    .momentum(options.momentum)
                                    .weight_decay(options.weight_decay));
  ModeScope mode(this, /*training=*/true);
  TrainResult result;
  if (per_example.has_value()) {
    TESSERA_ASSIGN_OR_RETURN(result, DpSgdLoop(x, y, options, *per_example, terms, sgd));
  } else {
    auto forward = [this](const at::Tensor& in, int64_t len) { return Forward(in, len); };
    TESSERA_ASSIGN_OR_RETURN(result, SgdLoop(forward, device, x, y, options, terms, sgd));
  }
  result.num_examples = data.size();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

absl::StatusOr<EvalResult> LocalModel::Impl::Evaluate(const Dataset& data,
                                                      uint32_t batch_size) {
  torch::NoGradGuard no_grad;
  ModeScope mode(this, /*training=*/false);
  TESSERA_ASSIGN_OR_RETURN(at::Tensor x, Inputs(data));
  const at::Tensor y = Labels(data);
  const int64_t n = static_cast<int64_t>(data.size());
  at::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(torch::kDouble).device(device));
  at::Tensor correct = torch::zeros({}, torch::TensorOptions(torch::kLong).device(device));
  namespace F = torch::nn::functional;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t len = std::min<int64_t>(batch_size, n - begin);
    const at::Tensor labels = y.narrow(0, begin, len);
    TESSERA_ASSIGN_OR_RETURN(at::Tensor logits, Forward(x.narrow(0, begin, len), len));
    loss_sum += F::cross_entropy(logits, labels,
                                 F::CrossEntropyFuncOptions().reduction(torch::kSum));
    correct += logits.argmax(1).eq(labels).sum();
  }
  EvalResult result;
  result.num_examples = static_cast<uint64_t>(n);
  result.loss = loss_sum.item<double>() / static_cast<double>(n);
  result.accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(n);
  return result;
}

}  // namespace tessera
