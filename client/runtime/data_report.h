// File: data_report.h
// What a client tells the coordinator about its data when a TRAIN task asks
// (Task.data_report, docs/data_cards.md "What leaves the client"): the number of local
// training examples rounded down to the run's bucket, and a class histogram only when the
// run asks for one AND the partner's data card allows it (allow_class_histogram). Nothing
// else about the data leaves the client, and nothing at all unless a task asks.
//
// Example: 1234 examples, bucket 100, histogram asked but not allowed:
//   {example_count_bucket: 100, examples_rounded: 1200, histogram_withheld: true}
#ifndef TESSERA_CLIENT_RUNTIME_DATA_REPORT_H_
#define TESSERA_CLIENT_RUNTIME_DATA_REPORT_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/data/dataset.h"
#include "client/runtime/task_executor.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera {

// The bucket of a request whose example_count_bucket is 0 (the run config's default).
inline constexpr uint64_t kDefaultExampleCountBucket = 100;

// Examples per label 0..(largest label), e.g. {2, 0, 1} for labels {0, 2, 0}; empty for no
// labels. Negative labels (invalid data) are not counted.
std::vector<uint64_t> ClassHistogram(absl::Span<const int64_t> labels);

// The report answering `request` for `num_examples` local training examples:
// example_count_bucket = the request's (0: 100), examples_rounded = floor(num_examples /
// bucket) * bucket; class_histogram = `histogram` only when request.class_histogram() and
// `histogram_allowed` (the data card's allow_class_histogram; false without a card);
// histogram_withheld = asked but not allowed.
wire::v1::DataReport MakeDataReport(const wire::v1::DataReportRequest& request,
                                    uint64_t num_examples, absl::Span<const uint64_t> histogram,
                                    bool histogram_allowed);

// Sends MakeDataReport for `train` through transport.ReportData when `task` is a TRAIN task
// with a data_report request; OK without a call otherwise (a client never reports unasked).
// The histogram is computed only when it will be sent. Errors: those of ReportData.
absl::Status AnswerDataReport(const wire::v1::Task& task, const Dataset& train,
                              bool histogram_allowed, FleetTransport& transport);

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_DATA_REPORT_H_
