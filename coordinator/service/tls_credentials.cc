#include "coordinator/service/tls_credentials.h"

#include <glog/logging.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "privacy/crypto/certificate.h"

namespace tessera::coordinator {
namespace {

namespace gx = grpc::experimental;

// Runs in gRPC's handshake: synchronous, since the check is local and takes microseconds.
class FederationVerifier : public gx::ExternalCertificateVerifier {
 public:
  explicit FederationVerifier(std::shared_ptr<TrustStore> trust) : trust_(std::move(trust)) {}

  bool Verify(gx::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const std::string pem(request->peer_cert().data(), request->peer_cert().size());
    if (pem.empty()) {
      LOG(WARNING) << "refused TLS connection: no client certificate";
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "a client certificate is required");
      return true;
    }
    absl::Status s = trust_->Verify(pem).status();
    if (s.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      LOG(WARNING) << "refused TLS connection from " << DescribeCertificate(pem) << ": "
                   << s.message();
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
    }
    return true;
  }

  void Cancel(gx::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  std::shared_ptr<TrustStore> trust_;
};

}  // namespace

std::string DescribeCertificate(const std::string& certificate_pem) {
  absl::StatusOr<crypto::CertificateIdentity> id =
      crypto::ParseCertificateIdentity(certificate_pem);
  if (!id.ok()) return "unreadable certificate";
  // A refused certificate may come from anyone: its subject is escaped (PeerText).
  return absl::StrCat("CN=", PeerText(id->common_name), " OU=",
                      PeerText(id->organizational_unit), " O=", PeerText(id->organization),
                      " serial=", id->serial_hex);
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files,
                                                               std::shared_ptr<TrustStore> trust) {
  auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(
      files.key_path, files.cert_path, files.ca_path, std::max(1u, files.refresh_seconds));
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // gRPC asks for and requires the certificate; FederationVerifier checks it, CRL included.
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      gx::ExternalCertificateVerifier::Create<FederationVerifier>(std::move(trust)));
  return gx::TlsServerCredentials(options);
}

}  // namespace tessera::coordinator
