// File: json_log.h
// Structured logs: every glog message as one JSON object per line on stderr, for log
// shippers (journald, Loki, Elasticsearch, Cloud Logging) that parse fields instead of
// glog's text prefix. Selected with --log-format json on tessera-coordinator and
// tessera-client. Messages are what the code logs; secrets are never logged to begin with.
#ifndef TESSERA_CORE_BASE_JSON_LOG_H_
#define TESSERA_CORE_BASE_JSON_LOG_H_

#include <cstdint>
#include <ctime>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera {

// `format` is "text" (glog's own lines on stderr) or "json". Call after
// google::InitGoogleLogging. Errors: INVALID_ARGUMENT naming --log-format.
absl::Status SetLogFormat(absl::string_view format);

// {"ts":"2026-11-23T03:15:40.123456Z","level":"INFO","file":"server.cc","line":12,
//  "msg":"..."} without a trailing newline; `severity` is glog's (0 INFO .. 3 FATAL).
std::string JsonLogLine(int severity, absl::string_view file, int line, std::time_t seconds,
                        int32_t micros, absl::string_view message);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_JSON_LOG_H_
