// File: fused_ops.h
// Internal to client/lm/transformer: the matrix products of the transformer written as
// LibTorch autograd Functions that do less work than the generic operators, with the same
// math:
//   - FrozenLinear: y = x W^T + b for a weight that gets no gradient (the frozen base under
//     LoRA): the backward pass is one product, dX = dY W, and no graph is kept for W.
//   - CausalAttention: softmax(q k^T / sqrt(d) + causal mask) v with grouped-query attention
//     done by grouping the query heads that share a key/value head (no repeated keys and
//     values), the scores scaled, masked and normalized in place one key/value head at a
//     time, and a hand-written backward pass.
// On the CPU, while a SerialBlasScope (thread_split.h) is alive, their products and passes are
// split over threads, each part a single-threaded BLAS call.
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_FUSED_OPS_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_FUSED_OPS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace tessera::lm::internal {

// a [m, k] times b [k, n] (any strides), split by rows over LibTorch's threads while a
// SerialBlasScope is alive on the CPU; a plain at::mm otherwise.
at::Tensor SplitMatmul(const at::Tensor& a, const at::Tensor& b);

// x [..., in] W^T [in, out] (+ bias [out] when defined). REQUIRES: `weight` does not require
// a gradient (only x gets one). `blocks` (row counts of `weight`, summing to out; empty: one
// block) are the stacked modules: the forward pass computes each block as its own product,
// bit for bit what the module alone gives; the backward pass is one product over all.
at::Tensor FrozenLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        const std::vector<int64_t>& blocks = {});

// x split along its last dimension into pieces of the given widths (views); the backward pass
// concatenates the pieces' gradients in one pass (a zero block where a piece got none)
// instead of one full-size zero tensor per piece.
std::vector<at::Tensor> SplitLastDim(const at::Tensor& x, const std::vector<int64_t>& widths);

// q [batch, heads, seq, dim], k and v [batch, kv_heads, total, dim] (heads a multiple of
// kv_heads; query head h uses key/value head h / (heads / kv_heads), as repeat_interleave
// does). Query i is at absolute position offset + i and sees keys 0..offset + i
// (total = offset + seq). Returns [batch, heads, seq, dim] in q's dtype; the softmax is
// computed in float32.
at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           int64_t offset);

// The summed cross-entropy of the logits x W^T against `targets`:
//   sum_i logsumexp(x_i W^T) - x_i . W_target_i
// for hidden states x [rows, hidden], a frozen output projection W [vocab, hidden] and targets
// [rows] (int64, each in [0, vocab)); a float32 scalar. The logits are never kept: the rows
// are taken in chunks (one per thread, each at most kLmHeadChunkElements logits), and when x
// needs a gradient each chunk's d loss / d logits = softmax - onehot(target) goes straight
// into its share of d loss / d x = (softmax - onehot) W, so the backward pass is one scaling.
// `correct` (when not null) is increased by the number of rows whose target is the first
// arg-max of their logits. Only when CanFuseLmHeadLoss: float32 on the CPU, a weight that
// gets no gradient. `chunk_elements` > 0 (a parameter for the tests).
constexpr int64_t kLmHeadChunkElements = int64_t{1} << 25;  // 128 MiB of float32 logits
bool CanFuseLmHeadLoss(const at::Tensor& x, const at::Tensor& weight);
at::Tensor LmHeadCrossEntropy(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& targets, int64_t* correct,
                              int64_t chunk_elements = kLmHeadChunkElements);

// silu(gate) * up (SwiGLU) for gate and up of the same shape, keeping only gate and up for the
// backward pass (autograd's silu then mul also keeps silu(gate)), which computes
// d up = g * silu(gate) and d gate = g * up * silu'(gate), both passes split by rows while a
// SerialBlasScope splits. Only when CanFuseSwiGlu: float32 on the CPU.
bool CanFuseSwiGlu(const at::Tensor& gate, const at::Tensor& up);
at::Tensor FusedSwiGlu(const at::Tensor& gate, const at::Tensor& up);

// RMSNorm, w * x / sqrt(mean(x^2) + eps) over the last dimension, in one pass forward and
// one backward (fused_pointwise.cc). Only when CanFuseRmsNorm: float32 on the CPU with a
// weight that gets no gradient.
bool CanFuseRmsNorm(const at::Tensor& x, const at::Tensor& weight);
at::Tensor FusedRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// x * cos + rotate_half(x) * sin for x [batch, heads, seq, dim] and cos, sin [seq, dim], in
// one pass each way, the result contiguous. Only when CanFuseRotary: float32 on the CPU.
bool CanFuseRotary(const at::Tensor& x, const at::Tensor& cos);
at::Tensor FusedRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_FUSED_OPS_H_
