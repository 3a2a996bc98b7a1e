// File: local_model_impl.h
// Internal to client/training: the LibTorch state behind LocalModel, shared by
// local_model.cc (construction, weights, TorchScript I/O) and local_model_train.cc (the
// Train and Evaluate loops). It includes LibTorch, so only those two .cc files include it.
#ifndef TESSERA_CLIENT_TRAINING_LOCAL_MODEL_IMPL_H_
#define TESSERA_CLIENT_TRAINING_LOCAL_MODEL_IMPL_H_

#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/data/dataset.h"
#include "client/training/local_model.h"

namespace tessera {
namespace training_internal {

// "[a,b,c]".
std::string ShapeString(c10::IntArrayRef sizes);

}  // namespace training_internal

// Not thread-safe, as LocalModel.
class LocalModel::Impl {
 public:
  using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

  std::string architecture;
  torch::Device device{torch::kCPU};
  std::shared_ptr<torch::nn::SequentialImpl> net;  // built-in models
  std::unique_ptr<torch::jit::Module> script;      // TorchScript models

  // Sets training mode and restores the previous mode on destruction.
  class ModeScope {
   public:
    ModeScope(Impl* impl, bool training) : impl_(impl), previous_(impl->IsTraining()) {
      impl_->SetTraining(training);
    }
    ModeScope(const ModeScope&) = delete;
    ModeScope& operator=(const ModeScope&) = delete;
    ~ModeScope() { impl_->SetTraining(previous_); }

   private:
    Impl* impl_;
    bool previous_;
  };

  // local_model.cc:
  bool IsTraining() const;
  // TorchScript modules built outside PyTorch may lack the "training" attribute that
  // jit::Module::train() insists on; such modules are left alone.
  void SetTraining(bool on);
  // Every parameter, trainable or not.
  std::vector<at::Tensor> Parameters() const;
  // Parameters and buffers in PyTorch state_dict order: modules in pre-order, each
  // module's own parameters then its own buffers. Walked once and cached (the handles share
  // the module's storage; modules are not restructured after loading): walking the module
  // tree costs more than copying a small model's weights.
  const NamedTensors& State() const;
  // The parameters that require grad, named and ordered as in State().
  NamedTensors TrainableParameters() const;

  // local_model_train.cc:
  // Logits [batch, classes]; INVALID_ARGUMENT for any other output.
  absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, int64_t batch);
  // The features as a model input on the device (a view on the CPU, no copy).
  absl::StatusOr<at::Tensor> Inputs(const Dataset& data) const;
  at::Tensor Labels(const Dataset& data) const;
  // LocalModel::Train and Evaluate after their torch-free argument checks; may throw
  // c10::Error.
  absl::StatusOr<TrainResult> Train(const Dataset& data, const TrainOptions& options);
  absl::StatusOr<EvalResult> Evaluate(const Dataset& data, uint32_t batch_size);

 private:
  mutable bool state_cached_ = false;
  mutable NamedTensors state_;
  mutable std::vector<bool> state_is_parameter_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_LOCAL_MODEL_IMPL_H_
