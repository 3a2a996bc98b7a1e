#include "core/model/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "core/model/finite.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t size;
  absl::string_view name;
  absl::string_view safetensors;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, 4, "float32", "F32"}, {DType::kFloat64, 8, "float64", "F64"},
    {DType::kFloat16, 2, "float16", "F16"}, {DType::kBFloat16, 2, "bfloat16", "BF16"},
    {DType::kInt64, 8, "int64", "I64"},     {DType::kInt32, 4, "int32", "I32"},
    {DType::kInt16, 2, "int16", "I16"},     {DType::kInt8, 1, "int8", "I8"},
    {DType::kUInt8, 1, "uint8", "U8"},      {DType::kBool, 1, "bool", "BOOL"},
};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];  // unreachable for valid enum values
}

}  // namespace

size_t DTypeSize(DType dtype) { return Info(dtype).size; }
absl::string_view DTypeName(DType dtype) { return Info(dtype).name; }
absl::string_view DTypeSafetensorsName(DType dtype) { return Info(dtype).safetensors; }

absl::StatusOr<DType> DTypeFromName(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name || info.safetensors == name) return info.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype \"", name, "\""));
}

absl::StatusOr<DType> DTypeFromWire(int value) {
  for (const DTypeInfo& info : kDTypes) {
    if (static_cast<int>(info.dtype) == value) return info.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype value ", value));
}

bool IsIntegral(DType dtype) {
  switch (dtype) {
    case DType::kInt64:
    case DType::kInt32:
    case DType::kInt16:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension ", d));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError("shape overflows int64");
    }
    n *= d;
  }
  return n;
}

absl::StatusOr<Tensor> Tensor::Create(std::string name, DType dtype,
                                      std::vector<int64_t> shape, std::string data) {
  if (name.empty()) return absl::InvalidArgumentError("tensor name is empty");
  if (name.size() > kMaxTensorNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor name longer than ", kMaxTensorNameBytes, " bytes"));
  }
  if (shape.size() > kMaxTensorRank) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has rank ",
                                                   shape.size(), ", limit ",
                                                   kMaxTensorRank));
  }
  absl::StatusOr<int64_t> numel = NumElements(shape);
  if (!numel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\": ", numel.status().message()));
  }
  const size_t elem = DTypeSize(dtype);
  if (static_cast<uint64_t>(*numel) > kMaxTensorBytes / elem) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is larger than ",
                                                   kMaxTensorBytes, " bytes"));
  }
  const uint64_t expected = static_cast<uint64_t>(*numel) * elem;
  if (data.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" ",
                                                   DTypeName(dtype), "[",
                                                   absl::StrJoin(shape, ","), "] needs ",
                                                   expected, " bytes, got ", data.size()));
  }
  return Tensor(std::move(name), dtype, std::move(shape), std::move(data));
}

absl::StatusOr<Tensor> Tensor::Zeros(std::string name, DType dtype,
                                     std::vector<int64_t> shape) {
  TESSERA_ASSIGN_OR_RETURN(int64_t numel, NumElements(shape));
  if (static_cast<uint64_t>(numel) > kMaxTensorBytes / DTypeSize(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" too large"));
  }
  std::string data(static_cast<size_t>(numel) * DTypeSize(dtype), '\0');
  return Create(std::move(name), dtype, std::move(shape), std::move(data));
}

absl::StatusOr<Tensor> Tensor::FromFloats(std::string name, std::vector<int64_t> shape,
                                          absl::Span<const float> values) {
  std::string data(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());
  return Create(std::move(name), DType::kFloat32, std::move(shape), std::move(data));
}

int64_t Tensor::numel() const {
  return static_cast<int64_t>(data_.size() / DTypeSize(dtype_));
}

std::string Tensor::DebugString() const {
  return absl::StrCat(name_, " ", DTypeName(dtype_), "[", absl::StrJoin(shape_, ","), "]");
}

uint64_t ArrayRecord::TotalBytes() const {
  uint64_t total = 0;
  for (const Tensor& t : tensors) total += t.byte_size();
  return total;
}

const Tensor* ArrayRecord::Find(absl::string_view name) const {
  for (const Tensor& t : tensors) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

absl::Status CheckSameLayout(const ArrayRecord& a, const ArrayRecord& b) {
  if (a.tensors.size() != b.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", a.tensors.size(),
                                                   " tensors, got ", b.tensors.size()));
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor& x = a.tensors[i];
    const Tensor& y = b.tensors[i];
    if (x.name() != y.name() || x.dtype() != y.dtype() || x.shape() != y.shape()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": expected ",
                                                     x.DebugString(), ", got ",
                                                     y.DebugString()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckUniqueNames(const ArrayRecord& record) {
  absl::flat_hash_set<absl::string_view> seen;
  for (const Tensor& t : record.tensors) {
    if (!seen.insert(t.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name \"", t.name(), "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const Tensor& tensor) {
  return CheckFiniteElements(tensor.name(), tensor.dtype(), tensor.data().data(),
                             static_cast<size_t>(tensor.byte_size() / DTypeSize(tensor.dtype())),
                             0);
}

absl::Status CheckFiniteElements(absl::string_view name, DType dtype, const char* data,
                                 size_t n, size_t first) {
  if (AllFiniteBytes(dtype, data, n)) return absl::OkStatus();
  // Find the first offender, one value at a time.
  const size_t size = DTypeSize(dtype);
  for (size_t i = 0; i < n; ++i) {
    if (!AllFiniteBytes(dtype, data + i * size, 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", name, "\" has a non-finite value at index ", first + i));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera
