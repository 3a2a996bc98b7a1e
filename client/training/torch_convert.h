// File: torch_convert.h
// Internal to client/training: conversions between tessera::Tensor and at::Tensor. Only the
// LibTorch .cc files of this folder include it; it declares at::Tensor without including
// LibTorch.
#ifndef TESSERA_CLIENT_TRAINING_TORCH_CONVERT_H_
#define TESSERA_CLIENT_TRAINING_TORCH_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/model/tensor.h"

namespace at {
class Tensor;
}  // namespace at

namespace tessera {
namespace training_internal {

// The tessera dtype of `t`. INVALID_ARGUMENT naming `name` for dtypes tessera lacks
// (complex, quantized, ...).
absl::StatusOr<DType> DTypeOf(const std::string& name, const at::Tensor& t);

// A CPU, contiguous copy of `t` (on any device) as a tessera Tensor called `name`.
absl::StatusOr<Tensor> FromTorch(const std::string& name, const at::Tensor& t);

// A CPU at::Tensor that views `t`'s bytes without copying; treat it as read-only.
// REQUIRES: `t` outlives the result.
at::Tensor ViewAsTorch(const Tensor& t);

}  // namespace training_internal
}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_TORCH_CONVERT_H_
