// CausalLm::Generate: greedy or nucleus (top-p) decoding with a key/value cache, so that each
// new token costs one position's forward pass.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/lm/transformer/causal_lm_impl.h"
#include "client/lm/transformer/fused_ops.h"
#include "client/lm/transformer/thread_split.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

// The next token from float32 logits [vocab] on the CPU.
int64_t NextToken(const at::Tensor& logits, const GenerateOptions& options, at::Generator& gen) {
  if (options.temperature <= 0) return logits.argmax().item<int64_t>();
  at::Tensor probs = at::softmax(logits / options.temperature, -1);
  if (options.top_p < 1) {
    // Keep the smallest prefix of tokens (by decreasing probability) whose mass reaches
    // top_p: a token is kept when the mass before it is below top_p.
    auto [sorted, indices] = probs.sort(-1, /*descending=*/true);
    at::Tensor before = sorted.cumsum(-1) - sorted;
    at::Tensor drop = before >= options.top_p;
    sorted = sorted.masked_fill(drop, 0);
    probs = at::zeros_like(probs).scatter(-1, indices, sorted);
  }
  return at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> CausalLm::Generate(const std::vector<int32_t>& prompt,
                                                        const GenerateOptions& options) {
  if (!std::isfinite(options.temperature) || options.temperature < 0 ||
      !(options.top_p > 0 && options.top_p <= 1)) {
    return absl::InvalidArgumentError("need temperature >= 0 and top_p in (0, 1]");
  }
  const int64_t limit = impl_->MaxLength();
  if (static_cast<int64_t>(prompt.size() + options.max_new_tokens) > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt.size(), " tokens) + max_new_tokens (", options.max_new_tokens,
        ") exceed the model's limit of ", limit, " positions"));
  }
  TESSERA_ASSIGN_OR_RETURN(at::Tensor ids, impl_->Ids({prompt}));
  std::vector<int64_t> stops = options.stop_ids;
  if (stops.empty()) stops = impl_->model.config().eos_token_ids;
  return internal::GuardTorch("Generate", [&]() -> absl::StatusOr<std::vector<int32_t>> {
    torch::NoGradGuard no_grad;
    internal::SerialBlasScope serial_blas;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    internal::KvCache cache;
    std::vector<int32_t> out;
    at::Tensor input = ids;
    for (uint32_t i = 0; i < options.max_new_tokens; ++i) {
      at::Tensor hidden = impl_->model.Hidden(input, nullptr, &cache);
      at::Tensor logits =
          impl_->model.Logits(hidden.select(1, hidden.size(1) - 1)).select(0, 0).to(torch::kCPU);
      const int64_t next = NextToken(logits, options, gen);
      out.push_back(static_cast<int32_t>(next));
      if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
      input = torch::tensor({next}, torch::kLong).view({1, 1}).to(impl_->device);
    }
    return out;
  });
}

}  // namespace tessera::lm
