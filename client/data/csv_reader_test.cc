#include "client/data/csv_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(CsvReaderTest, ReadsHeaderAndNamedLabel) {
  const std::string path =
      WriteFile("good.csv", "a, label ,b\n1.5,2,-3\n\n0,0,4e1\r\n");
  CsvOptions options;
  options.label_column = "label";
  absl::StatusOr<Dataset> d = LoadCsvDataset(path, options);
  TESSERA_ASSERT_OK(d);
  EXPECT_THAT(d->features, ElementsAre(1.5f, -3.0f, 0.0f, 40.0f));
  EXPECT_THAT(d->labels, ElementsAre(2, 0));
  EXPECT_THAT(d->example_shape, ElementsAre(2));
  EXPECT_EQ(d->num_classes, 3);
  TESSERA_EXPECT_OK(d->Validate());
}

TEST(CsvReaderTest, ReadsWithoutHeaderByIndexAndShape) {
  const std::string path = WriteFile("noheader.csv", "1;1;2;3;4\n0;5;6;7;8\n");
  CsvOptions options;
  options.has_header = false;
  options.label_index = 0;
  options.delimiter = ';';
  options.example_shape = {1, 2, 2};
  options.num_classes = 4;
  absl::StatusOr<Dataset> d = LoadCsvDataset(path, options);
  TESSERA_ASSERT_OK(d);
  EXPECT_THAT(d->labels, ElementsAre(1, 0));
  EXPECT_THAT(d->features, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_THAT(d->example_shape, ElementsAre(1, 2, 2));
  EXPECT_EQ(d->num_classes, 4);
}

TEST(CsvReaderTest, BadNumberNamesLineAndColumn) {
  const std::string path = WriteFile("badnum.csv", "x,y,label\n1,2,0\n3,abc,1\n");
  EXPECT_THAT(LoadCsvDataset(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("badnum.csv:3"), HasSubstr("column 2 ('y')"),
                             HasSubstr("abc"))));
}

TEST(CsvReaderTest, BadLabelAndRaggedRows) {
  EXPECT_THAT(LoadCsvDataset(WriteFile("badlabel.csv", "x,label\n1,0.5\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(":2"), HasSubstr("label"))));
  EXPECT_THAT(LoadCsvDataset(WriteFile("neg.csv", "x,label\n1,-1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadCsvDataset(WriteFile("ragged.csv", "x,y,label\n1,2,0\n1,2\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("ragged.csv:3"), HasSubstr("2 fields"))));
  CsvOptions options;
  options.num_classes = 2;
  EXPECT_THAT(LoadCsvDataset(WriteFile("big.csv", "x,label\n1,2\n"), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
}

TEST(CsvReaderTest, OptionErrors) {
  const std::string path = WriteFile("opts.csv", "x,y,label\n1,2,0\n");
  CsvOptions options;
  options.label_column = "target";
  EXPECT_THAT(LoadCsvDataset(path, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target")));
  options = CsvOptions();
  options.label_index = 5;
  EXPECT_THAT(LoadCsvDataset(path, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label_index")));
  options = CsvOptions();
  options.example_shape = {3};
  EXPECT_THAT(LoadCsvDataset(path, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("example_shape")));
  EXPECT_THAT(LoadCsvDataset(WriteFile("empty.csv", "x,label\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no data rows")));
  EXPECT_THAT(LoadCsvDataset("/nonexistent/file.csv"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/file.csv")));
}

}  // namespace
}  // namespace tessera
