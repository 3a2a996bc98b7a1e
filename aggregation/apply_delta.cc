// ApplyDelta: global += delta. Validates every tensor (pass 1) before writing
// any (pass 2), so a rejected delta leaves the global model untouched.
// ApplyDeltaRange: the same addition for a range of one tensor's elements.
#include <cmath>
#include <cstdint>
#include <cstring>
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

// Adds (or, with apply == false, only checks) n elements of delta `d` to those of `g`.
// Returns the first index (from 0) whose sum is not representable, or -1.
template <typename T>
int64_t AddFloat(char* g, const char* d, size_t n, bool apply) {
  for (size_t j = 0; j < n; ++j) {
    T gj, dj;
    std::memcpy(&gj, g + j * sizeof(T), sizeof(T));
    std::memcpy(&dj, d + j * sizeof(T), sizeof(T));
    const T sum = gj + dj;
    if (!apply && !std::isfinite(sum)) return static_cast<int64_t>(j);
    if (apply) std::memcpy(g + j * sizeof(T), &sum, sizeof(T));
  }
  return -1;
}

int64_t AddHalf(bool half, char* g, const char* d, size_t n, bool apply) {
  for (size_t j = 0; j < n; ++j) {
    uint16_t gj, dj;
    std::memcpy(&gj, g + 2 * j, 2);
    std::memcpy(&dj, d + 2 * j, 2);
    const float sum = half ? HalfToFloat(gj) + HalfToFloat(dj)
                           : BFloat16ToFloat(gj) + BFloat16ToFloat(dj);
    const uint16_t rounded = half ? FloatToHalf(sum) : FloatToBFloat16(sum);
    const float back = half ? HalfToFloat(rounded) : BFloat16ToFloat(rounded);
    if (!apply && !std::isfinite(back)) return static_cast<int64_t>(j);
    if (apply) std::memcpy(g + 2 * j, &rounded, 2);
  }
  return -1;
}

template <typename T>
int64_t AddInt(char* g, const char* d, size_t n, bool apply, bool is_bool) {
  for (size_t j = 0; j < n; ++j) {
    T gj, dj, sum;
    std::memcpy(&gj, g + j * sizeof(T), sizeof(T));
    std::memcpy(&dj, d + j * sizeof(T), sizeof(T));
    const bool overflow = __builtin_add_overflow(gj, dj, &sum) || (is_bool && sum > 1);
    if (!apply && overflow) return static_cast<int64_t>(j);
    if (apply) std::memcpy(g + j * sizeof(T), &sum, sizeof(T));
  }
  return -1;
}

int64_t AddElements(DType dtype, char* g, const char* d, size_t n, bool apply) {
  switch (dtype) {
    case DType::kFloat32:
      return AddFloat<float>(g, d, n, apply);
    case DType::kFloat64:
      return AddFloat<double>(g, d, n, apply);
    case DType::kFloat16:
      return AddHalf(/*half=*/true, g, d, n, apply);
    case DType::kBFloat16:
      return AddHalf(/*half=*/false, g, d, n, apply);
    case DType::kInt64:
      return AddInt<int64_t>(g, d, n, apply, false);
    case DType::kInt32:
      return AddInt<int32_t>(g, d, n, apply, false);
    case DType::kInt16:
      return AddInt<int16_t>(g, d, n, apply, false);
    case DType::kInt8:
      return AddInt<int8_t>(g, d, n, apply, false);
    case DType::kUInt8:
      return AddInt<uint8_t>(g, d, n, apply, false);
    case DType::kBool:
      return AddInt<uint8_t>(g, d, n, apply, true);
  }
  return -1;
}

int64_t AddTensor(Tensor& g, const Tensor& d, bool apply) {
  return AddElements(g.dtype(), g.mutable_data()->data(), d.data().data(),
                     static_cast<size_t>(g.numel()), apply);
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

absl::Status ApplyDeltaRange(Tensor& global, size_t offset, const Tensor& delta) {
  if (delta.dtype() != global.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", global.name(), "\" is ", DTypeName(global.dtype()), "; the delta is ",
        DTypeName(delta.dtype())));
  }
  const size_t n = static_cast<size_t>(delta.numel());
  const size_t total = static_cast<size_t>(global.numel());
  if (offset > total || n > total - offset) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", global.name(), "\": elements ",
                                                   offset, "..", offset + n, " of ", total));
  }
  TESSERA_RETURN_IF_ERROR(CheckFinite(delta));
  char* g = global.mutable_data()->data() + offset * DTypeSize(global.dtype());
  const int64_t bad = AddElements(global.dtype(), g, delta.data().data(), n, /*apply=*/false);
  if (bad >= 0) return Overflow(global, offset + static_cast<size_t>(bad));
  AddElements(global.dtype(), g, delta.data().data(), n, /*apply=*/true);
  return absl::OkStatus();
}

}  // namespace aggregation
}  // namespace tessera
