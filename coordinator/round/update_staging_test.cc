// UpdateStaging and a staged UpdateFold: the mean read back block by block from disk has the
// bits of one exact accumulator over the whole updates (WeightedAccumulator, tested on its
// own in aggregation/fed_avg_test.cc against hand sums), in any order and for any block size;
// missing, short or corrupt files are DATA_LOSS naming the file; files go away with the round.
#include "coordinator/round/update_staging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregation/fed_avg.h"
#include "coordinator/round/round_strategy.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;
using wire::v1::StrategyConfig;

size_t FilesIn(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

class UpdateStagingTest : public ::testing::Test {
 public:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("staging-test-" + crypto::RandomHexId(6));
    TESSERA_ASSERT_OK(ResetStagingRoot(root_.string()));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // A layout with every kind of tensor the accumulator folds: float32 over two blocks and a
  // partial one, float16, an int32 and a bool tensor, a float32 scalar and an empty tensor.
  // Update k's values are a fixed function of (k, tensor, index) with magnitudes from 1e-6
  // to 1e6, so the exact sums need the accumulator's bins.
  static ArrayRecord Update(int k) {
    ArrayRecord r;
    std::vector<float> w(11);
    for (size_t i = 0; i < w.size(); ++i) {
      const int j = static_cast<int>(i);
      const double mag = std::pow(10.0, static_cast<double>((k * 7 + j) % 13) - 6);
      w[i] = static_cast<float>(((k + j) % 2 == 0 ? 1 : -1) * mag * (1 + 0.1 * k));
    }
    r.tensors.push_back(*Tensor::FromFloats("w", {11}, w));
    std::string half(5 * 2, '\0');
    for (int i = 0; i < 5; ++i) {
      const uint16_t bits = static_cast<uint16_t>(0x3c00 + 0x40 * ((k + i) % 7));  // 1.0..1.375
      std::memcpy(half.data() + 2 * i, &bits, 2);
    }
    r.tensors.push_back(*Tensor::Create("h", DType::kFloat16, {5}, half));
    std::string ints(4 * 4, '\0');
    for (int i = 0; i < 4; ++i) {
      const int32_t v = (k + 1) * (i - 2) * 1000;
      std::memcpy(ints.data() + 4 * i, &v, 4);
    }
    r.tensors.push_back(*Tensor::Create("steps", DType::kInt32, {2, 2}, ints));
    std::string bools(3, '\0');
    for (int i = 0; i < 3; ++i) bools[i] = static_cast<char>((k + i) % 2);
    r.tensors.push_back(*Tensor::Create("mask", DType::kBool, {3}, bools));
    r.tensors.push_back(*Tensor::FromFloats("scale", {}, {static_cast<float>(k) - 2.5f}));
    r.tensors.push_back(*Tensor::FromFloats("empty", {0}, {}));
    return r;
  }

  std::filesystem::path root_;
};

TEST_F(UpdateStagingTest, MeanReadBackHasTheAccumulatorsBitsInAnyOrderAndBlockSize) {
  constexpr int kUpdates = 5;
  const std::vector<double> weights = {3, 1, 7, 2, 5};
  aggregation::WeightedAccumulator reference = *aggregation::WeightedAccumulator::Create(Update(0));
  for (int k = 0; k < kUpdates; ++k) TESSERA_ASSERT_OK(reference.Add(Update(k), weights[k]));
  const double reference_total = reference.total_weight();
  const ArrayRecord expected = *std::move(reference).Average();
  EXPECT_EQ(reference_total, 18);

  auto staging = UpdateStaging::Create((root_ / "round").string(), Update(0));
  TESSERA_ASSERT_OK(staging.status());
  std::vector<StagedFile> files;
  for (int k = 0; k < kUpdates; ++k) {
    auto f = (*staging)->Write(Update(k));
    TESSERA_ASSERT_OK(f.status());
    files.push_back(*std::move(f));
  }
  EXPECT_EQ(FilesIn(root_), static_cast<size_t>(kUpdates));
  // 11 + 5 + 4 + 3 floats, halves, ints and bools, a scalar: 44 + 10 + 16 + 3 + 4 bytes.
  EXPECT_EQ((*staging)->file_bytes(), 77u);
  std::vector<size_t> order = {0, 1, 2, 3, 4};
  for (size_t block : {size_t{1}, size_t{3}, size_t{4}, size_t{11}, kStagedBlockElements}) {
    for (int perm = 0; perm < 3; ++perm) {
      std::vector<const StagedFile*> f;
      std::vector<double> w;
      for (size_t i : order) {
        f.push_back(&files[i]);
        w.push_back(weights[i]);
      }
      double total = 0;
      auto mean = (*staging)->WeightedMean(f, w, &total, block);
      TESSERA_ASSERT_OK(mean.status());
      EXPECT_EQ(total, 18);
      ASSERT_EQ(mean->tensors.size(), expected.tensors.size());
      for (size_t t = 0; t < expected.tensors.size(); ++t) {
        EXPECT_EQ(mean->tensors[t].name(), expected.tensors[t].name());
        EXPECT_EQ(mean->tensors[t].dtype(), expected.tensors[t].dtype());
        EXPECT_EQ(mean->tensors[t].shape(), expected.tensors[t].shape());
        EXPECT_EQ(mean->tensors[t].data(), expected.tensors[t].data())
            << "tensor " << expected.tensors[t].name() << ", block " << block;
      }
      std::rotate(order.begin(), order.begin() + 2, order.end());
      std::swap(order[0], order[3]);
    }
  }
}

TEST_F(UpdateStagingTest, MeanOfHandValues) {
  // (1 * 1 + 3 * 3) / 4 = 2.5 and (1 * -2 + 3 * 6) / 4 = 4 element by element, one element
  // per block.
  ArrayRecord a, b;
  a.tensors.push_back(*Tensor::FromFloats("w", {2}, {1, -2}));
  b.tensors.push_back(*Tensor::FromFloats("w", {2}, {3, 6}));
  auto staging = *UpdateStaging::Create((root_ / "hand").string(), a);
  StagedFile fa = *staging->Write(a);
  StagedFile fb = *staging->Write(b);
  const StagedFile* files[] = {&fa, &fb};
  const double weights[] = {1, 3};
  auto mean = staging->WeightedMean(files, weights, nullptr, 1);
  TESSERA_ASSERT_OK(mean.status());
  EXPECT_EQ(mean->tensors[0].values<float>()[0], 2.5f);
  EXPECT_EQ(mean->tensors[0].values<float>()[1], 4.0f);
}

TEST_F(UpdateStagingTest, MissingShortOrCorruptFilesAreDataLossNamingTheFile) {
  auto staging = *UpdateStaging::Create((root_ / "bad").string(), Update(0));
  StagedFile good = *staging->Write(Update(1));
  StagedFile bad = *staging->Write(Update(2));
  const StagedFile* files[] = {&good, &bad};
  const double weights[] = {1, 1};

  // Corrupt: a NaN where a float was.
  {
    std::fstream f(bad.path(), std::ios::in | std::ios::out | std::ios::binary);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    f.seekp(8);
    f.write(reinterpret_cast<const char*>(&nan), 4);
  }
  auto mean = staging->WeightedMean(files, weights);
  EXPECT_EQ(mean.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(mean.status().message(), HasSubstr(bad.path()));

  // Short.
  ASSERT_EQ(::truncate(bad.path().c_str(), 50), 0);
  mean = staging->WeightedMean(files, weights);
  EXPECT_EQ(mean.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(mean.status().message(), HasSubstr("has 50 bytes; the round's layout has 77"));

  // Missing.
  ASSERT_EQ(::unlink(bad.path().c_str()), 0);
  mean = staging->WeightedMean(files, weights);
  EXPECT_EQ(mean.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(mean.status().message(), HasSubstr(bad.path() + " is missing"));
}

TEST_F(UpdateStagingTest, RefusesWhatTheAccumulatorRefuses) {
  auto staging = *UpdateStaging::Create((root_ / "refuse").string(), Update(0));
  ArrayRecord other = Update(0);
  other.tensors[0] = *Tensor::FromFloats("w", {10}, std::vector<float>(10, 1));
  auto written = staging->Write(other);
  EXPECT_EQ(written.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FilesIn(root_), 0u);

  StagedFile f = *staging->Write(Update(1));
  const StagedFile* files[] = {&f};
  const double zero[] = {0};
  EXPECT_EQ(staging->WeightedMean(files, zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  const double two[] = {1, 1};
  EXPECT_EQ(staging->WeightedMean(files, two).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(staging->WeightedMean({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UpdateStagingTest, FilesGoWithTheirHandlesAndTheDirectoryWithTheStaging) {
  const std::filesystem::path dir = root_ / "gone";
  {
    auto staging = *UpdateStaging::Create(dir.string(), Update(0));
    EXPECT_EQ(UpdateStaging::Create(dir.string(), Update(0)).status().code(),
              absl::StatusCode::kInternal);  // a directory is never shared
    {
      StagedFile f = *staging->Write(Update(1));
      EXPECT_TRUE(std::filesystem::exists(f.path()));
      StagedFile moved = std::move(f);
      EXPECT_TRUE(std::filesystem::exists(moved.path()));
      EXPECT_EQ(FilesIn(dir), 1u);
    }
    EXPECT_EQ(FilesIn(dir), 0u);
    StagedFile kept = *staging->Write(Update(2));  // outlives nothing: staging goes first below
    staging.reset();
    EXPECT_FALSE(std::filesystem::exists(dir));
  }
  EXPECT_TRUE(std::filesystem::exists(root_));
}

std::string Contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST_F(UpdateStagingTest, AStreamedUpdateIsTheSameFileAsAWrittenOne) {
  auto staging = *UpdateStaging::Create((root_ / "stream").string(), Update(0));
  StagedFile written = *staging->Write(Update(3));
  auto writer = staging->Begin();
  TESSERA_ASSERT_OK(writer.status());
  for (const Tensor& t : Update(3).tensors) TESSERA_ASSERT_OK((*writer)->Append(t));
  auto streamed = std::move(**writer).Finish();
  TESSERA_ASSERT_OK(streamed.status());
  EXPECT_NE(streamed->path(), written.path());
  EXPECT_EQ(Contents(streamed->path()), Contents(written.path()));
  EXPECT_EQ(Contents(written.path()).size(), 77u);
}

TEST_F(UpdateStagingTest, AStreamedUpdateOutOfLayoutOrNotFiniteOrShortLeavesNoFile) {
  auto staging = *UpdateStaging::Create((root_ / "stream-bad").string(), Update(0));
  const ArrayRecord u = Update(1);
  {
    auto writer = *staging->Begin();
    absl::Status s = writer->Append(u.tensors[1]);  // "h" where "w" belongs
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("tensor 0 \"h\" does not match the round's \"w\""));
    EXPECT_EQ(writer->Append(u.tensors[0]).code(), absl::StatusCode::kFailedPrecondition);
  }
  {
    auto writer = *staging->Begin();
    Tensor nan = *Tensor::FromFloats("w", {11}, std::vector<float>(11, NAN));
    EXPECT_EQ(writer->Append(nan).code(), absl::StatusCode::kInvalidArgument);
  }
  {
    auto writer = *staging->Begin();
    TESSERA_ASSERT_OK(writer->Append(u.tensors[0]));
    TESSERA_ASSERT_OK(writer->Append(u.tensors[1]));
    auto file = std::move(*writer).Finish();
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(file.status().message(), HasSubstr("2 of the round's 6 tensors arrived"));
  }
  EXPECT_EQ(FilesIn(root_), 0u);
}

TEST_F(UpdateStagingTest, ResetRemovesWhatAnInterruptedRoundLeft) {
  std::filesystem::create_directories(root_ / "7");
  std::ofstream(root_ / "7" / "0.update") << "left by a crash";
  std::ofstream(root_ / "stray") << "x";
  TESSERA_ASSERT_OK(ResetStagingRoot(root_.string()));
  EXPECT_TRUE(std::filesystem::is_directory(root_));
  EXPECT_TRUE(std::filesystem::is_empty(root_));
}

// A staged fold against a fold in memory, for the strategies that average: the same bits,
// and FedNova's weight sum is the exact one in both.
TEST_F(UpdateStagingTest, StagedFoldMatchesFoldInMemory) {
  for (StrategyConfig::Kind kind : {StrategyConfig::FEDAVG, StrategyConfig::FEDNOVA}) {
    StrategyConfig config;
    config.set_kind(kind);
    auto strategy = *RoundStrategy::Create(config, Update(0), nullptr);
    auto staging =
        *UpdateStaging::Create((root_ / StrategyConfig::Kind_Name(kind)).string(), Update(0));
    auto memory = strategy.NewFold(Update(0));
    auto staged = strategy.NewFold(Update(0), staging);
    TESSERA_ASSERT_OK(memory.status());
    TESSERA_ASSERT_OK(staged.status());
    EXPECT_EQ(memory->staging(), nullptr);
    EXPECT_EQ(staged->staging(), staging);
    for (int k = 0; k < 4; ++k) {
      UpdateWeight w;
      w.num_examples = static_cast<uint64_t>(10 + k);
      w.local_steps = kind == StrategyConfig::FEDNOVA ? 1.0 + k : 0;
      w.weight = kind == StrategyConfig::FEDNOVA ? w.num_examples / w.local_steps
                                                 : static_cast<double>(w.num_examples);
      TESSERA_ASSERT_OK(memory->Add(Update(k), w));
      if (k % 2 == 0) {
        TESSERA_ASSERT_OK(staged->Add(Update(k), w));  // writes the file under the fold
      } else {
        TESSERA_ASSERT_OK(staged->AddStaged(*staging->Write(Update(k)), w));
      }
    }
    EXPECT_EQ(FilesIn(staging->dir()), 4u);
    UpdateWeight bad;
    bad.weight = 0;
    EXPECT_EQ(staged->AddStaged(*staging->Write(Update(0)), bad).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FilesIn(staging->dir()), 4u);  // the refused update's file is gone
    auto a = std::move(*memory).Aggregate();
    auto b = std::move(*staged).Aggregate();
    TESSERA_ASSERT_OK(a.status());
    TESSERA_ASSERT_OK(b.status());
    for (size_t t = 0; t < a->tensors.size(); ++t) {
      EXPECT_EQ(a->tensors[t].data(), b->tensors[t].data()) << a->tensors[t].name();
    }
    EXPECT_EQ(FilesIn(staging->dir()), 0u) << "aggregating removes the round's files";
  }
}

TEST_F(UpdateStagingTest, AnAbandonedFoldRemovesItsFiles) {
  StrategyConfig config;
  config.set_kind(StrategyConfig::FEDAVG);
  auto strategy = *RoundStrategy::Create(config, Update(0), nullptr);
  auto staging = *UpdateStaging::Create((root_ / "abort").string(), Update(0));
  {
    auto fold = strategy.NewFold(Update(0), staging);
    UpdateWeight w;
    TESSERA_ASSERT_OK(fold->Add(Update(1), w));
    TESSERA_ASSERT_OK(fold->Add(Update(2), w));
    EXPECT_EQ(FilesIn(staging->dir()), 2u);
  }
  EXPECT_EQ(FilesIn(staging->dir()), 0u);
  // A robust rule never stages: it needs every update in memory.
  config.set_kind(StrategyConfig::MEDIAN);
  auto median = *RoundStrategy::Create(config, Update(0), nullptr);
  EXPECT_EQ(median.NewFold(Update(0), staging)->staging(), nullptr);
}

}  // namespace
}  // namespace tessera::coordinator
