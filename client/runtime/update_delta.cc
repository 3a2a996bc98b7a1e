#include "client/runtime/update_delta.h"

#include <cstring>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/update_dp.h"

namespace tessera {
namespace {

template <typename T>
void Subtract(const Tensor& a, const Tensor& b, Tensor& out) {
  auto x = a.values<T>();
  auto y = b.values<T>();
  auto z = out.mutable_values<T>();
  for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<T>(x[i] - y[i]);
}

}  // namespace

absl::StatusOr<ArrayRecord> ComputeDelta(const ArrayRecord& trained, const ArrayRecord& global) {
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(global, trained));
  ArrayRecord delta;
  delta.tensors.reserve(global.tensors.size());
  for (size_t i = 0; i < global.tensors.size(); ++i) {
    const Tensor& a = trained.tensors[i];
    const Tensor& b = global.tensors[i];
    TESSERA_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(b.name(), b.dtype(), b.shape()));
    switch (b.dtype()) {
      case DType::kFloat32: Subtract<float>(a, b, out); break;
      case DType::kFloat64: Subtract<double>(a, b, out); break;
      case DType::kInt64: Subtract<int64_t>(a, b, out); break;
      case DType::kInt32: Subtract<int32_t>(a, b, out); break;
      case DType::kInt16: Subtract<int16_t>(a, b, out); break;
      case DType::kInt8: Subtract<int8_t>(a, b, out); break;
      case DType::kUInt8: Subtract<uint8_t>(a, b, out); break;
      case DType::kBool:
        if (a.data() != b.data()) {
          return absl::InvalidArgumentError(
              absl::StrCat("bool tensor \"", b.name(), "\" changed during training"));
        }
        break;
      case DType::kFloat16:
      case DType::kBFloat16:
        return absl::UnimplementedError(
            absl::StrCat("tensor \"", b.name(), "\": half-precision updates are not supported"));
    }
    delta.tensors.push_back(std::move(out));
  }
  return delta;
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
