#include "privacy/dp/update_dp.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/grid_gaussian.h"

namespace tessera::dp {
namespace {

bool Protected(const Tensor& t) { return t.dtype() == DType::kFloat32; }

void ZeroUnprotected(ArrayRecord& update) {
  for (Tensor& t : update.tensors) {
    if (!Protected(t)) std::memset(t.mutable_data()->data(), 0, t.byte_size());
  }
}

}  // namespace

double ClipUpdate(ArrayRecord& update, double clip) {
  ZeroUnprotected(update);
  std::vector<absl::Span<float>> spans;
  for (Tensor& t : update.tensors) {
    if (Protected(t)) spans.push_back(t.mutable_values<float>());
  }
  return ClipTensorsToL2Norm(spans, clip);
}

bool ZeroIfNotFinite(ArrayRecord& update) {
  bool finite = true;
  for (const Tensor& t : update.tensors) {
    if (!Protected(t)) continue;
    for (float v : t.values<float>()) finite = finite && std::isfinite(v);
  }
  if (finite) return false;
  for (Tensor& t : update.tensors) std::memset(t.mutable_data()->data(), 0, t.byte_size());
  return true;
}

std::vector<float> FlattenFloat32(const ArrayRecord& update) {
  size_t n = 0;
  for (const Tensor& t : update.tensors) {
    if (Protected(t)) n += static_cast<size_t>(t.numel());
  }
  std::vector<float> out;
  out.reserve(n);
  for (const Tensor& t : update.tensors) {
    if (!Protected(t)) continue;
    absl::Span<const float> v = t.values<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

absl::StatusOr<ArrayRecord> UnflattenFloat32(absl::Span<const float> values,
                                             const ArrayRecord& layout, double scale) {
  ArrayRecord out;
  size_t next = 0;
  for (const Tensor& t : layout.tensors) {
    TESSERA_ASSIGN_OR_RETURN(Tensor z, Tensor::Zeros(t.name(), t.dtype(), t.shape()));
    if (Protected(t)) {
      absl::Span<float> dst = z.mutable_values<float>();
      if (next + dst.size() > values.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the aggregate has ", values.size(), " values; the model needs more (tensor ",
            t.name(), ")"));
      }
      for (size_t i = 0; i < dst.size(); ++i) {
        dst[i] = static_cast<float>(values[next + i] * scale);
      }
      next += dst.size();
    }
    out.tensors.push_back(std::move(z));
  }
  if (next != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the aggregate has ", values.size(),
                                                   " values; the model has ", next));
  }
  return out;
}

absl::Status NoisedMeanFromMean(ArrayRecord& mean, uint64_t count, double expected,
                                double sum_sensitivity, double noise_multiplier,
                                SecureRandom& rng) {
  if (!(expected > 0) || !std::isfinite(expected)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected number of clients must be > 0, got ", expected));
  }
  std::vector<double> values;
  const double scale = static_cast<double>(count) / expected;
  for (const Tensor& t : mean.tensors) {
    if (!Protected(t)) continue;
    for (float x : t.values<float>()) values.push_back(static_cast<double>(x) * scale);
  }
  if (values.empty()) {
    ZeroUnprotected(mean);
    return absl::OkStatus();
  }
  TESSERA_ASSIGN_OR_RETURN(GridNoise noise, MakeGridNoise(sum_sensitivity / expected,
                                                          noise_multiplier, values.size()));
  TESSERA_RETURN_IF_ERROR(AddGridGaussianNoise(absl::MakeSpan(values), noise, rng));
  ZeroUnprotected(mean);
  size_t next = 0;
  for (Tensor& t : mean.tensors) {
    if (!Protected(t)) continue;
    for (float& x : t.mutable_values<float>()) x = static_cast<float>(values[next++]);
  }
  return absl::OkStatus();
}

}  // namespace tessera::dp
