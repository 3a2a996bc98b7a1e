// The update a client sends: trained weights minus the global weights, tensor by tensor.
#ifndef TESSERA_CLIENT_RUNTIME_UPDATE_DELTA_H_
#define TESSERA_CLIENT_RUNTIME_UPDATE_DELTA_H_

#include "absl/status/statusor.h"
#include "core/model/tensor.h"

namespace tessera {

// trained - global for every tensor (same layout required: INVALID_ARGUMENT otherwise),
// computed in trained's own buffers (pass it with std::move to save a copy).
// Float types subtract in their own precision (float16/bfloat16: UNIMPLEMENTED); integer
// types subtract exactly; bool tensors give int8 0/1/-1 is not representable, so bool
// tensors must be unchanged (INVALID_ARGUMENT otherwise) and give all-false.
absl::StatusOr<ArrayRecord> ComputeDelta(ArrayRecord trained, const ArrayRecord& global);

// The update under differential privacy (docs/privacy.md): a copy of `delta`, all zero (with
// a warning) when local training diverged to NaN or Inf, since the client must still take
// part for its share of the noise to reach the sum; and, when `clip` > 0, clipped to L2 norm
// `clip` over its float32 tensors (dp::ClipUpdate, central DP). `within_clip`, when set, says
// whether the update needed no clipping (adaptive clipping's bit).
ArrayRecord DpDelta(const ArrayRecord& delta, double clip, bool* within_clip = nullptr);

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_UPDATE_DELTA_H_
