// Checks the ThreadSanitizer annotations of tsan_absl_sync.cc (TESSERA_SANITIZE=thread only).
//   tsan_annotations_check synchronized    absl::Mutex (Lock/Unlock, Await, AwaitWithTimeout)
//                                          and absl::Notification hand data between threads
//                                          correctly: TSan must stay silent. Without the
//                                          annotations each scenario is reported as a race.
//   tsan_annotations_check unsynchronized  one thread writes a Mutex-guarded value under the
//                                          lock, another reads it without: TSan must still
//                                          report the race (the annotations hide nothing
//                                          that is not ordered by the mutex).
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

int Synchronized() {
  // Lock/Unlock: two threads increment one counter.
  absl::Mutex mu;
  int counter = 0;
  auto add = [&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock l(&mu);
      ++counter;
    }
  };
  std::thread a(add), b(add);
  a.join();
  b.join();

  // Await: the condition is evaluated by the waiter and by the producer's Unlock.
  bool ready = false;
  int value = 0;
  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock l(&mu);
    value = 42;
    ready = true;
  });
  int seen = 0;
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(&ready));
    seen = value;
  }
  producer.join();

  // AwaitWithTimeout.
  bool second = false;
  std::thread producer2([&] {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock l(&mu);
    value = 43;
    second = true;
  });
  bool met = false;
  {
    absl::MutexLock l(&mu);
    met = mu.AwaitWithTimeout(absl::Condition(&second), absl::Seconds(30));
    seen += value;
  }
  producer2.join();

  // Notification: data written before Notify is read after WaitForNotification.
  absl::Notification done;
  int payload = 0;
  std::thread notifier([&] {
    payload = 7;
    done.Notify();
  });
  done.WaitForNotification();
  const int got = payload;
  notifier.join();

  const bool ok = counter == 2000 && seen == 85 && met && got == 7;
  std::printf("synchronized: counter %d (2000), seen %d (85), met %d, payload %d (7): %s\n",
              counter, seen, met, got, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}

int Unsynchronized() {
  absl::Mutex mu;
  int guarded = 0;
  std::thread writer([&] {
    absl::MutexLock l(&mu);
    guarded = 1;
  });
  std::thread reader([&] {
    absl::SleepFor(absl::Milliseconds(50));
    const int v = guarded;  // deliberately without the lock
    std::printf("unsynchronized: read %d\n", v);
  });
  writer.join();
  reader.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "synchronized") == 0) return Synchronized();
  if (argc == 2 && std::strcmp(argv[1], "unsynchronized") == 0) return Unsynchronized();
  std::fprintf(stderr, "usage: tsan_annotations_check synchronized|unsynchronized\n");
  return 2;
}
