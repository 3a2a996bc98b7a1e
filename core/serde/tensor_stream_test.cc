#include "core/serde/tensor_stream.h"

#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
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

// Decodes with the Add(TensorChunk&&) overload, which takes single-chunk tensors' buffers.
absl::StatusOr<ArrayRecord> DecodeTaking(std::vector<wire::v1::TensorChunk> chunks,
                                         TensorStreamLimits limits = {}) {
  TensorStreamReader reader(std::move(limits));
  for (auto& c : chunks) {
    absl::Status s = reader.Add(std::move(c));
    if (!s.ok()) return s;
  }
  return std::move(reader).Finish();
}

// w = float32 [1.0, 2.0], b = int64 7 (scalar).
ArrayRecord TinyRecord() {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {2}, {1.0f, 2.0f}));
  r.tensors.push_back(
      *Tensor::Create("b", DType::kInt64, {}, std::string("\x07\0\0\0\0\0\0\0", 8)));
  return r;
}

// SHA-256 of TinyRecord's canonical form (docs/wire_protocol.md), from Python's hashlib:
//   d = b"tessera.tensors.v1" + u32(2)
//     + u32(1) b"w" u32(1) u32(1) i64(2) u64(8) f32(1.0) f32(2.0)
//     + u32(1) b"b" u32(5) u32(0) u64(8) i64(7)
constexpr char kTinyRecordSha256[] =
    "60b393148e129674dfb772041a77469739a264dade99bfb4911048c09998b5d9";

TEST(TensorStreamTest, StreamingHashMatchesAnIndependentDigest) {
  std::vector<wire::v1::TensorChunk> chunks = Encode(TinyRecord());
  EXPECT_EQ(crypto::HexEncode(chunks.back().end().sha256()), kTinyRecordSha256);
  TensorStreamReader copying;
  for (const auto& c : chunks) ASSERT_THAT(copying.Add(c), IsOk());
  EXPECT_EQ(crypto::HexEncode(copying.digest()), kTinyRecordSha256);
  TensorStreamReader taking;
  for (auto c : chunks) ASSERT_THAT(taking.Add(std::move(c)), IsOk());
  EXPECT_EQ(crypto::HexEncode(taking.digest()), kTinyRecordSha256);
}

TEST(TensorStreamTest, TakingChunksGivesTheSameRecord) {
  // 300,000 floats span two 1 MiB chunks (appended); the int64 scalar is one chunk (taken).
  ArrayRecord r = SampleRecord();
  r.tensors.push_back(*Tensor::FromFloats("one_chunk", {3}, {0.25f, -1.5f, 8.0f}));
  auto back = DecodeTaking(Encode(r));
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->tensors.size(), 4u);
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    EXPECT_EQ(back->tensors[i].name(), r.tensors[i].name());
    EXPECT_EQ(back->tensors[i].data(), r.tensors[i].data()) << r.tensors[i].name();
  }
}

TEST(TensorStreamTest, ATakenChunkStillLeavesItsMessageReusable) {
  std::vector<wire::v1::TensorChunk> chunks = Encode(TinyRecord());
  TensorStreamReader reader;
  wire::v1::TensorChunk reused;
  for (const auto& c : chunks) {
    reused = c;  // as a gRPC reader parses each message into the same object
    ASSERT_THAT(reader.Add(std::move(reused)), IsOk());
  }
  auto back = std::move(reader).Finish();
  ASSERT_THAT(back, IsOk());
  EXPECT_THAT(back->tensors[0].values<float>(), ElementsAre(1.0f, 2.0f));
  EXPECT_THAT(back->tensors[1].values<int64_t>(), ElementsAre(7));
}

TEST(TensorStreamTest, ACorruptedTakenChunkIsRefused) {
  // Each tensor of TinyRecord is a single data chunk, so the taking path handles each.
  for (int which : {3, 5}) {  // begin, w header, w data, b header, b data, end
    std::vector<wire::v1::TensorChunk> chunks = Encode(TinyRecord());
    ASSERT_TRUE(chunks[which - 1].has_data());
    (*chunks[which - 1].mutable_data())[1] ^= 0x40;
    EXPECT_THAT(DecodeTaking(chunks), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")))
        << "chunk " << which;
  }
  // Also a multi-chunk tensor corrupted in its second chunk.
  std::vector<wire::v1::TensorChunk> chunks = Encode(SampleRecord(), 1 << 16);
  (*chunks[3].mutable_data())[7] ^= 1;
  EXPECT_THAT(DecodeTaking(chunks), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(TensorStreamTest, TakingKeepsTheChunkLimits) {
  std::vector<wire::v1::TensorChunk> chunks = Encode(TinyRecord());
  chunks[2].mutable_data()->append("xxxx");  // w is 8 bytes; 12 arrive
  EXPECT_THAT(DecodeTaking(chunks), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("overflows its 8 bytes")));
  chunks = Encode(TinyRecord());
  std::vector<wire::v1::TensorChunk> no_header = {chunks[0], chunks[2]};
  EXPECT_THAT(DecodeTaking(no_header), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("before a tensor header")));
}

TEST(TensorStreamTest, TheDataSinkGetsEachChunkAndEachTensorsEndAndFinishOnlyVerifies) {
  const ArrayRecord layout = TinyRecord();
  std::vector<std::string> events;
  TensorStreamLimits limits;
  limits.expected_layout = &layout;
  limits.on_data = [&](size_t i, absl::string_view data, bool end) {
    events.push_back(absl::StrCat(i, end ? " end" : " data ", end ? "" : data));
    return absl::OkStatus();
  };
  auto back = DecodeTaking(Encode(TinyRecord()), limits);
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(back->tensors.empty());
  // float32 1.0 = 0x3f800000, 2.0 = 0x40000000, little-endian; int64 7.
  EXPECT_THAT(events, ElementsAre(std::string("0 data \0\0\x80\x3f\0\0\0\x40", 15), "0 end",
                                  std::string("1 data \x07\0\0\0\0\0\0\0", 15), "1 end"));
}

TEST(TensorStreamTest, TheDataSinkGetsChunksAsTheyComeAndTheEndOfAnEmptyTensor) {
  ArrayRecord layout;
  layout.tensors.push_back(*Tensor::FromFloats("e", {0}, {}));
  layout.tensors.push_back(*Tensor::FromFloats("v", {3}, {1.0f, 2.0f, 3.0f}));
  std::vector<std::string> events;
  TensorStreamLimits limits;
  limits.expected_layout = &layout;
  limits.on_data = [&](size_t i, absl::string_view data, bool end) {
    events.push_back(end ? absl::StrCat(i, " end") : absl::StrCat(i, " ", data.size()));
    return absl::OkStatus();
  };
  TensorStreamReader reader(limits);
  // Chunks of 5 bytes: v's 12 bytes arrive as 5 + 5 + 2, elements split across chunks.
  TensorStreamWriter writer(&layout, std::nullopt, /*chunk_bytes=*/5);
  wire::v1::TensorChunk chunk;
  while (writer.Next(&chunk)) ASSERT_THAT(reader.Add(chunk), IsOk());
  EXPECT_TRUE(reader.done());
  EXPECT_THAT(events, ElementsAre("0 end", "1 5", "1 5", "1 2", "1 end"));
}

TEST(TensorStreamTest, TheDataSinkSeesDataBeforeTheDigestFails) {
  const ArrayRecord layout = TinyRecord();
  std::vector<wire::v1::TensorChunk> chunks = Encode(TinyRecord());
  (*chunks[4].mutable_data())[0] ^= 1;  // b's data
  int ends = 0;
  TensorStreamLimits limits;
  limits.expected_layout = &layout;
  limits.on_data = [&](size_t, absl::string_view, bool end) {
    ends += end ? 1 : 0;
    return absl::OkStatus();
  };
  EXPECT_THAT(DecodeTaking(chunks, limits), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(ends, 2);  // as documented: the caller must undo what the sink did
}

TEST(TensorStreamTest, TheDataSinksErrorsEndTheStreamAndItsMisuseIsInternal) {
  const ArrayRecord layout = TinyRecord();
  TensorStreamLimits failing;
  failing.expected_layout = &layout;
  failing.on_data = [](size_t i, absl::string_view, bool) {
    return absl::ResourceExhaustedError(absl::StrCat("no room for tensor ", i));
  };
  EXPECT_THAT(DecodeTaking(Encode(TinyRecord()), failing),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("no room for tensor 0")));
  TensorStreamLimits no_layout;
  no_layout.on_data = [](size_t, absl::string_view, bool) { return absl::OkStatus(); };
  EXPECT_THAT(DecodeTaking(Encode(TinyRecord()), no_layout),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("needs an expected layout")));
  TensorStreamLimits checking = no_layout;
  checking.expected_layout = &layout;
  checking.require_finite = true;
  EXPECT_THAT(DecodeTaking(Encode(TinyRecord()), checking),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("checks finiteness itself")));
  // A stream out of the layout is refused at the tensor's header, before the sink.
  ArrayRecord other = TinyRecord();
  other.tensors[0] = *Tensor::FromFloats("x", {2}, {1.0f, 2.0f});
  int calls = 0;
  TensorStreamLimits counting;
  counting.expected_layout = &layout;
  counting.on_data = [&](size_t, absl::string_view, bool) {
    ++calls;
    return absl::OkStatus();
  };
  EXPECT_THAT(DecodeTaking(Encode(other), counting),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected w float32[2]")));
  EXPECT_EQ(calls, 0);
}

TEST(TensorStreamTest, DuplicateNamesEndTheStream) {
  ArrayRecord twice = TinyRecord();
  twice.tensors.push_back(twice.tensors[0]);
  EXPECT_THAT(Decode(Encode(twice)), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("duplicate tensor name \"w\"")));
}

}  // namespace
}  // namespace tessera
