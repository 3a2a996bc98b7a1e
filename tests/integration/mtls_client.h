// A tessera-client (NodeRunner) with mutual TLS for integration tests.
#ifndef TESSERA_TESTS_INTEGRATION_MTLS_CLIENT_H_
#define TESSERA_TESTS_INTEGRATION_MTLS_CLIENT_H_

#include <string>

#include "client/runtime/node_runner.h"

namespace tessera::testing_support {

// The options of a client named `name` that connects to a coordinator on 127.0.0.1:`port`
// with the CA, certificate and key in `pki_dir` as MakePki or a test's issuer writes them
// (ca.pem, NAME.pem, NAME.key). Callers set what else they test before NodeRunner::Create.
inline NodeRunnerOptions MtlsClientOptions(int port, const std::string& name,
                                                   const std::string& pki_dir) {
  NodeRunnerOptions o;
  o.coordinator = "127.0.0.1:" + std::to_string(port);
  o.name = name;
  o.ca_cert_path = pki_dir + "/ca.pem";
  o.cert_path = pki_dir + "/" + name + ".pem";
  o.key_path = pki_dir + "/" + name + ".key";
  return o;
}

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_MTLS_CLIENT_H_
