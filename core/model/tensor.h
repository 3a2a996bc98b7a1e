// File: tensor.h
// The platform's own tensor: a name, a dtype, a shape and the raw little-endian bytes.
// The coordinator, aggregation and serialization code work only on this type; LibTorch
// tensors are converted at the client's training boundary.
#ifndef TESSERA_CORE_MODEL_TENSOR_H_
#define TESSERA_CORE_MODEL_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera {

enum class DType : int {
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
  kInt64 = 5,
  kInt32 = 6,
  kInt16 = 7,
  kInt8 = 8,
  kUInt8 = 9,
  kBool = 10,
};

// Bytes per element.
size_t DTypeSize(DType dtype);
// "float32", "int64", ...
absl::string_view DTypeName(DType dtype);
// Inverse of DTypeName; also accepts safetensors names ("F32", "I64", ...).
absl::StatusOr<DType> DTypeFromName(absl::string_view name);
// The safetensors spelling ("F32", "I64", "BOOL", ...).
absl::string_view DTypeSafetensorsName(DType dtype);
// True for int*, uint8 and bool.
bool IsIntegral(DType dtype);
// Validates an integer coming from the wire (wire::v1::DType values match DType).
absl::StatusOr<DType> DTypeFromWire(int value);

// Limits applied to every tensor that enters the system.
inline constexpr size_t kMaxTensorNameBytes = 512;
inline constexpr size_t kMaxTensorRank = 8;
inline constexpr uint64_t kMaxTensorBytes = 4ull << 30;  // 4 GiB

// A named dense tensor. Invariant (checked by Create): data.size() == numel * DTypeSize.
class Tensor {
 public:
  Tensor() = default;

  // Errors: INVALID_ARGUMENT naming the tensor and what is wrong (empty or overlong name,
  // negative dimension, rank over kMaxTensorRank, size over kMaxTensorBytes, data size
  // that does not match the shape).
  static absl::StatusOr<Tensor> Create(std::string name, DType dtype,
                                       std::vector<int64_t> shape, std::string data);
  // A zero-filled tensor; same errors as Create.
  static absl::StatusOr<Tensor> Zeros(std::string name, DType dtype,
                                      std::vector<int64_t> shape);
  // Float32 convenience for tests and tools.
  static absl::StatusOr<Tensor> FromFloats(std::string name, std::vector<int64_t> shape,
                                           absl::Span<const float> values);

  const std::string& name() const { return name_; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;
  size_t byte_size() const { return data_.size(); }
  const std::string& data() const { return data_; }
  std::string* mutable_data() { return &data_; }

  // Typed views. REQUIRES: sizeof(T) == DTypeSize(dtype()).
  template <typename T>
  absl::Span<const T> values() const {
    return absl::Span<const T>(reinterpret_cast<const T*>(data_.data()),
                               data_.size() / sizeof(T));
  }
  template <typename T>
  absl::Span<T> mutable_values() {
    return absl::Span<T>(reinterpret_cast<T*>(data_.data()), data_.size() / sizeof(T));
  }

  // "name float32[6,1,5,5]"
  std::string DebugString() const;

 private:
  Tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::string data)
      : name_(std::move(name)),
        dtype_(dtype),
        shape_(std::move(shape)),
        data_(std::move(data)) {}

  std::string name_;
  DType dtype_ = DType::kFloat32;
  std::vector<int64_t> shape_;
  std::string data_;
};

// Number of elements of a shape, or INVALID_ARGUMENT on a negative dimension or overflow.
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);

// An ordered set of uniquely named tensors: model weights or an update (Flower's
// ArrayRecord).
struct ArrayRecord {
  std::vector<Tensor> tensors;

  uint64_t TotalBytes() const;
  const Tensor* Find(absl::string_view name) const;
};

// INVALID_ARGUMENT unless `b` has the same tensor names, order, dtypes and shapes as `a`;
// the message names the first mismatching tensor.
absl::Status CheckSameLayout(const ArrayRecord& a, const ArrayRecord& b);
// INVALID_ARGUMENT on duplicate names.
absl::Status CheckUniqueNames(const ArrayRecord& record);
// INVALID_ARGUMENT naming the tensor and index of the first NaN or Inf in a float tensor.
absl::Status CheckFinite(const Tensor& tensor);
// True when no element is NaN or +-Inf. Reads all n elements (no early exit), which is what
// lets it run at memory bandwidth; CheckFinite uses it before looking for the index.
bool AllFinite(const float* x, size_t n);
bool AllFinite(const double* x, size_t n);

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_TENSOR_H_
