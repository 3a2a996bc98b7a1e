#include "coordinator/state/model_store.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/state/db_access.h"
#include "coordinator/state/record_codec.h"
#include "coordinator/state/rocksdb_status.h"
#include "coordinator/state/storage_keys.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera {
namespace coordinator {
namespace state_internal {
namespace {

std::string ModelName(absl::string_view run_id, uint32_t round) {
  return absl::StrCat("model of run ", run_id, " round ", round);
}

// A memtable holds whole values until a flush moves them to blob files, and RocksDB switches
// to a new memtable only at the next write after one is full, flushing the old one in the
// background: a tensor of T bytes was held up to three times at a commit (the write batch's
// copy, the active and the flushing memtable), and the last one stayed in the memtable for
// the whole next round. After a large tensor (at least kFlushTensorBytes and a sixteenth of
// the model) the memtable is flushed, waiting, before the next tensor is written: at most the
// batch and one memtable hold it, and none is left once the model is written
// (docs/architecture.md, "Coordinator memory"). At most 16 flushes per model; smaller tensors
// share memtables as RocksDB fills and flushes them (at most 2 x 8 MiB beside T), with no
// flush in the commit's path.
constexpr uint64_t kFlushTensorBytes = 4 << 20;

absl::Status FlushAfterLargeTensor(rocksdb::DB* db, const Tensor& tensor, uint64_t model_bytes) {
  if (tensor.byte_size() < kFlushTensorBytes || tensor.byte_size() < model_bytes / 16) {
    return absl::OkStatus();
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  return FromRocksDbStatus(db->Flush(flush), "flushing a model's tensors to disk");
}

}  // namespace

absl::Status WriteModelTensorsAndBatchManifest(rocksdb::DB* db, absl::string_view run_id,
                                               uint32_t round, const ArrayRecord& model,
                                               rocksdb::WriteBatch* batch) {
  if (model.tensors.size() > kMaxModelTensors) {
    return absl::InvalidArgumentError(
        absl::StrCat("model has ", model.tensors.size(),
                     " tensors; the limit is ", kMaxModelTensors));
  }
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(model));
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    // The value in two parts, the record's head and the tensor's own data: the write batch
    // copies them once (then the memtable), with no serialized copy of the tensor before it.
    const Tensor& tensor = model.tensors[i];
    TESSERA_ASSIGN_OR_RETURN(std::string head, EncodeTensorHead(tensor));
    const std::string key = ModelTensorKey(run_id, round, i);
    const rocksdb::Slice key_part(key);
    const rocksdb::Slice value_parts[2] = {rocksdb::Slice(head), rocksdb::Slice(tensor.data())};
    {
      rocksdb::WriteBatch one;  // gone before the flush: the memtable's copy is then the only one
      TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
          one.Put(rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2)),
          "batching a tensor"));
      TESSERA_RETURN_IF_ERROR(
          FromRocksDbStatus(db->Write(rocksdb::WriteOptions(), &one), "writing a tensor"));
    }
    TESSERA_RETURN_IF_ERROR(FlushAfterLargeTensor(db, tensor, model.TotalBytes()));
  }
  TESSERA_ASSIGN_OR_RETURN(
      std::string manifest,
      SerializeRecord(MakeManifest(model), "model manifest"));
  return FromRocksDbStatus(
      batch->Put(ModelManifestKey(run_id, round), manifest),
      "batching a model manifest");
}

absl::StatusOr<storage::v1::ModelManifest> ReadModelManifest(
    rocksdb::DB* db, const rocksdb::ReadOptions& options,
    absl::string_view run_id, uint32_t round) {
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(
      bool found,
      ReadKey(db, options, ModelManifestKey(run_id, round), &value));
  const std::string what = ModelName(run_id, round);
  if (!found) return absl::NotFoundError(absl::StrCat(what, " not found"));
  storage::v1::ModelManifest manifest;
  TESSERA_RETURN_IF_ERROR(ParseRecord(value, what, &manifest));
  return manifest;
}

absl::StatusOr<ArrayRecord> ReadModel(rocksdb::DB* db,
                                      const rocksdb::ReadOptions& options,
                                      absl::string_view run_id,
                                      uint32_t round) {
  TESSERA_ASSIGN_OR_RETURN(storage::v1::ModelManifest manifest,
                           ReadModelManifest(db, options, run_id, round));
  const std::string what = ModelName(run_id, round);
  if (manifest.num_tensors() > kMaxModelTensors) {
    return absl::DataLossError(absl::StrCat(
        what, ": manifest lists ", manifest.num_tensors(), " tensors"));
  }
  ArrayRecord model;
  model.tensors.reserve(manifest.num_tensors());
  TESSERA_RETURN_IF_ERROR(ForEachWithPrefix(
      db, options, ModelTensorPrefix(run_id, round),
      [&](absl::string_view key, absl::string_view bytes) -> absl::Status {
        if (key != ModelTensorKey(run_id, round, model.tensors.size())) {
          return absl::DataLossError(
              absl::StrCat(what, ": unexpected key ", key));
        }
        TESSERA_ASSIGN_OR_RETURN(Tensor tensor, DecodeTensor(bytes, key));
        model.tensors.push_back(std::move(tensor));
        return absl::OkStatus();
      }));
  TESSERA_RETURN_IF_ERROR(VerifyManifest(manifest, model, what));
  return model;
}

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera
