// File: revocation_watcher.h
// Revocation reaches connections that are already open. Every RPC re-checks its caller's
// certificate (auth.h), but a task subscription or a run watch is one long RPC: without this
// watcher a revoked client would keep its stream, stay "connected" and keep being selected.
// The watcher looks at the trust store's CA and CRL files every `period`; when what is in
// force changed, it ends at once every session and task stream of a client whose registration
// certificate is no longer accepted (abandoning its open tasks, so no round waits for it),
// and every run watch of such an operator. docs/pki.md.
#ifndef TESSERA_COORDINATOR_SERVICE_REVOCATION_WATCHER_H_
#define TESSERA_COORDINATOR_SERVICE_REVOCATION_WATCHER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/service/trust_store.h"

namespace tessera::coordinator {

// Thread-safe.
class RevocationWatcher {
 public:
  // `trust`, `registry` and `runs` must outlive the watcher. Starts its thread.
  RevocationWatcher(TrustStore* trust, ClientRegistry* registry, RunManager* runs,
                    absl::Duration period);
  ~RevocationWatcher();  // stops the thread
  RevocationWatcher(const RevocationWatcher&) = delete;
  RevocationWatcher& operator=(const RevocationWatcher&) = delete;

  // A stream of an operator whose certificate is `certificate_pem`; `end` ends it at once.
  // Returns the id for RemoveStream (call it when the stream is over).
  uint64_t AddStream(std::string certificate_pem, std::function<void()> end);
  void RemoveStream(uint64_t id);

  // Checks everything open against the trust store in force now, and ends what it refuses.
  // Returns the clients whose sessions ended, sorted. The thread calls it after each change.
  std::vector<std::string> Sweep();

 private:
  void Loop();

  TrustStore* const trust_;
  ClientRegistry* const registry_;
  RunManager* const runs_;
  const absl::Duration period_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  struct Stream {
    std::string certificate_pem;
    std::function<void()> end;
  };
  std::map<uint64_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_stream_ ABSL_GUARDED_BY(mu_) = 1;
  std::thread thread_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_REVOCATION_WATCHER_H_
