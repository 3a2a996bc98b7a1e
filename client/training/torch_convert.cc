#include "client/training/torch_convert.h"

#include <ATen/ATen.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace training_internal {
namespace {

struct DTypePair {
  DType tessera;
  at::ScalarType torch;
};

constexpr DTypePair kPairs[] = {
    {DType::kFloat32, at::kFloat}, {DType::kFloat64, at::kDouble},
    {DType::kFloat16, at::kHalf},  {DType::kBFloat16, at::kBFloat16},
    {DType::kInt64, at::kLong},    {DType::kInt32, at::kInt},
    {DType::kInt16, at::kShort},   {DType::kInt8, at::kChar},
    {DType::kUInt8, at::kByte},    {DType::kBool, at::kBool},
};

at::ScalarType ToTorch(DType dtype) {
  for (const DTypePair& p : kPairs) {
    if (p.tessera == dtype) return p.torch;
  }
  return at::kFloat;  // unreachable for valid enum values
}

}  // namespace

absl::StatusOr<DType> DTypeOf(const std::string& name, const at::Tensor& t) {
  for (const DTypePair& p : kPairs) {
    if (p.torch == t.scalar_type()) return p.tessera;
  }
  return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has dtype ",
                                                 c10::toString(t.scalar_type()),
                                                 ", which tessera does not support"));
}

absl::StatusOr<Tensor> FromTorch(const std::string& name, const at::Tensor& t) {
  TESSERA_ASSIGN_OR_RETURN(DType dtype, DTypeOf(name, t));
  const at::Tensor c = t.detach().to(at::kCPU).contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  std::string bytes(static_cast<const char*>(c.data_ptr()), c.nbytes());
  return Tensor::Create(name, dtype, std::move(shape), std::move(bytes));
}

at::Tensor ViewAsTorch(const Tensor& t) {
  return at::from_blob(const_cast<char*>(t.data().data()), t.shape(),
                       at::TensorOptions().dtype(ToTorch(t.dtype())));
}

}  // namespace training_internal
}  // namespace tessera
