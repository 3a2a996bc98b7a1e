// File: lm_dp_sgd.h
// Internal to client/lm/transformer: the privacy-relevant half of CausalLm::Train with
// LmTrainOptions::dp_sgd (record-level DP-SGD, Abadi et al. CCS 2016), apart from the model:
// the Poisson sample of each step, the joint per-example clip of a gradient over all
// trainable tensors, and the Gaussian noise and division by the expected batch size. The
// semantics are those of the image models' DP-SGD (client/training/local_model_train.cc,
// DpSgdLoop): the same CSPRNG (dp::SecureRandom), sampling test (UniformUnit() < q), clip
// factor min(1, C / (||g|| + 1e-6)) and noise (dp::AddGaussianNoise, drawn on the CPU).
// Includes LibTorch: only this folder's .cc files and its tests include it.
//
// Example (one step; lm_train.cc):
//   const std::vector<size_t>& sample = step.Sample();
//   for (size_t i : sample) { ... backward of example i ...; step.AddClipped(grads); }
//   TESSERA_RETURN_IF_ERROR(step.SetNoisedGradients());
//   optimizer.step();
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_LM_DP_SGD_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_LM_DP_SGD_H_

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/training/local_model.h"
#include "privacy/dp/random_source.h"

namespace tessera::lm::internal {

// Errors: INVALID_ARGUMENT for a noise_multiplier or clip_norm that is not finite and > 0,
// an expected_batch_size that is not finite or outside [1, num_examples], or
// max_physical_batch 0.
absl::Status CheckDpSgdOptions(const DpSgdOptions& dp, size_t num_examples);

// One Train call's DP-SGD state. Movable, not thread-safe.
class DpSgdStep {
 public:
  // `params` are the tensors the optimizer updates (their .grad is written).
  // Errors: as CheckDpSgdOptions; INVALID_ARGUMENT for a random_seed that is neither empty
  // nor 32 bytes; INTERNAL when the CSPRNG cannot be seeded.
  static absl::StatusOr<DpSgdStep> Create(const DpSgdOptions& dp, size_t num_examples,
                                          std::vector<at::Tensor> params);

  // q = min(1, expected_batch_size / num_examples).
  double sampling_rate() const { return q_; }

  // Starts a step: zeroes the clipped sum and draws its Poisson sample (each example
  // independently with probability q, from the CSPRNG), ascending indices. Calls on_sample.
  const std::vector<size_t>& Sample();

  // Adds min(1, C / (||g|| + 1e-6)) g to the step's sum, where g is one example's gradient:
  // `grads` aligned with the params (an undefined tensor counts as zeros), taken together.
  // Returns ||g|| (accumulated in double).
  double AddClipped(const std::vector<at::Tensor>& grads);

  // Adds N(0, (z C)^2) to every coordinate of the sum, divides it by expected_batch_size
  // and writes it (in each param's dtype) to the params' .grad.
  // Errors: INVALID_ARGUMENT from dp::AddGaussianNoise (not expected after Create).
  absl::Status SetNoisedGradients();

  // The clipped sum so far, aligned with the params (float32; for tests).
  const std::vector<at::Tensor>& sums() const { return sums_; }

 private:
  DpSgdStep(const DpSgdOptions& dp, size_t n, std::vector<at::Tensor> params,
            dp::SecureRandom rng);

  DpSgdOptions dp_;
  size_t n_;
  double q_;
  std::vector<at::Tensor> params_;
  std::vector<at::Tensor> sums_;  // float32, on each param's device
  dp::SecureRandom rng_;
  std::vector<size_t> sample_;
  std::vector<float> noise_;
};

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_LM_DP_SGD_H_
