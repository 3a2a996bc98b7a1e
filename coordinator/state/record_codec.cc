#include "coordinator/state/record_codec.h"

#include <climits>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/serde/tensor_stream.h"
#include "tessera/wire/v1/tensor.pb.h"

namespace tessera {
namespace coordinator {
namespace state_internal {

absl::StatusOr<std::string> SerializeRecord(
    const google::protobuf::MessageLite& message, absl::string_view what) {
  const size_t size = message.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", size,
                     " bytes serialized; the storage limit is ", INT_MAX));
  }
  std::string out;
  if (!message.SerializeToString(&out)) {
    return absl::InternalError(absl::StrCat("cannot serialize ", what));
  }
  return out;
}

absl::Status ParseRecord(absl::string_view bytes, absl::string_view what,
                         google::protobuf::MessageLite* message) {
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " (", bytes.size(),
                                            " bytes) does not parse"));
  }
  return absl::OkStatus();
}

namespace {

// The record without its data (and with `pieces` when > 1), then the data field's tag and
// the length of the data stored with it, `stored_bytes`.
absl::StatusOr<std::string> EncodeHead(const Tensor& tensor, uint32_t pieces,
                                       size_t stored_bytes) {
  storage::v1::StoredTensor stored;
  stored.set_name(tensor.name());
  stored.set_dtype(
      static_cast<wire::v1::DType>(static_cast<int>(tensor.dtype())));
  for (int64_t d : tensor.shape()) stored.add_shape(d);
  if (pieces > 1) stored.set_pieces(pieces);
  const std::string what = absl::StrCat("tensor \"", tensor.name(), "\"");
  TESSERA_ASSIGN_OR_RETURN(std::string out, SerializeRecord(stored, what));
  if (stored_bytes == 0) return out;
  char head[11];
  size_t n = 0;
  head[n++] = static_cast<char>((4 << 3) | 2);  // field 4, length-delimited
  uint64_t v = stored_bytes;  // its length as a varint
  for (; v >= 0x80; v >>= 7) head[n++] = static_cast<char>((v & 0x7f) | 0x80);
  head[n++] = static_cast<char>(v);
  const size_t size = out.size() + n + stored_bytes;
  if (size > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", size, " bytes serialized; the storage limit is ", INT_MAX));
  }
  out.append(head, n);
  return out;
}

}  // namespace

absl::StatusOr<std::string> EncodeTensorHead(const Tensor& tensor) {
  // The data follows straight from the tensor: the same bytes as SerializeToString (data is
  // field 4, the last, and an empty one is omitted) without copying the data into a
  // serialization (docs/architecture.md, "Coordinator memory").
  return EncodeHead(tensor, 0, tensor.data().size());
}

absl::StatusOr<std::string> EncodePiecedTensorHead(const Tensor& tensor, uint32_t pieces,
                                                   size_t first_piece_bytes) {
  if (pieces < 2 || first_piece_bytes > tensor.data().size()) {
    return absl::InternalError(absl::StrCat("tensor \"", tensor.name(), "\" of ",
                                            tensor.data().size(), " bytes cannot be stored in ",
                                            pieces, " pieces of ", first_piece_bytes));
  }
  // Field 5 (pieces) is serialized before the data field here; a parser takes fields in any
  // order.
  return EncodeHead(tensor, pieces, first_piece_bytes);
}

absl::StatusOr<std::string> EncodeTensor(const Tensor& tensor) {
  TESSERA_ASSIGN_OR_RETURN(std::string out, EncodeTensorHead(tensor));
  out.reserve(out.size() + tensor.data().size());
  out.append(tensor.data());
  return out;
}

absl::StatusOr<Tensor> DecodeTensor(absl::string_view bytes,
                                    absl::string_view what) {
  storage::v1::StoredTensor stored;
  TESSERA_RETURN_IF_ERROR(ParseRecord(bytes, what, &stored));
  if (stored.pieces() > 1) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is piece 0 of ", stored.pieces(),
                                            ", not a whole tensor"));
  }
  return TensorFromStored(std::move(stored), what);
}

absl::StatusOr<Tensor> TensorFromStored(storage::v1::StoredTensor stored,
                                        absl::string_view what) {
  absl::StatusOr<DType> dtype = DTypeFromWire(static_cast<int>(stored.dtype()));
  if (!dtype.ok()) {
    return absl::DataLossError(
        absl::StrCat("stored ", what, ": ", dtype.status().message()));
  }
  std::vector<int64_t> shape(stored.shape().begin(), stored.shape().end());
  absl::StatusOr<Tensor> tensor =
      Tensor::Create(std::move(*stored.mutable_name()), *dtype,
                     std::move(shape), std::move(*stored.mutable_data()));
  if (!tensor.ok()) {
    return absl::DataLossError(absl::StrCat(
        "stored ", what, " is invalid: ", tensor.status().message()));
  }
  return tensor;
}

storage::v1::ModelManifest MakeManifest(const ArrayRecord& model) {
  storage::v1::ModelManifest manifest;
  manifest.set_num_tensors(static_cast<uint32_t>(model.tensors.size()));
  manifest.set_total_bytes(model.TotalBytes());
  manifest.set_sha256(DigestArrayRecord(model));
  return manifest;
}

absl::Status VerifyManifest(const storage::v1::ModelManifest& manifest,
                            const ArrayRecord& model, absl::string_view what) {
  if (manifest.num_tensors() != model.tensors.size()) {
    return absl::DataLossError(
        absl::StrCat(what, ": manifest lists ", manifest.num_tensors(),
                     " tensors, found ", model.tensors.size()));
  }
  if (manifest.total_bytes() != model.TotalBytes()) {
    return absl::DataLossError(
        absl::StrCat(what, ": manifest lists ", manifest.total_bytes(),
                     " data bytes, found ", model.TotalBytes()));
  }
  const std::string digest = DigestArrayRecord(model);
  if (manifest.sha256() != digest) {
    return absl::DataLossError(
        absl::StrCat(what, ": SHA-256 mismatch (manifest ",
                     absl::BytesToHexString(manifest.sha256()), ", data ",
                     absl::BytesToHexString(digest), ")"));
  }
  return absl::OkStatus();
}

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera
