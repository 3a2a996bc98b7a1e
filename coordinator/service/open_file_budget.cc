#include "coordinator/service/open_file_budget.h"

#include "absl/strings/str_cat.h"
#include "coordinator/state/state_limits.h"

namespace tessera::coordinator {

uint64_t OpenFilesNeeded(uint32_t max_clients) {
  return uint64_t{max_clients} + kStateMaxOpenFiles + kReservedOpenFiles;
}

absl::Status CheckOpenFileBudget(uint32_t max_clients, uint64_t hard_limit) {
  const uint64_t needed = OpenFilesNeeded(max_clients);
  if (hard_limit >= needed) return absl::OkStatus();
  const uint64_t fixed = OpenFilesNeeded(0);
  return absl::FailedPreconditionError(absl::StrCat(
      "--max-clients ", max_clients, " needs up to ", needed,
      " open files (a connection per client, ", kStateMaxOpenFiles, " for the state, ",
      kReservedOpenFiles, " reserved), but the hard limit on open files (RLIMIT_NOFILE) is ",
      hard_limit, ": raise it (LimitNOFILE= in the systemd unit, ulimits nofile in compose, "
      "docker run --ulimit nofile=N:N, or ulimit -Hn as root) or ",
      hard_limit > fixed ? absl::StrCat("set --max-clients to at most ", hard_limit - fixed)
                         : absl::StrCat("give it more than ", fixed)));
}

absl::StatusOr<OpenFileLimit> RaiseOpenFileLimitFor(uint32_t max_clients) {
  absl::StatusOr<OpenFileLimit> before = GetOpenFileLimit();
  if (!before.ok()) return before.status();
  if (absl::Status s = CheckOpenFileBudget(max_clients, before->hard); !s.ok()) return s;
  absl::StatusOr<OpenFileLimit> after = RaiseOpenFileSoftLimit();
  if (!after.ok()) return after.status();
  return before;
}

}  // namespace tessera::coordinator
