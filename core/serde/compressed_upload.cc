#include "core/serde/compressed_upload.h"

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {

bool IsCompressed(const wire::v1::CompressionConfig& config) {
  return config.method() != wire::v1::CompressionConfig::NONE;
}

absl::StatusOr<CompressionOptions> CompressionOptionsFromProto(
    const wire::v1::CompressionConfig& config) {
  CompressionOptions o;
  switch (config.method()) {
    case wire::v1::CompressionConfig::NONE: o.method = CompressionMethod::kNone; break;
    case wire::v1::CompressionConfig::FLOAT16: o.method = CompressionMethod::kFloat16; break;
    case wire::v1::CompressionConfig::BFLOAT16: o.method = CompressionMethod::kBFloat16; break;
    case wire::v1::CompressionConfig::INT8: o.method = CompressionMethod::kInt8; break;
    case wire::v1::CompressionConfig::TOPK: o.method = CompressionMethod::kTopK; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("compression.method: unknown method number ", config.method()));
  }
  o.block_size = config.block_size();
  // The fraction matters to the encoder only (a decoder reads k from the payload): unset
  // keeps the default.
  if (config.topk_fraction() != 0) o.topk_fraction = config.topk_fraction();
  TESSERA_RETURN_IF_ERROR(ValidateCompressionOptions(o));
  return o;
}

uint64_t MaxCompressedUploadBytes(const ArrayRecord& layout) {
  return 2 * layout.TotalBytes() + 16 * layout.tensors.size();
}

absl::StatusOr<ArrayRecord> DecodeUpload(const wire::v1::CompressionConfig& config,
                                         ArrayRecord received, const ArrayRecord& layout) {
  if (!IsCompressed(config)) return received;
  TESSERA_ASSIGN_OR_RETURN(CompressionOptions options, CompressionOptionsFromProto(config));
  return DecodeUpdate(received, layout, options);
}

}  // namespace tessera
