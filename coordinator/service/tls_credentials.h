// File: tls_credentials.h
// The coordinator's mTLS server credentials. gRPC's file watcher re-reads the coordinator's
// certificate, key and CA bundle every `refresh_seconds`, so new files (certificate rotation)
// take effect without a restart. Each client certificate is required, and verified by the
// TrustStore (chain to the federation CA, validity period, CRL) in the handshake; a refused
// certificate is logged with the identity it presented (CN, OU, serial), never its key.
#ifndef TESSERA_COORDINATOR_SERVICE_TLS_CREDENTIALS_H_
#define TESSERA_COORDINATOR_SERVICE_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "coordinator/service/trust_store.h"

namespace tessera::coordinator {

struct TlsFiles {
  std::string ca_path, cert_path, key_path;
  unsigned refresh_seconds = 60;  // file watcher period, >= 1
};

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files,
                                                               std::shared_ptr<TrustStore> trust);

// "CN=<cn> OU=<ou> serial=<hex>" of a certificate for refusal logs, or "unreadable
// certificate" when it does not parse.
std::string DescribeCertificate(const std::string& certificate_pem);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_TLS_CREDENTIALS_H_
