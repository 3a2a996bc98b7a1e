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
// batch commits: readers require the manifest, and tensors left by an attempt that never
// committed are overwritten by the next one. Peak memory is one tensor's write batch (its
// value written in parts, with no serialized copy before it) and one memtable, not the
// whole model a second time: after a tensor of 4 MiB or more that is also at least a
// sixteenth of the model, the memtable is flushed (waiting) before the next one, so none is
// left holding it afterwards either. REQUIRES: the caller has checked that this round is not
// committed yet (otherwise a committed model's tensors would be overwritten).
absl::Status WriteModelTensorsAndBatchManifest(rocksdb::DB* db, absl::string_view run_id,
                                               uint32_t round, const ArrayRecord& model,
                                               rocksdb::WriteBatch* batch);

// NOT_FOUND "model of run X round N not found"; DATA_LOSS if it does not parse.
absl::StatusOr<storage::v1::ModelManifest> ReadModelManifest(
    rocksdb::DB* db, const rocksdb::ReadOptions& options,
    absl::string_view run_id, uint32_t round);

// The model, validated against its manifest. NOT_FOUND as ReadModelManifest;
// DATA_LOSS if a tensor does not parse or validate, an index is missing or
// extra, or the count, byte total or SHA-256 differ from the manifest.
// `options` should name a snapshot so the manifest and tensors agree.
absl::StatusOr<ArrayRecord> ReadModel(rocksdb::DB* db,
                                      const rocksdb::ReadOptions& options,
                                      absl::string_view run_id, uint32_t round);

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_MODEL_STORE_H_
