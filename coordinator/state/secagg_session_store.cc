// The secure aggregation session traces of CoordinatorState (secagg/<run id>/<session id>,
// docs/storage_format.md): one synced write per phase, so the trace is durable before the
// coordinator sends the phase's messages.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/db_access.h"
#include "coordinator/state/record_codec.h"
#include "coordinator/state/rocksdb_status.h"
#include "coordinator/state/storage_keys.h"
#include "core/base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace tessera {
namespace coordinator {
namespace {

namespace si = state_internal;
using si::FromRocksDbStatus;
using storage::v1::SecAggSessionRecord;

}  // namespace

absl::Status CoordinatorState::PutSecAggSession(const SecAggSessionRecord& session) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", session.run_id()));
  TESSERA_RETURN_IF_ERROR(si::ValidateId("session id", session.session_id()));
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(
      absl::StrCat("storing secagg session ", session.session_id())));
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(session, absl::StrCat("secagg session ", session.session_id())));
  return FromRocksDbStatus(
      db_->Put(si::SyncedWrite(), si::SecAggKey(session.run_id(), session.session_id()),
               value),
      absl::StrCat("storing secagg session ", session.session_id()));
}

absl::StatusOr<std::vector<SecAggSessionRecord>> CoordinatorState::ListSecAggSessions() {
  std::vector<SecAggSessionRecord> sessions;
  TESSERA_RETURN_IF_ERROR(si::ForEachWithPrefix(
      db_.get(), rocksdb::ReadOptions(), si::kSecAggPrefix,
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        return si::ParseRecord(value, key, &sessions.emplace_back());
      }));
  return sessions;
}

}  // namespace coordinator
}  // namespace tessera
