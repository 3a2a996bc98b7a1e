#include "privacy/secagg/identity.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/signature.h"

namespace tessera::secagg {

absl::StatusOr<Signer> CertificateSigner(std::string certificate_pem,
                                         std::string private_key_pem) {
  // Prove the pair matches now rather than at the first advertisement.
  constexpr absl::string_view kProbe = "tessera secagg identity probe";
  TESSERA_ASSIGN_OR_RETURN(std::string sig,
                           crypto::SignWithPrivateKeyPem(private_key_pem, kProbe));
  if (absl::Status s = crypto::VerifyWithCertificate(certificate_pem, kProbe, sig); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the private key does not match the certificate: ", s.message()));
  }
  Signer signer;
  signer.identity.set_certificate_pem(certificate_pem);
  auto key = std::make_shared<const std::string>(std::move(private_key_pem));
  signer.sign = [key](absl::string_view message) {
    return crypto::SignWithPrivateKeyPem(*key, message);
  };
  return signer;
}

absl::StatusOr<Signer> EphemeralSigner() {
  TESSERA_ASSIGN_OR_RETURN(crypto::Ed25519Signer ed, crypto::Ed25519Signer::Generate());
  Signer signer;
  signer.identity.set_ed25519_public_key(ed.public_key());
  auto key = std::make_shared<const crypto::Ed25519Signer>(std::move(ed));
  signer.sign = [key](absl::string_view message) { return key->Sign(message); };
  return signer;
}

VerifyFn CertificateVerifier(std::string trusted_ca_pem, ExpectedName expected) {
  auto ca = std::make_shared<const std::string>(std::move(trusted_ca_pem));
  return [ca, expected](uint32_t index, const v1::Identity& identity, absl::string_view message,
                        absl::string_view signature) -> absl::Status {
    if (!identity.has_certificate_pem()) {
      return absl::PermissionDeniedError(
          absl::StrCat("client ", index, " advertised no certificate"));
    }
    const std::string& pem = identity.certificate_pem();
    if (pem.size() > kMaxIdentityCertificateBytes) {
      return absl::InvalidArgumentError(absl::StrCat("client ", index, "'s certificate is ",
                                                     pem.size(), " bytes; the limit is ",
                                                     kMaxIdentityCertificateBytes));
    }
    if (absl::Status s = crypto::VerifyCertificateChain(pem, *ca); !s.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("client ", index, "'s certificate: ", s.message()));
    }
    TESSERA_ASSIGN_OR_RETURN(crypto::CertificateIdentity id,
                             crypto::ParseCertificateIdentity(pem));
    if (id.organizational_unit != "client") {
      return absl::PermissionDeniedError(absl::StrCat(
          "client ", index, "'s certificate has role \"", id.organizational_unit,
          "\", not \"client\""));
    }
    if (expected) {
      const std::string want = expected(index);
      if (!want.empty() && want != id.common_name) {
        return absl::PermissionDeniedError(absl::StrCat("client ", index, " is \"", want,
                                                        "\" but its certificate names \"",
                                                        id.common_name, "\""));
      }
    }
    if (absl::Status s = crypto::VerifyWithCertificate(pem, message, signature); !s.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, ": ", s.message()));
    }
    return absl::OkStatus();
  };
}

VerifyFn InsecureVerifier() {
  return [](uint32_t index, const v1::Identity& identity, absl::string_view message,
            absl::string_view signature) -> absl::Status {
    absl::Status s;
    if (identity.has_ed25519_public_key()) {
      s = crypto::Ed25519Verify(identity.ed25519_public_key(), message, signature);
    } else if (identity.has_certificate_pem() &&
               identity.certificate_pem().size() <= kMaxIdentityCertificateBytes) {
      s = crypto::VerifyWithCertificate(identity.certificate_pem(), message, signature);
    } else {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, " has no identity"));
    }
    if (!s.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, ": ", s.message()));
    }
    return absl::OkStatus();
  };
}

}  // namespace tessera::secagg
