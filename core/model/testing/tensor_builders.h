// Test helpers: tensors from typed values, and typed values back out of a record.
#ifndef TESSERA_CORE_MODEL_TESTING_TENSOR_BUILDERS_H_
#define TESSERA_CORE_MODEL_TESTING_TENSOR_BUILDERS_H_

#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "core/model/tensor.h"

namespace tessera {

// A tensor holding `values` (a test failure, not a crash, when they do not fit `shape`).
template <typename T>
Tensor MakeTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                  std::vector<T> values) {
  std::string data(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());
  absl::StatusOr<Tensor> t =
      Tensor::Create(std::move(name), dtype, std::move(shape), std::move(data));
  EXPECT_THAT(t, IsOk());
  return t.ok() ? *std::move(t) : Tensor();
}

// A 1-D tensor holding `values`.
template <typename T>
Tensor MakeVector(std::string name, DType dtype, std::vector<T> values) {
  const auto n = static_cast<int64_t>(values.size());
  return MakeTensor(std::move(name), dtype, {n}, std::move(values));
}

// The values of tensor `i` of `record`.
template <typename T>
std::vector<T> Values(const ArrayRecord& record, size_t i) {
  auto v = record.tensors[i].values<T>();
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_TESTING_TENSOR_BUILDERS_H_
