// File: modules.h
// Internal to client/lm/transformer: the decoder-only transformer of the Llama family written
// out with LibTorch tensor operations (LibTorch 1.13 has no fused attention), following
// transformers' modeling_llama.py / modeling_mistral.py / modeling_qwen2.py: token
// embedding, RMSNorm, rotary position embeddings (with Llama 3's frequency scaling),
// grouped-query attention with a causal mask, SwiGLU MLP, and a tied or untied output
// projection. Every linear layer can carry a LoRA adapter. It includes LibTorch, so only the
// .cc files of this folder include it.
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_MODULES_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_MODULES_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client/lm/checkpoint/model_config.h"

namespace tessera::lm::internal {

// A linear layer y = x W^T + b with an optional LoRA adapter:
//   y += scaling * (dropout(x) A^T) B^T,  scaling = alpha / r.
struct Linear {
  at::Tensor weight;  // [out, in], the base (frozen under LoRA)
  at::Tensor bias;    // [out] or undefined
  at::Tensor lora_a;  // [r, in] float32, or undefined
  at::Tensor lora_b;  // [out, r] float32
  double scaling = 0;
  double dropout = 0;

  // `dropout_seed` null: no dropout (evaluation). Otherwise the dropout mask is drawn from a
  // CPU generator seeded with *dropout_seed, so that a recomputation (gradient
  // checkpointing) draws the same mask.
  at::Tensor Forward(const at::Tensor& x, const uint64_t* dropout_seed) const;
  // y + the adapter's update for input x (y itself without an adapter).
  at::Tensor Adapt(const at::Tensor& x, const at::Tensor& y, const uint64_t* dropout_seed) const;
};

// x W^T + b; without a gradient for W (frozen, or grad mode off) through FrozenLinear
// (fused_ops.h).
at::Tensor Project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

struct DecoderLayer {
  at::Tensor input_norm;      // [hidden]
  at::Tensor post_attn_norm;  // [hidden]
  Linear q, k, v, o;
  Linear gate, up, down;
  // With a frozen base (FuseFrozenProjections): q/k/v's and gate/up's weights (and biases)
  // stacked along the output dimension, so that each group is one product; the modules'
  // own weights are views into these. Undefined otherwise.
  at::Tensor qkv_weight, qkv_bias;
  at::Tensor gate_up_weight, gate_up_bias;
};

// Keys and values of the positions seen so far, per layer: [batch, kv_heads, length, dim].
struct KvCache {
  std::vector<at::Tensor> keys;
  std::vector<at::Tensor> values;
  int64_t length = 0;
};

class Transformer {
 public:
  explicit Transformer(const CausalLmConfig& config) : config_(config) {}

  const CausalLmConfig& config() const { return config_; }

  at::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<DecoderLayer> layers;
  at::Tensor final_norm;  // [hidden]
  at::Tensor lm_head;     // [vocab, hidden]; the same tensor as embed_tokens when tied

  // Every base tensor with its Hugging Face name, in ExpectedTensors order (transformers'
  // state_dict order: per layer self_attn, mlp, then the two norms; lm_head left out when
  // tied).
  std::vector<std::pair<std::string, at::Tensor*>> NamedBase();
  // Every adapted linear layer with its module name ("model.layers.0.self_attn.q_proj").
  std::vector<std::pair<std::string, Linear*>> NamedLinears();
  std::vector<std::pair<std::string, const Linear*>> NamedLinears() const;

  // Rotary tables for absolute positions [offset, offset + length): cos and sin
  // [length, head_dim] in float32 on `device`.
  std::pair<at::Tensor, at::Tensor> Rotary(int64_t offset, int64_t length,
                                           const at::Device& device) const;

  // Final hidden states [batch, seq, hidden] (after the last RMSNorm) for ids
  // [batch, seq] (int64). With a cache, the ids continue the cached positions and the
  // cache is extended. With checkpoint_layers, each layer's activations are recomputed in
  // the backward pass.
  // `dropout_seed` null: evaluation (no dropout); else LoRA dropout is drawn from it.
  at::Tensor Hidden(const at::Tensor& ids, const uint64_t* dropout_seed,
                    KvCache* cache = nullptr, bool checkpoint_layers = false) const;
  // Logits [batch, seq, vocab] in float32.
  at::Tensor Logits(const at::Tensor& hidden) const;

  // Stacks each layer's q/k/v and gate/up base weights into one tensor (the modules' weights
  // become views of it, so no memory is added). REQUIRES: the base is frozen (LoRA).
  void FuseFrozenProjections();

  // One decoder layer (pre-norm attention and MLP blocks with residuals).
  at::Tensor Layer(size_t index, const at::Tensor& x, const at::Tensor& cos,
                   const at::Tensor& sin, const uint64_t* dropout_seed, KvCache* cache) const;

 private:
  at::Tensor Attention(const DecoderLayer& layer, size_t index, const at::Tensor& x,
                       const at::Tensor& cos, const at::Tensor& sin, const uint64_t* seeds,
                       KvCache* cache) const;
  at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight) const;

  CausalLmConfig config_;
};

// Llama 3's rotary inverse frequencies (or the plain ones without rope_scaling), float64.
std::vector<double> InverseFrequencies(const CausalLmConfig& config);

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_MODULES_H_
