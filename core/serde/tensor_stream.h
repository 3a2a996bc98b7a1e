// File: tensor_stream.h
// Streams an ArrayRecord as wire::v1::TensorChunk messages and reassembles it, with the
// limits and the SHA-256 check of docs/wire_protocol.md. This is the only code that turns
// tensors into wire messages and back.
//
// Example (sender):
//   TensorStreamWriter writer(&record);
//   wire::v1::TensorChunk chunk;
//   while (writer.Next(&chunk)) stream->Write(chunk);
// Example (receiver):
//   TensorStreamReader reader(limits);
//   for each chunk: TESSERA_RETURN_IF_ERROR(reader.Add(chunk));
//   TESSERA_ASSIGN_OR_RETURN(ArrayRecord record, std::move(reader).Finish());
#ifndef TESSERA_CORE_SERDE_TENSOR_STREAM_H_
#define TESSERA_CORE_SERDE_TENSOR_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"
#include "tessera/wire/v1/tensor.pb.h"

namespace tessera {

namespace crypto {
class Sha256;
}

// Largest data payload per chunk; keeps every message far below gRPC's 4 MiB default.
inline constexpr size_t kDefaultChunkBytes = 1 << 20;
inline constexpr size_t kMaxChunkBytes = 1 << 20;
// What a client's upload (PushUpdate) sends per chunk. The coordinator's gRPC raises an
// incoming stream's flow-control window to the message it is reading, so each upload
// arrives in bursts of up to one message, and gRPC's TCP reads grow their buffers to the
// bursts and keep the unused part for the next read: with 1 MiB messages every connection
// held about 0.5 MB of read buffers after its upload, 25 MB of the coordinator's peak at 50
// clients (docs/architecture.md, "Coordinator memory"). 256 KiB keeps uploads as fast.
inline constexpr size_t kUploadChunkBytes = 256 << 10;

struct TensorStreamLimits {
  uint32_t max_tensors = 100000;
  uint64_t max_total_bytes = 8ull << 30;  // 8 GiB
  // When set, the stream must match this layout exactly (names, order, dtypes, shapes).
  const ArrayRecord* expected_layout = nullptr;
  // Reject NaN/Inf in float tensors.
  bool require_finite = false;
  // When set (with expected_layout, and without require_finite: INTERNAL), tensors are not
  // assembled at all: each data chunk goes to this sink as it arrives, as (i, bytes, false)
  // for the layout's tensor i, and (i, {}, true) once tensor i has all its bytes (also for a
  // tensor of none). Finish() returns an empty record. A stream then holds one chunk at a
  // time instead of a whole tensor. The sink sees bytes BEFORE the stream's SHA-256 (which
  // covers the whole stream) is checked: whatever it does with them must be undone unless
  // Finish() succeeds, and it checks what it needs of the values (e.g. finiteness). An error
  // from the sink ends the stream with that error.
  std::function<absl::Status(size_t tensor, absl::string_view data, bool end)> on_data;
};

// SCAFFOLD runs (fleet.proto StrategyTask): the global model carries the server control
// variate of tensor X as "scaffold.c/X", and updates carry the change of the client's.
inline constexpr char kScaffoldVariatePrefix[] = "scaffold.c/";
// True for a tensor of SCAFFOLD's control variate ("scaffold.c/...").
bool IsScaffoldVariate(const Tensor& tensor);
// The tensors of `record` that are not SCAFFOLD's variate (the model itself), in order.
ArrayRecord WithoutScaffoldVariate(const ArrayRecord& record);

// SHA-256 of the canonical serialization of `record` (docs/wire_protocol.md), 32 bytes.
std::string DigestArrayRecord(const ArrayRecord& record);

// Produces the chunks of one record. `record` must remain live while the writer is in use.
class TensorStreamWriter {
 public:
  // `digest`, when given, is DigestArrayRecord(*record) computed earlier (the coordinator
  // keeps it with every stored model), which saves hashing the model once per receiver.
  explicit TensorStreamWriter(const ArrayRecord* record,
                              std::optional<std::string> digest = std::nullopt,
                              size_t chunk_bytes = kDefaultChunkBytes);
  ~TensorStreamWriter();
  TensorStreamWriter(const TensorStreamWriter&) = delete;
  TensorStreamWriter& operator=(const TensorStreamWriter&) = delete;

  // Fills `chunk` with the next message; false when the stream is complete.
  bool Next(wire::v1::TensorChunk* chunk);
  // Bytes of tensor data emitted so far.
  uint64_t data_bytes_sent() const { return data_bytes_sent_; }

 private:
  enum class Phase { kBegin, kTensorHeader, kData, kEnd, kDone };
  const ArrayRecord* record_;
  size_t chunk_bytes_;
  Phase phase_ = Phase::kBegin;
  size_t tensor_ = 0;
  size_t offset_ = 0;
  uint64_t data_bytes_sent_ = 0;
  std::optional<std::string> digest_;
  std::unique_ptr<crypto::Sha256> hash_;
};

// Reassembles and validates one record. Errors (all INVALID_ARGUMENT unless noted): a
// message out of order, a data chunk over kMaxChunkBytes or past its tensor's size, a tensor
// that does not match the expected layout, counts or sizes over the limits, NaN/Inf when
// required finite, a truncated stream, or a digest mismatch (DATA_LOSS).
class TensorStreamReader {
 public:
  explicit TensorStreamReader(TensorStreamLimits limits = {});
  ~TensorStreamReader();
  TensorStreamReader(const TensorStreamReader&) = delete;
  TensorStreamReader& operator=(const TensorStreamReader&) = delete;

  // Every byte of tensor data is hashed as it arrives (no second pass at the end).
  absl::Status Add(const wire::v1::TensorChunk& chunk);
  // The same, but a data chunk that carries its whole tensor is taken, not copied: `chunk`'s
  // data is left holding a spare buffer that the next message parsed into it reuses.
  absl::Status Add(wire::v1::TensorChunk&& chunk);
  // True once the end message was accepted.
  bool done() const { return done_; }
  uint64_t data_bytes_received() const { return data_bytes_; }
  // The verified SHA-256 of the stream (DigestArrayRecord of the result). REQUIRES: done().
  const std::string& digest() const { return digest_; }
  // REQUIRES: done(). Otherwise INVALID_ARGUMENT "truncated".
  absl::StatusOr<ArrayRecord> Finish() &&;

 private:
  absl::Status FinishTensor();
  // A data chunk; `take` (may be null) is the same bytes, which may be swapped in instead.
  absl::Status AddData(const std::string& data, std::string* take);

  TensorStreamLimits limits_;
  bool begun_ = false;
  bool done_ = false;
  uint32_t declared_tensors_ = 0;
  uint64_t declared_bytes_ = 0;
  uint64_t data_bytes_ = 0;
  std::optional<wire::v1::TensorHeader> current_;
  DType current_dtype_ = DType::kFloat32;
  std::string current_data_;
  uint64_t current_received_ = 0;  // bytes of the current tensor so far
  uint64_t current_expected_ = 0;
  ArrayRecord record_;
  uint32_t tensors_ = 0;  // complete tensors, kept or given to the sink
  std::unique_ptr<crypto::Sha256> hash_;
  std::string digest_;
};

}  // namespace tessera

#endif  // TESSERA_CORE_SERDE_TENSOR_STREAM_H_
