// The staged fold's two memory savers (docs/architecture.md, "Coordinator memory"): an upload
// written to its file chunk by chunk (StagedWriter::AppendData / EndTensor) gives the same file
// as whole tensors and refuses what Append refuses, wherever the pieces split an element; and
// the next model computed in the global's buffers (AddWeightedMeanTo, UpdateFold::AddMeanTo)
// has the bits of ApplyDelta(global, WeightedMean), each tested on its own (fed_avg_test.cc,
// apply_delta_test.cc, update_staging_test.cc), and the hand values.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregation/fed_avg.h"
#include "coordinator/round/round_strategy.h"
#include "coordinator/round/update_staging.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// float32 over several blocks, float16, int32, bool, an empty tensor and a float64 scalar;
// update k's values depend on (k, tensor, index).
ArrayRecord Update(int k) {
  ArrayRecord r;
  std::vector<float> w(9);
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = static_cast<float>((k + 1) * (static_cast<int>(i) - 4)) * 0.375f + 0.001f * k;
  }
  r.tensors.push_back(*Tensor::FromFloats("w", {3, 3}, w));
  std::string half(3 * 2, '\0');
  for (int i = 0; i < 3; ++i) {
    const uint16_t bits = static_cast<uint16_t>(0x3c00 + 0x100 * ((k + i) % 3));  // 1, 1.25, 1.5
    std::memcpy(half.data() + 2 * i, &bits, 2);
  }
  r.tensors.push_back(*Tensor::Create("h", DType::kFloat16, {3}, half));
  std::string ints(4 * 2, '\0');
  for (int i = 0; i < 2; ++i) {
    const int32_t v = (k + 2) * (i + 1) * 10;
    std::memcpy(ints.data() + 4 * i, &v, 4);
  }
  r.tensors.push_back(*Tensor::Create("n", DType::kInt32, {2}, ints));
  r.tensors.push_back(*Tensor::Create("mask", DType::kBool, {2}, std::string("\0\0", 2)));
  r.tensors.push_back(*Tensor::FromFloats("empty", {0}, {}));
  const double d = 0.5 * k - 1;
  r.tensors.push_back(*Tensor::Create(
      "d", DType::kFloat64, {}, std::string(reinterpret_cast<const char*>(&d), 8)));
  return r;
}

class StagedPiecesTest : public ::testing::Test {
 public:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("staged-pieces-" + crypto::RandomHexId(6));
    TESSERA_ASSERT_OK(ResetStagingRoot(root_.string()));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
};

// Every piece length from 1 to 13 bytes: elements of 2, 4 and 8 bytes split at every offset.
TEST_F(StagedPiecesTest, AnUpdateWrittenInPiecesOfAnyLengthIsTheFileOfWholeTensors) {
  auto staging = *UpdateStaging::Create((root_ / "r").string(), Update(0));
  const ArrayRecord u = Update(2);
  const std::string whole = Contents(staging->Write(u)->path());
  ASSERT_EQ(whole.size(), staging->file_bytes());
  for (size_t piece = 1; piece <= 13; ++piece) {
    auto writer = *staging->Begin();
    for (size_t i = 0; i < u.tensors.size(); ++i) {
      const std::string& data = u.tensors[i].data();
      for (size_t at = 0; at < data.size(); at += piece) {
        TESSERA_ASSERT_OK(writer->AppendData(i, absl::string_view(data).substr(at, piece)));
      }
      TESSERA_ASSERT_OK(writer->EndTensor(i));
    }
    auto file = std::move(*writer).Finish();
    TESSERA_ASSERT_OK(file.status());
    EXPECT_EQ(Contents(file->path()), whole) << "pieces of " << piece << " bytes";
  }
}

TEST_F(StagedPiecesTest, ANonFiniteValueIsFoundWhereverThePiecesSplitIt) {
  auto staging = *UpdateStaging::Create((root_ / "r").string(), Update(0));
  std::string w = Update(1).tensors[0].data();
  const float inf = INFINITY;
  std::memcpy(w.data() + 4 * 5, &inf, 4);  // element 5 of w
  for (size_t piece : {size_t{1}, size_t{3}, size_t{4}, size_t{7}, w.size()}) {
    auto writer = *staging->Begin();
    absl::Status failed;
    for (size_t at = 0; at < w.size() && failed.ok(); at += piece) {
      failed = writer->AppendData(0, absl::string_view(w).substr(at, piece));
    }
    EXPECT_THAT(failed, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("tensor \"w\" has a non-finite value at index 5")))
        << "pieces of " << piece;
    EXPECT_THAT(writer->AppendData(0, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  // float16 and float64 too: 0x7C00 is float16 Inf.
  auto writer = *staging->Begin();
  TESSERA_ASSERT_OK(writer->AppendData(0, Update(1).tensors[0].data()));
  TESSERA_ASSERT_OK(writer->EndTensor(0));
  EXPECT_THAT(writer->AppendData(1, std::string("\x00\x3c\x00\x7c", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"h\" has a non-finite value at index 1")));
}

TEST_F(StagedPiecesTest, PiecesOutOfOrderTooManyOrEndedEarlyAreRefusedAndLeaveNoFile) {
  auto staging = *UpdateStaging::Create((root_ / "r").string(), Update(0));
  const ArrayRecord u = Update(1);
  {
    auto writer = *staging->Begin();
    EXPECT_THAT(writer->AppendData(1, u.tensors[1].data()),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("data for tensor 1 while tensor 0 of 6 is being written")));
  }
  {
    auto writer = *staging->Begin();
    EXPECT_THAT(writer->AppendData(0, u.tensors[0].data() + "abcd"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("tensor \"w\" has 36 bytes; got more")));
  }
  {
    auto writer = *staging->Begin();
    TESSERA_ASSERT_OK(writer->AppendData(0, u.tensors[0].data().substr(0, 10)));
    EXPECT_THAT(writer->EndTensor(0), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("\"w\" ended after 10 of 36 bytes")));
  }
  {
    auto writer = *staging->Begin();
    TESSERA_ASSERT_OK(writer->AppendData(0, u.tensors[0].data()));
    TESSERA_ASSERT_OK(writer->EndTensor(0));
    auto file = std::move(*writer).Finish();
    EXPECT_THAT(file.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("1 of the round's 6 tensors arrived")));
  }
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root_)) {
    files += e.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 0u);
}

TEST_F(StagedPiecesTest, TheMeanAddedInPlaceHasTheBitsOfApplyDeltaOfTheMean) {
  const std::vector<double> weights = {3, 1, 7, 2};
  auto staging = *UpdateStaging::Create((root_ / "r").string(), Update(0));
  std::vector<StagedFile> files;
  std::vector<const StagedFile*> pointers;
  for (int k = 0; k < 4; ++k) files.push_back(*staging->Write(Update(k)));
  for (const StagedFile& f : files) pointers.push_back(&f);
  const ArrayRecord global = Update(7);
  ArrayRecord expected = global;
  TESSERA_ASSERT_OK(aggregation::ApplyDelta(expected, *staging->WeightedMean(pointers, weights)));
  for (size_t block : {size_t{1}, size_t{2}, size_t{4}, size_t{9}, kStagedBlockElements}) {
    ArrayRecord base = global;
    double total = 0;
    TESSERA_ASSERT_OK(staging->AddWeightedMeanTo(pointers, weights, base, &total, block));
    EXPECT_EQ(total, 13);
    for (size_t t = 0; t < expected.tensors.size(); ++t) {
      EXPECT_EQ(base.tensors[t].data(), expected.tensors[t].data())
          << "tensor " << expected.tensors[t].name() << ", block " << block;
    }
  }
}

// (1 * [1, 3] + 3 * [3, -1]) / 4 = [2.5, 0]; global [1, 2] becomes [3.5, 2].
TEST_F(StagedPiecesTest, AStagedFoldAddsTheHandMeanToTheGlobal) {
  ArrayRecord layout;
  layout.tensors.push_back(*Tensor::FromFloats("w", {2}, {0.0f, 0.0f}));
  auto staging = *UpdateStaging::Create((root_ / "r").string(), layout);
  RoundStrategy strategy;  // FedAvg
  EXPECT_TRUE(strategy.AddsMeanToGlobal());
  auto fold = strategy.NewFold(layout, staging);
  TESSERA_ASSERT_OK(fold.status());
  ArrayRecord u1, u3;
  u1.tensors.push_back(*Tensor::FromFloats("w", {2}, {1.0f, 3.0f}));
  u3.tensors.push_back(*Tensor::FromFloats("w", {2}, {3.0f, -1.0f}));
  TESSERA_ASSERT_OK(fold->AddStaged(*staging->Write(u1), {1, 0, 1}));
  TESSERA_ASSERT_OK(fold->AddStaged(*staging->Write(u3), {3, 0, 3}));
  ArrayRecord global;
  global.tensors.push_back(*Tensor::FromFloats("w", {2}, {1.0f, 2.0f}));
  TESSERA_ASSERT_OK(std::move(*fold).AddMeanTo(global));
  EXPECT_THAT(global.tensors[0].values<float>(), ElementsAre(3.5f, 2.0f));
  // The fold's files are gone with it.
  EXPECT_TRUE(std::filesystem::is_empty(root_ / "r"));
}

TEST_F(StagedPiecesTest, AddingInPlaceRefusesAnotherLayoutAndAFoldThatIsNotAPlainMean) {
  auto staging = *UpdateStaging::Create((root_ / "r").string(), Update(0));
  StagedFile f = *staging->Write(Update(1));
  const StagedFile* files[] = {&f};
  const double weights[] = {1};
  ArrayRecord other = Update(1);
  other.tensors.pop_back();
  EXPECT_THAT(staging->AddWeightedMeanTo(files, weights, other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 5 tensors")));
  other = Update(1);
  other.tensors[1] = *Tensor::FromFloats("h", {3}, {1, 2, 3});
  EXPECT_THAT(staging->AddWeightedMeanTo(files, weights, other),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("base model tensor 1 is h float32[3]")));
  // In memory, or FedNova (its mean is scaled first): not added in place.
  RoundStrategy fedavg;
  ArrayRecord global = Update(1);
  auto in_memory = fedavg.NewFold(Update(0));
  TESSERA_ASSERT_OK(in_memory.status());
  EXPECT_THAT(std::move(*in_memory).AddMeanTo(global),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  wire::v1::StrategyConfig nova;
  nova.set_kind(wire::v1::StrategyConfig::FEDNOVA);
  auto fednova = RoundStrategy::Create(nova, Update(0), nullptr);
  TESSERA_ASSERT_OK(fednova.status());
  EXPECT_FALSE(fednova->AddsMeanToGlobal());
  auto nova_fold = fednova->NewFold(Update(0), staging);
  TESSERA_ASSERT_OK(nova_fold.status());
  EXPECT_THAT(std::move(*nova_fold).AddMeanTo(global),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(global.tensors[0].data(), Update(1).tensors[0].data());
}

}  // namespace
}  // namespace tessera::coordinator
