// File: signer.h
// The coordinator's provenance signatures (docs/governance.md): it signs the canonical
// serialization of every bill of materials it exports and the head of its audit log.
//
// Under mTLS the coordinator signs with its own certificate's key (ECDSA P-256 with SHA-256,
// or Ed25519), so a verifier that trusts the federation CA can tell the signature came from
// that coordinator. An --insecure coordinator has no certificate: it signs with an Ed25519 key
// it keeps in its state directory, and the signer is then a bare public key that nobody
// vouches for (verification says so).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(ProvenanceSigner signer,
//                            ProvenanceSigner::FromPem(key_pem, cert_pem));
//   TESSERA_ASSIGN_OR_RETURN(Signature sig, signer.Sign(payload));
//   ...
//   TESSERA_ASSIGN_OR_RETURN(SignerIdentity who, VerifySignature(payload, sig, ca_pem));
#ifndef TESSERA_PRIVACY_PROVENANCE_SIGNER_H_
#define TESSERA_PRIVACY_PROVENANCE_SIGNER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::provenance {

// A detached signature as it appears in exported JSON.
struct Signature {
  std::string algorithm;  // "ecdsa-p256-sha256" or "ed25519"
  std::string value;      // base64 (RFC 4648, padded) of the signature bytes
  std::string signer;     // PEM: a CERTIFICATE, or a PUBLIC KEY for an --insecure coordinator
};

// Who signed, once the signature verified.
struct SignerIdentity {
  bool certified = false;     // the signer is a certificate that chains to the given CA
  std::string common_name;    // certificate CN ("" for a bare key)
  std::string organization;   // certificate O
  std::string fingerprint_sha256_hex;  // of the certificate DER, or of the public key DER
};

// Thread-safe after construction (Sign is const).
class ProvenanceSigner {
 public:
  // The key and certificate of an mTLS coordinator (PEM). INVALID_ARGUMENT when the key is
  // not an unencrypted P-256 or Ed25519 key, or does not belong to the certificate.
  static absl::StatusOr<ProvenanceSigner> FromPem(absl::string_view private_key_pem,
                                                  absl::string_view certificate_pem);
  // The Ed25519 key in `path` (PKCS#8 PEM), created with mode 0600 if the file is missing.
  // For --insecure coordinators. Errors: I/O (with the path), INVALID_ARGUMENT for a file
  // that holds no Ed25519 key.
  static absl::StatusOr<ProvenanceSigner> LoadOrCreateEd25519(const std::string& path);

  // Signs `payload` (the canonical bytes). INTERNAL if OpenSSL fails.
  absl::StatusOr<Signature> Sign(absl::string_view payload) const;

 private:
  ProvenanceSigner(std::string key_pem, std::string signer_pem, std::string algorithm)
      : key_pem_(std::move(key_pem)),
        signer_pem_(std::move(signer_pem)),
        algorithm_(std::move(algorithm)) {}
  std::string key_pem_;     // secret; never logged
  std::string signer_pem_;
  std::string algorithm_;
};

// Checks `signature` over `payload`. With a non-empty `ca_pem` the signer must be a
// certificate that chains to it (validity period checked); with an empty `ca_pem` the
// signature is checked against the embedded signer only and `certified` is false.
// Errors: INVALID_ARGUMENT "signature does not verify ..." for a bad signature, an unknown
// algorithm, or an algorithm that does not match the signer's key; PERMISSION_DENIED
// naming the problem when the signer does not chain to `ca_pem` or is a bare key while a CA
// was given.
absl::StatusOr<SignerIdentity> VerifySignature(absl::string_view payload,
                                               const Signature& signature,
                                               absl::string_view ca_pem);

}  // namespace tessera::provenance

#endif  // TESSERA_PRIVACY_PROVENANCE_SIGNER_H_
