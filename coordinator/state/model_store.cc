#include "coordinator/state/model_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
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
// to a new memtable only when one is full (8 MiB), flushing the old one in the background:
// a tensor stored under one key was held up to three times at a commit (the write batch's
// copy, the memtable, and the blob record the flush builds of it), and the last one stayed
// in the memtable for the whole next round. A tensor larger than kTensorPieceBytes is now
// stored in pieces of at most that size, one key and one write each, and after every
// FlushEvery(model) bytes of pieces the memtable is flushed (waiting): at a commit the
// memtable holds at most that much of the model and one piece more, and the flush one piece
// at a time
// (docs/architecture.md, "Coordinator memory"). At most 16 such flushes per model (RocksDB
// switches and flushes its own full memtables in between for a larger one); tensors of at
// most kTensorPieceBytes share memtables as RocksDB fills and flushes them, with no flush in
// the commit's path.
constexpr uint64_t kFlushBytes = 4 << 20;

uint64_t FlushEvery(const ArrayRecord& model) {
  return std::max<uint64_t>(kFlushBytes, model.TotalBytes() / 16);
}

// One Put of a value in parts, in a write batch of its own that is gone before any flush.
absl::Status PutParts(rocksdb::DB* db, const std::string& key,
                      absl::Span<const rocksdb::Slice> parts) {
  rocksdb::WriteBatch one;
  const rocksdb::Slice key_part(key);
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      one.Put(rocksdb::SliceParts(&key_part, 1),
              rocksdb::SliceParts(parts.data(), static_cast<int>(parts.size()))),
      "batching a tensor"));
  return FromRocksDbStatus(db->Write(rocksdb::WriteOptions(), &one), "writing a tensor");
}

absl::Status Flush(rocksdb::DB* db) {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  return FromRocksDbStatus(db->Flush(flush), "flushing a model's tensors to disk");
}

// The pieces a tensor of `bytes` is stored in; 0 when it is stored whole.
uint64_t PiecesOf(size_t bytes) {
  return bytes > kTensorPieceBytes ? (bytes + kTensorPieceBytes - 1) / kTensorPieceBytes : 0;
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
  for (const Tensor& tensor : model.tensors) {
    if (PiecesOf(tensor.data().size()) > kMaxTensorPieces) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", tensor.name(), "\" is ", tensor.data().size(), " bytes; the limit is ",
          kMaxTensorPieces, " pieces of ", kTensorPieceBytes));
    }
  }
  // Whatever an attempt that never committed left under this round's tensor keys goes first
  // (the round is not committed: REQUIRES), so a piece it wrote past this model's last one
  // is not read as part of it.
  const std::string tensors = ModelTensorPrefix(run_id, round);
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(
      db->DeleteRange(rocksdb::WriteOptions(), db->DefaultColumnFamily(), tensors,
                      PrefixEnd(tensors)),
      "clearing a model's tensor keys"));
  const uint64_t flush_every = FlushEvery(model);
  uint64_t unflushed = 0;  // bytes of pieces written since the last flush
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    // The value in parts, the record's head and the tensor's own data: the write batch
    // copies them once (then the memtable), with no serialized copy of the tensor before it.
    const Tensor& tensor = model.tensors[i];
    const absl::string_view data = tensor.data();
    const uint64_t pieces = PiecesOf(data.size());
    const std::string key = ModelTensorKey(run_id, round, i);
    if (pieces == 0) {
      TESSERA_ASSIGN_OR_RETURN(std::string head, EncodeTensorHead(tensor));
      const rocksdb::Slice parts[2] = {rocksdb::Slice(head),
                                       rocksdb::Slice(data.data(), data.size())};
      TESSERA_RETURN_IF_ERROR(PutParts(db, key, parts));
      continue;
    }
    for (uint64_t j = 0; j < pieces; ++j) {
      const absl::string_view piece = data.substr(j * kTensorPieceBytes, kTensorPieceBytes);
      const rocksdb::Slice bytes(piece.data(), piece.size());
      if (j == 0) {
        TESSERA_ASSIGN_OR_RETURN(
            std::string head,
            EncodePiecedTensorHead(tensor, static_cast<uint32_t>(pieces), piece.size()));
        const rocksdb::Slice parts[2] = {rocksdb::Slice(head), bytes};
        TESSERA_RETURN_IF_ERROR(PutParts(db, key, parts));
      } else {
        TESSERA_RETURN_IF_ERROR(PutParts(
            db, ModelTensorPieceKey(run_id, round, i, static_cast<uint32_t>(j)), {&bytes, 1}));
      }
      unflushed += piece.size();
      if (unflushed >= flush_every) {
        TESSERA_RETURN_IF_ERROR(Flush(db));
        unflushed = 0;
      }
    }
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
  // A tensor stored in pieces: its head with the pieces read so far appended to `data`.
  storage::v1::StoredTensor pending;
  uint32_t next_piece = 0;  // 0: none pending
  // `pending` (whole now) becomes the model's next tensor.
  auto take_pending = [&](absl::string_view key) -> absl::Status {
    TESSERA_ASSIGN_OR_RETURN(Tensor tensor, TensorFromStored(std::move(pending), key));
    pending.Clear();
    model.tensors.push_back(std::move(tensor));
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(ForEachWithPrefix(
      db, options, ModelTensorPrefix(run_id, round),
      [&](absl::string_view key, absl::string_view bytes) -> absl::Status {
        const size_t index = model.tensors.size();
        if (next_piece != 0) {
          if (key != ModelTensorPieceKey(run_id, round, index, next_piece)) {
            return absl::DataLossError(absl::StrCat(
                what, ": tensor ", index, " has ", pending.pieces(), " pieces; piece ",
                next_piece, " is missing (found key ", key, ")"));
          }
          // Every piece but the last is kTensorPieceBytes, the last one at most that.
          const bool last = next_piece + 1 == pending.pieces();
          if (bytes.empty() || bytes.size() > kTensorPieceBytes ||
              (!last && bytes.size() != kTensorPieceBytes)) {
            return absl::DataLossError(absl::StrCat(what, ": piece ", next_piece, " of tensor ",
                                                    index, " is ", bytes.size(), " bytes"));
          }
          pending.mutable_data()->append(bytes.data(), bytes.size());
          if (++next_piece < pending.pieces()) return absl::OkStatus();
          next_piece = 0;
          return take_pending(ModelTensorKey(run_id, round, index));
        }
        if (key != ModelTensorKey(run_id, round, index)) {
          return absl::DataLossError(
              absl::StrCat(what, ": unexpected key ", key));
        }
        if (index >= manifest.num_tensors()) {
          return absl::DataLossError(absl::StrCat(
              what, ": manifest lists ", manifest.num_tensors(), " tensors, found key ", key));
        }
        TESSERA_RETURN_IF_ERROR(ParseRecord(bytes, key, &pending));
        if (pending.pieces() <= 1) return take_pending(key);
        if (pending.pieces() > kMaxTensorPieces) {
          return absl::DataLossError(absl::StrCat(what, ": tensor ", index, " lists ",
                                                  pending.pieces(), " pieces"));
        }
        if (pending.data().size() != kTensorPieceBytes) {
          return absl::DataLossError(absl::StrCat(what, ": piece 0 of tensor ", index, " is ",
                                                  pending.data().size(), " bytes"));
        }
        // Room for all the pieces at once (at most one piece more than the tensor), never
        // more than the manifest's total: Tensor::Create checks the size against the shape.
        pending.mutable_data()->reserve(static_cast<size_t>(std::min<uint64_t>(
            uint64_t{pending.pieces()} * kTensorPieceBytes, manifest.total_bytes())));
        next_piece = 1;
        return absl::OkStatus();
      }));
  if (next_piece != 0) {
    return absl::DataLossError(absl::StrCat(what, ": tensor ", model.tensors.size(), " has ",
                                            pending.pieces(), " pieces; piece ", next_piece,
                                            " is missing"));
  }
  TESSERA_RETURN_IF_ERROR(VerifyManifest(manifest, model, what));
  return model;
}

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera
