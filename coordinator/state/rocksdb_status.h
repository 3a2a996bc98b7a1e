// File: rocksdb_status.h
// The one conversion from rocksdb::Status to absl::Status. Internal to
// coordinator/state; declared without RocksDB headers so that no header of ours
// includes them.
#ifndef TESSERA_COORDINATOR_STATE_ROCKSDB_STATUS_H_
#define TESSERA_COORDINATOR_STATE_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class Status;
}  // namespace rocksdb

namespace tessera {
namespace coordinator {
namespace state_internal {

// Maps `status` to the absl code a caller can act on, with the message
// "<context>: <RocksDB message>":
//   NotFound -> NOT_FOUND, Corruption -> DATA_LOSS, InvalidArgument ->
//   INVALID_ARGUMENT, NotSupported -> UNIMPLEMENTED, IOError (no space) ->
//   RESOURCE_EXHAUSTED, IOError / Busy / TimedOut / TryAgain /
//   ShutdownInProgress -> UNAVAILABLE (this includes "lock held by another
//   process"), Aborted -> ABORTED, anything else -> INTERNAL.
absl::Status FromRocksDbStatus(const rocksdb::Status& status,
                               absl::string_view context);

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

#endif  // TESSERA_COORDINATOR_STATE_ROCKSDB_STATUS_H_
