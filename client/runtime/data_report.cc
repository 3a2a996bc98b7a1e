#include "client/runtime/data_report.h"

namespace tessera {

std::vector<uint64_t> ClassHistogram(absl::Span<const int64_t> labels) {
  std::vector<uint64_t> out;
  for (int64_t label : labels) {
    if (label < 0) continue;
    const size_t i = static_cast<size_t>(label);
    if (i >= out.size()) out.resize(i + 1, 0);
    ++out[i];
  }
  return out;
}

wire::v1::DataReport MakeDataReport(const wire::v1::DataReportRequest& request,
                                    uint64_t num_examples, absl::Span<const uint64_t> histogram,
                                    bool histogram_allowed) {
  const uint64_t bucket = request.example_count_bucket() == 0 ? kDefaultExampleCountBucket
                                                              : request.example_count_bucket();
  wire::v1::DataReport report;
  report.set_example_count_bucket(bucket);
  report.set_examples_rounded(num_examples / bucket * bucket);
  // Each class is rounded down like the total, so the classes never sum to the exact
  // example count the bucket hides.
  if (request.class_histogram() && histogram_allowed) {
    for (uint64_t count : histogram) report.add_class_histogram(count / bucket * bucket);
  }
  report.set_histogram_withheld(request.class_histogram() && !histogram_allowed);
  return report;
}

absl::Status AnswerDataReport(const wire::v1::Task& task, const Dataset& train,
                              bool histogram_allowed, FleetTransport& transport) {
  if (task.type() != wire::v1::TRAIN || !task.has_data_report()) return absl::OkStatus();
  const wire::v1::DataReportRequest& request = task.data_report();
  std::vector<uint64_t> histogram;
  if (request.class_histogram() && histogram_allowed) histogram = ClassHistogram(train.labels);
  return transport.ReportData(
      task, MakeDataReport(request, train.size(), histogram, histogram_allowed));
}

}  // namespace tessera
