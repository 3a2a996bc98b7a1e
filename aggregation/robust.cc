#include "aggregation/robust.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "aggregation/fed_avg.h"
#include "aggregation/internal/kernels.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace aggregation {
namespace {


// Coordinates processed per block: n * kBlock floats stay in cache while the
// block is transposed (median, trimmed mean) or compared pairwise (Krum).
constexpr size_t kBlock = 512;

absl::Status Prefixed(absl::string_view fn, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(fn, ": ", s.message()));
}

// The common checks of robust.h; float values of non-float32 tensors are
// checked later by the accumulator that averages them.
absl::Status Validate(absl::Span<const ArrayRecord> updates,
                      absl::string_view fn) {
  if (updates.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": no updates"));
  }
  absl::Status s = CheckUniqueNames(updates[0]);
  if (!s.ok()) return Prefixed(fn, s);
  for (size_t k = 0; k < updates.size(); ++k) {
    s = CheckSameLayout(updates[0], updates[k]);
    for (size_t i = 0; s.ok() && i < updates[k].tensors.size(); ++i) {
      const Tensor& t = updates[k].tensors[i];
      if (t.dtype() != DType::kFloat32) continue;
      auto v = t.values<float>();
      if (!AllFinite(v.data(), v.size())) s = CheckFinite(t);
    }
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(fn, ": update ", k, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// The unweighted mean over updates[indices] of the tensors that are not
// float32, in layout order (an empty record if there are none).
absl::StatusOr<ArrayRecord> MeanOfOthers(absl::Span<const ArrayRecord> updates,
                                         absl::Span<const size_t> indices,
                                         absl::string_view fn) {
  auto others = [](const ArrayRecord& r) {
    ArrayRecord out;
    for (const Tensor& t : r.tensors) {
      if (t.dtype() != DType::kFloat32) out.tensors.push_back(t);
    }
    return out;
  };
  ArrayRecord first = others(updates[indices[0]]);
  if (first.tensors.empty()) return first;
  absl::StatusOr<WeightedAccumulator> acc = WeightedAccumulator::Create(first);
  if (!acc.ok()) return Prefixed(fn, acc.status());
  for (const size_t k : indices) {
    absl::Status s = acc->Add(others(updates[k]), 1.0);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(fn, ": update ", k, ": ", s.message()));
    }
  }
  absl::StatusOr<ArrayRecord> mean = std::move(*acc).Average();
  if (!mean.ok()) return Prefixed(fn, mean.status());
  return mean;
}

// A total order on records of one layout that does not depend on their position: float32
// tensors compare value by value (so a tie is broken the same way whatever the arrival
// order), then the raw bytes of all tensors decide.
bool BytesLess(const ArrayRecord& a, const ArrayRecord& b) {
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (a.tensors[i].dtype() != DType::kFloat32) continue;
    auto x = a.tensors[i].values<float>();
    auto y = b.tensors[i].values<float>();
    auto diff = std::mismatch(x.begin(), x.end(), y.begin());
    if (diff.first != x.end()) return *diff.first < *diff.second;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const int c = a.tensors[i].data().compare(b.tensors[i].data());
    if (c != 0) return c < 0;
  }
  return false;
}

// Applies reduce(column, n) -> float to every float32 coordinate, where
// column holds that coordinate's n values (in update order; reduce may
// reorder them). Other tensors get MeanOfOthers.
template <typename Reduce>
absl::StatusOr<ArrayRecord> Coordinatewise(
    absl::Span<const ArrayRecord> updates, absl::string_view fn,
    Reduce reduce) {
  TESSERA_RETURN_IF_ERROR(Validate(updates, fn));
  const size_t n = updates.size();
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord others, MeanOfOthers(updates, all, fn));
  ArrayRecord out;
  out.tensors.reserve(updates[0].tensors.size());
  size_t next_other = 0;
  std::vector<float> columns(kBlock * n);
  for (size_t i = 0; i < updates[0].tensors.size(); ++i) {
    if (updates[0].tensors[i].dtype() != DType::kFloat32) {
      out.tensors.push_back(std::move(others.tensors[next_other++]));
      continue;
    }
    Tensor result = updates[0].tensors[i];
    auto dst = result.mutable_values<float>();
    for (size_t start = 0; start < dst.size(); start += kBlock) {
      const size_t len = std::min(kBlock, dst.size() - start);
      for (size_t k = 0; k < n; ++k) {
        const float* src = updates[k].tensors[i].values<float>().data() + start;
        for (size_t j = 0; j < len; ++j) columns[j * n + k] = src[j];
      }
      for (size_t j = 0; j < len; ++j) {
        dst[start + j] = reduce(columns.data() + j * n, n);
      }
    }
    out.tensors.push_back(std::move(result));
  }
  return out;
}

}  // namespace

absl::StatusOr<ArrayRecord> CoordinateMedian(
    absl::Span<const ArrayRecord> updates) {
  return Coordinatewise(updates, "CoordinateMedian", [](float* v, size_t n) {
    const size_t mid = n / 2;
    std::nth_element(v, v + mid, v + n);
    if (n % 2 == 1) return v[mid];
    const float below = *std::max_element(v, v + mid);
    return static_cast<float>(
        (static_cast<double>(below) + static_cast<double>(v[mid])) / 2.0);
  });
}

absl::StatusOr<ArrayRecord> TrimmedMean(absl::Span<const ArrayRecord> updates,
                                        double trim_fraction) {
  if (!(trim_fraction >= 0.0 && trim_fraction < 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TrimmedMean: trim_fraction must be in [0, 0.5), got ", trim_fraction));
  }
  const size_t n = updates.size();
  const auto t = static_cast<size_t>(
      std::floor(trim_fraction * static_cast<double>(n) + 1e-9));
  if (n > 0 && 2 * t >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("TrimmedMean: trimming ", t, " values from each end of ",
                     n, " updates leaves nothing to average (trim_fraction ",
                     trim_fraction, ")"));
  }
  return Coordinatewise(updates, "TrimmedMean", [t](float* v, size_t count) {
    if (t > 0) {
      std::nth_element(v, v + t, v + count);  // v[0, t): the t smallest
      std::nth_element(v + t, v + (count - t), v + count);  // the t largest
    }
    // Sum the kept values in sorted order: nth_element leaves them in an order that depends
    // on the updates' arrival, and float addition is not associative.
    std::sort(v + t, v + (count - t));
    double sum = 0.0;
    for (size_t j = t; j < count - t; ++j) sum += v[j];
    return static_cast<float>(sum / static_cast<double>(count - 2 * t));
  });
}

absl::StatusOr<std::vector<size_t>> KrumSelect(
    absl::Span<const ArrayRecord> updates, size_t byzantine,
    size_t num_selected) {
  TESSERA_RETURN_IF_ERROR(Validate(updates, "KrumSelect"));
  const size_t n = updates.size();
  // n >= 2f + 3, written so that a huge f cannot overflow.
  if (n < 3 || (n - 3) / 2 < byzantine) {
    return absl::InvalidArgumentError(
        absl::StrCat("KrumSelect: Krum needs n >= 2f + 3 updates; got n = ", n,
                     " with f = ", byzantine));
  }
  if (num_selected == 0 || num_selected > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("KrumSelect: num_selected must be in [1, ", n, "], got ",
                     num_selected));
  }

  // Squared distances, upper triangle, summed block by block.
  std::vector<double> dist(n * n, 0.0);
  std::vector<const float*> base(n);
  for (size_t i = 0; i < updates[0].tensors.size(); ++i) {
    if (updates[0].tensors[i].dtype() != DType::kFloat32) continue;
    for (size_t k = 0; k < n; ++k) {
      base[k] = updates[k].tensors[i].values<float>().data();
    }
    const auto size = static_cast<size_t>(updates[0].tensors[i].numel());
    for (size_t start = 0; start < size; start += kBlock) {
      const size_t len = std::min(kBlock, size - start);
      for (size_t a = 0; a < n; ++a) {
        const float* pa = base[a] + start;
        for (size_t b = a + 1; b < n; ++b) {
          const float* pb = base[b] + start;
          double sum = 0.0;
          for (size_t j = 0; j < len; ++j) {
            const double d =
                static_cast<double>(pa[j]) - static_cast<double>(pb[j]);
            sum += d * d;
          }
          dist[a * n + b] += sum;
        }
      }
    }
  }

  const size_t neighbours = n - byzantine - 2;
  std::vector<double> scores(n);
  std::vector<double> row;
  row.reserve(n - 1);
  for (size_t a = 0; a < n; ++a) {
    row.clear();
    for (size_t b = 0; b < n; ++b) {
      if (b != a) row.push_back(a < b ? dist[a * n + b] : dist[b * n + a]);
    }
    std::sort(row.begin(), row.end());
    scores[a] = std::accumulate(row.begin(), row.begin() + neighbours, 0.0);
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  // Equal scores are broken by the updates' bytes, not their position, so the selection
  // does not depend on arrival order.
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (scores[x] != scores[y]) return scores[x] < scores[y];
    return BytesLess(updates[x], updates[y]);
  });
  order.resize(num_selected);
  return order;
}

absl::StatusOr<ArrayRecord> MultiKrum(absl::Span<const ArrayRecord> updates,
                                      size_t byzantine, size_t num_selected) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<size_t> selected,
                           KrumSelect(updates, byzantine, num_selected));
  std::sort(selected.begin(), selected.end());
  TESSERA_ASSIGN_OR_RETURN(WeightedAccumulator acc,
                           WeightedAccumulator::Create(updates[0]));
  for (const size_t k : selected) {
    absl::Status s = acc.Add(updates[k], 1.0);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("MultiKrum: update ", k, ": ", s.message()));
    }
  }
  absl::StatusOr<ArrayRecord> mean = std::move(acc).Average();
  if (!mean.ok()) return Prefixed("MultiKrum", mean.status());
  return mean;
}

}  // namespace aggregation
}  // namespace tessera
