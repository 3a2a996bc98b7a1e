#include "core/serde/tensor_stream.h"

#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

ArrayRecord SampleRecord(size_t big_floats = 300000) {
  ArrayRecord r;
  std::vector<float> v(big_floats);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  r.tensors.push_back(*Tensor::FromFloats("conv.weight", {static_cast<int64_t>(v.size())}, v));
  r.tensors.push_back(*Tensor::Create("bn.num_batches_tracked", DType::kInt64, {},
                                      std::string(8, '\x07')));
  r.tensors.push_back(*Tensor::Zeros("empty", DType::kFloat32, {0, 3}));
  return r;
}

std::vector<wire::v1::TensorChunk> Encode(const ArrayRecord& r, size_t chunk = kDefaultChunkBytes) {
  std::vector<wire::v1::TensorChunk> out;
  TensorStreamWriter writer(&r, std::nullopt, chunk);
  wire::v1::TensorChunk c;
  while (writer.Next(&c)) out.push_back(c);
  return out;
}

absl::StatusOr<ArrayRecord> Decode(const std::vector<wire::v1::TensorChunk>& chunks,
                                   TensorStreamLimits limits = {}) {
  TensorStreamReader reader(limits);
  for (const auto& c : chunks) {
    absl::Status s = reader.Add(c);
    if (!s.ok()) return s;
  }
  return std::move(reader).Finish();
}

TEST(TensorStreamTest, RoundTripsBitExactInSmallChunks) {
  ArrayRecord r = SampleRecord();
  auto chunks = Encode(r, 4096);
  EXPECT_GT(chunks.size(), 290u);
  for (const auto& c : chunks) {
    if (c.has_data()) {
      EXPECT_LE(c.data().size(), 4096u);
    }
  }
  auto back = Decode(chunks);
  ASSERT_THAT(back, IsOk());
  ASSERT_THAT(CheckSameLayout(r, *back), IsOk());
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    EXPECT_EQ(r.tensors[i].data(), back->tensors[i].data());
  }
  EXPECT_EQ(DigestArrayRecord(r), DigestArrayRecord(*back));
}

TEST(TensorStreamTest, PrecomputedDigestGivesTheSameStream) {
  ArrayRecord r = SampleRecord(1000);
  std::vector<wire::v1::TensorChunk> a = Encode(r);
  TensorStreamWriter writer(&r, DigestArrayRecord(r));
  std::vector<wire::v1::TensorChunk> b;
  wire::v1::TensorChunk c;
  while (writer.Next(&c)) b.push_back(c);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.back().end().sha256(), b.back().end().sha256());
}

TEST(TensorStreamTest, DigestDependsOnNamesShapesAndData) {
  ArrayRecord a = SampleRecord(10);
  ArrayRecord b = SampleRecord(10);
  b.tensors[0].mutable_values<float>()[3] = 42.0f;
  EXPECT_NE(DigestArrayRecord(a), DigestArrayRecord(b));
  EXPECT_EQ(DigestArrayRecord(a).size(), 32u);
}

TEST(TensorStreamTest, TruncatedStreamIsRejected) {
  auto chunks = Encode(SampleRecord(), 1 << 16);
  chunks.erase(chunks.end() - 3, chunks.end());
  EXPECT_THAT(Decode(chunks), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("truncated")));
}

TEST(TensorStreamTest, MissingDataBeforeEndIsRejected) {
  auto chunks = Encode(SampleRecord(), 1 << 16);
  chunks.erase(chunks.begin() + 3);  // drop one data chunk, keep the end
  EXPECT_THAT(Decode(chunks), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TensorStreamTest, CorruptedDataFailsTheDigest) {
  auto chunks = Encode(SampleRecord(), 1 << 16);
  std::string* data = chunks[2].mutable_data();
  (*data)[10] ^= 1;
  EXPECT_THAT(Decode(chunks), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
}

TEST(TensorStreamTest, OversizedChunkIsRejected) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::Zeros("w", DType::kFloat32, {600000}));
  std::vector<wire::v1::TensorChunk> chunks;
  chunks.emplace_back().mutable_begin()->set_num_tensors(1);
  chunks.back().mutable_begin()->set_total_bytes(2400000);
  auto* h = chunks.emplace_back().mutable_tensor();
  h->set_name("w");
  h->set_dtype(wire::v1::FLOAT32);
  h->add_shape(600000);
  chunks.emplace_back().set_data(std::string(kMaxChunkBytes + 1, '\0'));
  EXPECT_THAT(Decode(chunks), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("exceeds the limit")));
}

TEST(TensorStreamTest, LayoutMismatchIsRejectedAtTheHeader) {
  ArrayRecord model = SampleRecord(100);
  ArrayRecord other = SampleRecord(100);
  *other.tensors[0].mutable_data() = std::string(400, '\0');
  other.tensors[0] = *Tensor::Zeros("conv.weight", DType::kFloat32, {10, 10});
  TensorStreamLimits limits;
  limits.expected_layout = &model;
  EXPECT_THAT(Decode(Encode(other), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected conv.weight")));
  EXPECT_THAT(Decode(Encode(model), limits), IsOk());
}

TEST(TensorStreamTest, NonFiniteValuesAreRejectedWhenRequired) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {2}, {1.0f, std::nanf("")}));
  TensorStreamLimits limits;
  limits.require_finite = true;
  EXPECT_THAT(Decode(Encode(r), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  EXPECT_THAT(Decode(Encode(r)), IsOk());
}

TEST(TensorStreamTest, LimitsOnCountAndBytes) {
  TensorStreamLimits limits;
  limits.max_tensors = 2;
  EXPECT_THAT(Decode(Encode(SampleRecord(10)), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit of 2")));
  limits.max_tensors = 10;
  limits.max_total_bytes = 16;
  EXPECT_THAT(Decode(Encode(SampleRecord(10)), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bytes exceeds")));
}

TEST(TensorStreamTest, MessagesOutOfOrderAreRejected) {
  auto chunks = Encode(SampleRecord(10));
  std::vector<wire::v1::TensorChunk> no_begin(chunks.begin() + 1, chunks.end());
  EXPECT_THAT(Decode(no_begin), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<wire::v1::TensorChunk> twice = chunks;
  twice.push_back(chunks.back());
  EXPECT_THAT(Decode(twice), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("after the end")));
  EXPECT_THAT(Decode({wire::v1::TensorChunk()}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera
