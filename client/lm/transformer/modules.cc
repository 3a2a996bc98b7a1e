#include "client/lm/transformer/modules.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/lm/transformer/fused_ops.h"

namespace tessera::lm::internal {
namespace {

// SplitMix64's finalizer: independent-looking seeds for each layer and module.
uint64_t MixSeed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// q * cos + rotate_half(q) * sin, rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]).
at::Tensor ApplyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (CanFuseRotary(x, cos)) return FusedRotary(x, cos, sin);
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

// Recomputes one decoder layer in the backward pass (transformers'
// gradient_checkpointing with the reentrant variant): the forward runs without autograd
// and keeps only the layer's input; the backward reruns the layer with autograd on and
// back-propagates through it, which also accumulates the adapters' gradients.
struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x,
                            at::Tensor cos, at::Tensor sin, int64_t transformer_bits,
                            int64_t index, int64_t seed_bits, bool has_seed) {
    ctx->save_for_backward({x, cos, sin});
    ctx->saved_data["transformer"] = transformer_bits;
    ctx->saved_data["index"] = index;
    ctx->saved_data["seed"] = seed_bits;
    ctx->saved_data["has_seed"] = has_seed;
    const auto* t = reinterpret_cast<const Transformer*>(static_cast<intptr_t>(transformer_bits));
    const uint64_t seed = static_cast<uint64_t>(seed_bits);
    return t->Layer(static_cast<size_t>(index), x, cos, sin, has_seed ? &seed : nullptr,
                    nullptr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    std::vector<at::Tensor> saved = ctx->get_saved_variables();
    const auto* t = reinterpret_cast<const Transformer*>(
        static_cast<intptr_t>(ctx->saved_data["transformer"].toInt()));
    const size_t index = static_cast<size_t>(ctx->saved_data["index"].toInt());
    const uint64_t seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const bool has_seed = ctx->saved_data["has_seed"].toBool();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = t->Layer(index, x, saved[1], saved[2], has_seed ? &seed : nullptr, nullptr);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor Project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  // Without a gradient for the weight (frozen, or no autograd at all) the same product as a
  // frozen base, so that a model without adapters computes its logits exactly as the same
  // model with zero adapters does.
  if (weight.requires_grad() && at::GradMode::is_enabled()) return at::linear(x, weight, bias);
  return FrozenLinear(x, weight, bias);
}

at::Tensor Linear::Forward(const at::Tensor& x, const uint64_t* dropout_seed) const {
  return Adapt(x, Project(x, weight, bias), dropout_seed);
}

at::Tensor Linear::Adapt(const at::Tensor& x, const at::Tensor& y,
                         const uint64_t* dropout_seed) const {
  if (!lora_a.defined()) return y;
  at::Tensor h = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  if (dropout_seed != nullptr && dropout > 0) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(*dropout_seed);
    at::Tensor keep = at::empty(h.sizes(), at::TensorOptions().dtype(at::kFloat))
                          .bernoulli_(1.0 - dropout, gen)
                          .div_(1.0 - dropout);
    h = h * keep.to(h.device());
  }
  at::Tensor delta = at::linear(at::linear(h, lora_a), lora_b) * scaling;
  return y + delta.to(y.scalar_type());
}

std::vector<double> InverseFrequencies(const CausalLmConfig& config) {
  const int64_t dim = config.head_dim;
  std::vector<double> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    inv[static_cast<size_t>(i)] =
        1.0 / std::pow(config.rope_theta, static_cast<double>(2 * i) / static_cast<double>(dim));
  }
  if (!config.rope_scaling.has_value()) return inv;
  // transformers' _compute_llama3_parameters: wavelengths longer than the original context
  // divided by low_freq_factor are slowed by `factor`, shorter than it divided by
  // high_freq_factor are kept, and those in between are interpolated.
  const Llama3RopeScaling& s = *config.rope_scaling;
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2 * M_PI / f;
    double scaled = wavelen > low_freq_wavelen ? f / s.factor : f;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const double smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      scaled = (1 - smooth) * scaled / s.factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv;
}

std::vector<std::pair<std::string, at::Tensor*>> Transformer::NamedBase() {
  std::vector<std::pair<std::string, at::Tensor*>> out;
  out.emplace_back("model.embed_tokens.weight", &embed_tokens);
  for (size_t i = 0; i < layers.size(); ++i) {
    DecoderLayer& l = layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    const std::pair<const char*, Linear*> attn[] = {
        {"q_proj", &l.q}, {"k_proj", &l.k}, {"v_proj", &l.v}, {"o_proj", &l.o}};
    for (const auto& [name, lin] : attn) {
      out.emplace_back(absl::StrCat(p, "self_attn.", name, ".weight"), &lin->weight);
      if (lin->bias.defined()) {
        out.emplace_back(absl::StrCat(p, "self_attn.", name, ".bias"), &lin->bias);
      }
    }
    const std::pair<const char*, Linear*> mlp[] = {
        {"gate_proj", &l.gate}, {"up_proj", &l.up}, {"down_proj", &l.down}};
    for (const auto& [name, lin] : mlp) {
      out.emplace_back(absl::StrCat(p, "mlp.", name, ".weight"), &lin->weight);
      if (lin->bias.defined()) {
        out.emplace_back(absl::StrCat(p, "mlp.", name, ".bias"), &lin->bias);
      }
    }
    out.emplace_back(p + "input_layernorm.weight", &l.input_norm);
    out.emplace_back(p + "post_attention_layernorm.weight", &l.post_attn_norm);
  }
  out.emplace_back("model.norm.weight", &final_norm);
  if (!config_.tie_word_embeddings) out.emplace_back("lm_head.weight", &lm_head);
  return out;
}

std::vector<std::pair<std::string, Linear*>> Transformer::NamedLinears() {
  std::vector<std::pair<std::string, Linear*>> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    DecoderLayer& l = layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out.emplace_back(p + "self_attn.q_proj", &l.q);
    out.emplace_back(p + "self_attn.k_proj", &l.k);
    out.emplace_back(p + "self_attn.v_proj", &l.v);
    out.emplace_back(p + "self_attn.o_proj", &l.o);
    out.emplace_back(p + "mlp.gate_proj", &l.gate);
    out.emplace_back(p + "mlp.up_proj", &l.up);
    out.emplace_back(p + "mlp.down_proj", &l.down);
  }
  return out;
}

std::vector<std::pair<std::string, const Linear*>> Transformer::NamedLinears() const {
  std::vector<std::pair<std::string, const Linear*>> out;
  for (auto& [name, lin] : const_cast<Transformer*>(this)->NamedLinears()) {
    out.emplace_back(name, lin);
  }
  return out;
}

void Transformer::FuseFrozenProjections() {
  // Stacks the modules' weights (or biases) and points each module at its rows.
  const auto stack = [](std::initializer_list<at::Tensor*> parts) {
    std::vector<at::Tensor> pieces;
    for (at::Tensor* p : parts) pieces.push_back(*p);
    at::Tensor stacked = at::cat(pieces, 0);
    int64_t row = 0;
    for (at::Tensor* p : parts) {
      const int64_t rows = p->size(0);
      *p = stacked.narrow(0, row, rows);
      row += rows;
    }
    return stacked;
  };
  for (DecoderLayer& l : layers) {
    l.qkv_weight = stack({&l.q.weight, &l.k.weight, &l.v.weight});
    if (l.q.bias.defined()) l.qkv_bias = stack({&l.q.bias, &l.k.bias, &l.v.bias});
    l.gate_up_weight = stack({&l.gate.weight, &l.up.weight});
    if (l.gate.bias.defined()) l.gate_up_bias = stack({&l.gate.bias, &l.up.bias});
  }
}

std::pair<at::Tensor, at::Tensor> Transformer::Rotary(int64_t offset, int64_t length,
                                                      const at::Device& device) const {
  const std::vector<double> inv = InverseFrequencies(config_);
  at::Tensor inv_freq =
      at::tensor(inv, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  at::Tensor pos = at::arange(offset, offset + length, at::TensorOptions().dtype(at::kFloat));
  at::Tensor freqs = at::outer(pos, inv_freq);  // [length, dim/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(device), emb.sin().to(device)};
}

at::Tensor Transformer::RmsNorm(const at::Tensor& x, const at::Tensor& weight) const {
  if (CanFuseRmsNorm(x, weight)) return FusedRmsNorm(x, weight, config_.rms_norm_eps);
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + config_.rms_norm_eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor Transformer::Attention(const DecoderLayer& layer, size_t index, const at::Tensor& x,
                                  const at::Tensor& cos, const at::Tensor& sin,
                                  const uint64_t* seeds, KvCache* cache) const {
  const int64_t batch = x.size(0);
  const int64_t seq = x.size(1);
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t dim = config_.head_dim;
  const uint64_t s[4] = {seeds ? seeds[0] : 0, seeds ? seeds[1] : 0, seeds ? seeds[2] : 0,
                         seeds ? seeds[3] : 0};
  at::Tensor q, k, v;
  if (layer.qkv_weight.defined()) {
    const std::vector<at::Tensor> qkv =
        SplitLastDim(FrozenLinear(x, layer.qkv_weight, layer.qkv_bias,
                                  {heads * dim, kv_heads * dim, kv_heads * dim}),
                     {heads * dim, kv_heads * dim, kv_heads * dim});
    q = layer.q.Adapt(x, qkv[0], seeds ? &s[0] : nullptr);
    k = layer.k.Adapt(x, qkv[1], seeds ? &s[1] : nullptr);
    v = layer.v.Adapt(x, qkv[2], seeds ? &s[2] : nullptr);
  } else {
    q = layer.q.Forward(x, seeds ? &s[0] : nullptr);
    k = layer.k.Forward(x, seeds ? &s[1] : nullptr);
    v = layer.v.Forward(x, seeds ? &s[2] : nullptr);
  }
  q = q.view({batch, seq, heads, dim}).transpose(1, 2);
  k = k.view({batch, seq, kv_heads, dim}).transpose(1, 2);
  v = v.view({batch, seq, kv_heads, dim}).transpose(1, 2);
  const at::Tensor c = cos.to(q.scalar_type());
  const at::Tensor sn = sin.to(q.scalar_type());
  q = ApplyRotary(q, c, sn);
  k = ApplyRotary(k, c, sn);
  int64_t offset = 0;
  if (cache != nullptr) {
    offset = cache->length;
    if (cache->keys[index].defined()) {
      k = at::cat({cache->keys[index], k}, 2);
      v = at::cat({cache->values[index], v}, 2);
    }
    cache->keys[index] = k;
    cache->values[index] = v;
  }
  at::Tensor out = CausalAttention(q, k, v, offset).transpose(1, 2).reshape(
      {batch, seq, heads * dim});
  return layer.o.Forward(out, seeds ? &s[3] : nullptr);
}

at::Tensor Transformer::Layer(size_t index, const at::Tensor& x, const at::Tensor& cos,
                              const at::Tensor& sin, const uint64_t* dropout_seed,
                              KvCache* cache) const {
  const DecoderLayer& layer = layers[index];
  uint64_t seeds[7];
  if (dropout_seed != nullptr) {
    for (uint64_t m = 0; m < 7; ++m) seeds[m] = MixSeed(*dropout_seed ^ MixSeed(index * 8 + m));
  }
  const uint64_t* sp = dropout_seed ? seeds : nullptr;
  at::Tensor h = x + Attention(layer, index, RmsNorm(x, layer.input_norm), cos, sin, sp, cache);
  at::Tensor n = RmsNorm(h, layer.post_attn_norm);
  at::Tensor gate, up;
  if (layer.gate_up_weight.defined()) {
    const int64_t inter = layer.gate.weight.size(0);
    const std::vector<at::Tensor> gate_up =
        SplitLastDim(FrozenLinear(n, layer.gate_up_weight, layer.gate_up_bias, {inter, inter}),
                     {inter, inter});
    gate = layer.gate.Adapt(n, gate_up[0], sp ? &seeds[4] : nullptr);
    up = layer.up.Adapt(n, gate_up[1], sp ? &seeds[5] : nullptr);
  } else {
    gate = layer.gate.Forward(n, sp ? &seeds[4] : nullptr);
    up = layer.up.Forward(n, sp ? &seeds[5] : nullptr);
  }
  const at::Tensor act = CanFuseSwiGlu(gate, up) ? FusedSwiGlu(gate, up) : at::silu(gate) * up;
  return h + layer.down.Forward(act, sp ? &seeds[6] : nullptr);
}

at::Tensor Transformer::Hidden(const at::Tensor& ids, const uint64_t* dropout_seed,
                               KvCache* cache, bool checkpoint_layers) const {
  const int64_t offset = cache != nullptr ? cache->length : 0;
  at::Tensor h = at::embedding(embed_tokens, ids);
  auto [cos, sin] = Rotary(offset, ids.size(1), h.device());
  if (cache != nullptr && cache->keys.size() != layers.size()) {
    cache->keys.assign(layers.size(), at::Tensor());
    cache->values.assign(layers.size(), at::Tensor());
  }
  const bool checkpoint = checkpoint_layers && cache == nullptr && at::GradMode::is_enabled();
  if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (checkpoint) {
      const uint64_t seed = dropout_seed ? *dropout_seed : 0;
      h = LayerCheckpoint::apply(h, cos, sin,
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(this)),
                                 static_cast<int64_t>(i), static_cast<int64_t>(seed),
                                 dropout_seed != nullptr);
    } else {
      h = Layer(i, h, cos, sin, dropout_seed, cache);
    }
  }
  if (cache != nullptr) cache->length += ids.size(1);
  return RmsNorm(h, final_norm);
}

at::Tensor Transformer::Logits(const at::Tensor& hidden) const {
  return Project(hidden, lm_head, at::Tensor()).to(at::kFloat);
}

}  // namespace tessera::lm::internal
