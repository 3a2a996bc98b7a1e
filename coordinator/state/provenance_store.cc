// The run provenance records of CoordinatorState (provenance/<run id>,
// docs/storage_format.md, docs/governance.md): who created a run with which builds and
// inputs, and who took part. One synced put per change.
#include <optional>
#include <string>

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
using wire::v1::RunProvenance;

}  // namespace

absl::Status CoordinatorState::PutProvenance(const RunProvenance& provenance) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", provenance.run_id()));
  TESSERA_RETURN_IF_ERROR(CheckNoIoMutexHeld(
      absl::StrCat("storing the provenance of run ", provenance.run_id())));
  TESSERA_ASSIGN_OR_RETURN(
      std::string value,
      si::SerializeRecord(provenance, absl::StrCat("provenance of run ", provenance.run_id())));
  return FromRocksDbStatus(
      db_->Put(si::SyncedWrite(), si::ProvenanceKey(provenance.run_id()), value),
      absl::StrCat("storing the provenance of run ", provenance.run_id()));
}

absl::StatusOr<std::optional<RunProvenance>> CoordinatorState::GetProvenance(
    absl::string_view run_id) {
  TESSERA_RETURN_IF_ERROR(si::ValidateId("run id", run_id));
  std::string value;
  TESSERA_ASSIGN_OR_RETURN(bool found, si::ReadKey(db_.get(), rocksdb::ReadOptions(),
                                                   si::ProvenanceKey(run_id), &value));
  if (!found) return std::nullopt;
  RunProvenance provenance;
  TESSERA_RETURN_IF_ERROR(
      si::ParseRecord(value, absl::StrCat("provenance of run ", run_id), &provenance));
  return provenance;
}

}  // namespace coordinator
}  // namespace tessera
