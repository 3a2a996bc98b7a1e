#include "client/runtime/local_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "client/data/idx_reader.h"
#include "client/data/partition.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::StartsWith;

constexpr uint32_t kTrain = 200;  // 20 examples of each of 10 classes
constexpr uint32_t kTest = 50;
constexpr uint32_t kSide = 4;  // 4 x 4 images

std::string BigEndian32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

// Example i has pixel 0 = i % 256 and pixel 1 = i / 256 (so ExampleIds can recover i), the
// other pixels (7 * i + p) % 256, and label i % 10.
std::string ImagesBytes(uint32_t n) {
  std::string s = std::string("\0\0\x08\x03", 4) + BigEndian32(n) + BigEndian32(kSide) +
                  BigEndian32(kSide);
  for (uint32_t i = 0; i < n; ++i) {
    s.push_back(static_cast<char>(i % 256));
    s.push_back(static_cast<char>(i / 256));
    for (uint32_t p = 2; p < kSide * kSide; ++p) s.push_back(static_cast<char>((7 * i + p) % 256));
  }
  return s;
}

std::string LabelsBytes(uint32_t n) {
  std::string s = std::string("\0\0\x08\x01", 4) + BigEndian32(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

int Pixel(float feature) {
  return static_cast<int>(std::lround((feature * kFashionMnistStd + kFashionMnistMean) * 255));
}

// The index in the written split of each example of `data` (from clean pixels 0 and 1).
std::vector<size_t> ExampleIds(const Dataset& data) {
  std::vector<size_t> ids;
  const size_t d = static_cast<size_t>(data.ExampleSize());
  for (size_t i = 0; i < data.size(); ++i) {
    ids.push_back(static_cast<size_t>(Pixel(data.features[i * d]) +
                                      256 * Pixel(data.features[i * d + 1])));
  }
  return ids;
}

std::set<int64_t> Classes(const Dataset& data) {
  return std::set<int64_t>(data.labels.begin(), data.labels.end());
}

class LocalDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("local_data_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
    Write("train-images-idx3-ubyte", ImagesBytes(kTrain));
    Write("train-labels-idx1-ubyte", LabelsBytes(kTrain));
    Write("t10k-images-idx3-ubyte", ImagesBytes(kTest));
    Write("t10k-labels-idx1-ubyte", LabelsBytes(kTest));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream((dir_ / name).string(), std::ios::binary) << bytes;
  }

  LocalDataOptions Options(const std::string& partition, uint32_t n, uint32_t index = 0) const {
    LocalDataOptions o;
    o.source = "idx:" + dir_.string();
    o.partition = partition;
    o.num_partitions = n;
    o.partition_index = index;
    o.partition_seed = 7;
    return o;
  }

  // Every party of `partition` among `n`, checked to load.
  std::vector<LocalData> LoadAll(const std::string& partition, uint32_t n) const {
    std::vector<LocalData> parties;
    for (uint32_t i = 0; i < n; ++i) {
      absl::StatusOr<LocalData> d = LoadLocalData(Options(partition, n, i));
      EXPECT_THAT(d, IsOk()) << partition << " party " << i;
      parties.push_back(d.ok() ? *std::move(d) : LocalData{});
    }
    return parties;
  }

  // Asserts that the parties' train (or test) examples are exactly 0..total-1.
  static void ExpectExactCover(const std::vector<LocalData>& parties, bool train,
                               size_t total) {
    std::vector<size_t> all;
    for (const LocalData& p : parties) {
      const std::vector<size_t> ids = ExampleIds(train ? p.train : p.test);
      all.insert(all.end(), ids.begin(), ids.end());
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), total);
    for (size_t i = 0; i < total; ++i) ASSERT_EQ(all[i], i);
  }

  std::filesystem::path dir_;
};

TEST_F(LocalDataTest, NoneGivesAllTheData) {
  absl::StatusOr<LocalData> d = LoadLocalData(Options("none", 1));
  TESSERA_ASSERT_OK(d);
  EXPECT_EQ(d->train.size(), kTrain);
  EXPECT_EQ(d->test.size(), kTest);
  EXPECT_EQ(d->train.num_classes, 10);
  TESSERA_EXPECT_OK(d->train.Validate());
  const std::vector<size_t> ids = ExampleIds(d->train);
  for (size_t i = 0; i < kTrain; ++i) ASSERT_EQ(ids[i], i);  // in file order
}

TEST_F(LocalDataTest, NoneNeedsASinglePartition) {
  EXPECT_THAT(LoadLocalData(Options("none", 2)),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("--partition: ")));
}

TEST_F(LocalDataTest, LimitKeepsTheFirstExamples) {
  LocalDataOptions o = Options("none", 1);
  o.limit = 30;
  absl::StatusOr<LocalData> d = LoadLocalData(o);
  TESSERA_ASSERT_OK(d);
  EXPECT_EQ(d->train.size(), 30u);
  EXPECT_EQ(d->test.size(), 30u);
  EXPECT_EQ(ExampleIds(d->train).back(), 29u);
}

TEST_F(LocalDataTest, ClientHoldsItsPartyOfTheSpec) {
  // The client's train split is exactly party i of MakePartition over the whole split.
  absl::StatusOr<LocalData> all = LoadLocalData(Options("none", 1));
  TESSERA_ASSERT_OK(all);
  for (const char* text : {"iid", "dirichlet:0.5,min_size=5", "label_quantity:3", "shards:2",
                           "quantity_skew:1,min_size=5"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<PartitionSpec> spec = ParsePartitionSpec(text);
    TESSERA_ASSERT_OK(spec);
    absl::StatusOr<Partition> parts = MakePartition(*spec, all->train.labels, 10, 4, 7);
    TESSERA_ASSERT_OK(parts);
    const std::vector<LocalData> parties = LoadAll(text, 4);
    for (size_t i = 0; i < parties.size(); ++i) {
      EXPECT_EQ(ExampleIds(parties[i].train), (*parts)[i]) << "party " << i;
    }
    ExpectExactCover(parties, /*train=*/true, kTrain);
    ExpectExactCover(parties, /*train=*/false, kTest);  // test split: IID over all parties
  }
}

TEST_F(LocalDataTest, IidPartiesAreBalanced) {
  const std::vector<LocalData> parties = LoadAll("iid", 3);
  ExpectExactCover(parties, /*train=*/true, kTrain);
  for (const LocalData& p : parties) {
    EXPECT_GE(p.train.size(), kTrain / 3);
    EXPECT_LE(p.train.size(), kTrain / 3 + 1);
    EXPECT_GE(p.test.size(), kTest / 3);
    EXPECT_LE(p.test.size(), kTest / 3 + 1);
  }
}

TEST_F(LocalDataTest, LabelQuantityGivesEachPartyKClasses) {
  const std::vector<LocalData> parties = LoadAll("label_quantity:2", 10);
  ExpectExactCover(parties, /*train=*/true, kTrain);
  for (size_t i = 0; i < parties.size(); ++i) {
    const std::set<int64_t> classes = Classes(parties[i].train);
    EXPECT_EQ(classes.size(), 2u) << "party " << i;
    EXPECT_TRUE(classes.count(static_cast<int64_t>(i))) << "party " << i;  // i % 10
    EXPECT_GT(Classes(parties[i].test).size(), 2u) << "the test split stays IID";
  }
}

TEST_F(LocalDataTest, ShardsGiveEachPartyAtMostItsShardCountOfClasses) {
  // 200 examples into 5 x 2 shards of 20, one class each.
  const std::vector<LocalData> parties = LoadAll("shards:2", 5);
  ExpectExactCover(parties, /*train=*/true, kTrain);
  for (const LocalData& p : parties) {
    EXPECT_EQ(p.train.size(), 40u);
    EXPECT_LE(Classes(p.train).size(), 2u);
  }
}

TEST_F(LocalDataTest, FeatureNoiseGrowsWithThePartyIndexOnTheTrainSplitOnly) {
  constexpr uint32_t kParties = 4;
  constexpr double kSigma = 0.8;
  absl::StatusOr<LocalData> all = LoadLocalData(Options("none", 1));
  TESSERA_ASSERT_OK(all);
  const std::vector<LocalData> noisy = LoadAll("feature_noise:0.8", kParties);
  const std::vector<LocalData> clean = LoadAll("iid", kParties);
  const size_t d = kSide * kSide;
  for (uint32_t i = 0; i < kParties; ++i) {
    SCOPED_TRACE(i);
    // The same IID split as "iid" with the same seed; labels untouched.
    ASSERT_EQ(noisy[i].train.labels, clean[i].train.labels);
    ASSERT_EQ(noisy[i].train.features.size(), clean[i].train.features.size());
    EXPECT_EQ(noisy[i].test.features, clean[i].test.features);  // test data stays clean
    double sum_sq = 0;
    for (size_t j = 0; j < noisy[i].train.features.size(); ++j) {
      const double e = noisy[i].train.features[j] - clean[i].train.features[j];
      sum_sq += e * e;
    }
    const double stddev = std::sqrt(sum_sq / static_cast<double>(clean[i].train.size() * d));
    const double expected = FeatureNoiseStd(kSigma, i, kParties);  // 0, 0.2, 0.4, 0.6
    EXPECT_NEAR(stddev, expected, 0.1 * expected + 1e-12);
  }
  EXPECT_EQ(noisy[0].train.features, clean[0].train.features);  // party 0: no noise
  // Deterministic: the same flags give the same noise.
  absl::StatusOr<LocalData> again = LoadLocalData(Options("feature_noise:0.8", kParties, 3));
  TESSERA_ASSERT_OK(again);
  EXPECT_EQ(again->train.features, noisy[3].train.features);
}

TEST_F(LocalDataTest, BadPartitionsNameTheFlag) {
  const auto names_flag = [](absl::StatusCode code) {
    return StatusIs(code, StartsWith("--partition: "));
  };
  for (const char* text : {"bogus", "dirichlet:-1", "dirichlet:abc", "label_quantity:0",
                           "shards:x", "feature_noise:-0.1", "iid:3", ""}) {
    EXPECT_THAT(LoadLocalData(Options(text, 4)), names_flag(absl::StatusCode::kInvalidArgument))
        << "\"" << text << "\"";
  }
  // Well-formed specs the data cannot satisfy.
  for (const char* text : {"label_quantity:11", "shards:100", "dirichlet:0.5,min_size=60"}) {
    EXPECT_THAT(LoadLocalData(Options(text, 4)), names_flag(absl::StatusCode::kInvalidArgument))
        << text;
  }
  EXPECT_THAT(LoadLocalData(Options("iid", 4, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("--partition-index: ")));
  EXPECT_THAT(LoadLocalData(Options("iid", 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("--num-partitions: ")));
}

TEST_F(LocalDataTest, JsonlTextIsAPathAndItsRecordCount) {
  Write("text.jsonl", "{\"text\": \"a\"}\n\n  \n{\"text\": \"b\"}\n{\"text\": \"c\"}");
  LocalDataOptions o;
  o.source = "jsonl:" + (dir_ / "text.jsonl").string();
  absl::StatusOr<LocalData> d = LoadLocalData(o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->text_path, (dir_ / "text.jsonl").string());
  EXPECT_EQ(d->text_records, 3u);  // blank lines are not records
  EXPECT_EQ(d->train.size(), 0u);
  o.partition = "iid";
  o.num_partitions = 2;
  EXPECT_THAT(LoadLocalData(o).status().message(), ::testing::HasSubstr("--partition"));
  o.source = "jsonl:" + (dir_ / "missing.jsonl").string();
  EXPECT_EQ(LoadLocalData(o).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LocalDataTest, MissingFilesNameTheDataFlag) {
  LocalDataOptions o = Options("none", 1);
  o.source = "idx:" + (dir_ / "nowhere").string();
  EXPECT_THAT(LoadLocalData(o), StatusIs(absl::StatusCode::kNotFound, StartsWith("--data: ")));
}

}  // namespace
}  // namespace tessera
