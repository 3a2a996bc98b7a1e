// File: causal_lm_impl.h
// Internal to client/lm/transformer: the LibTorch state behind CausalLm, shared by
// causal_lm.cc (loading, adapters, merging), lm_train.cc (Train, Evaluate) and generate.cc.
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_IMPL_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_IMPL_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/lm/transformer/modules.h"

namespace tessera::lm {
namespace internal {

// Runs `fn`, turning a LibTorch exception into INTERNAL with its message (LibTorch reports
// errors by throwing; nothing may escape into the caller).
template <typename Fn>
auto GuardTorch(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": LibTorch error: ", e.what()));
  }
}

}  // namespace internal

class CausalLm::Impl {
 public:
  explicit Impl(const CausalLmConfig& config) : model(config) {}

  internal::Transformer model;
  std::optional<LoraConfig> lora;
  torch::Device device{torch::kCPU};
  at::ScalarType dtype = at::kFloat;  // the base weights' compute dtype
  bool gradient_checkpointing = false;
  // The checkpoint's stored dtype of each base tensor (for MergedWeights).
  std::map<std::string, DType> stored_dtypes;

  struct AdapterTensor {
    std::string name;  // "model.layers.0.self_attn.q_proj.lora_A.weight"
    at::Tensor* tensor;
    bool trainable;
  };
  // In AdapterTensors order. Pointers into `model`.
  std::vector<AdapterTensor> Adapters();
  // What the optimizer updates: trainable adapters, or every base weight without LoRA
  // (each tied tensor once).
  std::vector<at::Tensor> TrainableTensors();

  // ids [batch, seq] int64 on the device from equal-length rows.
  // Errors: INVALID_ARGUMENT for ragged/empty input or ids outside the vocabulary, or a
  // length over the model's limit.
  absl::StatusOr<at::Tensor> Ids(const std::vector<std::vector<int32_t>>& rows) const;
  // Longest sequence the model takes (max_position_embeddings, or the sliding window).
  int64_t MaxLength() const;

  // Right-padded input ids and labels [batch, longest] for examples [begin, end) of
  // `order` (labels kIgnoreLabel on padding).
  std::pair<at::Tensor, at::Tensor> Batch(const std::vector<TokenizedExample>& examples,
                                          const std::vector<size_t>& order, size_t begin,
                                          size_t end) const;
  // Summed cross-entropy of logits[:, i] against labels[:, i + 1], the number of terms and
  // (when `correct` is not null) how many targets are the arg-max of their logits.
  std::pair<at::Tensor, int64_t> SummedLoss(const at::Tensor& ids, const at::Tensor& labels,
                                            const uint64_t* dropout_seed,
                                            int64_t* correct = nullptr);
};

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_IMPL_H_
