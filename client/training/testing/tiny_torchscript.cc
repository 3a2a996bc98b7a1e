#include "client/training/testing/tiny_torchscript.h"

#include <torch/script.h>

#include "absl/strings/str_cat.h"

namespace tessera {

absl::Status WriteTinyTorchScript(const std::string& path, uint64_t seed) {
  try {
    torch::manual_seed(seed);
    torch::jit::Module bn("__torch__.TinyNorm");
    bn.register_attribute("training", c10::BoolType::get(), true);
    bn.register_parameter("weight", torch::ones({4}).set_requires_grad(true), false);
    bn.register_buffer("running_mean", torch::zeros({4}));
    bn.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
    bn.define(R"(
def forward(self, x):
    if self.training:
        self.num_batches_tracked.add_(1)
        self.running_mean.mul_(0.9).add_(x.mean(0).detach(), alpha=0.1)
    return x * self.weight
)");
    torch::jit::Module net("__torch__.TinyNet");
    net.register_attribute("training", c10::BoolType::get(), true);
    net.register_parameter("weight", (torch::randn({3, 4}) * 0.1).set_requires_grad(true),
                           false);
    net.register_parameter("bias", torch::zeros({3}).set_requires_grad(true), false);
    net.register_module("bn", bn);
    // Submodules built in C++ are called through .forward().
    net.define(R"(
def forward(self, x):
    return self.bn.forward(x).matmul(self.weight.t()) + self.bias
)");
    net.save(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("WriteTinyTorchScript(", path, "): ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

Dataset TinyTabularDataset() {
  Dataset d;
  d.example_shape = {4};
  d.num_classes = 3;
  for (int i = 0; i < 30; ++i) {
    const int c = i % 3;
    for (int f = 0; f < 4; ++f) d.features.push_back(f == c ? 1.0f : 0.1f * f);
    d.labels.push_back(c);
  }
  return d;
}

}  // namespace tessera
