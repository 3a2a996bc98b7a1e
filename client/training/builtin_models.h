// File: builtin_models.h
// Internal to client/training: the built-in architectures as torch::nn::Sequential stacks.
// Only the LibTorch .cc files of this folder include it.
#ifndef TESSERA_CLIENT_TRAINING_BUILTIN_MODELS_H_
#define TESSERA_CLIENT_TRAINING_BUILTIN_MODELS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace torch {
namespace nn {
class SequentialImpl;
}  // namespace nn
}  // namespace torch

namespace tessera {
namespace training_internal {

// The names accepted by MakeBuiltinNet, in a stable order.
const std::vector<std::string>& BuiltinArchitectures();

// A freshly initialized network on the CPU (PyTorch's default initialization, drawn from
// LibTorch's global generator: the caller seeds and serializes). Every built-in network
// takes a [batch, 1, 28, 28] float input and returns [batch, 10] logits. Parameter names
// match the equivalent PyTorch modules ("conv1.weight", "fc1.bias", ...).
//   niid_cnn:    NIID-Bench's MNIST CNN (Li et al. 2022): conv(1,6,5) relu maxpool2,
//                conv(6,16,5) relu maxpool2, fc 256-120 relu, 120-84 relu, 84-10.
//   mcmahan_cnn: McMahan et al. 2017's MNIST CNN: conv 5x5 32 'same' relu maxpool2,
//                conv 5x5 64 'same' relu maxpool2, fc 3136-512 relu, 512-10.
//   mlp:         McMahan et al.'s 2NN: 784-200 relu, 200-200 relu, 200-10.
//   dp_cnn:      for DP-SGD: TF Privacy's MNIST tutorial CNN with tanh (Papernot et al.
//                2021): conv 8x8 16 stride 2 pad 3 tanh maxpool2/1, conv 4x4 32 stride 2 tanh
//                maxpool2/1, fc 512-32 tanh, 32-10.
// Errors: INVALID_ARGUMENT listing the known names.
absl::StatusOr<std::shared_ptr<torch::nn::SequentialImpl>> MakeBuiltinNet(
    absl::string_view architecture);

}  // namespace training_internal
}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_BUILTIN_MODELS_H_
