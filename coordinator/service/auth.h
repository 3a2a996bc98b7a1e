// File: auth.h
// Who is calling. Under mTLS the caller's identity is its certificate's CN and its role the
// certificate's OU ("client" or "operator"); the TLS layer has already checked the chain
// against the federation CA. In --insecure mode (loopback demos only) nobody is
// authenticated by certificate and clients are known by their session alone.
#ifndef TESSERA_COORDINATOR_SERVICE_AUTH_H_
#define TESSERA_COORDINATOR_SERVICE_AUTH_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/service/trust_store.h"
#include "core/serde/session_metadata.h"

namespace tessera::coordinator {

enum class Role { kClient, kOperator };

struct Caller {
  std::string identity;  // certificate CN, or "" in insecure mode
  std::string role;      // certificate OU, or "" in insecure mode
  std::string organization;  // certificate O, or "" in insecure mode
  std::string peer;      // transport address, for logs
  std::string certificate_pem;  // the verified certificate, or "" in insecure mode
};

// PERMISSION_DENIED when the certificate's role is not `role`, or when `trust` (if not null)
// no longer accepts it (revoked since the connection was made, expired, CA rotated);
// UNAUTHENTICATED when a secure server sees no certificate. Refusals are logged with the
// presented identity.
absl::StatusOr<Caller> Authenticate(const grpc::CallbackServerContext& context, bool insecure,
                                    Role role, TrustStore* trust);

// The client behind the session in the call's metadata, checked against the certificate.
absl::StatusOr<std::string> AuthenticateClient(const grpc::CallbackServerContext& context,
                                               bool insecure, ClientRegistry& registry,
                                               TrustStore* trust);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_AUTH_H_
