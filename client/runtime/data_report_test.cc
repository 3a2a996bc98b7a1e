// The data report a client sends when a TRAIN task asks: the example count rounded down to
// the bucket, the class histogram only when asked and allowed by the data card, and no call
// at all when the task did not ask.
#include "client/runtime/data_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

wire::v1::DataReportRequest Request(uint64_t bucket, bool histogram) {
  wire::v1::DataReportRequest r;
  r.set_example_count_bucket(bucket);
  r.set_class_histogram(histogram);
  return r;
}

// Records the reports; the other calls are not expected.
class ReportRecorder : public FleetTransport {
 public:
  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task&) override {
    return absl::UnimplementedError("");
  }
  absl::Status PushUpdate(const wire::v1::Task&, uint64_t, const std::map<std::string, double>&,
                          const ArrayRecord&) override {
    return absl::UnimplementedError("");
  }
  absl::Status PushEvaluation(const wire::v1::Task&, const EvalResult&) override {
    return absl::UnimplementedError("");
  }
  SecAggTransport SecAgg(const wire::v1::Task&) override { return {}; }
  absl::Status ReportData(const wire::v1::Task& task,
                          const wire::v1::DataReport& report) override {
    task_ids.push_back(task.task_id());
    reports.push_back(report);
    return result;
  }
  absl::Status ReportSitePrivacy(const wire::v1::Task&,
                                 const wire::v1::SitePrivacyReport& report) override {
    site_privacy.push_back(report);
    return absl::OkStatus();
  }

  std::vector<std::string> task_ids;
  std::vector<wire::v1::DataReport> reports;
  std::vector<wire::v1::SitePrivacyReport> site_privacy;
  absl::Status result;
};

TEST(ClassHistogramTest, CountsPerLabelUpToTheLargest) {
  EXPECT_THAT(ClassHistogram(std::vector<int64_t>{0, 2, 0, 2, 2}), ElementsAre(2u, 0u, 3u));
  EXPECT_THAT(ClassHistogram({}), IsEmpty());
  EXPECT_THAT(ClassHistogram(std::vector<int64_t>{-1, 1}), ElementsAre(0u, 1u));
}

TEST(MakeDataReportTest, RoundsDownToTheBucket) {
  const std::vector<uint64_t> h = {600, 634};
  wire::v1::DataReport r = MakeDataReport(Request(100, false), 1234, h, true);
  EXPECT_EQ(r.example_count_bucket(), 100u);
  EXPECT_EQ(r.examples_rounded(), 1200u);
  EXPECT_THAT(r.class_histogram(), IsEmpty());
  EXPECT_FALSE(r.histogram_withheld());

  EXPECT_EQ(MakeDataReport(Request(1000, false), 999, h, false).examples_rounded(), 0u);
  EXPECT_EQ(MakeDataReport(Request(1, false), 999, h, false).examples_rounded(), 999u);
  EXPECT_EQ(MakeDataReport(Request(7, false), 14, h, false).examples_rounded(), 14u);
  // Bucket 0 is the default, 100.
  r = MakeDataReport(Request(0, false), 250, h, false);
  EXPECT_EQ(r.example_count_bucket(), 100u);
  EXPECT_EQ(r.examples_rounded(), 200u);
}

TEST(MakeDataReportTest, HistogramOnlyWhenAskedAndAllowed) {
  const std::vector<uint64_t> h = {3, 0, 5};
  wire::v1::DataReport both = MakeDataReport(Request(1, true), 8, h, true);
  EXPECT_THAT(both.class_histogram(), ElementsAre(3u, 0u, 5u));
  EXPECT_FALSE(both.histogram_withheld());

  wire::v1::DataReport refused = MakeDataReport(Request(1, true), 8, h, false);
  EXPECT_THAT(refused.class_histogram(), IsEmpty());
  EXPECT_TRUE(refused.histogram_withheld());

  wire::v1::DataReport unasked = MakeDataReport(Request(1, false), 8, h, true);
  EXPECT_THAT(unasked.class_histogram(), IsEmpty());
  EXPECT_FALSE(unasked.histogram_withheld());
}

// The client rounds every class down to the bucket before sending: 1234 with bucket 100
// leaves as 1200, and the classes (1200 + 0 + 400) do not add up to the exact total 1787.
TEST(MakeDataReportTest, HistogramClassesLeaveRoundedToTheBucket) {
  const std::vector<uint64_t> h = {1234, 99, 454};
  wire::v1::DataReport r = MakeDataReport(Request(100, true), 1787, h, true);
  EXPECT_THAT(r.class_histogram(), ElementsAre(1200u, 0u, 400u));
  EXPECT_EQ(r.examples_rounded(), 1700u);
}

TEST(AnswerDataReportTest, ReportsOnlyWhenATrainTaskAsks) {
  Dataset train;
  train.labels = {1, 1, 0, 1, 3};
  ReportRecorder fleet;
  wire::v1::Task task;
  task.set_task_id("t1");
  task.set_type(wire::v1::TRAIN);
  EXPECT_THAT(AnswerDataReport(task, train, true, fleet), IsOk());  // no request
  task.set_type(wire::v1::EVALUATE);
  *task.mutable_data_report() = Request(2, true);
  EXPECT_THAT(AnswerDataReport(task, train, true, fleet), IsOk());  // not a TRAIN task
  EXPECT_TRUE(fleet.reports.empty());  // (gtest cannot print protos warning-free at -O3)

  task.set_type(wire::v1::TRAIN);
  EXPECT_THAT(AnswerDataReport(task, train, true, fleet), IsOk());
  ASSERT_EQ(fleet.reports.size(), 1u);
  EXPECT_EQ(fleet.task_ids[0], "t1");
  EXPECT_EQ(fleet.reports[0].example_count_bucket(), 2u);
  EXPECT_EQ(fleet.reports[0].examples_rounded(), 4u);
  // Labels {1, 1, 0, 1, 3}: classes 1, 3, 0, 1, each rounded down to the bucket of 2.
  EXPECT_THAT(fleet.reports[0].class_histogram(), ElementsAre(0u, 2u, 0u, 0u));

  fleet.result = absl::UnavailableError("coordinator gone");
  EXPECT_THAT(AnswerDataReport(task, train, false, fleet),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_EQ(fleet.reports.size(), 2u);
  EXPECT_THAT(fleet.reports[1].class_histogram(), IsEmpty());
  EXPECT_TRUE(fleet.reports[1].histogram_withheld());
}

}  // namespace
}  // namespace tessera
