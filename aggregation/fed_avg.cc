#include "aggregation/fed_avg.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregation/internal/binned_sum.h"
#include "aggregation/internal/half.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace aggregation {
namespace {

using aggregation_internal::BinnedSum;
using aggregation_internal::BFloat16ToFloat;
using aggregation_internal::FloatToBFloat16;
using aggregation_internal::FloatToHalf;
using aggregation_internal::HalfToFloat;

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

// Calls f(v) with each value of a non-float32 tensor as a double (exact except for int64
// values beyond 2^53, which round to nearest).
template <typename F>
void ForEachAsDouble(const Tensor& t, F&& f) {
  if (t.dtype() == DType::kFloat64) {
    for (double v : t.values<double>()) f(v);
  } else if (t.dtype() == DType::kFloat16 || t.dtype() == DType::kBFloat16) {
    const bool half = t.dtype() == DType::kFloat16;
    for (uint16_t v : t.values<uint16_t>()) {
      f(static_cast<double>(half ? HalfToFloat(v) : BFloat16ToFloat(v)));
    }
  } else {
    VisitIntegral(t.dtype(), [&](auto tag) {
      for (auto v : t.values<decltype(tag)>()) f(static_cast<double>(v));
    });
  }
}

// Whether weight * value overflows a double for some value of a non-float32 tensor (a
// float32 value times a weight <= FLT_MAX cannot).
bool ProductOverflows(const Tensor& t, double weight) {
  if (t.dtype() == DType::kFloat32) return false;
  double m = 0;
  ForEachAsDouble(t, [&](double v) { m = std::max(m, std::fabs(v)); });
  return !std::isfinite(weight * m);
}

// Adds weight * t to `sum`.
void Fold(const Tensor& t, double weight, BinnedSum& sum) {
  if (t.dtype() == DType::kFloat32) {
    sum.AddProducts(t.values<float>().data(), weight);
    return;
  }
  constexpr size_t kChunk = 256;
  double terms[kChunk];
  size_t filled = 0, offset = 0;
  ForEachAsDouble(t, [&](double v) {
    terms[filled++] = weight * v;
    if (filled == kChunk) {
      sum.AddTerms(terms, offset, filled);
      offset += filled;
      filled = 0;
    }
  });
  sum.AddTerms(terms, offset, filled);
}

// out[j] = sum[j] / total in out's dtype; false if a float result is not finite.
bool Store(const BinnedSum& sum, double total, Tensor& out) {
  const size_t n = sum.size();
  switch (out.dtype()) {
    case DType::kFloat32: {
      auto v = out.mutable_values<float>();
      for (size_t j = 0; j < n; ++j) v[j] = static_cast<float>(sum.Quotient(j, total));
      return AllFinite(v.data(), v.size());
    }
    case DType::kFloat64: {
      auto v = out.mutable_values<double>();
      for (size_t j = 0; j < n; ++j) v[j] = sum.Quotient(j, total);
      return AllFinite(v.data(), v.size());
    }
    case DType::kFloat16:
    case DType::kBFloat16: {
      const bool half = out.dtype() == DType::kFloat16;
      auto v = out.mutable_values<uint16_t>();
      for (size_t j = 0; j < n; ++j) {
        const auto f = static_cast<float>(sum.Quotient(j, total));
        v[j] = half ? FloatToHalf(f) : FloatToBFloat16(f);
      }
      return true;
    }
    default:
      break;
  }
  const bool is_bool = out.dtype() == DType::kBool;
  VisitIntegral(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto v = out.mutable_values<T>();
    for (size_t j = 0; j < n; ++j) v[j] = RoundSaturate<T>(sum.Quotient(j, total), is_bool);
  });
  return true;
}

}  // namespace

WeightedAccumulator::WeightedAccumulator(std::vector<Spec> specs, std::vector<BinnedSum> sums)
    : specs_(std::move(specs)), sums_(std::move(sums)) {}

absl::StatusOr<WeightedAccumulator> WeightedAccumulator::Create(const ArrayRecord& layout) {
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(layout));
  std::vector<Spec> specs;
  std::vector<BinnedSum> sums;
  specs.reserve(layout.tensors.size());
  sums.reserve(layout.tensors.size());
  for (const Tensor& t : layout.tensors) {
    specs.push_back({t.name(), t.dtype(), t.shape()});
    sums.emplace_back(static_cast<size_t>(t.numel()));
  }
  return WeightedAccumulator(std::move(specs), std::move(sums));
}

absl::Status WeightedAccumulator::Add(const ArrayRecord& update, double weight) {
  TESSERA_RETURN_IF_ERROR(CheckLayout(update));
  for (const Tensor& t : update.tensors) TESSERA_RETURN_IF_ERROR(CheckTensorFinite(t));
  return AddFinite(update, weight);
}

absl::Status WeightedAccumulator::AddFinite(const ArrayRecord& update, double weight) {
  if (!std::isfinite(weight) || weight < FLT_MIN || weight > FLT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("weight must be finite and in [", FLT_MIN,
                                                   ", ", FLT_MAX, "], got ", weight));
  }
  TESSERA_RETURN_IF_ERROR(CheckLayout(update));
  if (count_ >= BinnedSum::kMaxTerms - 1) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the accumulator holds its limit of ", count_, " updates"));
  }
  for (const Tensor& t : update.tensors) {
    if (ProductOverflows(t, weight)) {
      return absl::OutOfRangeError(absl::StrCat("weight ", weight, " times a value of tensor \"",
                                                t.name(), "\" overflows a double"));
    }
  }
  // Validated: from here on nothing fails.
  for (size_t i = 0; i < update.tensors.size(); ++i) Fold(update.tensors[i], weight, sums_[i]);
  weights_.AddTerms(&weight, 0, 1);
  ++count_;
  return absl::OkStatus();
}

absl::Status WeightedAccumulator::CheckLayout(const ArrayRecord& update) const {
  // CheckSameLayout's messages, without holding a copy of the layout's values.
  if (update.tensors.size() != specs_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", specs_.size(), " tensors, got ", update.tensors.size()));
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    const Tensor& t = update.tensors[i];
    const Spec& s = specs_[i];
    if (t.name() != s.name || t.dtype() != s.dtype || t.shape() != s.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", i, ": expected ", s.name, " ", DTypeName(s.dtype), "[",
          absl::StrJoin(s.shape, ","), "], got ", t.DebugString()));
    }
  }
  return absl::OkStatus();
}

double WeightedAccumulator::total_weight() const { return weights_.Quotient(0, 1.0); }

absl::StatusOr<ArrayRecord> WeightedAccumulator::Average() && {
  if (count_ == 0) return absl::FailedPreconditionError("cannot average: no updates were added");
  const double total = total_weight();
  ArrayRecord out;
  out.tensors.reserve(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    TESSERA_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(specs_[i].name, specs_[i].dtype,
                                                     specs_[i].shape));
    if (!Store(sums_[i], total, t)) {
      return absl::OutOfRangeError(absl::StrCat("weighted mean of tensor \"", t.name(),
                                                "\" overflowed ", DTypeName(t.dtype())));
    }
    sums_[i] = BinnedSum(0);  // release as we go: peak is the sums plus the result
    out.tensors.push_back(std::move(t));
  }
  return out;
}

uint64_t WeightedAccumulator::memory_bytes() const {
  uint64_t bytes = weights_.memory_bytes();
  for (const BinnedSum& s : sums_) bytes += s.memory_bytes();
  return bytes;
}

uint64_t WeightedAccumulator::MemoryBytesFor(const ArrayRecord& layout) {
  uint64_t elements = 1;  // the weights' sum
  for (const Tensor& t : layout.tensors) elements += static_cast<uint64_t>(t.numel());
  return elements * BinnedSum::kBytesPerElement;
}

absl::Status WeightedAccumulator::Merge(const WeightedAccumulator& other) {
  if (other.specs_.size() != specs_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("merge: expected ", specs_.size(),
                                                   " tensors, got ", other.specs_.size()));
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    const Spec& a = specs_[i];
    const Spec& b = other.specs_[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge: tensor ", i, ": expected ", a.name, " ", DTypeName(a.dtype), "[",
          absl::StrJoin(a.shape, ","), "], got ", b.name, " ", DTypeName(b.dtype), "[",
          absl::StrJoin(b.shape, ","), "]"));
    }
  }
  if (other.count_ > BinnedSum::kMaxTerms - 1 - count_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "merge: ", count_, " + ", other.count_, " updates exceed the accumulator's limit of ",
        BinnedSum::kMaxTerms - 1));
  }
  for (size_t i = 0; i < sums_.size(); ++i) sums_[i].Merge(other.sums_[i]);
  weights_.Merge(other.weights_);
  count_ += other.count_;
  return absl::OkStatus();
}

std::string WeightedAccumulator::Serialize() const {
  std::string out;
  AppendLittleEndian(out, count_, sizeof(uint64_t));
  weights_.AppendState(out);
  for (const BinnedSum& s : sums_) s.AppendState(out);
  return out;
}

absl::StatusOr<WeightedAccumulator> WeightedAccumulator::Deserialize(const ArrayRecord& layout,
                                                                     absl::string_view bytes) {
  TESSERA_ASSIGN_OR_RETURN(WeightedAccumulator acc, Create(layout));
  uint64_t want = sizeof(uint64_t) + acc.weights_.memory_bytes();
  for (const BinnedSum& s : acc.sums_) want += s.memory_bytes();
  if (bytes.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("partial sum: expected ", want,
                                                   " bytes for the layout, got ", bytes.size()));
  }
  const uint64_t count = LoadLittleEndian(bytes.data(), sizeof(uint64_t));
  if (count > BinnedSum::kMaxTerms - 1) {
    return absl::InvalidArgumentError(absl::StrCat("partial sum: update count ", count,
                                                   " exceeds the limit of ",
                                                   BinnedSum::kMaxTerms - 1));
  }
  bytes.remove_prefix(sizeof(uint64_t));
  auto load = [&](BinnedSum& s, absl::string_view what) -> absl::Status {
    const auto n = static_cast<size_t>(s.memory_bytes());
    if (!s.LoadState(bytes.substr(0, n), count)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partial sum: malformed sums of ", what, " (a level out of range, or a bin larger "
          "than ", count, " updates can make)"));
    }
    bytes.remove_prefix(n);
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(load(acc.weights_, "the weights"));
  for (size_t i = 0; i < acc.sums_.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(
        load(acc.sums_[i], absl::StrCat("tensor \"", acc.specs_[i].name, "\"")));
  }
  acc.count_ = count;
  return acc;
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
