// File: connection.h
// The operator CLI's connection to the coordinator's Control API.
#ifndef TESSERA_TOOLS_CLI_CONNECTION_H_
#define TESSERA_TOOLS_CLI_CONNECTION_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "tessera/wire/v1/control.grpc.pb.h"

namespace tessera::cli {

struct ConnectionOptions {
  std::string coordinator = "127.0.0.1:7800";
  std::string ca_cert_path, cert_path, key_path;
  bool insecure = false;
  double timeout_seconds = 30;  // per unary call
};

// Errors name the flag of a missing/unreadable PEM file. Remembers `o` for
// DiagnoseLastConnection (the CLI makes one connection per command).
absl::StatusOr<std::unique_ptr<wire::v1::Control::Stub>> Connect(const ConnectionOptions& o);

// Why calls to the coordinator fail with UNAVAILABLE, in words (crypto::DiagnoseTlsFailure,
// privacy/crypto/tls_probe.h: unreachable, the client certificate refused and which one, the
// coordinator's certificate not trusted), from one diagnostic TLS connection made with the
// same --ca, --cert and --key; "" when the coordinator answers now, or with --insecure.
std::string DiagnoseUnavailable(const ConnectionOptions& o);

// DiagnoseUnavailable of the options Connect was last called with ("" before any).
std::string DiagnoseLastConnection();

// A context with the unary deadline of `o`.
std::unique_ptr<grpc::ClientContext> UnaryContext(const ConnectionOptions& o);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_CONNECTION_H_
