#include "coordinator/service/auth.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/service/tls_credentials.h"
#include "privacy/crypto/certificate.h"

namespace tessera::coordinator {

absl::StatusOr<Caller> Authenticate(const grpc::CallbackServerContext& context, bool insecure,
                                    Role role, TrustStore* trust) {
  Caller caller;
  caller.peer = context.peer();
  if (insecure) return caller;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::vector<grpc::string_ref> pem =
      auth ? auth->FindPropertyValues("x509_pem_cert") : std::vector<grpc::string_ref>{};
  if (pem.empty()) {
    LOG(WARNING) << "refused " << caller.peer << ": no client certificate";
    return absl::UnauthenticatedError("a client certificate is required");
  }
  const std::string cert(pem.front().data(), pem.front().size());
  // The handshake checked the certificate, but a long-lived connection may outlive a
  // revocation: the trust store checks it again (a cache hit unless its files changed).
  absl::StatusOr<crypto::CertificateIdentity> id =
      trust != nullptr ? trust->Verify(cert) : crypto::ParseCertificateIdentity(cert);
  if (!id.ok()) {
    absl::StatusOr<crypto::CertificateIdentity> presented = crypto::ParseCertificateIdentity(cert);
    if (!presented.ok()) {
      LOG(WARNING) << "refused " << caller.peer << ": unreadable certificate: " << id.status();
      return absl::UnauthenticatedError("the client certificate cannot be read");
    }
    LOG(WARNING) << "refused " << DescribeCertificate(cert) << " at " << caller.peer << ": "
                 << id.status().message();
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate of \"", PeerText(presented->common_name), "\" refused: ",
        id.status().message()));
  }
  caller.identity = id->common_name;
  caller.role = id->organizational_unit;
  caller.organization = id->organization;
  caller.certificate_pem = cert;
  const char* want = role == Role::kClient ? "client" : "operator";
  if (caller.role != want) {
    LOG(WARNING) << "refused " << PeerText(caller.identity) << " (role \""
                 << PeerText(caller.role) << "\") at "
                 << caller.peer << ": this RPC needs role " << want;
    return absl::PermissionDeniedError(absl::StrCat("certificate of \"", PeerText(caller.identity),
                                                    "\" has role \"", PeerText(caller.role),
                                                    "\"; this RPC requires role \"", want,
                                                    "\""));
  }
  return caller;
}

absl::StatusOr<std::string> AuthenticateClient(const grpc::CallbackServerContext& context,
                                               bool insecure, ClientRegistry& registry,
                                               TrustStore* trust) {
  absl::StatusOr<Caller> caller = Authenticate(context, insecure, Role::kClient, trust);
  if (!caller.ok()) return caller.status();
  auto it = context.client_metadata().find(kSessionMetadataKey);
  if (it == context.client_metadata().end()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", kSessionMetadataKey, " metadata: call Register first"));
  }
  absl::StatusOr<std::string> name =
      registry.Lookup(absl::string_view(it->second.data(), it->second.size()));
  if (!name.ok()) return name.status();
  if (!insecure && *name != caller->identity) {
    LOG(WARNING) << "refused " << PeerText(caller->identity) << ": presented the session of "
                 << *name;
    return absl::PermissionDeniedError("the session belongs to another client");
  }
  registry.Touch(*name);
  return name;
}

}  // namespace tessera::coordinator
