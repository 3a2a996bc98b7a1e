// File: partition.h
// Splits a dataset's examples among federated parties, for simulation and benchmarks.
// Every function is deterministic given its seed (std::mt19937_64 and libstdc++'s
// distributions), returns one vector of example indices per party, and assigns each
// example to exactly one party. Indices within a party are sorted ascending.
#ifndef TESSERA_CLIENT_DATA_PARTITION_H_
#define TESSERA_CLIENT_DATA_PARTITION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera {

using Partition = std::vector<std::vector<size_t>>;

// Homogeneous split: a random permutation cut into `num_parties` parts whose sizes differ
// by at most one. Only labels.size() is used.
// Errors: INVALID_ARGUMENT when num_parties is 0 or larger than the number of examples.
absl::StatusOr<Partition> PartitionIid(absl::Span<const int64_t> labels, size_t num_parties,
                                       uint64_t seed);

// Label-distribution skew "p_k ~ Dir(alpha)" of NIID-Bench (Li et al., "Federated Learning
// on Non-IID Data Silos: An Experimental Study", ICDE 2022): for each class, proportions
// over the parties are drawn from a symmetric Dirichlet(alpha); parties that already hold
// at least N / num_parties examples get no more (the balancing trick); the class's
// shuffled examples are cut by the cumulative proportions. The whole draw is repeated
// until every party has at least `min_size` examples. Small alpha (0.1) gives parties
// few dominant classes; large alpha (100) approaches an IID split.
// Errors: INVALID_ARGUMENT when num_parties is 0 or larger than the number of examples,
// alpha <= 0, num_classes <= 0, a label is outside [0, num_classes), or
// num_parties * min_size exceeds the number of examples; FAILED_PRECONDITION when no draw
// satisfies min_size within kMaxDirichletAttempts.
absl::StatusOr<Partition> PartitionDirichletLabels(absl::Span<const int64_t> labels,
                                                   int64_t num_classes, size_t num_parties,
                                                   double alpha, uint64_t seed,
                                                   size_t min_size = 10);

inline constexpr int kMaxDirichletAttempts = 1000;

}  // namespace tessera

#endif  // TESSERA_CLIENT_DATA_PARTITION_H_
