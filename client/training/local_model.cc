#include "client/training/local_model.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/training/builtin_models.h"
#include "client/training/device.h"
#include "client/training/torch_convert.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

using training_internal::DTypeOf;
using training_internal::FromTorch;
using training_internal::ViewAsTorch;

// Serializes seeding LibTorch's global generator and drawing the initial weights.
ABSL_CONST_INIT absl::Mutex g_init_mu(absl::kConstInit);

// Built-in networks take 1x28x28 examples.
constexpr int64_t kBuiltinExampleSize = 28 * 28;

// Runs `f`, turning LibTorch exceptions into INVALID_ARGUMENT "<what>: <message>".
template <typename F>
auto GuardTorch(absl::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what()));
  }
}

std::string JoinName(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : absl::StrCat(prefix, ".", name);
}

std::string ShapeString(c10::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ","), "]");
}

}  // namespace

const std::vector<std::string>& BuiltinArchitectures() {
  return training_internal::BuiltinArchitectures();
}

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
    ~ModeScope() { impl_->SetTraining(previous_); }

   private:
    Impl* impl_;
    bool previous_;
  };

  bool IsTraining() const { return net ? net->is_training() : script->is_training(); }
  // TorchScript modules built outside PyTorch may lack the "training" attribute that
  // jit::Module::train() insists on; such modules are left alone.
  void SetTraining(bool on) {
    if (net) {
      net->train(on);
      return;
    }
    for (torch::jit::Module m : script->modules()) {
      if (m.hasattr("training")) m.setattr("training", on);
    }
  }

  absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, int64_t batch) {
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

  std::vector<at::Tensor> Parameters() const {
    std::vector<at::Tensor> out;
    if (net) return net->parameters();
    for (const at::Tensor& p : script->parameters()) out.push_back(p);
    return out;
  }

  // PyTorch state_dict order: modules in pre-order, own parameters then own buffers.
  NamedTensors State() const {
    NamedTensors out;
    if (net) {
      for (const auto& m : net->named_modules("", /*include_self=*/true)) {
        for (const auto& p : m.value()->named_parameters(/*recurse=*/false)) {
          out.emplace_back(JoinName(m.key(), p.key()), p.value());
        }
        for (const auto& b : m.value()->named_buffers(/*recurse=*/false)) {
          out.emplace_back(JoinName(m.key(), b.key()), b.value());
        }
      }
      return out;
    }
    for (const auto& m : script->named_modules()) {
      for (const auto& p : m.value.named_parameters(/*recurse=*/false)) {
        out.emplace_back(JoinName(m.name, p.name), p.value);
      }
      for (const auto& b : m.value.named_buffers(/*recurse=*/false)) {
        out.emplace_back(JoinName(m.name, b.name), b.value);
      }
    }
    return out;
  }

  // The features as a model input on the device (a view on the CPU, no copy).
  absl::StatusOr<at::Tensor> Inputs(const Dataset& data) const {
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
    at::Tensor x = torch::from_blob(const_cast<float*>(data.features.data()), shape,
                                    torch::kFloat);
    return device.is_cpu() ? x : x.to(device);
  }

  at::Tensor Labels(const Dataset& data) const {
    at::Tensor y = torch::from_blob(const_cast<int64_t*>(data.labels.data()),
                                    {static_cast<int64_t>(data.size())}, torch::kLong);
    return device.is_cpu() ? y : y.to(device);
  }

  absl::StatusOr<TrainResult> Train(const Dataset& data, const TrainOptions& options);
  absl::StatusOr<EvalResult> Evaluate(const Dataset& data, uint32_t batch_size);
};

absl::StatusOr<TrainResult> LocalModel::Impl::Train(const Dataset& data,
                                                    const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  TESSERA_ASSIGN_OR_RETURN(at::Tensor x, Inputs(data));
  const at::Tensor y = Labels(data);
  std::vector<at::Tensor> params;
  for (const at::Tensor& p : Parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  if (params.empty()) {
    return absl::FailedPreconditionError("Train: the model has no trainable parameters");
  }
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(options.learning_rate)
                                    .momentum(options.momentum)
                                    .weight_decay(options.weight_decay));
  ModeScope mode(this, /*training=*/true);

  const uint64_t n = data.size();
  const uint64_t batch = options.batch_size;
  uint64_t total_steps = options.epochs * ((n + batch - 1) / batch);
  if (options.max_steps > 0) total_steps = std::min<uint64_t>(total_steps, options.max_steps);

  TrainResult result;
  result.num_examples = n;
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
      TESSERA_ASSIGN_OR_RETURN(at::Tensor logits, Forward(x.index_select(0, index), len));
      at::Tensor loss =
          torch::nn::functional::cross_entropy(logits, y.index_select(0, index));
      loss.backward();
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

LocalModel::LocalModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalModel::~LocalModel() = default;

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::CreateBuiltin(
    absl::string_view architecture, uint64_t seed, absl::string_view device) {
  TESSERA_ASSIGN_OR_RETURN(std::string resolved, ResolveDevice(device));
  auto impl = std::make_unique<Impl>();
  impl->architecture = std::string(architecture);
  return GuardTorch("CreateBuiltin", [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
    impl->device = torch::Device(resolved);
    {
      absl::MutexLock l(&g_init_mu);
      torch::manual_seed(seed);
      TESSERA_ASSIGN_OR_RETURN(impl->net, training_internal::MakeBuiltinNet(architecture));
    }
    impl->net->to(impl->device);
    impl->net->eval();
    return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
  });
}

namespace {

absl::StatusOr<std::unique_ptr<torch::jit::Module>> CheckedScript(torch::jit::Module module,
                                                                  absl::string_view source) {
  if (!module.find_method("forward")) {
    return absl::InvalidArgumentError(
        absl::StrCat("TorchScript module from ", source, " has no forward method"));
  }
  return std::make_unique<torch::jit::Module>(std::move(module));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::LoadTorchScriptFile(
    const std::string& path, absl::string_view device) {
  TESSERA_ASSIGN_OR_RETURN(std::string resolved, ResolveDevice(device));
  if (!std::filesystem::is_regular_file(path)) {
    return absl::NotFoundError(absl::StrCat("TorchScript file not found: ", path));
  }
  auto impl = std::make_unique<Impl>();
  impl->architecture = "torchscript";
  return GuardTorch(absl::StrCat("cannot load TorchScript file ", path),
                    [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
                      impl->device = torch::Device(resolved);
                      TESSERA_ASSIGN_OR_RETURN(
                          impl->script, CheckedScript(torch::jit::load(path, impl->device),
                                                      path));
                      return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
                    });
}

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::LoadTorchScriptBytes(
    absl::string_view bytes, absl::string_view device) {
  TESSERA_ASSIGN_OR_RETURN(std::string resolved, ResolveDevice(device));
  auto impl = std::make_unique<Impl>();
  impl->architecture = "torchscript";
  return GuardTorch("cannot load TorchScript bytes",
                    [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
                      impl->device = torch::Device(resolved);
                      std::istringstream in{std::string(bytes)};
                      TESSERA_ASSIGN_OR_RETURN(
                          impl->script,
                          CheckedScript(torch::jit::load(in, impl->device), "bytes"));
                      return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
                    });
}

absl::StatusOr<ArrayRecord> LocalModel::GetWeights() const {
  return GuardTorch("GetWeights", [&]() -> absl::StatusOr<ArrayRecord> {
    ArrayRecord record;
    for (const auto& [name, t] : impl_->State()) {
      TESSERA_ASSIGN_OR_RETURN(Tensor tensor, FromTorch(name, t));
      record.tensors.push_back(std::move(tensor));
    }
    return record;
  });
}

absl::Status LocalModel::SetWeights(const ArrayRecord& weights) {
  return GuardTorch("SetWeights", [&]() -> absl::Status {
    const Impl::NamedTensors state = impl_->State();
    std::vector<const Tensor*> sources;
    std::set<std::string> names;
    for (const auto& [name, t] : state) {
      names.insert(name);
      const Tensor* w = weights.Find(name);
      if (w == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("SetWeights: weights lack the model's tensor \"", name, "\""));
      }
      TESSERA_ASSIGN_OR_RETURN(DType dtype, DTypeOf(name, t));
      if (w->dtype() != dtype) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SetWeights: tensor \"", name, "\" has dtype ", DTypeName(w->dtype()),
            ", the model's has ", DTypeName(dtype)));
      }
      if (!std::equal(w->shape().begin(), w->shape().end(), t.sizes().begin(),
                      t.sizes().end())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SetWeights: tensor \"", name, "\" has shape [", absl::StrJoin(w->shape(), ","),
            "], the model's has ", ShapeString(t.sizes())));
      }
      sources.push_back(w);
    }
    for (const Tensor& w : weights.tensors) {
      if (!names.count(w.name())) {
        return absl::InvalidArgumentError(
            absl::StrCat("SetWeights: the model has no tensor \"", w.name(), "\""));
      }
    }
    if (weights.tensors.size() != state.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SetWeights: ", weights.tensors.size(), " tensors for a model of ",
                       state.size(), " (duplicate names?)"));
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < state.size(); ++i) {
      at::Tensor target = state[i].second;
      target.copy_(ViewAsTorch(*sources[i]));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<TrainResult> LocalModel::Train(const Dataset& data,
                                              const TrainOptions& options) {
  if (options.epochs == 0 || options.batch_size == 0) {
    return absl::InvalidArgumentError("Train: epochs and batch_size must be > 0");
  }
  if (data.size() == 0) return absl::InvalidArgumentError("Train: empty dataset");
  TESSERA_RETURN_IF_ERROR(data.Validate());
  return GuardTorch("Train", [&] { return impl_->Train(data, options); });
}

absl::StatusOr<EvalResult> LocalModel::Evaluate(const Dataset& data, uint32_t batch_size) {
  if (batch_size == 0) return absl::InvalidArgumentError("Evaluate: batch_size must be > 0");
  if (data.size() == 0) return absl::InvalidArgumentError("Evaluate: empty dataset");
  TESSERA_RETURN_IF_ERROR(data.Validate());
  return GuardTorch("Evaluate", [&] { return impl_->Evaluate(data, batch_size); });
}

absl::Status LocalModel::SaveTorchScript(const std::string& path) const {
  if (impl_->script == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SaveTorchScript: built-in model ", impl_->architecture,
        " has no TorchScript program; load one with LoadTorchScriptFile"));
  }
  try {
    if (impl_->device.is_cpu()) {
      impl_->script->save(path);
    } else {
      torch::jit::Module copy = impl_->script->clone();
      copy.to(torch::kCPU);
      copy.save(path);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot save TorchScript to ", path, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::string LocalModel::device() const { return impl_->device.str(); }
std::string LocalModel::architecture() const { return impl_->architecture; }

int64_t LocalModel::num_parameters() const {
  int64_t n = 0;
  for (const at::Tensor& p : impl_->Parameters()) n += p.numel();
  return n;
}

}  // namespace tessera
