#include "client/data/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace {

absl::Status CheckPartyCount(size_t num_examples, size_t num_parties) {
  if (num_parties == 0) {
    return absl::InvalidArgumentError("partition: number of parties must be > 0");
  }
  if (num_parties > num_examples) {
    return absl::InvalidArgumentError(absl::StrCat("partition: ", num_parties,
                                                   " parties for only ", num_examples,
                                                   " examples"));
  }
  return absl::OkStatus();
}

// A draw from the symmetric Dirichlet(alpha) over `n` categories, via normalized
// Gamma(alpha, 1) draws. When every gamma draw underflows to zero (tiny alpha), falls back
// to the alpha -> 0 limit: all mass on one category chosen uniformly.
std::vector<double> SampleDirichlet(size_t n, double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  std::vector<double> p(n);
  double sum = 0;
  for (double& x : p) {
    x = gamma(rng);
    sum += x;
  }
  if (!(sum > 0) || !std::isfinite(sum)) {
    std::fill(p.begin(), p.end(), 0.0);
    p[std::uniform_int_distribution<size_t>(0, n - 1)(rng)] = 1.0;
    return p;
  }
  for (double& x : p) x /= sum;
  return p;
}

}  // namespace

absl::StatusOr<Partition> PartitionIid(absl::Span<const int64_t> labels, size_t num_parties,
                                       uint64_t seed) {
  if (absl::Status s = CheckPartyCount(labels.size(), num_parties); !s.ok()) return s;
  std::vector<size_t> order(labels.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  Partition parts(num_parties);
  const size_t base = labels.size() / num_parties;
  const size_t extra = labels.size() % num_parties;
  size_t pos = 0;
  for (size_t j = 0; j < num_parties; ++j) {
    const size_t len = base + (j < extra ? 1 : 0);
    parts[j].assign(order.begin() + static_cast<ptrdiff_t>(pos),
                    order.begin() + static_cast<ptrdiff_t>(pos + len));
    std::sort(parts[j].begin(), parts[j].end());
    pos += len;
  }
  return parts;
}

absl::StatusOr<Partition> PartitionDirichletLabels(absl::Span<const int64_t> labels,
                                                   int64_t num_classes, size_t num_parties,
                                                   double alpha, uint64_t seed,
                                                   size_t min_size) {
  const size_t n = labels.size();
  if (absl::Status s = CheckPartyCount(n, num_parties); !s.ok()) return s;
  if (!(alpha > 0) || !std::isfinite(alpha)) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition: Dirichlet alpha must be > 0, got ", alpha));
  }
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition: num_classes must be > 0, got ", num_classes));
  }
  if (num_parties * min_size > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition: ", num_parties, " parties of at least ", min_size,
                     " examples need more than the ", n, " examples available"));
  }
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("partition: label ", labels[i],
                                                     " of example ", i, " is outside [0, ",
                                                     num_classes, ")"));
    }
    by_class[static_cast<size_t>(labels[i])].push_back(i);
  }

  std::mt19937_64 rng(seed);
  const double fair_share = static_cast<double>(n) / static_cast<double>(num_parties);
  Partition parts(num_parties);
  for (int attempt = 0; attempt < kMaxDirichletAttempts; ++attempt) {
    for (std::vector<size_t>& part : parts) part.clear();
    for (std::vector<size_t>& idx_k : by_class) {
      if (idx_k.empty()) continue;
      std::shuffle(idx_k.begin(), idx_k.end(), rng);
      std::vector<double> p = SampleDirichlet(num_parties, alpha, rng);
      // Balancing: a party that already holds its fair share takes no more.
      double sum = 0;
      for (size_t j = 0; j < num_parties; ++j) {
        if (static_cast<double>(parts[j].size()) >= fair_share) p[j] = 0;
        sum += p[j];
      }
      if (!(sum > 0)) {
        // Every party with room drew zero mass: spread evenly over the parties with room
        // (some party always has room while examples remain unassigned).
        for (size_t j = 0; j < num_parties; ++j) {
          p[j] = static_cast<double>(parts[j].size()) < fair_share ? 1.0 : 0.0;
          sum += p[j];
        }
      }
      // Cut points: floor(cumsum(p) * len), as numpy's astype(int).
      double cum = 0;
      size_t start = 0;
      for (size_t j = 0; j < num_parties; ++j) {
        cum += p[j] / sum;
        const double cut = std::floor(cum * static_cast<double>(idx_k.size()));
        size_t end = j + 1 == num_parties
                         ? idx_k.size()
                         : std::min(idx_k.size(), static_cast<size_t>(cut));
        end = std::max(end, start);
        parts[j].insert(parts[j].end(), idx_k.begin() + static_cast<ptrdiff_t>(start),
                        idx_k.begin() + static_cast<ptrdiff_t>(end));
        start = end;
      }
    }
    size_t smallest = n;
    for (const std::vector<size_t>& part : parts) smallest = std::min(smallest, part.size());
    if (smallest >= min_size) {
      for (std::vector<size_t>& part : parts) std::sort(part.begin(), part.end());
      return parts;
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "partition: no Dirichlet(", alpha, ") draw gave every one of ", num_parties,
      " parties at least ", min_size, " examples in ", kMaxDirichletAttempts,
      " attempts; lower min_size or raise alpha"));
}

}  // namespace tessera
