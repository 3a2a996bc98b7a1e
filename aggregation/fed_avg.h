// File: fed_avg.h
// Federated averaging (McMahan et al. 2017): the example-weighted mean of
// client updates, folded one update at a time so the coordinator never holds
// more than one running sum of the model, however many clients report, and
// with the same result bits whatever order the updates arrive in.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto acc,
//   aggregation::WeightedAccumulator::Create(global)); for (const Report& r :
//   reports) {
//     TESSERA_RETURN_IF_ERROR(acc.Add(r.weights, r.num_examples));
//   }
//   TESSERA_ASSIGN_OR_RETURN(ArrayRecord next, std::move(acc).Average());
#ifndef TESSERA_AGGREGATION_FED_AVG_H_
#define TESSERA_AGGREGATION_FED_AVG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "aggregation/internal/binned_sum.h"
#include "core/model/tensor.h"

namespace tessera {
namespace aggregation {

// A running weighted sum sum_k(w_k * x_k) of ArrayRecords with one fixed
// layout, whose result is the same bits whatever the order of the Add() calls.
//
// Exactness: each product w_k * x_k is rounded once to double (exact when x is float32,
// float16, bfloat16 or an integer below 2^29 and w an integer below 2^24, e.g. an example
// count), then folded into integer bins at fixed binary positions
// (aggregation_internal::BinnedSum): the sum is exact up to a truncation of each product to
// a grid at least 2^-62 times the tensor's largest |w_k * x_k|. The weights are summed the same
// way. Average() converts each exact sum to double, divides by the exact total weight in
// double and rounds once more to the tensor's dtype. Every step is a fixed function of the
// multiset {(x_k, w_k)}, so anyone can recompute a round's mean from its updates and weights
// in any order (docs/aggregation.md).
//
// Memory: three int64 and a one-byte level per parameter (25 bytes; 6.25 times a float32
// model), whatever the number of updates; at most BinnedSum::kMaxTerms (2^32) updates.
//
// Not thread-safe: callers serialise Add(). Movable, not copyable.
class WeightedAccumulator {
 public:
  // Errors: INVALID_ARGUMENT if `layout` has duplicate tensor names. Only the
  // names, dtypes and shapes of `layout` are used; its values are not read.
  static absl::StatusOr<WeightedAccumulator> Create(const ArrayRecord& layout);

  WeightedAccumulator(WeightedAccumulator&&) = default;
  WeightedAccumulator& operator=(WeightedAccumulator&&) = default;
  WeightedAccumulator(const WeightedAccumulator&) = delete;
  WeightedAccumulator& operator=(const WeightedAccumulator&) = delete;

  // Adds weight * update. The update is validated completely before anything is
  // folded, so on error the accumulator is unchanged. Errors: INVALID_ARGUMENT
  // if the layout differs from Create's (names, order, dtypes, shapes; the
  // message names the tensor), if weight is not finite, <= 0 or above FLT_MAX,
  // or if a float tensor holds NaN or Inf (the message names tensor and index);
  // OUT_OF_RANGE if weight * value overflows a double (float64 tensors only);
  // RESOURCE_EXHAUSTED after 2^32 updates.
  absl::Status Add(const ArrayRecord& update, double weight);

  // Add() for an update whose float values the caller has already verified finite (for
  // example a TensorStreamReader with require_finite): checks the layout and the weight
  // but skips the NaN/Inf scan.
  // REQUIRES: every float value of `update` is finite. Errors: as Add() minus NaN/Inf.
  absl::Status AddFinite(const ArrayRecord& update, double weight);

  // Sum of the weights of the updates added so far (exact sum, rounded once).
  double total_weight() const;
  // Number of updates added so far.
  size_t count() const { return count_; }

  // Returns sum / total_weight in the layout's dtypes, consuming the
  // accumulator. Integer results are rounded to nearest (halves away from zero)
  // and saturated to the dtype's range; bool is 1 where the weighted mean is >=
  // 0.5. Errors: FAILED_PRECONDITION if count() == 0; OUT_OF_RANGE if a float64
  // mean overflows (only possible for values near DBL_MAX).
  absl::StatusOr<ArrayRecord> Average() &&;

  // Bytes held for the running sums (25 per parameter).
  uint64_t memory_bytes() const;
  // memory_bytes() of an accumulator created for `layout`, without making one.
  static uint64_t MemoryBytesFor(const ArrayRecord& layout);

  // Partial sums: adds everything `other` holds, so that an accumulator per process (or
  // thread) over disjoint sets of updates, merged in any order, ends with exactly the bits of
  // one accumulator given every update (BinnedSum::Merge). `other` is unchanged. Errors:
  // INVALID_ARGUMENT if its layout differs from this one's (names, order, dtypes, shapes);
  // RESOURCE_EXHAUSTED if the two hold more updates together than Add() accepts. On error
  // this accumulator is unchanged.
  absl::Status Merge(const WeightedAccumulator& other);

  // The exact running sums as bytes, for another process to Deserialize and Merge: the
  // update count (8 bytes), then 25 bytes per parameter and 25 for the weight sum. The layout
  // is not included; both sides know it.
  std::string Serialize() const;
  // The accumulator Serialize() wrote for `layout`. Errors: INVALID_ARGUMENT naming what
  // does not fit (the length for this layout, the update count above the limit, a tensor's
  // malformed sums), and Create's errors.
  static absl::StatusOr<WeightedAccumulator> Deserialize(const ArrayRecord& layout,
                                                         absl::string_view bytes);

 private:
  struct Spec {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  WeightedAccumulator(std::vector<Spec> specs, std::vector<aggregation_internal::BinnedSum> sums);
  // CheckSameLayout against the layout given to Create.
  absl::Status CheckLayout(const ArrayRecord& update) const;

  std::vector<Spec> specs_;
  std::vector<aggregation_internal::BinnedSum> sums_;  // one per tensor
  aggregation_internal::BinnedSum weights_{1};
  size_t count_ = 0;
};

// The weighted average of `updates`: sum_k(weights[k] * updates[k]) /
// sum_k(weights[k]). Errors: INVALID_ARGUMENT if `updates` is empty, the spans
// differ in length, or any update is rejected by WeightedAccumulator::Add (the
// message names its index); OUT_OF_RANGE as for Average().
absl::StatusOr<ArrayRecord> FedAvg(absl::Span<const ArrayRecord> updates,
                                   absl::Span<const double> weights);

// global += delta, tensor by tensor. Integers are added exactly; float16 and
// bfloat16 are added in float32 and rounded back to nearest even. On error
// `global` is unchanged. Errors: INVALID_ARGUMENT if the layouts differ or
// `delta` holds NaN or Inf; OUT_OF_RANGE if a result overflows its dtype
// (integer overflow, a bool leaving {0,1}, or a float sum becoming Inf/NaN).
// The message names the tensor and index.
absl::Status ApplyDelta(ArrayRecord& global, const ArrayRecord& delta);

// The elements [offset, offset + delta.numel()) of `global` += `delta` (any shape; its
// elements in order), each added exactly as ApplyDelta adds it, so a tensor updated range by
// range has ApplyDelta's bits. On error `global` is unchanged. Errors: INVALID_ARGUMENT for
// another dtype, a range past the end of `global`, or NaN/Inf in `delta`; OUT_OF_RANGE as
// ApplyDelta, naming `global` and the index in it.
absl::Status ApplyDeltaRange(Tensor& global, size_t offset, const Tensor& delta);

}  // namespace aggregation
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_FED_AVG_H_
