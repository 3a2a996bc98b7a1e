#include "client/runtime/update_delta.h"

#include <cstring>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/update_dp.h"

namespace tessera {
namespace {

// a -= b, in a's own precision.
template <typename T>
void SubtractInPlace(Tensor& a, const Tensor& b) {
  T* __restrict x = a.mutable_values<T>().data();
  const T* __restrict y = b.values<T>().data();
  const size_t n = b.values<T>().size();
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<T>(x[i] - y[i]);
}

}  // namespace

absl::StatusOr<ArrayRecord> ComputeDelta(ArrayRecord trained, const ArrayRecord& global) {
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(global, trained));
  for (size_t i = 0; i < global.tensors.size(); ++i) {
    Tensor& a = trained.tensors[i];
    const Tensor& b = global.tensors[i];
    switch (b.dtype()) {
      case DType::kFloat32: SubtractInPlace<float>(a, b); break;
      case DType::kFloat64: SubtractInPlace<double>(a, b); break;
      case DType::kInt64: SubtractInPlace<int64_t>(a, b); break;
      case DType::kInt32: SubtractInPlace<int32_t>(a, b); break;
      case DType::kInt16: SubtractInPlace<int16_t>(a, b); break;
      case DType::kInt8: SubtractInPlace<int8_t>(a, b); break;
      case DType::kUInt8: SubtractInPlace<uint8_t>(a, b); break;
      case DType::kBool:
        if (a.data() != b.data()) {
          return absl::InvalidArgumentError(
              absl::StrCat("bool tensor \"", b.name(), "\" changed during training"));
        }
        std::memset(a.mutable_data()->data(), 0, a.data().size());  // unchanged: all false
        break;
      case DType::kFloat16:
      case DType::kBFloat16:
        return absl::UnimplementedError(
            absl::StrCat("tensor \"", b.name(), "\": half-precision updates are not supported"));
    }
  }
  return trained;
}

ArrayRecord DpDelta(const ArrayRecord& delta, double clip, bool* within_clip) {
  ArrayRecord out = delta;
  if (dp::ZeroIfNotFinite(out)) {
    LOG(WARNING) << "local training produced a non-finite update; sending a zero update "
                 << "(with this client's share of the noise, if any)";
  }
  if (clip > 0) {
    const double norm = dp::ClipUpdate(out, clip);
    if (within_clip != nullptr) *within_clip = norm <= clip;
  }
  return out;
}

}  // namespace tessera
