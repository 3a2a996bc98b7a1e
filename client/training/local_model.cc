// LocalModel: construction, weights and TorchScript I/O. The Train and Evaluate loops are
// in local_model_train.cc.
#include "client/training/local_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/training/builtin_models.h"
#include "client/training/device.h"
#include "client/training/local_model_impl.h"
#include "client/training/torch_convert.h"
#include "core/base/status_macros.h"

namespace tessera {

std::string training_internal::ShapeString(c10::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ","), "]");
}

namespace {

using training_internal::DTypeOf;
using training_internal::FromTorch;
using training_internal::ShapeString;
using training_internal::ViewAsTorch;

// Serializes seeding LibTorch's global generator and drawing the initial weights.
ABSL_CONST_INIT absl::Mutex g_init_mu(absl::kConstInit);

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

// Calls visit(name, tensor, is_parameter) for every parameter and buffer of the model
// (`net` or else `script`) in PyTorch state_dict order: modules in pre-order, each
// module's own parameters then its own buffers.
template <typename F>
void VisitState(const std::shared_ptr<torch::nn::SequentialImpl>& net,
                const torch::jit::Module* script, F&& visit) {
  if (net) {
    for (const auto& m : net->named_modules("", /*include_self=*/true)) {
      for (const auto& p : m.value()->named_parameters(/*recurse=*/false)) {
        visit(JoinName(m.key(), p.key()), p.value(), true);
      }
      for (const auto& b : m.value()->named_buffers(/*recurse=*/false)) {
        visit(JoinName(m.key(), b.key()), b.value(), false);
      }
    }
    return;
  }
  for (const auto& m : script->named_modules()) {
    for (const auto& p : m.value.named_parameters(/*recurse=*/false)) {
      visit(JoinName(m.name, p.name), p.value, true);
    }
    for (const auto& b : m.value.named_buffers(/*recurse=*/false)) {
      visit(JoinName(m.name, b.name), b.value, false);
    }
  }
}

}  // namespace

const std::vector<std::string>& BuiltinArchitectures() {
  return training_internal::BuiltinArchitectures();
}

bool LocalModel::Impl::IsTraining() const {
  return net ? net->is_training() : script->is_training();
}

void LocalModel::Impl::SetTraining(bool on) {
  if (net) {
    net->train(on);
    return;
  }
  for (torch::jit::Module m : script->modules()) {
    if (m.hasattr("training")) m.setattr("training", on);
  }
}

std::vector<at::Tensor> LocalModel::Impl::Parameters() const {
  std::vector<at::Tensor> out;
  if (net) return net->parameters();
  for (const at::Tensor& p : script->parameters()) out.push_back(p);
  return out;
}

const LocalModel::Impl::NamedTensors& LocalModel::Impl::State() const {
  if (!state_cached_) {
    NamedTensors state;
    std::vector<bool> is_parameter;
    VisitState(net, script.get(), [&](std::string name, const at::Tensor& t, bool parameter) {
      state.emplace_back(std::move(name), t);
      is_parameter.push_back(parameter);
    });
    state_ = std::move(state);  // only once the walk succeeded (it may throw)
    state_is_parameter_ = std::move(is_parameter);
    state_cached_ = true;
  }
  return state_;
}

LocalModel::Impl::NamedTensors LocalModel::Impl::TrainableParameters() const {
  NamedTensors out;
  const NamedTensors& state = State();
  for (size_t i = 0; i < state.size(); ++i) {
    if (state_is_parameter_[i] && state[i].second.requires_grad()) out.push_back(state[i]);
  }
  return out;
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
    const Impl::NamedTensors& state = impl_->State();
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
  if (!std::isfinite(options.proximal_mu) || options.proximal_mu < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Train: proximal_mu must be finite and >= 0, got ", options.proximal_mu));
  }
  if (data.size() == 0) return absl::InvalidArgumentError("Train: empty dataset");
  TESSERA_RETURN_IF_ERROR(data.Validate());
  if (options.dp_sgd.has_value()) {
    const DpSgdOptions& dp = *options.dp_sgd;
    auto positive = [](double v) { return std::isfinite(v) && v > 0; };
    if (!positive(dp.noise_multiplier) || !positive(dp.clip_norm) ||
        !(positive(dp.expected_batch_size) && dp.expected_batch_size >= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Train: DP-SGD noise_multiplier and clip_norm must be finite and > 0 and "
          "expected_batch_size finite and >= 1, got ", dp.noise_multiplier, ", ",
          dp.clip_norm, ", ", dp.expected_batch_size));
    }
    if (dp.expected_batch_size > static_cast<double>(data.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Train: DP-SGD expected_batch_size ", dp.expected_batch_size,
          " exceeds the dataset's ", data.size(), " examples"));
    }
    if (dp.max_physical_batch == 0) {
      return absl::InvalidArgumentError("Train: DP-SGD max_physical_batch must be > 0");
    }
    if (!dp.random_seed.empty() && dp.random_seed.size() != 32) {
      return absl::InvalidArgumentError("Train: DP-SGD random_seed must be 32 bytes");
    }
  }
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

std::vector<std::string> LocalModel::TrainableParameterNames() const {
  std::vector<std::string> names;
  for (auto& [name, p] : impl_->TrainableParameters()) names.push_back(std::move(name));
  return names;
}

}  // namespace tessera
