// EncodeTensor writes the bytes protobuf's own serializer writes for the same StoredTensor
// (the reference: libprotobuf's SerializeToString of the complete record), without copying
// the data twice, and EncodeTensorHead those bytes up to the data; DecodeTensor reads them
// back.
#include "coordinator/state/record_codec.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "tessera/storage/v1/records.pb.h"

namespace tessera::coordinator::state_internal {
namespace {

std::string Reference(const Tensor& t) {
  storage::v1::StoredTensor stored;
  stored.set_name(t.name());
  stored.set_dtype(static_cast<wire::v1::DType>(static_cast<int>(t.dtype())));
  for (int64_t d : t.shape()) stored.add_shape(d);
  stored.set_data(t.data());
  std::string out;
  EXPECT_TRUE(stored.SerializeToString(&out));
  return out;
}

TEST(RecordCodecTest, EncodeTensorWritesProtobufsBytes) {
  std::vector<Tensor> tensors;
  tensors.push_back(*Tensor::FromFloats("empty", {0}, {}));  // no data field at all
  tensors.push_back(*Tensor::FromFloats("scalar", {}, {1.5f}));
  // Lengths around the varint's byte boundaries: 127 | 128 and 16383 | 16384 bytes.
  tensors.push_back(*Tensor::Create("b127", DType::kUInt8, {127}, std::string(127, 'x')));
  tensors.push_back(*Tensor::Create("b128", DType::kUInt8, {128}, std::string(128, 'y')));
  tensors.push_back(*Tensor::Create("b16383", DType::kUInt8, {16383}, std::string(16383, 'z')));
  tensors.push_back(*Tensor::Create("b16384", DType::kUInt8, {2, 8192}, std::string(16384, 'w')));
  tensors.push_back(*Tensor::FromFloats("layer.0/w", {3, 1000}, std::vector<float>(3000, -2)));
  for (const Tensor& t : tensors) {
    auto encoded = EncodeTensor(t);
    TESSERA_ASSERT_OK(encoded.status());
    EXPECT_EQ(*encoded, Reference(t)) << t.name();
    // The head is the same bytes up to the data; the model store appends the data itself.
    auto head = EncodeTensorHead(t);
    TESSERA_ASSERT_OK(head.status());
    EXPECT_EQ(*head + t.data(), Reference(t)) << t.name();
    auto decoded = DecodeTensor(*encoded, t.name());
    TESSERA_ASSERT_OK(decoded.status());
    EXPECT_EQ(decoded->name(), t.name());
    EXPECT_EQ(decoded->dtype(), t.dtype());
    EXPECT_EQ(decoded->shape(), t.shape());
    EXPECT_EQ(decoded->data(), t.data());
  }
}

}  // namespace
}  // namespace tessera::coordinator::state_internal
