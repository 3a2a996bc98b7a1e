#include "client/data/idx_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string BigEndian32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX images file of `n` examples of rows x cols, pixel value (i + r + c) % 256.
std::string ImagesBytes(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string s = std::string("\0\0\x08\x03", 4) + BigEndian32(n) + BigEndian32(rows) +
                  BigEndian32(cols);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t p = 0; p < rows * cols; ++p) s.push_back(static_cast<char>((i + p) % 256));
  }
  return s;
}

std::string LabelsBytes(uint32_t n) {
  std::string s = std::string("\0\0\x08\x01", 4) + BigEndian32(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("idx_" + std::string(
                         ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteRaw(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(IdxReaderTest, ReadsRawFilesAndNormalizes) {
  const std::string images = WriteRaw("img", ImagesBytes(3, 2, 2));
  const std::string labels = WriteRaw("lbl", LabelsBytes(3));
  absl::StatusOr<Dataset> d = LoadIdxDataset(images, labels, 0, 0.5, 0.25);
  TESSERA_ASSERT_OK(d);
  EXPECT_EQ(d->size(), 3u);
  EXPECT_THAT(d->example_shape, ElementsAre(1, 2, 2));
  EXPECT_THAT(d->labels, ElementsAre(0, 1, 2));
  EXPECT_EQ(d->num_classes, 10);
  ASSERT_EQ(d->features.size(), 12u);
  EXPECT_NEAR(d->features[0], (0 / 255.0 - 0.5) / 0.25, 1e-6);
  EXPECT_NEAR(d->features[5], (2 / 255.0 - 0.5) / 0.25, 1e-6);  // example 1, pixel 1
  TESSERA_EXPECT_OK(d->Validate());
}

TEST_F(IdxReaderTest, ReadsGzipAndHonorsLimit) {
  const std::string images = WriteGz("img.gz", ImagesBytes(20, 28, 28));
  const std::string labels = WriteGz("lbl.gz", LabelsBytes(20));
  absl::StatusOr<Dataset> all = LoadIdxDataset(images, labels);
  TESSERA_ASSERT_OK(all);
  EXPECT_EQ(all->size(), 20u);
  EXPECT_EQ(all->features.size(), 20u * 784u);
  EXPECT_NEAR(all->features[0], (0 - kFashionMnistMean) / kFashionMnistStd, 1e-6);

  absl::StatusOr<Dataset> some = LoadIdxDataset(images, labels, 5);
  TESSERA_ASSERT_OK(some);
  EXPECT_EQ(some->size(), 5u);
  EXPECT_EQ(some->features.size(), 5u * 784u);
}

TEST_F(IdxReaderTest, LoadSplitFindsFilesByConvention) {
  WriteGz("t10k-images-idx3-ubyte.gz", ImagesBytes(4, 3, 3));
  WriteRaw("t10k-labels-idx1-ubyte", LabelsBytes(4));
  absl::StatusOr<Dataset> d = LoadIdxSplit(dir_.string(), "test");
  TESSERA_ASSERT_OK(d);
  EXPECT_EQ(d->size(), 4u);
  EXPECT_THAT(LoadIdxSplit(dir_.string(), "train"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("train-images-idx3-ubyte")));
  EXPECT_THAT(LoadIdxSplit(dir_.string(), "validation"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(IdxReaderTest, MissingFileIsNotFound) {
  const std::string labels = WriteRaw("lbl", LabelsBytes(3));
  EXPECT_THAT(LoadIdxDataset((dir_ / "nope").string(), labels),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(IdxReaderTest, BadMagicNamesFile) {
  const std::string images = WriteRaw("img", ImagesBytes(3, 2, 2));
  const std::string labels = WriteRaw("lbl", LabelsBytes(3));
  // Labels where images are expected.
  EXPECT_THAT(LoadIdxDataset(labels, labels),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("lbl"), HasSubstr("magic"))));
  std::string bad = ImagesBytes(3, 2, 2);
  bad[0] = 'P';
  const std::string bad_path = WriteRaw("bad", bad);
  EXPECT_THAT(LoadIdxDataset(bad_path, labels),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad")));
  std::string floats = ImagesBytes(3, 2, 2);
  floats[2] = '\x0D';
  EXPECT_THAT(LoadIdxDataset(WriteRaw("floats", floats), labels),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("element type")));
  EXPECT_THAT(LoadIdxDataset(images, images),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("img")));
}

TEST_F(IdxReaderTest, TruncatedDataIsInvalid) {
  std::string bytes = ImagesBytes(3, 2, 2);
  bytes.resize(bytes.size() - 1);
  const std::string images = WriteGz("img.gz", bytes);
  const std::string labels = WriteRaw("lbl", LabelsBytes(3));
  EXPECT_THAT(LoadIdxDataset(images, labels),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("img.gz"), HasSubstr("truncated"))));
  const std::string short_header = WriteRaw("short", std::string("\0\0\x08\x03\0\0", 6));
  EXPECT_THAT(LoadIdxDataset(short_header, labels),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated")));
}

TEST_F(IdxReaderTest, CountMismatchIsInvalid) {
  const std::string images = WriteRaw("img", ImagesBytes(3, 2, 2));
  const std::string labels = WriteRaw("lbl", LabelsBytes(4));
  EXPECT_THAT(LoadIdxDataset(images, labels),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("3 images"), HasSubstr("4 labels"))));
}

TEST_F(IdxReaderTest, RejectsNonPositiveStddev) {
  const std::string images = WriteRaw("img", ImagesBytes(1, 2, 2));
  const std::string labels = WriteRaw("lbl", LabelsBytes(1));
  EXPECT_THAT(LoadIdxDataset(images, labels, 0, 0.5, 0.0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IdxRealDataTest, LoadsFashionMnistTestSplit) {
  if (!std::filesystem::exists(kFashionMnistDir)) {
    GTEST_SKIP() << kFashionMnistDir << " not installed (dataset-fashion-mnist)";
  }
  absl::StatusOr<Dataset> d = LoadIdxSplit(kFashionMnistDir, "test");
  TESSERA_ASSERT_OK(d);
  EXPECT_EQ(d->size(), 10000u);
  EXPECT_EQ(d->num_classes, 10);
  EXPECT_THAT(d->example_shape, ElementsAre(1, 28, 28));
  TESSERA_EXPECT_OK(d->Validate());
  std::vector<int> counts(10);
  double sum = 0;
  for (int64_t l : d->labels) ++counts[static_cast<size_t>(l)];
  for (float f : d->features) sum += f;
  EXPECT_THAT(counts, testing::Each(1000));
  // Normalized with the dataset's own statistics, the mean is close to zero.
  EXPECT_NEAR(sum / static_cast<double>(d->features.size()), 0.0, 0.05);
}

// The normalization constants (core/model/image_input.h, which the model card states) are
// the Fashion-MNIST training set's pixel mean and standard deviation: recomputed here from the
// raw bytes of train-images-idx3-ubyte.gz (60000 x 28 x 28, after its 16-byte header), with
// zlib and no Tessera code, and compared at the 4 decimals the constants and the card carry.
TEST(IdxRealDataTest, NormalizationConstantsAreTheTrainingSetPixelStatistics) {
  const std::string path = std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << path << " not installed (dataset-fashion-mnist)";
  }
  gzFile f = gzopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  char header[16];
  ASSERT_EQ(gzread(f, header, sizeof(header)), 16);
  std::vector<unsigned char> buf(1 << 20);
  uint64_t n = 0, sum = 0, sum_sq = 0;
  int got;
  while ((got = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    for (int i = 0; i < got; ++i) {
      sum += buf[static_cast<size_t>(i)];
      sum_sq += uint64_t{buf[static_cast<size_t>(i)]} * buf[static_cast<size_t>(i)];
    }
    n += static_cast<uint64_t>(got);
  }
  gzclose(f);
  ASSERT_EQ(n, 60000u * 28 * 28);
  const double mean = static_cast<double>(sum) / static_cast<double>(n) / 255.0;
  const double var = static_cast<double>(sum_sq) / static_cast<double>(n) / (255.0 * 255.0) -
                     mean * mean;
  EXPECT_NEAR(kFashionMnistMean, mean, 5e-5) << "mean " << mean;
  EXPECT_NEAR(kFashionMnistStd, std::sqrt(var), 5e-5) << "std " << std::sqrt(var);
  EXPECT_EQ(kPixelScale, 255.0);
}

}  // namespace
}  // namespace tessera
