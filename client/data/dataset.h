// File: dataset.h
// An in-memory labelled dataset for local training: dense float features, one example after
// another in row-major order, plus one integer class label per example.
#ifndef TESSERA_CLIENT_DATA_DATASET_H_
#define TESSERA_CLIENT_DATA_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera {

// A value type; copying copies the data.
struct Dataset {
  // size() * ExampleSize() floats; example i starts at features[i * ExampleSize()].
  std::vector<float> features;
  // One label per example, each in [0, num_classes).
  std::vector<int64_t> labels;
  // Shape of one example without the batch dimension, e.g. {1, 28, 28} for MNIST.
  std::vector<int64_t> example_shape;
  int64_t num_classes = 0;

  size_t size() const { return labels.size(); }
  // Number of floats per example (the product of example_shape; 1 for an empty shape).
  int64_t ExampleSize() const;
  // INVALID_ARGUMENT when the invariants above do not hold (feature count, negative
  // dimensions, labels out of range, num_classes <= 0).
  absl::Status Validate() const;
};

// The examples at `indices`, in that order (duplicates allowed).
// Errors: INVALID_ARGUMENT naming the first index that is out of range.
absl::StatusOr<Dataset> Subset(const Dataset& data, absl::Span<const size_t> indices);

}  // namespace tessera

#endif  // TESSERA_CLIENT_DATA_DATASET_H_
