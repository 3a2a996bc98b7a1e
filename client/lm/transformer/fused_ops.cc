#include "client/lm/transformer/fused_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "client/lm/transformer/thread_split.h"

namespace tessera::lm::internal {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Fewer rows (columns) than this per thread are not worth a split.
constexpr int64_t kMinRowsPerPart = 16;
constexpr int64_t kMinColumnsPerPart = 256;

struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  // The forward product is one per block of the weight's rows (each the same product as the
  // block's module alone would compute, so stacking changes no bit of the output); the
  // backward one product over all of them.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            std::vector<int64_t> blocks) {
    ctx->save_for_backward({w});
    const at::Tensor a = x.reshape({-1, x.size(-1)});
    const int64_t m = a.size(0);
    if (blocks.empty()) blocks.push_back(w.size(0));
    std::vector<int64_t> starts = {0};
    for (int64_t b : blocks) starts.push_back(starts.back() + b);
    const int64_t parts =
        SplitsOn(a)
            ? std::max<int64_t>(1, std::min<int64_t>(SplitThreads(), m / kMinRowsPerPart))
            : 1;
    at::Tensor out = at::empty({m, w.size(0)}, a.options());
    const int64_t items = static_cast<int64_t>(blocks.size()) * parts;
    ForEachPart(items, a, [&](int64_t item) {
      const size_t block = static_cast<size_t>(item / parts);
      const auto [begin, end] = PartRange(m, item % parts, parts);
      at::Tensor o = out.narrow(0, begin, end - begin).narrow(1, starts[block], blocks[block]);
      at::mm_out(o, a.narrow(0, begin, end - begin),
                 w.narrow(0, starts[block], blocks[block]).t());
    });
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return out.view(sizes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const at::Tensor w = ctx->get_saved_variables()[0];
    std::vector<int64_t> sizes = grad[0].sizes().vec();
    sizes.back() = w.size(1);
    return {SplitMatmul(grad[0].reshape({-1, grad[0].size(-1)}), w).view(sizes), at::Tensor(),
            at::Tensor()};
  }
};

struct SplitLastDimFn : public torch::autograd::Function<SplitLastDimFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x,
                               std::vector<int64_t> widths) {
    variable_list out;
    int64_t start = 0;
    for (int64_t w : widths) {
      out.push_back(x.narrow(-1, start, w));
      start += w;
    }
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["widths"] = widths;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const std::vector<int64_t> widths = ctx->saved_data["widths"].toIntVector();
    at::TensorOptions options;
    for (const at::Tensor& g : grad) {
      if (g.defined()) options = g.options();
    }
    std::vector<at::Tensor> pieces;
    for (size_t i = 0; i < widths.size(); ++i) {
      if (grad[i].defined()) {
        pieces.push_back(grad[i]);
      } else {
        sizes.back() = widths[i];
        pieces.push_back(at::zeros(sizes, options));
      }
    }
    return {at::cat(pieces, -1), at::Tensor()};
  }
};

struct CausalAttentionFn : public torch::autograd::Function<CausalAttentionFn> {
  // Shapes in the grouped layout: query rows of the heads sharing a key/value head stacked,
  // [batch * kv_heads, groups * seq, dim]; keys and values [batch * kv_heads, total, dim].
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, int64_t offset) {
    const int64_t batch = q.size(0), heads = q.size(1), seq = q.size(2), dim = q.size(3);
    const int64_t kv_heads = k.size(1), total = k.size(2);
    const int64_t groups = heads / kv_heads;
    const int64_t n = batch * kv_heads;
    const at::Tensor qg = q.contiguous().view({n, groups * seq, dim});
    const at::Tensor kg = k.contiguous().view({n, total, dim});
    const at::Tensor vg = v.contiguous().view({n, total, dim});
    const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
    // Row r of a group is query r % seq at position offset + r % seq: keys after it are
    // masked.
    at::Tensor mask;
    if (seq > 1) {
      const auto longs = at::TensorOptions().dtype(at::kLong);
      at::Tensor position = at::arange(seq, longs).repeat({groups}).add_(offset);
      mask = at::arange(total, longs).unsqueeze(0).gt(position.unsqueeze(1)).to(q.device());
    }
    at::Tensor probs = at::empty({n, groups * seq, total}, q.options().dtype(at::kFloat));
    at::Tensor out = at::empty({n, groups * seq, dim}, q.options());
    const bool is_float = q.scalar_type() == at::kFloat;
    ForEachPart(n, q, [&](int64_t i) {
      at::Tensor scores = at::mm(qg[i], kg[i].t()).mul_(scale);
      if (mask.defined()) scores.masked_fill_(mask, -std::numeric_limits<double>::infinity());
      at::Tensor p = probs[i];
      at::_softmax_out(p, is_float ? scores : scores.to(at::kFloat), -1, false);
      at::Tensor o = out[i];
      at::mm_out(o, is_float ? p : p.to(q.scalar_type()), vg[i]);
    });
    ctx->save_for_backward({qg, kg, vg, probs});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["q_sizes"] = q.sizes().vec();
    ctx->saved_data["kv_sizes"] = k.sizes().vec();
    return out.view(q.sizes());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const std::vector<at::Tensor> saved = ctx->get_saved_variables();
    const at::Tensor& qg = saved[0];
    const at::Tensor& kg = saved[1];
    const at::Tensor& vg = saved[2];
    const at::Tensor& probs = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool need_q = ctx->needs_input_grad(0);
    const bool need_k = ctx->needs_input_grad(1);
    const bool need_v = ctx->needs_input_grad(2);
    const at::Tensor d_out = grad[0].contiguous().view(qg.sizes());
    const bool is_float = qg.scalar_type() == at::kFloat;
    at::Tensor dq = need_q ? at::empty_like(qg) : at::Tensor();
    at::Tensor dk = need_k ? at::empty_like(kg) : at::Tensor();
    at::Tensor dv = need_v ? at::empty_like(vg) : at::Tensor();
    ForEachPart(qg.size(0), qg, [&](int64_t i) {
      const at::Tensor p = probs[i];
      const at::Tensor g = d_out[i];
      if (need_v) {
        at::Tensor o = dv[i];
        at::mm_out(o, (is_float ? p : p.to(qg.scalar_type())).t(), g);
      }
      if (!need_q && !need_k) return;
      // dS = P * (dP - rowsum(dP * P)) (softmax's backward), then the 1/sqrt(d) scale.
      at::Tensor dp = at::mm(g, vg[i].t());
      at::Tensor ds = at::_softmax_backward_data(is_float ? dp : dp.to(at::kFloat), p, -1,
                                                 at::kFloat)
                          .mul_(scale);
      if (!is_float) ds = ds.to(qg.scalar_type());
      if (need_q) {
        at::Tensor o = dq[i];
        at::mm_out(o, ds, kg[i]);
      }
      if (need_k) {
        at::Tensor o = dk[i];
        at::mm_out(o, ds.t(), qg[i]);
      }
    });
    const std::vector<int64_t> q_sizes = ctx->saved_data["q_sizes"].toIntVector();
    const std::vector<int64_t> kv_sizes = ctx->saved_data["kv_sizes"].toIntVector();
    return {need_q ? dq.view(q_sizes) : at::Tensor(), need_k ? dk.view(kv_sizes) : at::Tensor(),
            need_v ? dv.view(kv_sizes) : at::Tensor(), at::Tensor()};
  }
};

struct LmHeadLossFn : public torch::autograd::Function<LmHeadLossFn> {
  // {the summed loss (float32 scalar), how many rows' target is the arg-max (int64 scalar)}.
  // d loss / d x is computed here, chunk by chunk, while each chunk's logits are at hand.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                               const at::Tensor& targets, int64_t chunk_elements) {
    const at::Tensor a = x.contiguous();
    const at::Tensor t = targets.contiguous();
    const int64_t rows = a.size(0);
    const int64_t vocab = w.size(0);
    const bool need_grad = x.requires_grad();
    // One chunk per thread (each chunk's products read all of W once, so more chunks cost
    // more), more when a chunk would exceed kLmHeadChunkElements logits.
    const int64_t max_rows = std::max<int64_t>(1, chunk_elements / vocab);
    const int64_t threads = SplitsOn(a) ? SplitThreads() : 1;
    const int64_t chunks = std::max<int64_t>(
        1, std::max(std::min(threads, rows), (rows + max_rows - 1) / max_rows));
    // Rows of a chunk are normalized a block at a time (about 1 MiB of logits, so the passes
    // after the first read stay in the cache).
    const int64_t block_rows = std::max<int64_t>(1, (int64_t{1} << 18) / vocab);
    std::vector<double> losses(static_cast<size_t>(chunks), 0.0);
    std::vector<int64_t> hits(static_cast<size_t>(chunks), 0);
    at::Tensor dx = need_grad ? at::empty_like(a) : at::Tensor();
    ForEachPart(chunks, a, [&](int64_t c) {
      const auto [begin, end] = PartRange(rows, c, chunks);
      if (begin == end) return;
      at::Tensor logits = at::mm(a.narrow(0, begin, end - begin), w.t());
      for (int64_t r = 0; r < end - begin; r += block_rows) {
        const int64_t n = std::min(block_rows, end - begin - r);
        at::Tensor l = logits.narrow(0, r, n);
        const at::Tensor target = t.narrow(0, begin + r, n);
        const at::Tensor target_logit = l.gather(1, target.unsqueeze(1)).squeeze(1);
        const auto [top, arg] = at::max(l, 1);
        hits[static_cast<size_t>(c)] += arg.eq(target).sum().item<int64_t>();
        l.sub_(top.unsqueeze(1)).exp_();
        const at::Tensor sums = l.sum(1);
        // logsumexp - target logit = top + log(sum exp(l - top)) - target logit.
        losses[static_cast<size_t>(c)] +=
            (top + sums.log() - target_logit).to(at::kDouble).sum().item<double>();
        if (!need_grad) continue;
        l.div_(sums.unsqueeze(1));  // the softmax; minus one at the target:
        float* lp = l.data_ptr<float>();
        const int64_t* tp = target.data_ptr<int64_t>();  // in range: gather checked it
        for (int64_t i = 0; i < n; ++i) lp[i * vocab + tp[i]] -= 1.0f;
      }
      if (need_grad) {
        at::Tensor o = dx.narrow(0, begin, end - begin);
        at::mm_out(o, logits, w);
      }
    });
    double loss = 0;
    int64_t correct = 0;
    for (size_t c = 0; c < losses.size(); ++c) {
      loss += losses[c];
      correct += hits[c];
    }
    ctx->save_for_backward({dx});
    at::Tensor count = at::scalar_tensor(correct, at::TensorOptions().dtype(at::kLong));
    ctx->mark_non_differentiable({count});
    return {at::scalar_tensor(loss, a.options()), count};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const at::Tensor dx = ctx->get_saved_variables()[0];
    return {dx.defined() ? dx * grad[0] : at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor SplitMatmul(const at::Tensor& a, const at::Tensor& b) {
  if (!SplitsOn(a)) return at::mm(a, b);
  // By rows; with few rows (generating a token at a time) by columns.
  const int64_t m = a.size(0);
  const int64_t n = b.size(1);
  const bool by_rows = m >= 2 * kMinRowsPerPart;
  const int64_t parts = std::min<int64_t>(
      SplitThreads(), by_rows ? m / kMinRowsPerPart : n / kMinColumnsPerPart);
  if (parts < 2) return at::mm(a, b);
  at::Tensor out = at::empty({m, n}, a.options());
  const int64_t extent = by_rows ? m : n;
  ForEachPart(parts, a, [&](int64_t part) {
    const auto [begin, end] = PartRange(extent, part, parts);
    if (by_rows) {
      at::Tensor o = out.narrow(0, begin, end - begin);
      at::mm_out(o, a.narrow(0, begin, end - begin), b);
    } else {
      at::Tensor o = out.narrow(1, begin, end - begin);
      at::mm_out(o, a, b.narrow(1, begin, end - begin));
    }
  });
  return out;
}

at::Tensor FrozenLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        const std::vector<int64_t>& blocks) {
  at::Tensor y = FrozenLinearFn::apply(x, weight, blocks);
  return bias.defined() ? y + bias : y;
}

std::vector<at::Tensor> SplitLastDim(const at::Tensor& x, const std::vector<int64_t>& widths) {
  return SplitLastDimFn::apply(x, widths);
}

at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           int64_t offset) {
  return CausalAttentionFn::apply(q, k, v, offset);
}

bool CanFuseLmHeadLoss(const at::Tensor& x, const at::Tensor& weight) {
  const auto cpu_float = [](const at::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == at::kFloat;
  };
  return cpu_float(x) && cpu_float(weight) && x.dim() == 2 && weight.dim() == 2 &&
         weight.size(1) == x.size(1) && !(weight.requires_grad() && at::GradMode::is_enabled());
}

at::Tensor LmHeadCrossEntropy(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& targets, int64_t* correct,
                              int64_t chunk_elements) {
  const variable_list out = LmHeadLossFn::apply(x, weight, targets, chunk_elements);
  if (correct != nullptr) *correct += out[1].item<int64_t>();
  return out[0];
}

}  // namespace tessera::lm::internal
