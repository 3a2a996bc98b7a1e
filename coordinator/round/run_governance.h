// File: run_governance.h
// One run's governance at the round loop's stations (docs/governance.md,
// docs/architecture.md "The round loop"): its provenance (base model, builds, participants
// with their organization, data card and data report), the license rules that accept or
// refuse clients at selection, the data report a training task asks for at dispatch, and
// the audit entry of every round attempt at commit.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_GOVERNANCE_H_
#define TESSERA_COORDINATOR_ROUND_RUN_GOVERNANCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/round/audit_trail.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/model_snapshot.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/no_io_mutex.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera::coordinator {

// Thread-safe. The provenance is read under a NoIoMutex held for copies only; changes are
// serialized by a sequence mutex, stored (synced) without the NoIoMutex and published after.
class RunGovernance {
 public:
  // What every run's governance uses; all must outlive it.
  struct Services {
    CoordinatorState* state = nullptr;
    ClientRegistry* registry = nullptr;
    const AuditTrail* audit = nullptr;
    std::string coordinator_version;
  };
  // The governance of run `run_id` with `config`; its provenance is empty until Create or
  // Restore.
  RunGovernance(Services services, std::string run_id, wire::v1::RunConfig config);
  RunGovernance(const RunGovernance&) = delete;
  RunGovernance& operator=(const RunGovernance&) = delete;

  // CreateRun: the run's provenance record (stored) and its "run.created" entry, by the
  // operator `operator_name` with CLI build `cli_version`.
  absl::Status Create(absl::string_view operator_name, absl::string_view cli_version,
                      int64_t created_unix_ms, const ModelSnapshot& initial);
  // Recover: the stored provenance (empty for a run stored before provenance existed).
  // `add_this_build`: a run this process may drive records this coordinator's build.
  absl::Status Restore(bool add_this_build);

  // ---- Stations ----
  // Select: the `connected` clients the run's license rules accept. Records each one's
  // organization, data card and version with the run; refuses (once, with a REFUSED task,
  // an audit entry and RunStatus.refused_clients) those whose data card they reject.
  std::vector<std::string> Select(std::vector<std::string> connected);
  // Dispatch: a training task to `client` asks for its data report if the run has none.
  void Dispatch(absl::string_view client, wire::v1::Task& task) const;
  // Accept update (data report side): `client`'s answer to the data report `asked` of its
  // task. INVALID_ARGUMENT for a report other than the one asked for (another bucket, a
  // histogram the run did not ask for or the data card does not allow, too many classes);
  // the registry's error for an unknown client; the store's error.
  absl::Status AcceptDataReport(absl::string_view client,
                                const wire::v1::DataReportRequest& asked,
                                const wire::v1::DataReport& report);
  // Commit: the audit entry of a round attempt once it is stored (committed or failed).
  void Commit(const wire::v1::RoundSummary& summary) const;

  // ---- Readers ----
  wire::v1::RunProvenance Provenance() const;
  // RunStatus.refused_clients: "CLIENT: REASON" for every refused participant.
  void AddRefusedClients(wire::v1::RunStatus& status) const;

 private:
  const Services services_;
  const std::string run_id_;
  const wire::v1::RunConfig config_;
  // Held from reading the provenance to publishing its stored change.
  absl::Mutex sequence_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable NoIoMutex mu_;
  wire::v1::RunProvenance provenance_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_GOVERNANCE_H_
