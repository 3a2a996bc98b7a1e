#include "privacy/crypto/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/openssl_handles.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::BioPtr;
using crypto_internal::Bytes;
using crypto_internal::MdCtxPtr;
using crypto_internal::OpenSslError;
using crypto_internal::PkeyPtr;

constexpr absl::string_view kDoesNotVerify = "signature does not verify";

enum class KeyKind { kEd25519, kP256 };

absl::Status Invalid(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInvalidArgument, what);
}

absl::StatusOr<KeyKind> KindOf(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyKind::kEd25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1) {
      const std::string name =
          absl::AsciiStrToLower(absl::string_view(group, len));
      if (name == "prime256v1" || name == "p-256" || name == "secp256r1") {
        return KeyKind::kP256;
      }
    }
    crypto_internal::ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported EC curve '", group, "': only P-256"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported key type '", EVP_PKEY_get0_type_name(key),
                   "': only Ed25519 and EC P-256"));
}

// Pure Ed25519 takes no digest; ECDSA hashes with SHA-256.
const char* DigestFor(KeyKind kind) {
  return kind == KeyKind::kEd25519 ? nullptr : "SHA256";
}

absl::StatusOr<std::string> SignWith(EVP_PKEY* key, KeyKind kind,
                                     absl::string_view message) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, DigestFor(kind), nullptr,
                            nullptr, key, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "sign init failed");
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, Bytes(message.data()),
                     message.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "sign failed");
  }
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(), Bytes(signature.data()), &len,
                     Bytes(message.data()), message.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "sign failed");
  }
  signature.resize(len);  // DER ECDSA signatures vary in length
  return signature;
}

absl::Status VerifyWith(EVP_PKEY* key, KeyKind kind, absl::string_view message,
                        absl::string_view signature) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, DigestFor(kind), nullptr,
                              nullptr, key, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "verify init failed");
  }
  // 1 = valid; 0 = invalid; negative = malformed (e.g. bad DER). Both of the
  // latter are the signer's fault.
  if (EVP_DigestVerify(ctx.get(), Bytes(signature.data()), signature.size(),
                       Bytes(message.data()), message.size()) != 1) {
    crypto_internal::ClearOpenSslErrors();
    return absl::InvalidArgumentError(kDoesNotVerify);
  }
  return absl::OkStatus();
}

absl::StatusOr<BioPtr> PemBio(absl::string_view pem, absl::string_view what) {
  if (pem.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (pem.size() > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(what, " too large"));
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) {
    return OpenSslError(absl::StatusCode::kResourceExhausted,
                        "BIO_new_mem_buf failed");
  }
  return bio;
}

// Refuses to prompt for a passphrase: only unencrypted keys are supported.
int NoPassword(char*, int, int, void*) { return -1; }

absl::StatusOr<PkeyPtr> Ed25519FromSeed(absl::string_view seed32) {
  if (seed32.size() != kEd25519SeedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Ed25519 private key must be 32 bytes, got ", seed32.size()));
  }
  PkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, Bytes(seed32.data()), seed32.size()));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot load Ed25519 private key");
  }
  return key;
}

absl::StatusOr<std::string> RawEd25519Key(const EVP_PKEY* key,
                                          bool is_private) {
  std::string out(32, '\0');
  size_t len = out.size();
  const int rc =
      is_private ? EVP_PKEY_get_raw_private_key(key, Bytes(out.data()), &len)
                 : EVP_PKEY_get_raw_public_key(key, Bytes(out.data()), &len);
  if (rc != 1 || len != 32) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot export raw Ed25519 key");
  }
  return out;
}

// The signature scheme of `key`; INVALID_ARGUMENT unless Ed25519 or P-256.
absl::StatusOr<SignatureKeyType> TypeOf(const EVP_PKEY* key) {
  absl::StatusOr<KeyKind> kind = KindOf(key);
  if (!kind.ok()) return kind.status();
  return *kind == KeyKind::kEd25519 ? SignatureKeyType::kEd25519
                                    : SignatureKeyType::kEcdsaP256Sha256;
}

absl::StatusOr<PkeyPtr> ReadPrivateKeyPem(absl::string_view pem) {
  absl::StatusOr<BioPtr> bio = PemBio(pem, "private key PEM");
  if (!bio.ok()) return bio.status();
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassword, nullptr));
  if (key == nullptr) return Invalid("not an unencrypted PEM private key");
  return key;
}

absl::StatusOr<crypto_internal::X509Ptr> ReadCertificatePem(
    absl::string_view pem) {
  absl::StatusOr<BioPtr> bio = PemBio(pem, "certificate PEM");
  if (!bio.ok()) return bio.status();
  crypto_internal::X509Ptr cert(
      PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return Invalid("not a PEM X.509 certificate");
  return cert;
}

// A certificate and its subject public key (owned by `cert`).
struct CertificateKey {
  crypto_internal::X509Ptr cert;
  EVP_PKEY* key = nullptr;
};

absl::StatusOr<CertificateKey> ReadCertificateKey(
    absl::string_view certificate_pem) {
  absl::StatusOr<crypto_internal::X509Ptr> cert =
      ReadCertificatePem(certificate_pem);
  if (!cert.ok()) return cert.status();
  EVP_PKEY* key = X509_get0_pubkey(cert->get());
  if (key == nullptr) return Invalid("cannot decode certificate public key");
  return CertificateKey{*std::move(cert), key};
}

absl::StatusOr<PkeyPtr> ReadPublicKeyPem(absl::string_view pem) {
  absl::StatusOr<BioPtr> bio = PemBio(pem, "public key PEM");
  if (!bio.ok()) return bio.status();
  PkeyPtr key(PEM_read_bio_PUBKEY(bio->get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return Invalid("not a PEM public key");
  return key;
}

// The contents of a memory BIO.
std::string MemBioContents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

}  // namespace

Ed25519Signer::~Ed25519Signer() {
  if (!seed_.empty()) OPENSSL_cleanse(seed_.data(), seed_.size());
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::Generate() {
  crypto_internal::ClearOpenSslErrors();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "Ed25519 keygen failed");
  }
  absl::StatusOr<std::string> seed = RawEd25519Key(key.get(), true);
  if (!seed.ok()) return seed.status();
  absl::StatusOr<std::string> pub = RawEd25519Key(key.get(), false);
  if (!pub.ok()) return pub.status();
  return Ed25519Signer(*std::move(seed), *std::move(pub));
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::FromPrivate(
    absl::string_view seed32) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = Ed25519FromSeed(seed32);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> pub = RawEd25519Key(key->get(), false);
  if (!pub.ok()) return pub.status();
  return Ed25519Signer(std::string(seed32), *std::move(pub));
}

absl::StatusOr<std::string> Ed25519Signer::Sign(
    absl::string_view message) const {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = Ed25519FromSeed(seed_);
  if (!key.ok()) return key.status();
  return SignWith(key->get(), KeyKind::kEd25519, message);
}

absl::Status Ed25519Verify(absl::string_view public32,
                           absl::string_view message,
                           absl::string_view signature64) {
  if (public32.size() != kEd25519PublicKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Ed25519 public key must be 32 bytes, got ", public32.size()));
  }
  if (signature64.size() != kEd25519SignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        kDoesNotVerify, ": Ed25519 signature must be 64 bytes, got ",
        signature64.size()));
  }
  crypto_internal::ClearOpenSslErrors();
  PkeyPtr key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, Bytes(public32.data()), public32.size()));
  if (key == nullptr) return Invalid("cannot load Ed25519 public key");
  return VerifyWith(key.get(), KeyKind::kEd25519, message, signature64);
}

absl::StatusOr<std::string> SignWithPrivateKeyPem(
    absl::string_view private_key_pem, absl::string_view message) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPrivateKeyPem(private_key_pem);
  if (!key.ok()) return key.status();
  absl::StatusOr<KeyKind> kind = KindOf(key->get());
  if (!kind.ok()) return kind.status();
  return SignWith(key->get(), *kind, message);
}

absl::Status VerifyWithCertificate(absl::string_view certificate_pem,
                                   absl::string_view message,
                                   absl::string_view signature) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<CertificateKey> cert = ReadCertificateKey(certificate_pem);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<KeyKind> kind = KindOf(cert->key);
  if (!kind.ok()) return kind.status();
  return VerifyWith(cert->key, *kind, message, signature);
}

absl::StatusOr<std::string> GenerateEd25519PrivateKeyPem() {
  crypto_internal::ClearOpenSslErrors();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "Ed25519 keygen failed");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot write the Ed25519 key as PEM");
  }
  std::string pem = MemBioContents(bio.get());
  BIO_reset(bio.get());  // a memory BIO wipes its buffer on reset
  return pem;
}

absl::StatusOr<SignatureKeyType> PrivateKeyType(
    absl::string_view private_key_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPrivateKeyPem(private_key_pem);
  if (!key.ok()) return key.status();
  return TypeOf(key->get());
}

absl::StatusOr<SignatureKeyType> CertificateKeyType(
    absl::string_view certificate_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<CertificateKey> cert = ReadCertificateKey(certificate_pem);
  if (!cert.ok()) return cert.status();
  return TypeOf(cert->key);
}

absl::StatusOr<SignatureKeyType> PublicKeyType(
    absl::string_view public_key_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPublicKeyPem(public_key_pem);
  if (!key.ok()) return key.status();
  return TypeOf(key->get());
}

absl::StatusOr<std::string> PublicKeyPemOfPrivateKey(
    absl::string_view private_key_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPrivateKeyPem(private_key_pem);
  if (!key.ok()) return key.status();
  if (absl::StatusOr<SignatureKeyType> type = TypeOf(key->get()); !type.ok()) {
    return type.status();
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key->get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot write the public key as PEM");
  }
  return MemBioContents(bio.get());
}

absl::StatusOr<std::string> PublicKeyFingerprintSha256Hex(
    absl::string_view public_key_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPublicKeyPem(public_key_pem);
  if (!key.ok()) return key.status();
  const int len = i2d_PUBKEY(key->get(), nullptr);
  if (len <= 0) return Invalid("cannot DER-encode the public key");
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* out = Bytes(der.data());
  if (i2d_PUBKEY(key->get(), &out) != len) {
    return Invalid("cannot DER-encode the public key");
  }
  return HexEncode(Sha256Digest(der));
}

absl::Status VerifyWithPublicKeyPem(absl::string_view public_key_pem,
                                    absl::string_view message,
                                    absl::string_view signature) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPublicKeyPem(public_key_pem);
  if (!key.ok()) return key.status();
  absl::StatusOr<KeyKind> kind = KindOf(key->get());
  if (!kind.ok()) return kind.status();
  return VerifyWith(key->get(), *kind, message, signature);
}

absl::Status CheckKeyMatchesCertificate(absl::string_view private_key_pem,
                                        absl::string_view certificate_pem) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = ReadPrivateKeyPem(private_key_pem);
  if (!key.ok()) return key.status();
  absl::StatusOr<CertificateKey> cert = ReadCertificateKey(certificate_pem);
  if (!cert.ok()) return cert.status();
  // 1: same key; 0: different; negative: different types.
  if (EVP_PKEY_eq(cert->key, key->get()) != 1) {
    crypto_internal::ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        "the private key does not match the certificate");
  }
  return absl::OkStatus();
}

}  // namespace crypto
}  // namespace tessera
