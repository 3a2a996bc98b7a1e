// File: errors.h
// How the operator CLI reports a failed command: "tessera: <what>: <why>" on stderr, and
// exit code 1.
#ifndef TESSERA_TOOLS_CLI_ERRORS_H_
#define TESSERA_TOOLS_CLI_ERRORS_H_

#include <iostream>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::cli {

inline int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "tessera: " << what << ": " << s.message() << "\n";
  return 1;
}

// Adds the status code's name: "(UNAVAILABLE)".
inline int Fail(absl::string_view what, const grpc::Status& s) {
  const std::string code =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()));
  std::cerr << "tessera: " << what << ": " << s.error_message() << " (" << code << ")\n";
  return 1;
}

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_ERRORS_H_
