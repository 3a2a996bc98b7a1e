#include "privacy/secagg/update_codec.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "privacy/crypto/prg.h"
#include "privacy/crypto/random.h"

namespace tessera::secagg {
namespace {

bool Summed(const Tensor& t) { return t.dtype() == DType::kFloat32; }

}  // namespace

std::vector<TensorSpec> SummedTensors(const ArrayRecord& layout) {
  std::vector<TensorSpec> specs;
  for (const Tensor& t : layout.tensors) {
    if (Summed(t)) specs.push_back({t.name(), static_cast<size_t>(t.numel())});
  }
  return specs;
}

absl::StatusOr<std::vector<QuantizedTensor>> QuantizeUpdate(const ArrayRecord& delta,
                                                            uint64_t weight,
                                                            const QuantizerParams& params,
                                                            const UniformSource& uniform) {
  std::vector<QuantizedTensor> out;
  for (const Tensor& t : delta.tensors) {
    if (!Summed(t)) continue;
    absl::StatusOr<std::vector<uint64_t>> q =
        Quantize(t.values<float>(), static_cast<double>(weight), params, uniform);
    if (!q.ok()) {
      return absl::Status(q.status().code(),
                          absl::StrCat("tensor ", t.name(), ": ", q.status().message()));
    }
    out.push_back({t.name(), *std::move(q)});
  }
  return out;
}

absl::StatusOr<ArrayRecord> MeanDeltaFromSum(const std::vector<QuantizedTensor>& sums,
                                             uint64_t weight_sum,
                                             const QuantizerParams& params,
                                             const ArrayRecord& layout) {
  if (weight_sum == 0) return absl::InvalidArgumentError("the summed weight is 0");
  ArrayRecord mean;
  size_t next = 0;
  for (const Tensor& t : layout.tensors) {
    TESSERA_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(t.name(), t.dtype(), t.shape()));
    if (Summed(t)) {
      if (next >= sums.size() || sums[next].name != t.name() ||
          sums[next].values.size() != static_cast<size_t>(t.numel())) {
        return absl::InvalidArgumentError(
            absl::StrCat("the secure sum does not match tensor ", t.name()));
      }
      const std::vector<double> total = Dequantize(sums[next].values, params);
      absl::Span<float> dst = out.mutable_values<float>();
      const double inv = 1.0 / static_cast<double>(weight_sum);
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = static_cast<float>(total[i] * inv);
      ++next;
    }
    mean.tensors.push_back(std::move(out));
  }
  if (next != sums.size()) {
    return absl::InvalidArgumentError("the secure sum has more tensors than the model");
  }
  return mean;
}

std::string SumDigest(const std::vector<QuantizedTensor>& sums, uint64_t weight_sum) {
  std::string bytes;
  size_t total = 0;
  for (const QuantizedTensor& t : sums) total += t.values.size();
  bytes.reserve(8 * (total + 1));
  for (const QuantizedTensor& t : sums) {
    for (uint64_t v : t.values) AppendLittleEndian(bytes, v, 8);
  }
  AppendLittleEndian(bytes, weight_sum, 8);
  return crypto::Sha256Digest(bytes);
}

absl::StatusOr<UniformSource> SecureUniformSource() {
  TESSERA_ASSIGN_OR_RETURN(std::string key, crypto::RandomBytes(32));
  TESSERA_ASSIGN_OR_RETURN(crypto::MaskPrg prg, crypto::MaskPrg::Create(key));
  struct State {
    explicit State(crypto::MaskPrg p) : prg(std::move(p)) {}
    crypto::MaskPrg prg;
    std::vector<uint64_t> buffer = std::vector<uint64_t>(4096);
    size_t next = 4096;
  };
  auto state = std::make_shared<State>(std::move(prg));
  return UniformSource([state]() {
    if (state->next == state->buffer.size()) {
      state->prg.FillUint64(absl::MakeSpan(state->buffer));
      state->next = 0;
    }
    return static_cast<double>(state->buffer[state->next++] >> 11) * 0x1.0p-53;
  });
}

}  // namespace tessera::secagg
