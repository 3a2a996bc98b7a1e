// File: errors.h
// How the operator CLI reports a failed command: "tessera: <what>: <why>" on stderr, and
// exit code 1.
#ifndef TESSERA_TOOLS_CLI_ERRORS_H_
#define TESSERA_TOOLS_CLI_ERRORS_H_

#include <iostream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::cli {

inline int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "tessera: " << what << ": " << s.message() << "\n";
  return 1;
}

// Defined in connection.cc (tools/cli/connection.h).
std::string DiagnoseLastConnection();

// Adds the status code's name: "(UNAVAILABLE)". For UNAVAILABLE ("Socket closed", "failed to
// connect to all addresses") it first says why, from a diagnostic TLS connection: the
// coordinator is unreachable, refused the client certificate (naming it), or is not trusted.
inline int Fail(absl::string_view what, const grpc::Status& s) {
  const std::string code =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()));
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (const std::string why = DiagnoseLastConnection(); !why.empty()) {
      std::cerr << "tessera: " << what << ": " << why << " [gRPC: " << s.error_message() << " ("
                << code << ")]\n";
      return 1;
    }
  }
  std::cerr << "tessera: " << what << ": " << s.error_message() << " (" << code << ")\n";
  return 1;
}

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_ERRORS_H_
