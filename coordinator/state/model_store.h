// File: model_store.h
// Writes and reads one global model under model/<run id>/<round>/
// (docs/storage_format.md). Internal to coordinator/state; RocksDB types are
// only forward-declared.
#ifndef TESSERA_COORDINATOR_STATE_MODEL_STORE_H_
#define TESSERA_COORDINATOR_STATE_MODEL_STORE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"
#include "tessera/storage/v1/records.pb.h"

namespace rocksdb {
class DB;
class WriteBatch;
struct ReadOptions;
}  // namespace rocksdb

namespace tessera {
namespace coordinator {
namespace state_internal {

// Writes the tensors of `model` one Put at a time (not synced; a later synced write makes
// them durable), then adds only the manifest to `batch`. The model becomes visible when the
// batch commits: readers require the manifest, and the round's tensor keys that an attempt
// that never committed left are cleared (one range delete) before this one writes. A tensor of more than kTensorPieceBytes is
// written in pieces of at most that size, one Put each (docs/storage_format.md, "Models"),
// and after every max(4 MiB, model / 16) bytes of pieces the memtable is flushed (waiting):
// peak memory is one piece's write batch, that much of the model in the memtable and one
// piece in the flush's blob record, not the whole model or a whole tensor a second time.
// INVALID_ARGUMENT for more than kMaxModelTensors tensors, duplicate names, or a tensor of
// more than kMaxTensorPieces pieces. REQUIRES: the caller has checked that this round is not
// committed yet (otherwise a committed model's tensors would be overwritten).
absl::Status WriteModelTensorsAndBatchManifest(rocksdb::DB* db, absl::string_view run_id,
                                               uint32_t round, const ArrayRecord& model,
                                               rocksdb::WriteBatch* batch);

// NOT_FOUND "model of run X round N not found"; DATA_LOSS if it does not parse.
absl::StatusOr<storage::v1::ModelManifest> ReadModelManifest(
    rocksdb::DB* db, const rocksdb::ReadOptions& options,
    absl::string_view run_id, uint32_t round);

// The model, validated against its manifest, a tensor stored in pieces put together again.
// NOT_FOUND as ReadModelManifest; DATA_LOSS if a tensor does not parse or validate, an index
// or a piece is missing or extra, or the count, byte total or SHA-256 differ from the
// manifest.
// `options` should name a snapshot so the manifest and tensors agree.
absl::StatusOr<ArrayRecord> ReadModel(rocksdb::DB* db,
                                      const rocksdb::ReadOptions& options,
                                      absl::string_view run_id, uint32_t round);

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_MODEL_STORE_H_
