// File: open_file_budget.h
// How many file descriptors the coordinator may need at once, so that it can refuse to start
// when the process's hard RLIMIT_NOFILE cannot hold them instead of failing to accept()
// connections (and to open state files) once it is busy. See docs/operations.md, "Limits".
#ifndef TESSERA_COORDINATOR_SERVICE_OPEN_FILE_BUDGET_H_
#define TESSERA_COORDINATOR_SERVICE_OPEN_FILE_BUDGET_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/open_file_limit.h"

namespace tessera::coordinator {

// Descriptors for everything but client connections and the state's files: the listening
// sockets, gRPC's epoll and wake-up descriptors, standard streams and log files, the metrics
// endpoint's connections, operators' connections and certificate/CRL re-reads. An idle
// coordinator holds about 60 (measured by tessera-bench-scale).
inline constexpr uint64_t kReservedOpenFiles = 256;

// One connection per registered client (ClientRegistry refuses more than `max_clients`),
// the state's files (kStateMaxOpenFiles) and kReservedOpenFiles.
uint64_t OpenFilesNeeded(uint32_t max_clients);

// OK when `hard_limit` (the process's hard RLIMIT_NOFILE, which it may raise its soft limit
// to) is at least OpenFilesNeeded(max_clients). Otherwise FAILED_PRECONDITION saying what
// --max-clients needs, what the limit is, how to raise it, and the largest --max-clients
// that fits.
absl::Status CheckOpenFileBudget(uint32_t max_clients, uint64_t hard_limit);

// What tessera-coordinator does at start-up: CheckOpenFileBudget against this process's hard
// limit, then raises its soft limit to the hard one. Returns the limits as they were before.
// Errors: CheckOpenFileBudget's; INTERNAL if getrlimit or setrlimit fails.
absl::StatusOr<OpenFileLimit> RaiseOpenFileLimitFor(uint32_t max_clients);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_OPEN_FILE_BUDGET_H_
