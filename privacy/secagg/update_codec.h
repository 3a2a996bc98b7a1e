// File: update_codec.h
// A model update as secure aggregation inputs and back (docs/secagg.md, "Quantization"):
// what a client masks for a delta, and how the coordinator turns the unmasked sum into the
// weighted FedAvg mean. Client and coordinator both use these, so they agree exactly.
//
// Only float32 tensors are summed; other tensors (e.g. int64 batch-norm counters) keep the
// global model's value (their mean delta is zero).
#ifndef TESSERA_PRIVACY_SECAGG_UPDATE_CODEC_H_
#define TESSERA_PRIVACY_SECAGG_UPDATE_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/tensor.h"
#include "privacy/secagg/protocol.h"
#include "privacy/secagg/quantizer.h"

namespace tessera::secagg {

// The tensors of `layout` that are summed, in order, with their lengths.
std::vector<TensorSpec> SummedTensors(const ArrayRecord& layout);

// The quantized inputs of a client whose update is `delta` and FedAvg weight `weight`
// (its example count, 1..max_weight): weight * clip(value), scaled and stochastically
// rounded mod 2^b. Errors: INVALID_ARGUMENT for NaN values or a weight out of range.
absl::StatusOr<std::vector<QuantizedTensor>> QuantizeUpdate(const ArrayRecord& delta,
                                                            uint64_t weight,
                                                            const QuantizerParams& params,
                                                            const UniformSource& uniform);

// The weighted mean update: each summed tensor is Dequantize(sum) / weight_sum, the others
// are zero, with `layout`'s names, dtypes and shapes. Errors: INVALID_ARGUMENT if `sums`
// does not match SummedTensors(layout) or weight_sum is 0.
absl::StatusOr<ArrayRecord> MeanDeltaFromSum(const std::vector<QuantizedTensor>& sums,
                                             uint64_t weight_sum,
                                             const QuantizerParams& params,
                                             const ArrayRecord& layout);

// SHA-256 of the sums' values then weight_sum, each as 8 little-endian bytes: the aggregate's
// fingerprint reported in the round status, which anyone holding the quantized inputs can
// recompute.
std::string SumDigest(const std::vector<QuantizedTensor>& sums, uint64_t weight_sum);

// Uniform doubles in [0, 1) from an AES-CTR keystream under a fresh random key, for
// stochastic rounding. Errors: INTERNAL if OpenSSL fails.
absl::StatusOr<UniformSource> SecureUniformSource();

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_UPDATE_CODEC_H_
