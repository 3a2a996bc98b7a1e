// File: db_access.h
// Small read helpers over rocksdb::DB shared by the coordinator state files.
// Internal to coordinator/state; RocksDB types are only forward-declared here
// so that no header of ours includes RocksDB.
#ifndef TESSERA_COORDINATOR_STATE_DB_ACCESS_H_
#define TESSERA_COORDINATOR_STATE_DB_ACCESS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class DB;
class Slice;
class Snapshot;
struct ReadOptions;
struct WriteOptions;
}  // namespace rocksdb

namespace tessera {
namespace coordinator {
namespace state_internal {

rocksdb::Slice ToSlice(absl::string_view s);
absl::string_view ToView(const rocksdb::Slice& s);

// Options for a write that is on disk when it returns (sync = true).
rocksdb::WriteOptions SyncedWrite();

// Reads `key` into `value`. Returns false when the key is absent; errors as
// FromRocksDbStatus.
absl::StatusOr<bool> ReadKey(rocksdb::DB* db,
                             const rocksdb::ReadOptions& options,
                             absl::string_view key, std::string* value);

// Calls `fn` for each key that starts with `prefix`, in key order, and stops
// at its first error. REQUIRES: `prefix` is non-empty and its last byte is not
// 0xff (our prefixes end in '/').
using KeyValueFn =
    std::function<absl::Status(absl::string_view key, absl::string_view value)>;
absl::Status ForEachWithPrefix(rocksdb::DB* db,
                               const rocksdb::ReadOptions& options,
                               absl::string_view prefix, const KeyValueFn& fn);

// A consistent read view of `db`, released on destruction. `db` must outlive
// it.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(rocksdb::DB* db);
  ~ReadSnapshot();
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

  // Read options that read at this snapshot.
  const rocksdb::ReadOptions& options() const { return *options_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  std::unique_ptr<rocksdb::ReadOptions> options_;
};

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_DB_ACCESS_H_
