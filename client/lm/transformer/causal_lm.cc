#include "client/lm/transformer/causal_lm.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/lm/transformer/causal_lm_impl.h"
#include "client/lm/transformer/fused_ops.h"
#include "client/lm/transformer/thread_split.h"
#include "client/training/device.h"
#include "client/training/torch_convert.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using training_internal::FromTorch;
using training_internal::ViewAsTorch;
using internal::GuardTorch;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<at::ScalarType> ResolveDtype(const std::string& spec, const std::string& device,
                                            const CausalLmConfig& config) {
  if (spec == "float32") return at::kFloat;
  if (spec == "bfloat16") return at::kBFloat16;
  if (spec == "float16") return at::kHalf;
  if (spec != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtype: must be auto, float32, bfloat16 or float16; got \"", spec, "\""));
  }
  if (device == "cpu") return at::kFloat;
  if (config.torch_dtype == "bfloat16") return at::kBFloat16;
  if (config.torch_dtype == "float16") return at::kHalf;
  return at::kFloat;
}

// The last component of a module name: "model.layers.0.self_attn.q_proj" -> "q_proj".
std::string ModuleKind(const std::string& module) {
  return module.substr(module.rfind('.') + 1);
}

}  // namespace

// ---- Impl -------------------------------------------------------------------------------

std::vector<CausalLm::Impl::AdapterTensor> CausalLm::Impl::Adapters() {
  std::vector<AdapterTensor> out;
  if (!lora.has_value()) return out;
  for (auto& [module, lin] : model.NamedLinears()) {
    if (!lin->lora_a.defined()) continue;
    out.push_back({module + ".lora_A.weight", &lin->lora_a, !lora->freeze_a});
    out.push_back({module + ".lora_B.weight", &lin->lora_b, true});
  }
  return out;
}

std::vector<at::Tensor> CausalLm::Impl::TrainableTensors() {
  std::vector<at::Tensor> out;
  if (lora.has_value()) {
    for (const AdapterTensor& a : Adapters()) {
      if (a.trainable) out.push_back(*a.tensor);
    }
    return out;
  }
  for (auto& [name, t] : model.NamedBase()) out.push_back(*t);
  return out;
}

int64_t CausalLm::Impl::MaxLength() const {
  int64_t limit = model.config().max_position_embeddings;
  if (model.config().sliding_window.has_value()) {
    limit = std::min(limit, *model.config().sliding_window);
  }
  return limit;
}

absl::StatusOr<at::Tensor> CausalLm::Impl::Ids(
    const std::vector<std::vector<int32_t>>& rows) const {
  if (rows.empty() || rows[0].empty()) {
    return absl::InvalidArgumentError("ids: need at least one non-empty sequence");
  }
  const size_t len = rows[0].size();
  std::vector<int64_t> flat;
  flat.reserve(rows.size() * len);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != len) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ids: sequence ", r, " has ", rows[r].size(), " tokens, sequence 0 has ", len));
    }
    for (int32_t id : rows[r]) {
      if (id < 0 || id >= model.config().vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("ids: token id ", id,
                                                       " is outside the vocabulary [0, ",
                                                       model.config().vocab_size, ")"));
      }
      flat.push_back(id);
    }
  }
  if (static_cast<int64_t>(len) > MaxLength()) {
    return absl::InvalidArgumentError(absl::StrCat("ids: ", len,
                                                   " tokens exceed the model's limit of ",
                                                   MaxLength(), " positions"));
  }
  return torch::tensor(flat, torch::TensorOptions().dtype(torch::kLong))
      .view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(len)})
      .to(device);
}

// ---- CausalLm ---------------------------------------------------------------------------

CausalLm::CausalLm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CausalLm::~CausalLm() = default;

absl::StatusOr<std::unique_ptr<CausalLm>> CausalLm::Load(const std::string& dir,
                                                         const std::optional<LoraConfig>& lora,
                                                         const LoadOptions& options) {
  TESSERA_ASSIGN_OR_RETURN(HfCheckpoint checkpoint, ReadHfCheckpoint(dir));
  return Build(checkpoint, &checkpoint.weights, lora, options);
}

absl::StatusOr<std::unique_ptr<CausalLm>> CausalLm::FromCheckpoint(
    const HfCheckpoint& checkpoint, const std::optional<LoraConfig>& lora,
    const LoadOptions& options) {
  return Build(checkpoint, nullptr, lora, options);
}

absl::StatusOr<std::unique_ptr<CausalLm>> CausalLm::Build(const HfCheckpoint& checkpoint,
                                                          ArrayRecord* release,
                                                          const std::optional<LoraConfig>& lora,
                                                          const LoadOptions& options) {
  if (lora.has_value()) TESSERA_RETURN_IF_ERROR(ValidateLoraConfig(*lora));
  TESSERA_ASSIGN_OR_RETURN(std::string device, ResolveDevice(options.device));
  TESSERA_ASSIGN_OR_RETURN(at::ScalarType dtype,
                           ResolveDtype(options.dtype, device, checkpoint.config));
  if (!lora.has_value() && dtype != at::kFloat) {
    return absl::InvalidArgumentError(
        "dtype: full fine-tuning (no LoRA) keeps the weights in float32; use dtype float32");
  }
  return GuardTorch("loading " + checkpoint.dir,
                    [&]() -> absl::StatusOr<std::unique_ptr<CausalLm>> {
    const CausalLmConfig& config = checkpoint.config;
    auto impl = std::make_unique<Impl>(config);
    impl->lora = lora;
    impl->device = torch::Device(device);
    impl->dtype = dtype;
    impl->gradient_checkpointing = options.gradient_checkpointing;
    internal::Transformer& m = impl->model;
    m.layers.resize(static_cast<size_t>(config.num_hidden_layers));
    for (internal::DecoderLayer& l : m.layers) {
      if (config.qkv_bias) {
        l.q.bias = torch::empty({0});
        l.k.bias = torch::empty({0});
        l.v.bias = torch::empty({0});
      }
      if (config.o_proj_bias) l.o.bias = torch::empty({0});
      if (config.mlp_bias) {
        l.gate.bias = torch::empty({0});
        l.up.bias = torch::empty({0});
        l.down.bias = torch::empty({0});
      }
    }
    const bool full_finetune = !lora.has_value();
    for (auto& [name, slot] : m.NamedBase()) {
      const Tensor* t = checkpoint.weights.Find(name);
      if (t == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(checkpoint.dir, ": tensor ", name, " is missing"));
      }
      impl->stored_dtypes[name] = t->dtype();
      if (t->dtype() != DType::kFloat32 && t->dtype() != DType::kFloat16 &&
          t->dtype() != DType::kBFloat16) {
        return absl::InvalidArgumentError(absl::StrCat(
            checkpoint.dir, ": tensor ", name, " has dtype ", DTypeName(t->dtype()),
            "; expected float32, float16 or bfloat16"));
      }
      *slot = ViewAsTorch(*t).to(impl->device, dtype, /*non_blocking=*/false, /*copy=*/true);
      if (full_finetune) slot->requires_grad_(true);
      if (release != nullptr) {
        // `t` is one of release->tensors (checkpoint.weights is *release): its bytes are on
        // the device now.
        std::string().swap(*const_cast<Tensor*>(t)->mutable_data());
      }
    }
    if (config.tie_word_embeddings) m.lm_head = m.embed_tokens;
    if (lora.has_value()) {
      m.FuseFrozenProjections();
      const std::set<std::string> targets(lora->target_modules.begin(),
                                          lora->target_modules.end());
      // PEFT's default: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)),
      // B = 0; drawn in AdapterTensors order from one generator.
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(lora->init_seed);
      const double scaling = lora->alpha / static_cast<double>(lora->rank);
      for (auto& [module, lin] : m.NamedLinears()) {
        if (targets.count(ModuleKind(module)) == 0) continue;
        const int64_t out = lin->weight.size(0);
        const int64_t in = lin->weight.size(1);
        const double bound = 1.0 / std::sqrt(static_cast<double>(in));
        at::Tensor a = torch::empty({static_cast<int64_t>(lora->rank), in}, torch::kFloat)
                           .uniform_(-bound, bound, gen);
        lin->lora_a = a.to(impl->device).requires_grad_(!lora->freeze_a);
        lin->lora_b = torch::zeros({out, static_cast<int64_t>(lora->rank)},
                                   torch::TensorOptions().dtype(torch::kFloat).device(
                                       impl->device))
                          .requires_grad_(true);
        lin->scaling = scaling;
        lin->dropout = lora->dropout;
      }
    }
    return std::unique_ptr<CausalLm>(new CausalLm(std::move(impl)));
  });
}

absl::StatusOr<std::unique_ptr<CausalLm>> CausalLm::ShareBase() const {
  if (!impl_->lora.has_value()) {
    return absl::FailedPreconditionError(
        "ShareBase: the model has no LoRA adapters (full fine-tuning trains the base)");
  }
  return GuardTorch("ShareBase", [&]() -> absl::StatusOr<std::unique_ptr<CausalLm>> {
    auto impl = std::make_unique<Impl>(impl_->model.config());
    // Copying the transformer copies tensor handles: the base storage is shared.
    impl->model = impl_->model;
    impl->lora = impl_->lora;
    impl->device = impl_->device;
    impl->dtype = impl_->dtype;
    impl->gradient_checkpointing = impl_->gradient_checkpointing;
    impl->stored_dtypes = impl_->stored_dtypes;
    for (auto& [module, lin] : impl->model.NamedLinears()) {
      if (!lin->lora_a.defined()) continue;
      torch::NoGradGuard no_grad;
      lin->lora_a = lin->lora_a.detach().clone().requires_grad_(!impl->lora->freeze_a);
      lin->lora_b = lin->lora_b.detach().clone().requires_grad_(true);
    }
    return std::unique_ptr<CausalLm>(new CausalLm(std::move(impl)));
  });
}

const CausalLmConfig& CausalLm::config() const { return impl_->model.config(); }
const std::optional<LoraConfig>& CausalLm::lora() const { return impl_->lora; }
std::string CausalLm::device() const { return impl_->device.str(); }

absl::StatusOr<ArrayRecord> CausalLm::GetAdapter(bool trainable_only) const {
  return GuardTorch("GetAdapter", [&]() -> absl::StatusOr<ArrayRecord> {
    ArrayRecord out;
    for (const Impl::AdapterTensor& a : impl_->Adapters()) {
      if (trainable_only && !a.trainable) continue;
      TESSERA_ASSIGN_OR_RETURN(Tensor t, FromTorch(a.name, *a.tensor));
      out.tensors.push_back(std::move(t));
    }
    return out;
  });
}

absl::Status CausalLm::SetAdapter(const ArrayRecord& adapter) {
  if (!impl_->lora.has_value()) {
    return absl::FailedPreconditionError("SetAdapter: the model has no LoRA adapters");
  }
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(adapter));
  std::vector<Impl::AdapterTensor> slots = impl_->Adapters();
  std::vector<const Tensor*> found(slots.size(), nullptr);
  for (const Tensor& t : adapter.tensors) {
    size_t i = 0;
    while (i < slots.size() && slots[i].name != t.name()) ++i;
    if (i == slots.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", t.name(), " is not an adapter of this model"));
    }
    const std::vector<int64_t> want(slots[i].tensor->sizes().begin(),
                                    slots[i].tensor->sizes().end());
    if (t.dtype() != DType::kFloat32 || t.shape() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter tensor ", t.name(), " is ", DTypeName(t.dtype()), ShapeString(t.shape()),
          "; expected float32", ShapeString(want)));
    }
    TESSERA_RETURN_IF_ERROR(CheckFinite(t));
    found[i] = &t;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (found[i] == nullptr && slots[i].trainable) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", slots[i].name, " is missing"));
    }
  }
  return GuardTorch("SetAdapter", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (found[i] == nullptr) continue;
      slots[i].tensor->copy_(ViewAsTorch(*found[i]));
    }
    return absl::OkStatus();
  });
}

int64_t CausalLm::num_trainable_parameters() const {
  int64_t n = 0;
  for (const at::Tensor& t : impl_->TrainableTensors()) n += t.numel();
  return n;
}

int64_t CausalLm::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : impl_->model.NamedBase()) n += t->numel();
  for (const Impl::AdapterTensor& a : impl_->Adapters()) n += a.tensor->numel();
  return n;
}

absl::StatusOr<std::vector<float>> CausalLm::Logits(
    const std::vector<std::vector<int32_t>>& ids) {
  TESSERA_ASSIGN_OR_RETURN(at::Tensor input, impl_->Ids(ids));
  return GuardTorch("Logits", [&]() -> absl::StatusOr<std::vector<float>> {
    torch::NoGradGuard no_grad;
    internal::SerialBlasScope serial_blas;
    at::Tensor logits =
        impl_->model.Logits(impl_->model.Hidden(input, nullptr)).to(torch::kCPU).contiguous();
    const float* p = logits.data_ptr<float>();
    return std::vector<float>(p, p + logits.numel());
  });
}

absl::StatusOr<ArrayRecord> CausalLm::MergedWeights() const {
  return GuardTorch("MergedWeights", [&]() -> absl::StatusOr<ArrayRecord> {
    torch::NoGradGuard no_grad;
    ArrayRecord out;
    internal::Transformer& m = impl_->model;
    // Which base weight each adapted module's weight is.
    std::map<const at::Tensor*, const internal::Linear*> adapted;
    for (auto& [module, lin] : m.NamedLinears()) {
      if (lin->lora_a.defined()) adapted[&lin->weight] = lin;
    }
    for (auto& [name, slot] : m.NamedBase()) {
      at::Tensor w = slot->detach().to(torch::kCPU, torch::kFloat);
      auto it = adapted.find(slot);
      if (it != adapted.end()) {
        const internal::Linear* lin = it->second;
        w = w + at::matmul(lin->lora_b.detach().to(torch::kCPU),
                           lin->lora_a.detach().to(torch::kCPU)) *
                    lin->scaling;
      }
      const DType stored = impl_->stored_dtypes.at(name);
      if (stored == DType::kBFloat16) w = w.to(torch::kBFloat16);
      if (stored == DType::kFloat16) w = w.to(torch::kHalf);
      TESSERA_ASSIGN_OR_RETURN(Tensor t, FromTorch(name, w.contiguous()));
      out.tensors.push_back(std::move(t));
    }
    return out;
  });
}

absl::StatusOr<double> ScheduledLearningRate(absl::string_view schedule, double base_lr,
                                             uint64_t step, uint64_t warmup_steps,
                                             uint64_t total_steps) {
  if (schedule != "constant" && schedule != "linear" && schedule != "cosine") {
    return absl::InvalidArgumentError(absl::StrCat(
        "lr_schedule: must be constant, linear or cosine; got \"", schedule, "\""));
  }
  const double s = static_cast<double>(step);
  if (step < warmup_steps) return base_lr * s / static_cast<double>(warmup_steps);
  if (schedule == "constant") return base_lr;
  if (total_steps <= warmup_steps) return 0.0;
  const double progress = std::min(
      1.0, (s - static_cast<double>(warmup_steps)) /
               static_cast<double>(total_steps - warmup_steps));
  if (schedule == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace tessera::lm
