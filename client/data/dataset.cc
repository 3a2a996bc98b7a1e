#include "client/data/dataset.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tessera {

int64_t Dataset::ExampleSize() const {
  int64_t n = 1;
  for (int64_t d : example_shape) n *= d;
  return n;
}

absl::Status Dataset::Validate() const {
  for (int64_t d : example_shape) {
    if (d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset: example dimension ", d, " is not positive"));
    }
  }
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset: num_classes is ", num_classes, ", want > 0"));
  }
  const uint64_t want = static_cast<uint64_t>(ExampleSize()) * labels.size();
  if (features.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset: ", features.size(), " features for ", labels.size(),
                     " examples of ", ExampleSize(), " values (want ", want, ")"));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("dataset: label ", labels[i],
                                                     " of example ", i, " is outside [0, ",
                                                     num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Dataset> Subset(const Dataset& data, absl::Span<const size_t> indices) {
  const size_t example_size = static_cast<size_t>(data.ExampleSize());
  if (data.features.size() != example_size * data.size()) {
    return absl::InvalidArgumentError("Subset: dataset features do not match its labels");
  }
  Dataset out;
  out.example_shape = data.example_shape;
  out.num_classes = data.num_classes;
  out.labels.reserve(indices.size());
  out.features.reserve(indices.size() * example_size);
  for (size_t i : indices) {
    if (i >= data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Subset: index ", i, " is out of range for a dataset of ", data.size()));
    }
    out.labels.push_back(data.labels[i]);
    const auto begin = data.features.begin() + static_cast<ptrdiff_t>(i * example_size);
    out.features.insert(out.features.end(), begin,
                        begin + static_cast<ptrdiff_t>(example_size));
  }
  return out;
}

}  // namespace tessera
