#include "client/training/per_example_grads.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace training_internal {
namespace {

namespace F = torch::nn::functional;

// Opacus' clipping factor: min(1, C / (norm + 1e-6)).
constexpr double kNormStabilizer = 1e-6;

bool IsBatchNorm(const torch::nn::Module& m) {
  return m.as<torch::nn::BatchNorm1d>() != nullptr || m.as<torch::nn::BatchNorm2d>() != nullptr ||
         m.as<torch::nn::BatchNorm3d>() != nullptr ||
         m.as<torch::nn::InstanceNorm1d>() != nullptr ||
         m.as<torch::nn::InstanceNorm2d>() != nullptr ||
         m.as<torch::nn::InstanceNorm3d>() != nullptr;
}

bool HasTrainable(const torch::nn::Module& m) {
  for (const at::Tensor& p : m.parameters(/*recurse=*/true)) {
    if (p.requires_grad()) return true;
  }
  return false;
}

at::Tensor Trainable(const at::Tensor& p) {
  return p.defined() && p.requires_grad() ? p : at::Tensor();
}

// Sum of squares of each example's slice: [B, ...] -> [B].
at::Tensor PerExampleSquaredNorm(const at::Tensor& t) {
  return t.reshape({t.size(0), -1}).pow(2).sum(1);
}

// Reduces [B, d1, ..., dk, rest...] to [B, rest...] by summing d1..dk (k = t.dim() - 1 -
// kept).
at::Tensor SumMiddle(const at::Tensor& t, int64_t kept) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < t.dim() - kept; ++d) dims.push_back(d);
  return dims.empty() ? t : t.sum(dims);
}

}  // namespace

absl::StatusOr<PerExampleNet> PerExampleNet::Create(
    std::shared_ptr<torch::nn::SequentialImpl> net) {
  PerExampleNet out;
  out.net_ = net;
  for (const auto& item : net->named_children()) {
    Layer layer;
    layer.name = item.key();
    layer.module = item.value();
    const torch::nn::Module& m = *layer.module;
    const std::string where = absl::StrCat("layer \"", layer.name, "\" (", m.name(), ")");
    if (IsBatchNorm(m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DP-SGD: ", where, " normalizes over the batch, so an example's gradient depends "
          "on the other examples and cannot be clipped per example; use GroupNorm or "
          "LayerNorm instead"));
    }
    if (!HasTrainable(m)) {
      out.layers_.push_back(std::move(layer));
      continue;
    }
    if (auto* linear = m.as<torch::nn::Linear>()) {
      layer.kind = Kind::kLinear;
      layer.weight = Trainable(linear->weight);
      layer.bias = Trainable(linear->bias);
    } else if (auto* conv = m.as<torch::nn::Conv2d>()) {
      const auto& o = conv->options;
      if (o.groups() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("DP-SGD: ", where, " has groups=", o.groups(), "; only groups=1 "
                         "convolutions have per-example gradients here"));
      }
      if (!c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) ||
          !c10::get_if<torch::ExpandingArray<2>>(&o.padding())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "DP-SGD: ", where, " needs explicit zero padding (padding_mode zeros, numeric "
            "padding)"));
      }
      layer.kind = Kind::kConv2d;
      layer.weight = Trainable(conv->weight);
      layer.bias = Trainable(conv->bias);
    } else if (auto* emb = m.as<torch::nn::Embedding>()) {
      if (emb->options.max_norm().has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "DP-SGD: ", where, " has max_norm: it renormalizes the looked-up rows in place, "
            "from the data and outside the noised gradient"));
      }
      if (emb->options.sparse()) {
        return absl::InvalidArgumentError(
            absl::StrCat("DP-SGD: ", where, " has sparse gradients; use sparse=false"));
      }
      layer.kind = Kind::kEmbedding;
      layer.weight = Trainable(emb->weight);
    } else if (auto* ln = m.as<torch::nn::LayerNorm>()) {
      layer.kind = Kind::kLayerNorm;
      layer.weight = Trainable(ln->weight);
      layer.bias = Trainable(ln->bias);
    } else if (auto* gn = m.as<torch::nn::GroupNorm>()) {
      layer.kind = Kind::kGroupNorm;
      layer.weight = Trainable(gn->weight);
      layer.bias = Trainable(gn->bias);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "DP-SGD: ", where, " has trainable parameters but no per-example gradient rule "
          "(supported: Linear, Conv2d, Embedding, LayerNorm, GroupNorm)"));
    }
    // Parameters in state_dict order: weight, then bias.
    if (layer.weight.defined()) {
      layer.weight_index = static_cast<int>(out.params_.size());
      out.params_.push_back(layer.weight);
    }
    if (layer.bias.defined()) {
      layer.bias_index = static_cast<int>(out.params_.size());
      out.params_.push_back(layer.bias);
    }
    out.layers_.push_back(std::move(layer));
  }
  if (out.params_.empty()) {
    return absl::FailedPreconditionError("DP-SGD: the model has no trainable parameters");
  }
  return out;
}

PerExampleNet::Tape PerExampleNet::Record(const at::Tensor& x, const at::Tensor& y) {
  Tape tape;
  tape.inputs.resize(layers_.size());
  std::vector<at::Tensor> outputs;
  std::vector<size_t> recorded;
  at::Tensor h = x;
  size_t i = 0;
  for (auto it = net_->begin(); it != net_->end(); ++it, ++i) {
    const Layer& layer = layers_[i];
    if (layer.kind != Kind::kPlain) {
      tape.inputs[i] = h.detach();
      h = it->forward(h);  // the graph stays whole: earlier layers need this one's gradient
      outputs.push_back(h);
      recorded.push_back(i);
    } else {
      h = it->forward(h);
    }
  }
  tape.loss_sum = F::cross_entropy(h, y, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  std::vector<at::Tensor> grads = torch::autograd::grad({tape.loss_sum}, outputs,
                                                        /*grad_outputs=*/{},
                                                        /*retain_graph=*/false,
                                                        /*create_graph=*/false,
                                                        /*allow_unused=*/true);
  tape.out_grads.resize(layers_.size());
  for (size_t k = 0; k < recorded.size(); ++k) {
    tape.out_grads[recorded[k]] =
        grads[k].defined() ? grads[k] : torch::zeros_like(outputs[k]);
  }
  tape.loss_sum = tape.loss_sum.detach();
  return tape;
}

std::pair<at::Tensor, at::Tensor> PerExampleNet::LayerGradients(const Layer& layer,
                                                                const at::Tensor& a,
                                                                const at::Tensor& g) const {
  torch::NoGradGuard no_grad;
  const int64_t b = a.size(0);
  at::Tensor dw, db;
  switch (layer.kind) {
    case Kind::kLinear: {
      // [B, S, in] and [B, S, out] (S = 1 for 2-D inputs).
      const at::Tensor a3 = a.reshape({b, -1, a.size(-1)});
      const at::Tensor g3 = g.reshape({b, -1, g.size(-1)});
      if (layer.weight.defined()) dw = torch::bmm(g3.transpose(1, 2), a3);
      if (layer.bias.defined()) db = g3.sum(1);
      break;
    }
    case Kind::kConv2d: {
      auto* conv = layer.module->as<torch::nn::Conv2d>();
      const auto& o = conv->options;
      const auto& pad = c10::get<torch::ExpandingArray<2>>(o.padding());
      if (layer.weight.defined()) {
        const at::Tensor cols = F::unfold(
            a, F::UnfoldFuncOptions({o.kernel_size()->at(0), o.kernel_size()->at(1)})
                   .dilation({o.dilation()->at(0), o.dilation()->at(1)})
                   .padding({pad->at(0), pad->at(1)})
                   .stride({o.stride()->at(0), o.stride()->at(1)}));  // [B, C*kh*kw, L]
        dw = torch::bmm(g.reshape({b, g.size(1), -1}), cols.transpose(1, 2))
                 .reshape({b, layer.weight.size(0), layer.weight.size(1),
                           layer.weight.size(2), layer.weight.size(3)});
      }
      if (layer.bias.defined()) db = g.reshape({b, g.size(1), -1}).sum(2);
      break;
    }
    case Kind::kEmbedding: {
      auto* emb = layer.module->as<torch::nn::Embedding>();
      const int64_t vocab = layer.weight.size(0);
      const int64_t dim = layer.weight.size(1);
      at::Tensor idx = a.reshape({b, -1});
      at::Tensor rows = g.reshape({b, -1, dim});
      if (emb->options.padding_idx().has_value()) {
        int64_t pad = *emb->options.padding_idx();
        if (pad < 0) pad += vocab;
        rows = rows * idx.ne(pad).unsqueeze(-1).to(rows.scalar_type());
      }
      const at::Tensor offsets =
          torch::arange(b, idx.options()).mul_(vocab).unsqueeze(1);
      dw = torch::zeros({b * vocab, dim}, g.options())
               .index_add_(0, (idx + offsets).reshape({-1}), rows.reshape({-1, dim}))
               .reshape({b, vocab, dim});
      break;
    }
    case Kind::kLayerNorm: {
      auto* ln = layer.module->as<torch::nn::LayerNorm>();
      const auto& shape = ln->options.normalized_shape();
      const at::Tensor a_hat =
          torch::layer_norm(a, shape, /*weight=*/{}, /*bias=*/{}, ln->options.eps());
      const int64_t kept = static_cast<int64_t>(shape.size());
      if (layer.weight.defined()) dw = SumMiddle(g * a_hat, kept);
      if (layer.bias.defined()) db = SumMiddle(g, kept);
      break;
    }
    case Kind::kGroupNorm: {
      auto* gn = layer.module->as<torch::nn::GroupNorm>();
      const at::Tensor a_hat = torch::group_norm(a, gn->options.num_groups(), /*weight=*/{},
                                                 /*bias=*/{}, gn->options.eps());
      // [B, C, *] -> [B, C]
      if (layer.weight.defined()) dw = (g * a_hat).reshape({b, a.size(1), -1}).sum(2);
      if (layer.bias.defined()) db = g.reshape({b, a.size(1), -1}).sum(2);
      break;
    }
    case Kind::kPlain:
      break;
  }
  return {dw, db};
}

std::vector<at::Tensor> PerExampleNet::PerExampleGradients(const at::Tensor& x,
                                                           const at::Tensor& y) {
  Tape tape = Record(x, y);
  std::vector<at::Tensor> out(params_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (layer.kind == Kind::kPlain) continue;
    auto [dw, db] = LayerGradients(layer, tape.inputs[i], tape.out_grads[i]);
    if (layer.weight_index >= 0) out[layer.weight_index] = dw;
    if (layer.bias_index >= 0) out[layer.bias_index] = db;
  }
  return out;
}

ClippedBatch PerExampleNet::AccumulateClipped(const at::Tensor& x, const at::Tensor& y,
                                              double clip, std::vector<at::Tensor>& sums) {
  Tape tape = Record(x, y);
  torch::NoGradGuard no_grad;
  const int64_t b = x.size(0);
  // First pass: every example's squared norm, layer by layer. 2-D Linear layers use the
  // ghost norm; the others keep their per-example gradients for the second pass.
  at::Tensor sq = torch::zeros({b}, tape.loss_sum.options().dtype(torch::kFloat));
  std::vector<std::pair<at::Tensor, at::Tensor>> kept(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (layer.kind == Kind::kPlain) continue;
    const at::Tensor& a = tape.inputs[i];
    const at::Tensor& g = tape.out_grads[i];
    if (layer.kind == Kind::kLinear && a.dim() == 2) {
      const at::Tensor g2 = g.pow(2).sum(1);
      if (layer.weight.defined()) sq += g2 * a.pow(2).sum(1);
      if (layer.bias.defined()) sq += g2;
      continue;
    }
    kept[i] = LayerGradients(layer, a, g);
    if (kept[i].first.defined()) sq += PerExampleSquaredNorm(kept[i].first);
    if (kept[i].second.defined()) sq += PerExampleSquaredNorm(kept[i].second);
  }
  ClippedBatch result;
  result.norms = sq.sqrt();
  result.loss_sum = tape.loss_sum;
  const at::Tensor factor = (clip / (result.norms + kNormStabilizer)).clamp_max(1.0);
  // Second pass: the clipped sum.
  auto add_weighted = [&](int index, const at::Tensor& per_example) {
    at::Tensor flat = per_example.reshape({b, -1});
    sums[index].view({-1}).add_(torch::mv(flat.t(), factor));
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (layer.kind == Kind::kPlain) continue;
    if (layer.kind == Kind::kLinear && tape.inputs[i].dim() == 2) {
      const at::Tensor fg = tape.out_grads[i] * factor.unsqueeze(1);
      if (layer.weight.defined()) sums[layer.weight_index].add_(torch::mm(fg.t(), tape.inputs[i]));
      if (layer.bias.defined()) sums[layer.bias_index].add_(fg.sum(0));
      continue;
    }
    if (layer.weight_index >= 0) add_weighted(layer.weight_index, kept[i].first);
    if (layer.bias_index >= 0) add_weighted(layer.bias_index, kept[i].second);
  }
  return result;
}

}  // namespace training_internal
}  // namespace tessera
