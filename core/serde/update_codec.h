// File: update_codec.h
// Compression of a client's float32 update for the wire (docs/compression.md): float16,
// bfloat16, 8-bit stochastic quantization with one scale per block, or top-k sparsification,
// plus the client-side error feedback that carries what compression lost into the next update.
// The coordinator decodes every upload back to float32 before it is folded, so aggregation,
// strategies and differential privacy see float32 as without compression.
//
// Payload of one float32 tensor of n values (little-endian):
//   kFloat16 / kBFloat16: n x uint16 (IEEE binary16 / the top half of a binary32), rounded
//     to nearest even.
//   kInt8: ceil(n / B) float32 scales, then n int8 values in [-127, 127]; value i decodes to
//     q_i * scale[i / B] (B = block_size, or n when block_size is 0). Encoding picks
//     scale = max|x| / 127 over the block and rounds x / scale stochastically (floor(y + u),
//     u uniform in [0, 1) from a counter-based generator), so decoding is unbiased.
//   kTopK: k x uint32 indices, strictly increasing and < n, then k float32 values; every other
//     value decodes to 0. k = max(1, ceil(fraction * n)) capped at n; the largest magnitudes
//     are kept (ties: the lower index).
// In an encoded update (EncodeUpdate) each float32 tensor becomes a uint8 tensor of the same
// name and shape [payload bytes]; tensors of any other dtype travel unchanged.
#ifndef TESSERA_CORE_SERDE_UPDATE_CODEC_H_
#define TESSERA_CORE_SERDE_UPDATE_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/model/tensor.h"

namespace tessera {

enum class CompressionMethod { kNone = 0, kFloat16 = 1, kBFloat16 = 2, kInt8 = 3, kTopK = 4 };

// Limits on the options (checked by ValidateCompressionOptions).
inline constexpr uint32_t kMaxCompressionBlockSize = 1u << 20;
inline constexpr double kMinTopKFraction = 1e-6;

struct CompressionOptions {
  CompressionMethod method = CompressionMethod::kNone;
  // kInt8: values per scale; 0 means one scale for the whole tensor.
  uint32_t block_size = 256;
  // kTopK: fraction of each tensor's values sent, in [kMinTopKFraction, 1].
  double topk_fraction = 0.01;
};

// "none", "fp16", "bf16", "int8", "topk" (the run config's spelling), and back.
absl::string_view CompressionMethodName(CompressionMethod method);
absl::StatusOr<CompressionMethod> CompressionMethodFromName(absl::string_view name);

// INVALID_ARGUMENT naming the field: block_size over kMaxCompressionBlockSize, topk_fraction
// not finite or outside [kMinTopKFraction, 1].
absl::Status ValidateCompressionOptions(const CompressionOptions& options);

// IEEE binary16 and bfloat16 bit patterns of a float, rounded to nearest even (overflow gives
// infinity, NaN stays NaN), and back (exact).
uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);
uint16_t FloatToBFloat16Bits(float value);
float BFloat16BitsToFloat(uint16_t bits);

// A uniform number in [0, 1) (24 random bits) that depends only on (seed, counter):
// SplitMix64 of seed + counter * golden ratio (Steele et al. 2014), so the stochastic
// rounding of value i of a tensor is reproducible without generator state.
float CounterUniform(uint64_t seed, uint64_t counter);

// The number of kept values for top-k of n values.
uint64_t TopKCount(uint64_t n, double fraction);

// The payload of `values` (format above). `seed` drives kInt8's rounding.
// Errors: INVALID_ARGUMENT on a NaN or Inf (naming the index), on a float16 overflow
// (|x| > 65504) and on invalid options.
absl::StatusOr<std::string> EncodeValues(absl::Span<const float> values,
                                         const CompressionOptions& options, uint64_t seed);

// Decodes a payload of `out.size()` values into `out`. Errors (INVALID_ARGUMENT, naming what
// is wrong): a payload size that does not fit the method and n, a scale that is negative or
// not finite, an int8 of -128, a top-k index out of range or not strictly increasing, a
// top-k value or float16/bfloat16 that is not finite.
absl::Status DecodeValues(absl::string_view payload, const CompressionOptions& options,
                          absl::Span<float> out);

// An update ready to send: every float32 tensor of `update` encoded (tensor t, in order, with
// seed Mix(seed, t)); other tensors copied. Errors: those of EncodeValues, naming the tensor.
absl::StatusOr<ArrayRecord> EncodeUpdate(const ArrayRecord& update,
                                         const CompressionOptions& options, uint64_t seed);

// The float32 update an encoded upload stands for, with the layout of `layout` (the model):
// same names in the same order, each float32 tensor of the layout a rank-1 uint8 payload,
// every other tensor identical in dtype and shape. Errors: INVALID_ARGUMENT naming the tensor
// (missing, extra, misplaced, wrong dtype/shape, or a bad payload as DecodeValues).
absl::StatusOr<ArrayRecord> DecodeUpdate(const ArrayRecord& encoded, const ArrayRecord& layout,
                                         const CompressionOptions& options);

// Client-side error feedback (Seide et al. 2014; Karimireddy et al. 2019, "Error Feedback
// Fixes SignSGD"): the residual r (what the last encoding lost) is added to the next update
// before it is encoded, and r becomes (update + r) - decode(encode(update + r)). Summed over
// rounds, the decoded updates then equal the summed true updates minus the last residual.
// State lives in memory: a new `key` (the run) or another layout starts from r = 0, and so
// does a restarted client (the residual is lost, never wrong).
class ErrorFeedback {
 public:
  // Encodes update + residual and keeps the new residual. With `enabled` false it encodes
  // `update` alone and keeps no residual. Errors: those of EncodeUpdate and DecodeUpdate.
  absl::StatusOr<ArrayRecord> Encode(absl::string_view key, ArrayRecord update,
                                     const CompressionOptions& options, uint64_t seed,
                                     bool enabled = true);
  // The current residual (empty before the first Encode or after a reset).
  const ArrayRecord& residual() const { return residual_; }

 private:
  std::string key_;
  ArrayRecord residual_;
};

}  // namespace tessera

#endif  // TESSERA_CORE_SERDE_UPDATE_CODEC_H_
