// File: no_io_mutex.h
// A mutex under which its holder does no blocking I/O: no disk write, no fsync, no gRPC
// completion (a reactor's Finish, a stream write). Readers of in-memory state (a status
// call, a metrics scrape) take such mutexes, so I/O under one stalls them for as long as
// the I/O takes: a 100M-parameter round commit is seconds.
//
// The rule is checked at run time: every NoIoMutex a thread holds is counted in a
// thread-local counter, and the I/O paths (CoordinatorState's writes, the completion of a
// waiting call) call CheckNoIoMutexHeld first, which fails with INTERNAL naming the action
// when the count is not zero. Code that has to write while keeping other writers out takes
// a plain absl::Mutex that readers never take (a commit sequence), prepares what it writes
// under the NoIoMutex, writes after unlocking it, and publishes the result under it again.
//
// Example:
//   NoIoMutex mu;
//   int value ABSL_GUARDED_BY(mu);
//   {
//     NoIoMutexLock l(&mu);
//     record = Prepare(value);
//   }
//   TESSERA_RETURN_IF_ERROR(state->Write(record));  // CheckNoIoMutexHeld passes here
#ifndef TESSERA_CORE_BASE_NO_IO_MUTEX_H_
#define TESSERA_CORE_BASE_NO_IO_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tessera {

namespace no_io_internal {
// How many NoIoMutexes the calling thread holds.
inline thread_local int held_by_this_thread = 0;
}  // namespace no_io_internal

// An absl::Mutex (exclusive only) that counts its holders per thread. Annotated like
// absl::Mutex, so ABSL_GUARDED_BY(mu) and clang's -Wthread-safety work with it.
class ABSL_LOCKABLE NoIoMutex {
 public:
  NoIoMutex() = default;
  NoIoMutex(const NoIoMutex&) = delete;
  NoIoMutex& operator=(const NoIoMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    ++no_io_internal::held_by_this_thread;
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    --no_io_internal::held_by_this_thread;
    mu_.Unlock();
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

  // As absl::Mutex's: releases the mutex while waiting (a waiting thread does no I/O
  // either, so the count stays).
  void Await(const absl::Condition& cond) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    mu_.Await(cond);
  }
  bool AwaitWithDeadline(const absl::Condition& cond, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return mu_.AwaitWithDeadline(cond, deadline);
  }

 private:
  absl::Mutex mu_;
};

// RAII lock of a NoIoMutex, as absl::MutexLock.
class ABSL_SCOPED_LOCKABLE NoIoMutexLock {
 public:
  explicit NoIoMutexLock(NoIoMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~NoIoMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  NoIoMutexLock(const NoIoMutexLock&) = delete;
  NoIoMutexLock& operator=(const NoIoMutexLock&) = delete;

 private:
  NoIoMutex* const mu_;
};

// How many NoIoMutexes the calling thread holds.
inline int NoIoMutexesHeld() { return no_io_internal::held_by_this_thread; }

// INTERNAL "<what> while holding N no-I/O mutex(es) ..." when the calling thread holds a
// NoIoMutex; OK otherwise. Called at the top of every blocking I/O path.
inline absl::Status CheckNoIoMutexHeld(absl::string_view what) {
  const int held = NoIoMutexesHeld();
  if (held == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      what, " while holding ", held,
      " no-I/O mutex(es) (a run's or the state's lock): prepare under the lock, do the I/O "
      "after unlocking (core/base/no_io_mutex.h)"));
}

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_NO_IO_MUTEX_H_
