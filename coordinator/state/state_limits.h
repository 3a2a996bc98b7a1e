// File: state_limits.h
// Limits of the coordinator's RocksDB state that other parts of the coordinator budget for.
#ifndef TESSERA_COORDINATOR_STATE_STATE_LIMITS_H_
#define TESSERA_COORDINATOR_STATE_STATE_LIMITS_H_

namespace tessera::coordinator {

// Files RocksDB keeps open at most (its max_open_files): the table and blob files it caches
// plus its own ~10 (log, manifest, lock, write-ahead log); others are reopened when read.
// RocksDB's default (-1) keeps every file open, so a state that grows would eat the open-file
// budget (coordinator/service/open_file_budget.h) that client connections need.
inline constexpr int kStateMaxOpenFiles = 512;

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STATE_STATE_LIMITS_H_
