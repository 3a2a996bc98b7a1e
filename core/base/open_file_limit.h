// File: open_file_limit.h
// The process's limit on open file descriptors (RLIMIT_NOFILE): every connection, file, pipe
// and epoll instance takes one. Linux starts most processes with a soft limit of 1024 under a
// much higher hard limit (systemd keeps the soft limit low for programs that still use
// select(), whose fd_set ends at 1024); a server that holds a connection per client raises its
// own soft limit up to the hard one, as systemd.exec(5) (LimitNOFILE=) recommends. Only root
// can raise the hard limit, so that one is the operator's (docs/operations.md, "Limits").
#ifndef TESSERA_CORE_BASE_OPEN_FILE_LIMIT_H_
#define TESSERA_CORE_BASE_OPEN_FILE_LIMIT_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace tessera {

struct OpenFileLimit {
  uint64_t soft = 0;  // what the process may open now
  uint64_t hard = 0;  // how far it may raise `soft` itself; RLIM_INFINITY reads UINT64_MAX
};

// The current limits. INTERNAL if getrlimit fails.
absl::StatusOr<OpenFileLimit> GetOpenFileLimit();

// Raises the soft limit to the hard one (a no-op when they are equal) and returns the limits
// as they are afterwards. INTERNAL if getrlimit or setrlimit fails.
absl::StatusOr<OpenFileLimit> RaiseOpenFileSoftLimit();

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_OPEN_FILE_LIMIT_H_
