#include "coordinator/state/db_access.h"

#include "absl/strings/str_cat.h"
#include "coordinator/state/rocksdb_status.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/snapshot.h"

namespace tessera {
namespace coordinator {
namespace state_internal {

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

rocksdb::WriteOptions SyncedWrite() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

absl::StatusOr<bool> ReadKey(rocksdb::DB* db,
                             const rocksdb::ReadOptions& options,
                             absl::string_view key, std::string* value) {
  rocksdb::Status s = db->Get(options, ToSlice(key), value);
  if (s.IsNotFound()) return false;
  TESSERA_RETURN_IF_ERROR(FromRocksDbStatus(s, absl::StrCat("reading ", key)));
  return true;
}

absl::Status ForEachWithPrefix(rocksdb::DB* db,
                               const rocksdb::ReadOptions& options,
                               absl::string_view prefix, const KeyValueFn& fn) {
  std::string upper(prefix);
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions bounded = options;
  bounded.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(bounded));
  for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
    TESSERA_RETURN_IF_ERROR(fn(ToView(it->key()), ToView(it->value())));
  }
  return FromRocksDbStatus(it->status(), absl::StrCat("scanning ", prefix));
}

ReadSnapshot::ReadSnapshot(rocksdb::DB* db)
    : db_(db),
      snapshot_(db->GetSnapshot()),
      options_(std::make_unique<rocksdb::ReadOptions>()) {
  options_->snapshot = snapshot_;
}

ReadSnapshot::~ReadSnapshot() { db_->ReleaseSnapshot(snapshot_); }

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera
