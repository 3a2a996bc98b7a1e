// File: compressed_upload.h
// The wire side of update compression (update_codec.h, docs/compression.md): the run's
// CompressionConfig as codec options, and the coordinator's decoding of a received upload
// back to the float32 update it folds.
#ifndef TESSERA_CORE_SERDE_COMPRESSED_UPLOAD_H_
#define TESSERA_CORE_SERDE_COMPRESSED_UPLOAD_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/model/tensor.h"
#include "core/serde/update_codec.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {

// True when `config` asks for an encoding (method other than NONE).
bool IsCompressed(const wire::v1::CompressionConfig& config);

// The codec options of `config`. INVALID_ARGUMENT for a method number this build does not
// know (a newer peer) and for options ValidateCompressionOptions refuses.
absl::StatusOr<CompressionOptions> CompressionOptionsFromProto(
    const wire::v1::CompressionConfig& config);

// The most tensor bytes a compressed upload for a model with `layout` may carry: twice the
// float32 bytes (top-k of every value, the worst case), plus 16 bytes per tensor.
uint64_t MaxCompressedUploadBytes(const ArrayRecord& layout);

// The float32 update that `received` stands for, as the upload's header `config` says:
// `received` itself when not compressed, else DecodeUpdate against `layout` (the model).
// Errors: INVALID_ARGUMENT naming the tensor and what is wrong (update_codec.h).
absl::StatusOr<ArrayRecord> DecodeUpload(const wire::v1::CompressionConfig& config,
                                         ArrayRecord received, const ArrayRecord& layout);

}  // namespace tessera

#endif  // TESSERA_CORE_SERDE_COMPRESSED_UPLOAD_H_
