// ApplyDelta: global += delta. Validates every tensor (pass 1) before writing
// any (pass 2), so a rejected delta leaves the global model untouched.
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "aggregation/fed_avg.h"
#include "aggregation/internal/half.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace aggregation {
namespace {

using aggregation_internal::BFloat16ToFloat;
using aggregation_internal::FloatToBFloat16;
using aggregation_internal::FloatToHalf;
using aggregation_internal::HalfToFloat;

absl::Status Overflow(const Tensor& t, size_t index) {
  return absl::OutOfRangeError(absl::StrCat("tensor \"", t.name(),
                                            "\": ", DTypeName(t.dtype()),
                                            " sum overflows at index ", index));
}

// Adds (or, with apply == false, only checks) one tensor. Returns the first
// index whose sum is not representable, or -1.
template <typename T>
int64_t AddFloat(Tensor& g, const Tensor& d, bool apply) {
  auto gv = g.mutable_values<T>();
  auto dv = d.values<T>();
  for (size_t j = 0; j < gv.size(); ++j) {
    const T sum = gv[j] + dv[j];
    if (!apply && !std::isfinite(sum)) return static_cast<int64_t>(j);
    if (apply) gv[j] = sum;
  }
  return -1;
}

int64_t AddHalf(Tensor& g, const Tensor& d, bool apply) {
  const bool half = g.dtype() == DType::kFloat16;
  auto gv = g.mutable_values<uint16_t>();
  auto dv = d.values<uint16_t>();
  for (size_t j = 0; j < gv.size(); ++j) {
    const float sum = half ? HalfToFloat(gv[j]) + HalfToFloat(dv[j])
                           : BFloat16ToFloat(gv[j]) + BFloat16ToFloat(dv[j]);
    const uint16_t rounded = half ? FloatToHalf(sum) : FloatToBFloat16(sum);
    const float back = half ? HalfToFloat(rounded) : BFloat16ToFloat(rounded);
    if (!apply && !std::isfinite(back)) return static_cast<int64_t>(j);
    if (apply) gv[j] = rounded;
  }
  return -1;
}

template <typename T>
int64_t AddInt(Tensor& g, const Tensor& d, bool apply, bool is_bool) {
  auto gv = g.mutable_values<T>();
  auto dv = d.values<T>();
  for (size_t j = 0; j < gv.size(); ++j) {
    T sum;
    const bool overflow =
        __builtin_add_overflow(gv[j], dv[j], &sum) || (is_bool && sum > 1);
    if (!apply && overflow) return static_cast<int64_t>(j);
    if (apply) gv[j] = sum;
  }
  return -1;
}

int64_t AddTensor(Tensor& g, const Tensor& d, bool apply) {
  switch (g.dtype()) {
    case DType::kFloat32:
      return AddFloat<float>(g, d, apply);
    case DType::kFloat64:
      return AddFloat<double>(g, d, apply);
    case DType::kFloat16:
    case DType::kBFloat16:
      return AddHalf(g, d, apply);
    case DType::kInt64:
      return AddInt<int64_t>(g, d, apply, false);
    case DType::kInt32:
      return AddInt<int32_t>(g, d, apply, false);
    case DType::kInt16:
      return AddInt<int16_t>(g, d, apply, false);
    case DType::kInt8:
      return AddInt<int8_t>(g, d, apply, false);
    case DType::kUInt8:
      return AddInt<uint8_t>(g, d, apply, false);
    case DType::kBool:
      return AddInt<uint8_t>(g, d, apply, true);
  }
  return -1;
}

}  // namespace

absl::Status ApplyDelta(ArrayRecord& global, const ArrayRecord& delta) {
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(global, delta));
  for (size_t i = 0; i < global.tensors.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(CheckFinite(delta.tensors[i]));
    const int64_t bad =
        AddTensor(global.tensors[i], delta.tensors[i], /*apply=*/false);
    if (bad >= 0) return Overflow(global.tensors[i], static_cast<size_t>(bad));
  }
  for (size_t i = 0; i < global.tensors.size(); ++i) {
    AddTensor(global.tensors[i], delta.tensors[i], /*apply=*/true);
  }
  return absl::OkStatus();
}

}  // namespace aggregation
}  // namespace tessera
