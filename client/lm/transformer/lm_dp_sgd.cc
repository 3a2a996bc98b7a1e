#include "client/lm/transformer/lm_dp_sgd.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/status_macros.h"
#include "privacy/dp/clipping.h"

namespace tessera::lm::internal {
namespace {

// Opacus' clipping factor, as client/training/per_example_grads.cc: min(1, C / (norm + 1e-6)).
constexpr double kNormStabilizer = 1e-6;

}  // namespace

absl::Status CheckDpSgdOptions(const DpSgdOptions& dp, size_t num_examples) {
  if (!std::isfinite(dp.noise_multiplier) || dp.noise_multiplier <= 0 ||
      !std::isfinite(dp.clip_norm) || dp.clip_norm <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DP-SGD: noise_multiplier (", dp.noise_multiplier, ") and clip_norm (", dp.clip_norm,
        ") must be finite and > 0"));
  }
  if (!std::isfinite(dp.expected_batch_size) || dp.expected_batch_size < 1 ||
      dp.expected_batch_size > static_cast<double>(num_examples)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DP-SGD: expected_batch_size ", dp.expected_batch_size, " must be in [1, ",
        num_examples, "] (the number of examples)"));
  }
  if (dp.max_physical_batch == 0) {
    return absl::InvalidArgumentError("DP-SGD: max_physical_batch must be > 0");
  }
  return absl::OkStatus();
}

DpSgdStep::DpSgdStep(const DpSgdOptions& dp, size_t n, std::vector<at::Tensor> params,
                     dp::SecureRandom rng)
    : dp_(dp),
      n_(n),
      q_(std::min(1.0, dp.expected_batch_size / static_cast<double>(n))),
      params_(std::move(params)),
      rng_(std::move(rng)) {
  for (const at::Tensor& p : params_) {
    sums_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat)));
  }
}

absl::StatusOr<DpSgdStep> DpSgdStep::Create(const DpSgdOptions& dp, size_t num_examples,
                                            std::vector<at::Tensor> params) {
  TESSERA_RETURN_IF_ERROR(CheckDpSgdOptions(dp, num_examples));
  absl::StatusOr<dp::SecureRandom> rng = dp.random_seed.empty()
                                             ? dp::SecureRandom::Create()
                                             : dp::SecureRandom::FromSeed(dp.random_seed);
  if (!rng.ok()) return rng.status();
  return DpSgdStep(dp, num_examples, std::move(params), *std::move(rng));
}

const std::vector<size_t>& DpSgdStep::Sample() {
  for (at::Tensor& s : sums_) s.zero_();
  sample_.clear();
  for (size_t i = 0; i < n_; ++i) {
    if (rng_.UniformUnit() < q_) sample_.push_back(i);
  }
  if (dp_.on_sample) dp_.on_sample(sample_.size());
  return sample_;
}

double DpSgdStep::AddClipped(const std::vector<at::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  double squared = 0;
  for (const at::Tensor& g : grads) {
    if (g.defined()) squared += g.to(torch::kDouble).pow(2).sum().item<double>();
  }
  const double norm = std::sqrt(squared);
  const double factor = std::min(1.0, dp_.clip_norm / (norm + kNormStabilizer));
  for (size_t i = 0; i < sums_.size() && i < grads.size(); ++i) {
    if (grads[i].defined()) sums_[i].add_(grads[i].to(torch::kFloat), factor);
  }
  return norm;
}

absl::Status DpSgdStep::SetNoisedGradients() {
  torch::NoGradGuard no_grad;
  const double stddev = dp_.noise_multiplier * dp_.clip_norm;
  const double inverse_batch = 1.0 / dp_.expected_batch_size;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& sum = sums_[i];
    if (sum.is_cpu() && sum.is_contiguous()) {
      TESSERA_RETURN_IF_ERROR(dp::AddGaussianNoise(
          absl::MakeSpan(sum.data_ptr<float>(), static_cast<size_t>(sum.numel())), stddev,
          rng_));
    } else {
      // Drawn on the CPU from the CSPRNG, then moved to the sum's device.
      noise_.assign(static_cast<size_t>(sum.numel()), 0.0f);
      TESSERA_RETURN_IF_ERROR(dp::AddGaussianNoise(absl::MakeSpan(noise_), stddev, rng_));
      sum.add_(torch::from_blob(noise_.data(), sum.sizes(), torch::kFloat).to(sum.device()));
    }
    at::Tensor grad = (sum * inverse_batch).to(params_[i].scalar_type());
    at::Tensor& slot = params_[i].mutable_grad();
    if (slot.defined()) {
      slot.copy_(grad);
    } else {
      slot = grad;
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::lm::internal
