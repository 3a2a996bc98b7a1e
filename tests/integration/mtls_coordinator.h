// An in-process coordinator with mutual TLS for integration tests.
#ifndef TESSERA_TESTS_INTEGRATION_MTLS_COORDINATOR_H_
#define TESSERA_TESTS_INTEGRATION_MTLS_COORDINATOR_H_

#include <string>

#include "coordinator/service/server.h"

namespace tessera::testing_support {

// The options of a coordinator with mTLS on 127.0.0.1 (any free port; CoordinatorServer::port
// says which), its state in DIR/state, and its CA, certificate and key in `pki_dir` as
// MakePki writes them (ca.pem, coordinator.pem, coordinator.key). Callers set what else they
// test (CRL, fold budget) before CoordinatorServer::Start.
inline coordinator::CoordinatorServerOptions MtlsCoordinatorOptions(const std::string& dir,
                                                                    const std::string& pki_dir) {
  coordinator::CoordinatorServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.state_dir = dir + "/state";
  o.ca_cert_path = pki_dir + "/ca.pem";
  o.cert_path = pki_dir + "/coordinator.pem";
  o.key_path = pki_dir + "/coordinator.key";
  return o;
}

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_MTLS_COORDINATOR_H_
