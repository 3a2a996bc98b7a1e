// File: local_model.h
// A client's trainable model: the one place that wraps LibTorch. Models are either built-in
// architectures (see BuiltinArchitectures) or TorchScript programs exported from PyTorch.
// Weights cross this boundary only as tessera::ArrayRecord.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<LocalModel> model,
//                            LocalModel::CreateBuiltin("niid_cnn", /*seed=*/1, "cpu"));
//   TESSERA_RETURN_IF_ERROR(model->SetWeights(global_weights));
//   TESSERA_ASSIGN_OR_RETURN(TrainResult r, model->Train(local_data, options));
//   TESSERA_ASSIGN_OR_RETURN(ArrayRecord update, model->GetWeights());
#ifndef TESSERA_CLIENT_TRAINING_LOCAL_MODEL_H_
#define TESSERA_CLIENT_TRAINING_LOCAL_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/data/dataset.h"
#include "core/model/tensor.h"

namespace tessera {

// Record-level differential privacy by DP-SGD (Abadi et al., CCS 2016; docs/privacy.md,
// "Record-level DP-SGD"). Each step Poisson-samples the examples with rate
// q = expected_batch_size / n (n = examples in the dataset), clips every sampled example's
// gradient over all trainable parameters together to L2 norm clip_norm, sums them, adds
// N(0, (noise_multiplier * clip_norm)^2) to every coordinate of the sum (from a
// dp::SecureRandom CSPRNG) and divides by expected_batch_size; that is the gradient the
// optimizer (and FedProx's and SCAFFOLD's terms) then use. One record is thus in each step's
// sample with probability q and moves the noised sum by at most clip_norm: the steps are the
// Poisson-subsampled Gaussian mechanism of the privacy accountants (privacy/dp).
struct DpSgdOptions {
  double noise_multiplier = 0;    // z > 0
  double clip_norm = 0;           // C > 0
  double expected_batch_size = 0;  // B, in [1, n]
  // Memory cap: a sampled batch (of random size) is processed in chunks of at most this
  // many examples. Does not change the result beyond floating-point summation order.
  uint32_t max_physical_batch = 256;
  // Testing only: 32 bytes fix the sampling and noise streams. Empty (the default): fresh
  // randomness from the OS for every Train call.
  std::string random_seed;
  // Optional: called with the size of every step's Poisson sample (tests, logs).
  std::function<void(uint64_t sampled)> on_sample;
};

// The number of DP-SGD steps Train takes: epochs * max(1, floor(n / expected_batch_size)),
// capped at max_steps when that is > 0 (one "epoch" is 1/q steps, as in Opacus).
uint64_t DpSgdSteps(uint64_t num_examples, uint32_t epochs, double expected_batch_size,
                    uint32_t max_steps);

struct TrainOptions {
  uint32_t epochs = 1;
  uint32_t batch_size = 64;
  double learning_rate = 0.01;
  double momentum = 0.9;
  double weight_decay = 0;
  // Stops after this many optimizer steps in total; 0 = no cap (epochs decide).
  uint32_t max_steps = 0;
  // Seeds the per-epoch shuffling of the examples.
  uint64_t seed = 0;
  // Called after every step with the fraction of steps done, in (0, 1]. Optional.
  std::function<void(double progress)> on_progress;

  // FedProx (Li et al., MLSys 2020): adds (proximal_mu / 2) * ||w - w_start||^2 to the
  // local objective, where w_start are the trainable parameters at the start of this Train
  // call (the global model the caller has just set with SetWeights). Implemented by adding
  // proximal_mu * (w - w_start) to each trainable parameter's gradient after backward and
  // before the optimizer step, so momentum and weight decay see it like the loss gradient.
  // TrainResult::train_loss stays the cross-entropy alone (the proximal term is not in
  // it). 0 (the default) leaves training bit-identical to plain local SGD; must be finite
  // and >= 0, and learning_rate * proximal_mu should stay well below 2 (divergence).
  // Costs two copies of the trainable parameters when > 0.
  double proximal_mu = 0;
  // SCAFFOLD (Karimireddy et al., ICML 2020): the control-variate correction c - c_i,
  // exactly one tensor per trainable parameter (TrainableParameterNames(), in any order)
  // with that parameter's name, dtype (float32 for the built-in models) and shape. After
  // backward it is added to each trainable parameter's gradient before the optimizer step:
  // with momentum 0 and weight_decay 0 each step is y <- y - lr * (g + c - c_i). Copied to
  // the model's device once per Train call. nullptr (the default) = no correction; all
  // zeros gives bit-identical weights to nullptr. Borrowed: must remain live during Train.
  const ArrayRecord* scaffold_correction = nullptr;
  // Set: train with record-level DP-SGD instead of plain mini-batch SGD (batch_size is then
  // unused; the steps are DpSgdSteps). Built-in architectures only: their layers are walked
  // for per-example gradients (per_example_grads.h).
  std::optional<DpSgdOptions> dp_sgd;
};

struct TrainResult {
  // Examples in one epoch (the dataset size): the FedAvg weight of this update.
  uint64_t num_examples = 0;
  // Mean of the per-step mean cross-entropy losses (without FedProx's proximal term).
  double train_loss = 0;
  // Optimizer steps taken, K = min(epochs * ceil(num_examples / batch_size), max_steps if
  // > 0). SCAFFOLD's option II update of c_i divides the model change by K * lr.
  uint64_t steps = 0;
  // Examples processed over all steps (for throughput).
  uint64_t examples_processed = 0;
  double seconds = 0;
  // DP-SGD only: the Poisson sampling rate q and how many sampled examples had a gradient
  // norm above clip_norm (kept local: the count is not differentially private).
  double sampling_rate = 0;
  uint64_t clipped_examples = 0;
};

struct EvalResult {
  // Mean cross-entropy over the examples.
  double loss = 0;
  // Fraction of examples whose arg-max logit is the label.
  double accuracy = 0;
  uint64_t num_examples = 0;
};

// Names accepted by LocalModel::CreateBuiltin: "niid_cnn", "mcmahan_cnn", "mlp", "dp_cnn".
const std::vector<std::string>& BuiltinArchitectures();

// Not thread-safe: use one instance from one thread at a time. Distinct instances may be
// used concurrently (they share LibTorch's process-wide thread pool, whose size
// SetTorchThreads in client/training/device.h sets).
class LocalModel {
 public:
  // A built-in architecture with PyTorch's default initialization drawn deterministically
  // from `seed` (independent of the device). Built-in models take 1x28x28 examples
  // (any dataset whose examples have 784 values) and return 10 logits.
  // `device` is a ResolveDevice spec ("auto", "cpu", "cuda", "cuda:N").
  // Errors: INVALID_ARGUMENT for an unknown architecture (listing the known ones) or
  // device spec; FAILED_PRECONDITION when CUDA is requested but unavailable.
  static absl::StatusOr<std::unique_ptr<LocalModel>> CreateBuiltin(
      absl::string_view architecture, uint64_t seed, absl::string_view device = "cpu");

  // A TorchScript module (torch.jit.script/trace(...).save() in PyTorch). Its forward
  // takes one float tensor of shape [batch] + example_shape and returns [batch, classes]
  // logits. Its parameters that require grad are trained.
  // Errors: NOT_FOUND for a missing file; INVALID_ARGUMENT when LibTorch cannot load it
  // (with LibTorch's message); device errors as CreateBuiltin.
  static absl::StatusOr<std::unique_ptr<LocalModel>> LoadTorchScriptFile(
      const std::string& path, absl::string_view device = "cpu");
  static absl::StatusOr<std::unique_ptr<LocalModel>> LoadTorchScriptBytes(
      absl::string_view bytes, absl::string_view device = "cpu");

  LocalModel(const LocalModel&) = delete;
  LocalModel& operator=(const LocalModel&) = delete;
  ~LocalModel();

  // Parameters and buffers (including integer buffers such as BatchNorm's
  // num_batches_tracked) in PyTorch state_dict order: module by module in pre-order, each
  // module's own parameters, then its own buffers. CPU copies.
  absl::StatusOr<ArrayRecord> GetWeights() const;

  // Replaces every parameter and buffer. `weights` must hold exactly the model's tensor
  // names (in any order) with the same dtypes and shapes. Nothing changes on error.
  // Errors: INVALID_ARGUMENT naming the first missing, unknown or mismatching tensor.
  absl::Status SetWeights(const ArrayRecord& weights);

  // Local SGD (with momentum and weight decay) on cross-entropy loss over shuffled
  // mini-batches; the last batch of an epoch may be smaller. The model is in training
  // mode only during the call. With options.proximal_mu or options.scaffold_correction
  // set, their terms are added to every trainable parameter's gradient (a parameter the
  // loss does not reach gets the terms alone). Nothing is trained on error, except for a
  // LibTorch error raised mid-training.
  // With options.dp_sgd, see DpSgdOptions.
  // Errors: INVALID_ARGUMENT for an empty or inconsistent dataset, examples the model
  // cannot take, epochs or batch_size of 0, a negative or non-finite proximal_mu, a
  // scaffold_correction with a missing, extra, mis-typed, mis-shaped or non-finite tensor
  // (naming it), or a LibTorch error (message included); FAILED_PRECONDITION when the
  // model has no trainable parameters. DP-SGD adds INVALID_ARGUMENT for a noise_multiplier
  // or clip_norm that is not finite and > 0, an expected_batch_size below 1 or
  // above the dataset size, max_physical_batch 0, a TorchScript model, or a layer without
  // per-example gradients (BatchNorm, Embedding with max_norm and others, named).
  absl::StatusOr<TrainResult> Train(const Dataset& data, const TrainOptions& options);

  // Loss and accuracy in evaluation mode, without gradients.
  // Errors: as Train.
  absl::StatusOr<EvalResult> Evaluate(const Dataset& data, uint32_t batch_size = 256);

  // Saves the TorchScript module with the current weights (on the CPU, in its current
  // train/eval mode) so that PyTorch's torch.jit.load opens it.
  // Errors: FAILED_PRECONDITION for built-in models; INTERNAL when writing fails.
  absl::Status SaveTorchScript(const std::string& path) const;

  // "cpu" or "cuda:N".
  std::string device() const;
  // The built-in architecture name, or "torchscript".
  std::string architecture() const;
  // Number of parameter elements (buffers excluded).
  int64_t num_parameters() const;
  // The state_dict names of the parameters that require grad (those Train updates), in
  // state_dict order (as GetWeights); buffers and frozen parameters are left out.
  std::vector<std::string> TrainableParameterNames() const;

 private:
  class Impl;
  explicit LocalModel(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_LOCAL_MODEL_H_
