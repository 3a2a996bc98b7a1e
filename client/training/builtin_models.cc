#include "client/training/builtin_models.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera {
namespace training_internal {
namespace {

namespace nn = torch::nn;

nn::Sequential NiidCnn() {
  nn::Sequential s;
  s->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 6, 5)));
  s->push_back("relu1", nn::ReLU());
  s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  s->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  s->push_back("relu2", nn::ReLU());
  s->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", nn::Linear(16 * 4 * 4, 120));
  s->push_back("relu3", nn::ReLU());
  s->push_back("fc2", nn::Linear(120, 84));
  s->push_back("relu4", nn::ReLU());
  s->push_back("fc3", nn::Linear(84, 10));
  return s;
}

nn::Sequential McMahanCnn() {
  nn::Sequential s;
  s->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)));
  s->push_back("relu1", nn::ReLU());
  s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  s->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)));
  s->push_back("relu2", nn::ReLU());
  s->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", nn::Linear(64 * 7 * 7, 512));
  s->push_back("relu3", nn::ReLU());
  s->push_back("fc2", nn::Linear(512, 10));
  return s;
}

// The CNN of TF Privacy's MNIST DP-SGD tutorial with the tempered-sigmoid (tanh) activations
// that Papernot et al. (AAAI 2021, "Tempered Sigmoid Activations for Deep Learning with
// Differential Privacy") found to keep more accuracy under DP-SGD; no BatchNorm.
nn::Sequential DpCnn() {
  nn::Sequential s;
  s->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 16, 8).stride(2).padding(3)));
  s->push_back("tanh1", nn::Tanh());
  s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1)));
  s->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 4).stride(2)));
  s->push_back("tanh2", nn::Tanh());
  s->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1)));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", nn::Linear(32 * 4 * 4, 32));
  s->push_back("tanh3", nn::Tanh());
  s->push_back("fc2", nn::Linear(32, 10));
  return s;
}

nn::Sequential Mlp() {
  nn::Sequential s;
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", nn::Linear(784, 200));
  s->push_back("relu1", nn::ReLU());
  s->push_back("fc2", nn::Linear(200, 200));
  s->push_back("relu2", nn::ReLU());
  s->push_back("fc3", nn::Linear(200, 10));
  return s;
}

}  // namespace

const std::vector<std::string>& BuiltinArchitectures() {
  static const auto* const kNames =
      new std::vector<std::string>{"niid_cnn", "mcmahan_cnn", "mlp", "dp_cnn"};
  return *kNames;
}

absl::StatusOr<std::shared_ptr<torch::nn::SequentialImpl>> MakeBuiltinNet(
    absl::string_view architecture) {
  if (architecture == "niid_cnn") return NiidCnn().ptr();
  if (architecture == "mcmahan_cnn") return McMahanCnn().ptr();
  if (architecture == "mlp") return Mlp().ptr();
  if (architecture == "dp_cnn") return DpCnn().ptr();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown architecture \"", architecture,
                   "\"; known: ", absl::StrJoin(BuiltinArchitectures(), ", ")));
}

}  // namespace training_internal
}  // namespace tessera
