// Test helper: every glog message logged in this process while a LogCapture lives (the
// coordinator runs in-process in these tests). Header-only; link glog.
#ifndef TESSERA_TESTS_INTEGRATION_LOG_CAPTURE_H_
#define TESSERA_TESTS_INTEGRATION_LOG_CAPTURE_H_

#include <glog/logging.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_join.h"

namespace tessera::testing_support {

// Thread-safe.
class LogCapture : public google::LogSink {
 public:
  LogCapture() { google::AddLogSink(this); }
  ~LogCapture() override { google::RemoveLogSink(this); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t length) override {
    absl::MutexLock l(&mu_);
    messages_.emplace_back(message, length);
  }
  // The messages as logged, one per LOG statement, without glog's prefix.
  std::vector<std::string> messages() {
    absl::MutexLock l(&mu_);
    return messages_;
  }
  // The messages, each followed by a newline.
  std::string text() {
    absl::MutexLock l(&mu_);
    return messages_.empty() ? "" : absl::StrJoin(messages_, "\n") + "\n";
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_LOG_CAPTURE_H_
