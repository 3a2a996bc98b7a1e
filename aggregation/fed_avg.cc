#include "aggregation/fed_avg.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "aggregation/internal/half.h"
#include "aggregation/internal/kernels.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace aggregation {
namespace {

using aggregation_internal::Axpy;
using aggregation_internal::BFloat16ToFloat;
using aggregation_internal::FloatToBFloat16;
using aggregation_internal::FloatToHalf;
using aggregation_internal::HalfToFloat;

// Tensors summed in place in their own dtype; all others are summed in a double
// buffer.
bool SummedInPlace(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64;
}

// Calls f(T{}) with T the storage type of an integral dtype (bool is stored as
// uint8).
template <typename F>
void VisitIntegral(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kInt64:
      f(int64_t{});
      break;
    case DType::kInt32:
      f(int32_t{});
      break;
    case DType::kInt16:
      f(int16_t{});
      break;
    case DType::kInt8:
      f(int8_t{});
      break;
    case DType::kUInt8:
    case DType::kBool:
      f(uint8_t{});
      break;
    default:
      break;
  }
}

// Rounds to nearest (halves away from zero) and saturates to T's range, or to
// {0, 1} for bool.
template <typename T>
T RoundSaturate(double v, bool is_bool) {
  const double lo =
      is_bool ? 0.0 : static_cast<double>(std::numeric_limits<T>::min());
  const double hi =
      is_bool ? 1.0 : static_cast<double>(std::numeric_limits<T>::max());
  v = std::round(v);
  if (v <= lo) return static_cast<T>(lo);
  // For int64, hi rounds up to 2^63, so ">=" also catches the first
  // out-of-range value.
  if (v >= hi) return is_bool ? T{1} : std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

absl::Status CheckTensorFinite(const Tensor& t) {
  bool ok = true;
  if (t.dtype() == DType::kFloat32) {
    auto v = t.values<float>();
    ok = AllFinite(v.data(), v.size());
  } else if (t.dtype() == DType::kFloat64) {
    auto v = t.values<double>();
    ok = AllFinite(v.data(), v.size());
  } else {
    return CheckFinite(
        t);  // float16/bfloat16 (cheap bit test) and integers (no-op)
  }
  return ok ? absl::OkStatus()
            : CheckFinite(t);  // the slow path names the index
}

void FoldWide(const Tensor& t, double w, std::vector<double>& wide) {
  if (t.dtype() == DType::kFloat16 || t.dtype() == DType::kBFloat16) {
    const bool half = t.dtype() == DType::kFloat16;
    auto v = t.values<uint16_t>();
    for (size_t j = 0; j < v.size(); ++j) {
      wide[j] += w * static_cast<double>(half ? HalfToFloat(v[j])
                                              : BFloat16ToFloat(v[j]));
    }
    return;
  }
  VisitIntegral(t.dtype(), [&](auto tag) {
    auto v = t.values<decltype(tag)>();
    for (size_t j = 0; j < v.size(); ++j)
      wide[j] += w * static_cast<double>(v[j]);
  });
}

void StoreWide(const std::vector<double>& wide, double total, Tensor& out) {
  if (out.dtype() == DType::kFloat16 || out.dtype() == DType::kBFloat16) {
    const bool half = out.dtype() == DType::kFloat16;
    auto v = out.mutable_values<uint16_t>();
    for (size_t j = 0; j < v.size(); ++j) {
      const auto f = static_cast<float>(wide[j] / total);
      v[j] = half ? FloatToHalf(f) : FloatToBFloat16(f);
    }
    return;
  }
  const bool is_bool = out.dtype() == DType::kBool;
  VisitIntegral(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto v = out.mutable_values<T>();
    for (size_t j = 0; j < v.size(); ++j)
      v[j] = RoundSaturate<T>(wide[j] / total, is_bool);
  });
}

}  // namespace

WeightedAccumulator::WeightedAccumulator(ArrayRecord sums)
    : sums_(std::move(sums)) {
  wide_.resize(sums_.tensors.size());
  for (size_t i = 0; i < sums_.tensors.size(); ++i) {
    const Tensor& t = sums_.tensors[i];
    if (!SummedInPlace(t.dtype()))
      wide_[i].assign(static_cast<size_t>(t.numel()), 0.0);
  }
}

absl::StatusOr<WeightedAccumulator> WeightedAccumulator::Create(
    const ArrayRecord& layout) {
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(layout));
  ArrayRecord sums;
  sums.tensors.reserve(layout.tensors.size());
  for (const Tensor& t : layout.tensors) {
    TESSERA_ASSIGN_OR_RETURN(Tensor zeros,
                             Tensor::Zeros(t.name(), t.dtype(), t.shape()));
    sums.tensors.push_back(std::move(zeros));
  }
  return WeightedAccumulator(std::move(sums));
}

absl::Status WeightedAccumulator::Add(const ArrayRecord& update,
                                      double weight) {
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(sums_, update));
  for (const Tensor& t : update.tensors)
    TESSERA_RETURN_IF_ERROR(CheckTensorFinite(t));
  return AddFinite(update, weight);
}

absl::Status WeightedAccumulator::AddFinite(const ArrayRecord& update,
                                            double weight) {
  if (!std::isfinite(weight) || weight < FLT_MIN || weight > FLT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight must be finite and in [", FLT_MIN, ", ", FLT_MAX,
                     "], got ", weight));
  }
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(sums_, update));

  // Validated: from here on nothing fails.
  const auto w32 = static_cast<float>(weight);
  for (size_t i = 0; i < update.tensors.size(); ++i) {
    const Tensor& x = update.tensors[i];
    Tensor& acc = sums_.tensors[i];
    if (x.dtype() == DType::kFloat32) {
      Axpy(acc.mutable_values<float>().data(), x.values<float>().data(), w32,
           static_cast<size_t>(x.numel()));
    } else if (x.dtype() == DType::kFloat64) {
      Axpy(acc.mutable_values<double>().data(), x.values<double>().data(),
           weight, static_cast<size_t>(x.numel()));
    } else {
      FoldWide(x, weight, wide_[i]);
    }
  }
  total_weight_ += weight;
  ++count_;
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> WeightedAccumulator::Average() && {
  if (count_ == 0) {
    return absl::FailedPreconditionError(
        "cannot average: no updates were added");
  }
  const double total = total_weight_;
  for (size_t i = 0; i < sums_.tensors.size(); ++i) {
    Tensor& t = sums_.tensors[i];
    if (t.dtype() == DType::kFloat32) {
      auto v = t.mutable_values<float>();
      for (float& x : v) x = static_cast<float>(static_cast<double>(x) / total);
      if (!AllFinite(v.data(), v.size())) {
        return absl::OutOfRangeError(absl::StrCat(
            "weighted sum of tensor \"", t.name(), "\" overflowed float32"));
      }
    } else if (t.dtype() == DType::kFloat64) {
      auto v = t.mutable_values<double>();
      for (double& x : v) x /= total;
      if (!AllFinite(v.data(), v.size())) {
        return absl::OutOfRangeError(absl::StrCat(
            "weighted sum of tensor \"", t.name(), "\" overflowed float64"));
      }
    } else {
      StoreWide(wide_[i], total, t);
    }
  }
  wide_.clear();
  return std::move(sums_);
}

uint64_t WeightedAccumulator::memory_bytes() const {
  uint64_t bytes = sums_.TotalBytes();
  for (const std::vector<double>& w : wide_) bytes += w.size() * sizeof(double);
  return bytes;
}

absl::StatusOr<ArrayRecord> FedAvg(absl::Span<const ArrayRecord> updates,
                                   absl::Span<const double> weights) {
  if (updates.empty()) return absl::InvalidArgumentError("FedAvg: no updates");
  if (updates.size() != weights.size()) {
    return absl::InvalidArgumentError(absl::StrCat("FedAvg: ", updates.size(),
                                                   " updates but ",
                                                   weights.size(), " weights"));
  }
  TESSERA_ASSIGN_OR_RETURN(WeightedAccumulator acc,
                           WeightedAccumulator::Create(updates[0]));
  for (size_t k = 0; k < updates.size(); ++k) {
    absl::Status s = acc.Add(updates[k], weights[k]);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("FedAvg: update ", k, ": ", s.message()));
    }
  }
  return std::move(acc).Average();
}

}  // namespace aggregation
}  // namespace tessera
