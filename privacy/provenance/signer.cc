// Provenance signatures (signer.h): ECDSA P-256 or Ed25519 through privacy/crypto, so this
// folder includes no OpenSSL header.
#include "privacy/provenance/signer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/signature.h"

namespace tessera::provenance {
namespace {

constexpr absl::string_view kEcdsaP256 = "ecdsa-p256-sha256";
constexpr absl::string_view kEd25519 = "ed25519";
constexpr absl::string_view kDoesNotVerify = "signature does not verify";

absl::string_view AlgorithmOf(crypto::SignatureKeyType type) {
  return type == crypto::SignatureKeyType::kEd25519 ? kEd25519 : kEcdsaP256;
}

// The public key PEM of the Ed25519 key `key_pem` read from (or written to) `path`.
absl::StatusOr<std::string> Ed25519PublicPem(const std::string& key_pem,
                                             const std::string& path) {
  absl::StatusOr<crypto::SignatureKeyType> type = crypto::PrivateKeyType(key_pem);
  if (!type.ok() || *type != crypto::SignatureKeyType::kEd25519) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " holds no Ed25519 private key (unencrypted PKCS#8 PEM)",
        type.ok() ? "" : absl::StrCat(": ", type.status().message())));
  }
  return crypto::PublicKeyPemOfPrivateKey(key_pem);
}

absl::Status DoesNotVerify(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(kDoesNotVerify, ": ", why));
}

}  // namespace

absl::StatusOr<ProvenanceSigner> ProvenanceSigner::FromPem(absl::string_view private_key_pem,
                                                           absl::string_view certificate_pem) {
  absl::StatusOr<crypto::SignatureKeyType> type = crypto::PrivateKeyType(private_key_pem);
  if (!type.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("provenance signing key: ", type.status().message()));
  }
  absl::Status match = crypto::CheckKeyMatchesCertificate(private_key_pem, certificate_pem);
  if (!match.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("provenance signing key: ", match.message()));
  }
  return ProvenanceSigner(std::string(private_key_pem), std::string(certificate_pem),
                          std::string(AlgorithmOf(*type)));
}

absl::StatusOr<ProvenanceSigner> ProvenanceSigner::LoadOrCreateEd25519(
    const std::string& path) {
  std::string key_pem;
  struct stat st {};
  bool created = false;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
    }
    TESSERA_ASSIGN_OR_RETURN(key_pem, crypto::GenerateEd25519PrivateKeyPem());
    absl::Status written = WriteFileAtomically(path, key_pem, 0600, /*replace=*/false);
    // ALREADY_EXISTS: another process created the key first; use that one.
    if (!absl::IsAlreadyExists(written)) {
      TESSERA_RETURN_IF_ERROR(written);
      created = true;
    }
  }
  if (!created) {
    TESSERA_ASSIGN_OR_RETURN(key_pem, ReadFileToString(path));
  }
  TESSERA_ASSIGN_OR_RETURN(std::string public_pem, Ed25519PublicPem(key_pem, path));
  return ProvenanceSigner(std::move(key_pem), std::move(public_pem), std::string(kEd25519));
}

absl::StatusOr<Signature> ProvenanceSigner::Sign(absl::string_view payload) const {
  absl::StatusOr<std::string> raw = crypto::SignWithPrivateKeyPem(key_pem_, payload);
  if (!raw.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot sign provenance: ", raw.status().message()));
  }
  Signature signature;
  signature.algorithm = algorithm_;
  signature.value = absl::Base64Escape(*raw);
  signature.signer = signer_pem_;
  return signature;
}

absl::StatusOr<SignerIdentity> VerifySignature(absl::string_view payload,
                                               const Signature& signature,
                                               absl::string_view ca_pem) {
  if (signature.algorithm != kEcdsaP256 && signature.algorithm != kEd25519) {
    return DoesNotVerify(absl::StrCat("unknown algorithm \"",
                                      absl::CHexEscape(signature.algorithm), "\""));
  }
  std::string raw;
  if (!absl::Base64Unescape(signature.value, &raw) || raw.empty()) {
    return DoesNotVerify("the value is not base64");
  }
  const bool is_certificate = absl::StrContains(signature.signer, "-----BEGIN CERTIFICATE-----");
  const bool is_public_key = absl::StrContains(signature.signer, "-----BEGIN PUBLIC KEY-----");
  if (!is_certificate && !is_public_key) {
    return DoesNotVerify("the signer is neither a certificate nor a public key (PEM)");
  }
  absl::StatusOr<crypto::SignatureKeyType> type =
      is_certificate ? crypto::CertificateKeyType(signature.signer)
                     : crypto::PublicKeyType(signature.signer);
  if (!type.ok()) return DoesNotVerify(type.status().message());
  if (AlgorithmOf(*type) != signature.algorithm) {
    return DoesNotVerify(absl::StrCat("algorithm ", signature.algorithm,
                                      " does not match the signer's ", AlgorithmOf(*type),
                                      " key"));
  }
  TESSERA_RETURN_IF_ERROR(is_certificate
                              ? crypto::VerifyWithCertificate(signature.signer, payload, raw)
                              : crypto::VerifyWithPublicKeyPem(signature.signer, payload, raw));
  SignerIdentity who;
  if (!is_certificate) {
    if (!ca_pem.empty()) {
      return absl::PermissionDeniedError(
          "the signer is a bare public key (an --insecure coordinator), not a certificate "
          "issued by the given CA");
    }
    TESSERA_ASSIGN_OR_RETURN(who.fingerprint_sha256_hex,
                             crypto::PublicKeyFingerprintSha256Hex(signature.signer));
    return who;
  }
  if (!ca_pem.empty()) {
    absl::Status chain = crypto::VerifyCertificateChain(signature.signer, ca_pem);
    if (absl::IsPermissionDenied(chain)) {
      return absl::PermissionDeniedError(
          absl::StrCat("the signer's certificate is not trusted: ", chain.message()));
    }
    TESSERA_RETURN_IF_ERROR(chain);
    who.certified = true;
  }
  TESSERA_ASSIGN_OR_RETURN(crypto::CertificateIdentity id,
                           crypto::ParseCertificateIdentity(signature.signer));
  who.common_name = std::move(id.common_name);
  who.organization = std::move(id.organization);
  who.fingerprint_sha256_hex = std::move(id.fingerprint_sha256_hex);
  return who;
}

}  // namespace tessera::provenance
