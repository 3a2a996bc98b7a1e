// ThreadSanitizer annotations for Debian's uninstrumented absl::Mutex and absl::Notification.
//
// libabsl_synchronization.so is built without -fsanitize=thread, so TSan does not see that
// absl::Mutex::Unlock on one thread happens before Lock on the next: every access that a
// Mutex protects is reported as a race (seen first in CoordinatorState::Lanes::Take). Building
// a second, instrumented absl is ruled out (docs: one absl and one protobuf per process), so
// in TESSERA_SANITIZE=thread builds the linker wraps the calls that Tessera's code makes into
// the library (-Wl,--wrap=<symbol>, cmake/TesseraSanitize.cmake) and each wrapper tells TSan
// about the happens-before edge the call creates: a release on the mutex's address before
// Unlock, an acquire after Lock, both around Await (which unlocks while it waits). absl
// evaluates an Await condition on whichever thread holds the mutex at that moment (the waiter
// or a thread in Unlock), so the wrapper hands absl a condition that acquires before and
// releases after evaluating the caller's. Calls made inside libabsl, gRPC or RocksDB are not
// wrapped; their own locking stays invisible.
//
// The symbols are Itanium-mangled names of absl 20220623 (inline namespace debian3); a member
// function is called with `this` as its first argument, and absl::Duration / absl::Time
// (trivially copyable, 16 bytes) are passed in two registers like the struct below. The
// __real_ declarations are weak so that programs that never use absl::Mutex still link.
#include <absl/synchronization/mutex.h>
#include <sanitizer/tsan_interface.h>

#include <cstdint>

namespace {
// The caller's condition, evaluated as a critical section of `mu`.
struct GuardedCondition {
  void* mu;
  const absl::Condition* inner;
};

bool EvalGuarded(GuardedCondition* g) {
  __tsan_acquire(g->mu);
  const bool met = g->inner->Eval();
  __tsan_release(g->mu);
  return met;
}

// Await releases `mu` while it waits and holds it again when it returns; `call` runs the real
// Await with the guarded condition and returns whether the condition held.
template <typename Call>
bool AnnotatedAwait(void* mu, const void* cond, Call call) {
  GuardedCondition g{mu, static_cast<const absl::Condition*>(cond)};
  const absl::Condition guarded(&EvalGuarded, &g);
  __tsan_release(mu);
  const bool met = call(&guarded);
  __tsan_acquire(mu);
  return met;
}

struct Duration16 {  // absl::Duration {int64_t rep_hi_; uint32_t rep_lo_;} and absl::Time
  int64_t hi;
  uint32_t lo;
};
}  // namespace

#define TESSERA_REAL(ret, sym, ...) extern "C" ret __real_##sym(__VA_ARGS__) __attribute__((weak))

// absl::Mutex
TESSERA_REAL(void, _ZN4absl7debian35Mutex4LockEv, void*);
TESSERA_REAL(void, _ZN4absl7debian35Mutex6UnlockEv, void*);
TESSERA_REAL(bool, _ZN4absl7debian35Mutex7TryLockEv, void*);
TESSERA_REAL(void, _ZN4absl7debian35Mutex10ReaderLockEv, void*);
TESSERA_REAL(void, _ZN4absl7debian35Mutex12ReaderUnlockEv, void*);
TESSERA_REAL(void, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, void*, const void*);
TESSERA_REAL(bool, _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
             void*, const void*, Duration16);
TESSERA_REAL(bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
             void*, const void*, Duration16);
// absl::Notification
TESSERA_REAL(void, _ZN4absl7debian312Notification6NotifyEv, void*);
TESSERA_REAL(void, _ZNK4absl7debian312Notification19WaitForNotificationEv, const void*);
TESSERA_REAL(bool, _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
             const void*, Duration16);
TESSERA_REAL(bool,
             _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
             const void*, Duration16);

extern "C" {

void __wrap__ZN4absl7debian35Mutex4LockEv(void* mu) {
  __real__ZN4absl7debian35Mutex4LockEv(mu);
  __tsan_acquire(mu);
}

void __wrap__ZN4absl7debian35Mutex6UnlockEv(void* mu) {
  __tsan_release(mu);
  __real__ZN4absl7debian35Mutex6UnlockEv(mu);
}

bool __wrap__ZN4absl7debian35Mutex7TryLockEv(void* mu) {
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

void __wrap__ZN4absl7debian35Mutex10ReaderLockEv(void* mu) {
  __real__ZN4absl7debian35Mutex10ReaderLockEv(mu);
  __tsan_acquire(mu);
}

void __wrap__ZN4absl7debian35Mutex12ReaderUnlockEv(void* mu) {
  __tsan_release(mu);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(mu);
}

void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(void* mu, const void* cond) {
  AnnotatedAwait(mu, cond, [&](const absl::Condition* c) {
    __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(mu, c);
    return true;
  });
}

bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration16 timeout) {
  return AnnotatedAwait(mu, cond, [&](const absl::Condition* c) {
    return __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
        mu, c, timeout);
  });
}

bool __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Duration16 deadline) {
  return AnnotatedAwait(mu, cond, [&](const absl::Condition* c) {
    return __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
        mu, c, deadline);
  });
}

void __wrap__ZN4absl7debian312Notification6NotifyEv(void* n) {
  __tsan_release(n);
  __real__ZN4absl7debian312Notification6NotifyEv(n);
}

void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(const void* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  __tsan_acquire(const_cast<void*>(n));
}

bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const void* n, Duration16 timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          n, timeout);
  if (notified) __tsan_acquire(const_cast<void*>(n));
  return notified;
}

bool __wrap__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const void* n, Duration16 deadline) {
  const bool notified =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
          n, deadline);
  if (notified) __tsan_acquire(const_cast<void*>(n));
  return notified;
}

}  // extern "C"
