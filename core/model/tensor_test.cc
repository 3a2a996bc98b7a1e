#include "core/model/tensor.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

TEST(TensorTest, CreateChecksDataSizeAgainstShape) {
  EXPECT_THAT(Tensor::Create("w", DType::kFloat32, {2, 3}, std::string(24, '\0')), IsOk());
  EXPECT_THAT(Tensor::Create("w", DType::kFloat32, {2, 3}, std::string(23, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 24 bytes")));
}

TEST(TensorTest, CreateRejectsBadNamesAndShapes) {
  EXPECT_THAT(Tensor::Create("", DType::kFloat32, {}, std::string(4, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(Tensor::Create("w", DType::kFloat32, {-1}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(Tensor::Create("w", DType::kFloat32, {1, 1, 1, 1, 1, 1, 1, 1, 1},
                             std::string(4, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank")));
  EXPECT_THAT(Tensor::Zeros("w", DType::kFloat64, {1 << 30, 1 << 30}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TensorTest, ScalarHasOneElement) {
  auto t = Tensor::FromFloats("s", {}, {3.0f});
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->numel(), 1);
  EXPECT_EQ(t->values<float>()[0], 3.0f);
}

TEST(TensorTest, DTypeNamesRoundTrip) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                  DType::kInt64, DType::kInt32, DType::kInt16, DType::kInt8, DType::kUInt8,
                  DType::kBool}) {
    EXPECT_THAT(DTypeFromName(DTypeName(d)), IsOkAndHolds(d));
    EXPECT_THAT(DTypeFromName(DTypeSafetensorsName(d)), IsOkAndHolds(d));
    EXPECT_THAT(DTypeFromWire(static_cast<int>(d)), IsOkAndHolds(d));
  }
  EXPECT_THAT(DTypeFromName("complex64"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DTypeFromWire(0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TensorTest, CheckFiniteFindsNanAndInf) {
  auto ok = Tensor::FromFloats("a", {2}, {1.0f, 2.0f});
  auto nan = Tensor::FromFloats("b", {2}, {1.0f, std::nanf("")});
  auto inf = Tensor::FromFloats("c", {1}, {std::numeric_limits<float>::infinity()});
  EXPECT_THAT(CheckFinite(*ok), IsOk());
  EXPECT_THAT(CheckFinite(*nan), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("\"b\" has a non-finite value at index 1")));
  EXPECT_THAT(CheckFinite(*inf), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TensorTest, LayoutChecksNameDtypeAndShape) {
  ArrayRecord a, b, c;
  a.tensors.push_back(*Tensor::Zeros("w", DType::kFloat32, {2, 2}));
  b.tensors.push_back(*Tensor::Zeros("w", DType::kFloat32, {2, 2}));
  c.tensors.push_back(*Tensor::Zeros("w", DType::kFloat32, {4}));
  EXPECT_THAT(CheckSameLayout(a, b), IsOk());
  EXPECT_THAT(CheckSameLayout(a, c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float32[4]")));
  b.tensors.push_back(*Tensor::Zeros("w", DType::kInt64, {1}));
  EXPECT_THAT(CheckUniqueNames(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("duplicate")));
}

}  // namespace
}  // namespace tessera
