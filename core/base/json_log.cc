#include "core/base/json_log.h"

#include <cstdio>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera {
namespace {

class JsonSink : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char* /*full_filename*/,
            const char* base_filename, int line, const google::LogMessageTime& time,
            const char* message, size_t message_len) override {
    std::string out = JsonLogLine(severity, base_filename, line, time.timestamp(), time.usec(),
                                  absl::string_view(message, message_len));
    out.push_back('\n');
    // One fwrite per line: stderr is unbuffered, and POSIX keeps a single write whole.
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
};

}  // namespace

std::string JsonLogLine(int severity, absl::string_view file, int line, std::time_t seconds,
                        int32_t micros, absl::string_view message) {
  static constexpr const char* kLevels[] = {"INFO", "WARNING", "ERROR", "FATAL"};
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  nlohmann::ordered_json j;
  j["ts"] = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900,
                            utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                            micros);
  j["level"] = severity >= 0 && severity < 4 ? kLevels[severity] : "UNKNOWN";
  j["file"] = std::string(file);
  j["line"] = line;
  // Invalid UTF-8 (a peer's bytes in a message) is replaced, not thrown on.
  j["msg"] = std::string(message);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status SetLogFormat(absl::string_view format) {
  if (format == "text") {
    FLAGS_logtostderr = true;
    return absl::OkStatus();
  }
  if (format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format: want \"text\" or \"json\", got \"", format, "\""));
  }
  static JsonSink* sink = [] {
    auto* s = new JsonSink();  // lives as long as the process logs
    google::AddLogSink(s);
    return s;
  }();
  (void)sink;
  // The sink prints; glog itself writes neither to stderr nor to log files.
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::NUM_SEVERITIES;
  for (int s = google::GLOG_INFO; s < google::NUM_SEVERITIES; ++s) {
    google::SetLogDestination(s, "");
  }
  return absl::OkStatus();
}

}  // namespace tessera
