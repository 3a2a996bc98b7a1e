// File: per_example_grads.h
// Internal to client/training: per-example gradients of a torch::nn::Sequential network, the
// core of record-level DP-SGD (Abadi et al. CCS 2016). One forward pass records each
// parametric layer's input a_b and one backward pass gives the gradient g_b of the summed loss
// with respect to its output; each example's parameter gradient is then a function of
// (a_b, g_b) alone (the approach of Opacus' grad samplers), never a loop of batch-size-1
// backward passes:
//   Linear     dW_b = sum_s g_bs a_bs^T, db_b = sum_s g_bs; with 2-D inputs its norm is
//              ||g_b||^2 ||a_b||^2 + ||g_b||^2 ("ghost" norm, nothing materialized) and the
//              clipped sum is (f * g)^T a.
//   Conv2d     dW_b = g_b unfold(a_b)^T (im2col), db_b = sum over positions of g_b.
//   Embedding  dW_b = rows of g_b scattered to the looked-up indices (padding_idx left out).
//   LayerNorm, GroupNorm
//              dgamma_b = sum of g_b * a_hat_b, dbeta_b = sum of g_b, a_hat = the normalized
//              input (recomputed without the affine part).
// Layers without parameters (ReLU, pooling, Flatten, Dropout, ...) are run as they are.
// BatchNorm mixes the examples of a batch, so no per-example gradient exists: it is refused
// naming the layer (use GroupNorm). Any other layer with trainable parameters is refused by
// name. Includes LibTorch: only this folder's LibTorch .cc files and its tests include it.
#ifndef TESSERA_CLIENT_TRAINING_PER_EXAMPLE_GRADS_H_
#define TESSERA_CLIENT_TRAINING_PER_EXAMPLE_GRADS_H_

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {
namespace training_internal {

// What one physical batch contributed to a DP-SGD step.
struct ClippedBatch {
  at::Tensor loss_sum;    // sum of the examples' cross-entropy losses (0-dim, on the device)
  at::Tensor norms;       // [batch] each example's gradient L2 norm before clipping
};

// A Sequential network checked for per-example gradients. Holds a reference to the network
// (which must outlive it); not thread-safe.
class PerExampleNet {
 public:
  // Errors: INVALID_ARGUMENT naming the first BatchNorm layer, grouped or non-zero-padded
  // convolution, or other layer with trainable parameters that has no per-example rule.
  static absl::StatusOr<PerExampleNet> Create(std::shared_ptr<torch::nn::SequentialImpl> net);

  // The trainable parameters in the order the functions below use (state_dict order).
  const std::vector<at::Tensor>& parameters() const { return params_; }

  // Every example's gradient of its own cross-entropy loss, one tensor [batch, *shape] per
  // trainable parameter (aligned with parameters()). For tests and small batches: memory is
  // batch times the model.
  std::vector<at::Tensor> PerExampleGradients(const at::Tensor& x, const at::Tensor& y);

  // Adds sum_b min(1, clip / (||G_b|| + 1e-6)) G_b to `sums` (aligned with parameters()),
  // where G_b is example b's gradient over all trainable parameters together: each
  // example moves the sum by at most `clip` in L2 norm. Parameter .grad fields are not used.
  ClippedBatch AccumulateClipped(const at::Tensor& x, const at::Tensor& y, double clip,
                                 std::vector<at::Tensor>& sums);

 private:
  enum class Kind { kPlain, kLinear, kConv2d, kEmbedding, kLayerNorm, kGroupNorm };
  struct Layer {
    Kind kind = Kind::kPlain;
    std::string name;
    std::shared_ptr<torch::nn::Module> module;
    at::Tensor weight, bias;  // trainable ones, else undefined
    int weight_index = -1, bias_index = -1;  // into params_
  };
  // The inputs and output gradients of the parametric layers for one batch.
  struct Tape {
    std::vector<at::Tensor> inputs;        // per layer (undefined for plain layers)
    std::vector<at::Tensor> out_grads;
    at::Tensor loss_sum;
  };

  PerExampleNet() = default;
  Tape Record(const at::Tensor& x, const at::Tensor& y);
  // Per-example gradients of one layer: {weight, bias} (undefined when not trainable).
  std::pair<at::Tensor, at::Tensor> LayerGradients(const Layer& layer, const at::Tensor& a,
                                                   const at::Tensor& g) const;

  std::shared_ptr<torch::nn::SequentialImpl> net_;
  std::vector<Layer> layers_;
  std::vector<at::Tensor> params_;
};

}  // namespace training_internal
}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_PER_EXAMPLE_GRADS_H_
