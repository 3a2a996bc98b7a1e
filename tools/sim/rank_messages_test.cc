#include "tools/sim/rank_messages.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Shards, by hand: clients 0..9 over 3 ranks are {0,3,6,9}, {1,4,7}, {2,5,8}.
TEST(ShardTest, RoundRobinOverRanks) {
  EXPECT_EQ(ShardOf(0, 3), 0);
  EXPECT_EQ(ShardOf(7, 3), 1);
  EXPECT_EQ(ShardOf(8, 3), 2);
  EXPECT_EQ(ShardOf(9, 3), 0);
  EXPECT_EQ(ShardOf(99'999, 4), 3);
  EXPECT_EQ(ShardOf(5, 1), 0);  // one process holds everything
  EXPECT_EQ(ShardSize(10, 0, 3), 4u);
  EXPECT_EQ(ShardSize(10, 1, 3), 3u);
  EXPECT_EQ(ShardSize(10, 2, 3), 3u);
  EXPECT_EQ(ShardSize(100'000, 0, 4), 25'000u);
  EXPECT_EQ(ShardSize(100'000, 3, 4), 25'000u);
  // Fewer clients than ranks: the last ranks hold none.
  EXPECT_EQ(ShardSize(2, 0, 4), 1u);
  EXPECT_EQ(ShardSize(2, 1, 4), 1u);
  EXPECT_EQ(ShardSize(2, 2, 4), 0u);
  EXPECT_EQ(ShardSize(2, 3, 4), 0u);
  EXPECT_EQ(ShardSize(0, 0, 2), 0u);
}

TEST(ShardTest, EveryClientOnExactlyTheRankThatCountsIt) {
  for (int ranks : {1, 2, 3, 7}) {
    for (size_t clients : {0, 1, 6, 23}) {
      std::vector<size_t> held(static_cast<size_t>(ranks), 0);
      for (size_t c = 0; c < clients; ++c) ++held[static_cast<size_t>(ShardOf(c, ranks))];
      for (int r = 0; r < ranks; ++r) {
        EXPECT_EQ(held[static_cast<size_t>(r)], ShardSize(clients, r, ranks))
            << clients << " clients, rank " << r << " of " << ranks;
      }
    }
  }
}

// The layout, written out by hand: kind 2, id, client and partial as 8-byte little-endian,
// then the task's length and bytes.
TEST(RankMessagesTest, JobBytesAreTheDocumentedLayout) {
  absl::StatusOr<std::string> bytes = EncodeJob(JobMessage{1, 258, 3, "ab"});
  TESSERA_ASSERT_OK(bytes);
  const std::string expected("\x02"
                             "\x01\x00\x00\x00\x00\x00\x00\x00"
                             "\x02\x01\x00\x00\x00\x00\x00\x00"
                             "\x03\x00\x00\x00\x00\x00\x00\x00"
                             "\x02\x00\x00\x00\x00\x00\x00\x00"
                             "ab",
                             1 + 8 + 8 + 8 + 8 + 2);
  EXPECT_EQ(*bytes, expected);
  absl::StatusOr<JobMessage> job = DecodeJob(*bytes);
  TESSERA_ASSERT_OK(job);
  EXPECT_EQ(job->id, 1u);
  EXPECT_EQ(job->client, 258u);
  EXPECT_EQ(job->partial, 3u);
  EXPECT_EQ(job->task, "ab");
}

TEST(RankMessagesTest, FlushAndPartialLayouts) {
  // FLUSH: kind 6 and the number; PARTIAL: kind 7, the number, the sums' length and bytes.
  const std::string flush = EncodeFlush(0x0201);
  EXPECT_EQ(flush, std::string("\x06\x01\x02\0\0\0\0\0\0", 9));
  EXPECT_THAT(DecodeFlush(flush), IsOkAndHolds(0x0201u));
  EXPECT_THAT(PeekKind(flush), IsOkAndHolds(RankMessageKind::kFlush));
  absl::StatusOr<std::string> partial = EncodePartial(PartialMessage{5, "xyz"});
  TESSERA_ASSERT_OK(partial);
  EXPECT_EQ(*partial, std::string("\x07\x05\0\0\0\0\0\0\0\x03\0\0\0\0\0\0\0xyz", 20));
  absl::StatusOr<PartialMessage> got = DecodePartial(*partial);
  TESSERA_ASSERT_OK(got);
  EXPECT_EQ(got->partial, 5u);
  EXPECT_EQ(got->sums, "xyz");
  for (size_t n = 0; n < partial->size(); ++n) {
    EXPECT_THAT(DecodePartial(partial->substr(0, n)).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PARTIAL")));
  }
  EXPECT_THAT(DecodeFlush(flush + "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank message: FLUSH has 1 bytes after its last field"));
}

TEST(RankMessagesTest, AFoldedResultCarriesItsBytesAndNoValues) {
  ResultMessage m;
  m.id = 9;
  m.update.weight = 12;
  m.folded = true;
  m.update_bytes = 123456;
  absl::StatusOr<std::string> bytes = EncodeResult(m);
  TESSERA_ASSERT_OK(bytes);
  absl::StatusOr<ResultMessage> got = DecodeResult(*bytes);
  TESSERA_ASSERT_OK(got);
  EXPECT_TRUE(got->folded);
  EXPECT_EQ(got->update_bytes, 123456u);
  EXPECT_TRUE(got->update.update.tensors.empty());
  // The folded flag is the second-to-last field: 2 is neither 0 nor 1.
  std::string bad = *bytes;
  bad[bad.size() - 16] = 2;
  EXPECT_THAT(DecodeResult(bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank message: RESULT has folded 2 (0 or 1)"));
}

TEST(RankMessagesTest, StoppedCarriesThePeakRss) {
  const std::string bytes = EncodeStopped(0x0102030405060708ull);
  EXPECT_EQ(bytes, std::string("\x05\x08\x07\x06\x05\x04\x03\x02\x01", 9));
  EXPECT_THAT(DecodeStopped(bytes), IsOkAndHolds(0x0102030405060708ull));
  EXPECT_EQ(EncodeStop(), std::string("\x04", 1));
  TESSERA_EXPECT_OK(DecodeStop(EncodeStop()));
}

ArrayRecord TwoTensors() {
  ArrayRecord r;
  // Not in name order: the order is part of the layout and must survive.
  r.tensors.push_back(*Tensor::FromFloats("z.weight", {2, 2}, {1.5f, -0.0f, 3e-38f, 7.0f}));
  r.tensors.push_back(
      *Tensor::Create("a.count", DType::kInt64, {1}, std::string("\x2a\0\0\0\0\0\0\0", 8)));
  return r;
}

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

TEST(RankMessagesTest, ResultKeepsEveryFieldBitForBit) {
  ResultMessage m;
  m.id = 77;
  m.update.update = TwoTensors();
  m.update.weight = 600;
  m.update.metrics = {{"train_loss", 0.1}, {"accuracy", -0.0}};
  m.update.train.num_examples = 600;
  m.update.train.train_loss = 0.1 + 0.2;  // 0.30000000000000004: not a round number
  m.update.train.steps = 19;
  m.update.train.examples_processed = 1200;
  m.update.train.seconds = 1.25;
  m.update.train.sampling_rate = 0.03125;
  m.update.train.clipped_examples = 4;
  absl::StatusOr<std::string> bytes = EncodeResult(m);
  TESSERA_ASSERT_OK(bytes);
  absl::StatusOr<ResultMessage> got = DecodeResult(*bytes);
  TESSERA_ASSERT_OK(got);
  EXPECT_EQ(got->id, 77u);
  TESSERA_EXPECT_OK(got->status);
  ASSERT_EQ(got->update.update.tensors.size(), 2u);
  EXPECT_EQ(got->update.update.tensors[0].name(), "z.weight");
  EXPECT_EQ(got->update.update.tensors[0].dtype(), DType::kFloat32);
  EXPECT_THAT(got->update.update.tensors[0].shape(), ElementsAre(2, 2));
  EXPECT_EQ(got->update.update.tensors[0].data(), m.update.update.tensors[0].data());
  EXPECT_EQ(got->update.update.tensors[1].name(), "a.count");
  EXPECT_EQ(got->update.update.tensors[1].dtype(), DType::kInt64);
  EXPECT_EQ(got->update.update.tensors[1].data(), std::string("\x2a\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(got->update.weight, 600u);
  ASSERT_EQ(got->update.metrics.size(), 2u);
  EXPECT_EQ(Bits(got->update.metrics.at("accuracy")), Bits(-0.0));
  EXPECT_EQ(Bits(got->update.metrics.at("train_loss")), Bits(0.1));
  EXPECT_EQ(got->update.train.num_examples, 600u);
  EXPECT_EQ(Bits(got->update.train.train_loss), Bits(0.30000000000000004));
  EXPECT_EQ(got->update.train.steps, 19u);
  EXPECT_EQ(got->update.train.examples_processed, 1200u);
  EXPECT_EQ(got->update.train.seconds, 1.25);
  EXPECT_EQ(got->update.train.sampling_rate, 0.03125);
  EXPECT_EQ(got->update.train.clipped_examples, 4u);
}

TEST(RankMessagesTest, AFailedTrainingTravelsAsItsStatus) {
  ResultMessage m;
  m.id = 3;
  m.status = absl::ResourceExhaustedError("out of memory on rank 2");
  absl::StatusOr<ResultMessage> got = DecodeResult(*EncodeResult(m));
  TESSERA_ASSERT_OK(got);
  EXPECT_THAT(got->status,
              StatusIs(absl::StatusCode::kResourceExhausted, "out of memory on rank 2"));
  EXPECT_TRUE(got->update.update.tensors.empty());
}

TEST(RankMessagesTest, ModelRoundTrips) {
  absl::StatusOr<std::string> bytes = EncodeModel(TwoTensors());
  TESSERA_ASSERT_OK(bytes);
  EXPECT_THAT(PeekKind(*bytes), IsOkAndHolds(RankMessageKind::kModel));
  absl::StatusOr<ArrayRecord> got = DecodeModel(*bytes);
  TESSERA_ASSERT_OK(got);
  ASSERT_EQ(got->tensors.size(), 2u);
  EXPECT_EQ(got->tensors[0].DebugString(), "z.weight float32[2,2]");
  EXPECT_EQ(got->tensors[1].DebugString(), "a.count int64[1]");
}

TEST(RankMessagesTest, EveryTruncationIsRefusedNamingTheMessage) {
  ResultMessage m;
  m.update.update = TwoTensors();
  m.update.metrics = {{"train_loss", 0.5}};
  const std::string bytes = *EncodeResult(m);
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<ResultMessage> got = DecodeResult(bytes.substr(0, n));
    EXPECT_THAT(got.status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RESULT")))
        << "prefix of " << n << " bytes";
  }
  EXPECT_THAT(DecodeResult(bytes + "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank message: RESULT has 1 bytes after its last field"));
}

TEST(RankMessagesTest, WrongKindsAndCorruptFieldsAreRefused) {
  EXPECT_THAT(DecodeJob(EncodeStop()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "rank message: not a JOB message"));
  EXPECT_THAT(PeekKind("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PeekKind(std::string(1, '\0')).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "rank message: unknown kind 0"));
  EXPECT_THAT(PeekKind("\x08").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "rank message: unknown kind 8"));
  // A tensor count of 2^64 - 1 in a short message: refused, nothing reserved.
  std::string huge("\x01", 1);
  huge.append(8, '\xff');
  EXPECT_THAT(DecodeModel(huge).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank message: MODEL is truncated at weights count"));
  // A dtype no Tensor has (value 99 where float32 is 1).
  std::string model = *EncodeModel(TwoTensors());
  const size_t dtype_at = 1 + 8 + 8 + std::string("z.weight").size();
  ASSERT_EQ(model[dtype_at], '\x01');
  model[dtype_at] = 99;
  EXPECT_THAT(DecodeModel(model).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank message: MODEL: weights tensor 0 has unknown dtype 99"));
  // A shape that does not match the data: Tensor::Create's refusal, with where it was.
  model = *EncodeModel(TwoTensors());
  const size_t dim_at = dtype_at + 8 + 8;
  ASSERT_EQ(model[dim_at], '\x02');
  model[dim_at] = 3;
  EXPECT_THAT(DecodeModel(model).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rank message: MODEL: weights tensor 0: ")));
}

TEST(RankMessagesTest, TheMpiMessageLimitIsIntMax) {
  EXPECT_EQ(kMaxRankMessageBytes, static_cast<uint64_t>(std::numeric_limits<int>::max()));
  TESSERA_EXPECT_OK(CheckRankMessageSize(2147483647, "an update"));
  EXPECT_THAT(CheckRankMessageSize(2147483648, "an update"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "an update would be a message of 2147483648 bytes between ranks; an MPI "
                       "message carries at most 2147483647 bytes"));
}

}  // namespace
}  // namespace tessera::sim
