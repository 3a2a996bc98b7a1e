// File: update_dp.h
// Differential privacy on whole model updates (ArrayRecords), shared by the client that
// prepares an update and the coordinator that aggregates them (docs/privacy.md). Only
// float32 tensors carry the update under DP: other tensors (e.g. int64 batch-norm
// counters) are zeroed, since they would bypass clipping and noise; the global model keeps
// their values.
//
// Example (coordinator, central DP):
//   // `mean` is the plain mean of `count` updates each clipped by ClipUpdate.
//   TESSERA_RETURN_IF_ERROR(dp::NoisedMeanFromMean(mean, count, expected, clip, z, rng));
#ifndef TESSERA_PRIVACY_DP_UPDATE_DP_H_
#define TESSERA_PRIVACY_DP_UPDATE_DP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model/tensor.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

// Zeroes the non-float32 tensors of `update` and scales its float32 tensors so that their
// joint L2 norm is at most `clip` (ClipTensorsToL2Norm). Returns the norm before clipping.
double ClipUpdate(ArrayRecord& update, double clip);

// Zeroes every tensor of `update` when any float32 value is NaN or infinite (a diverged local
// training run); returns whether it did. Under DP such a client still sends its (zero)
// update so that the round's noise is complete.
bool ZeroIfNotFinite(ArrayRecord& update);

// The float32 values of `update`, tensor after tensor in record order.
std::vector<float> FlattenFloat32(const ArrayRecord& update);

// The inverse of FlattenFloat32 for `layout`, every value times `scale`; the other tensors
// are zero. INVALID_ARGUMENT if `values` does not hold exactly the float32 values of layout.
absl::StatusOr<ArrayRecord> UnflattenFloat32(absl::Span<const float> values,
                                             const ArrayRecord& layout, double scale);

// Central DP-FedAvg (McMahan et al. 2018) from the plain mean of `count` clipped updates:
// (sum + noise) / expected, the fixed-denominator estimator the accountant assumes, where the
// sum of updates has L2 sensitivity `sum_sensitivity` and the noise has noise multiplier
// `noise_multiplier`. The noise is the grid discrete Gaussian of grid_gaussian.h over all
// float32 values together (sensitivity sum_sensitivity / expected on the mean), so no
// floating-point artifact of the sampler reaches the output (Mironov 2012); its stddev is
// at most a relative sqrt(d) 2^-20 z above noise_multiplier * sum_sensitivity / expected.
// Non-float32 tensors are zeroed. Errors: INVALID_ARGUMENT for expected, sum_sensitivity or
// noise_multiplier not finite and > 0, or a non-finite value (mean untouched); INTERNAL if
// the randomness fails.
absl::Status NoisedMeanFromMean(ArrayRecord& mean, uint64_t count, double expected,
                                double sum_sensitivity, double noise_multiplier,
                                SecureRandom& rng);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_UPDATE_DP_H_
