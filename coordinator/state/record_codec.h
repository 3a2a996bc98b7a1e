// File: record_codec.h
// Turns the values of the coordinator's RocksDB records into domain objects and
// back (docs/storage_format.md). Internal to coordinator/state and free of
// RocksDB, so the validation rules can be read in one place.
#ifndef TESSERA_COORDINATOR_STATE_RECORD_CODEC_H_
#define TESSERA_COORDINATOR_STATE_RECORD_CODEC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"
#include "google/protobuf/message_lite.h"
#include "tessera/storage/v1/records.pb.h"

namespace tessera {
namespace coordinator {
namespace state_internal {

// Serializes `message`. INVALID_ARGUMENT naming `what` when it is over
// protobuf's 2 GiB limit; INTERNAL if serialization fails otherwise.
absl::StatusOr<std::string> SerializeRecord(
    const google::protobuf::MessageLite& message, absl::string_view what);

// Parses a stored value into `message`. DATA_LOSS naming `what` when the bytes
// are not a valid serialization.
absl::Status ParseRecord(absl::string_view bytes, absl::string_view what,
                         google::protobuf::MessageLite* message);

// The serialized StoredTensor of `tensor`; errors as SerializeRecord.
absl::StatusOr<std::string> EncodeTensor(const Tensor& tensor);

// The bytes of EncodeTensor(tensor) that come before the tensor's data: EncodeTensor(tensor)
// is EncodeTensorHead(tensor) followed by tensor.data(). A writer that takes its value in
// parts (RocksDB's SliceParts) stores a tensor without a serialized copy of its data.
absl::StatusOr<std::string> EncodeTensorHead(const Tensor& tensor);

// The head of a tensor stored in `pieces` pieces (> 1, docs/storage_format.md "Models"): the
// record with `pieces` set and without its data, then the data field's tag and the length of
// piece 0, `first_piece_bytes`; piece 0 of the data follows.
absl::StatusOr<std::string> EncodePiecedTensorHead(const Tensor& tensor, uint32_t pieces,
                                                   size_t first_piece_bytes);

// Parses and validates one StoredTensor. DATA_LOSS naming `what` when the bytes
// do not parse, the dtype is unknown, or Tensor::Create rejects the contents.
absl::StatusOr<Tensor> DecodeTensor(absl::string_view bytes,
                                    absl::string_view what);

// The tensor a parsed StoredTensor holds (its data whole: a pieced tensor's pieces appended
// to `data`). DATA_LOSS naming `what` as DecodeTensor.
absl::StatusOr<Tensor> TensorFromStored(storage::v1::StoredTensor stored,
                                        absl::string_view what);

// Count, total data bytes and DigestArrayRecord of `model`.
storage::v1::ModelManifest MakeManifest(const ArrayRecord& model);

// DATA_LOSS naming `what` unless `model` matches `manifest` (count, bytes and
// digest).
absl::Status VerifyManifest(const storage::v1::ModelManifest& manifest,
                            const ArrayRecord& model, absl::string_view what);

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_RECORD_CODEC_H_
