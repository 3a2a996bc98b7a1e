#include "privacy/crypto/signature.h"
#include "privacy/crypto/testing/unhex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::HasSubstr;

struct Ed25519Vector {
  const char* name;
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032, section 7.1, TEST 1-3.
constexpr Ed25519Vector kVectors[] = {
    {"TEST1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Test, Rfc8032KnownAnswers) {
  for (const Ed25519Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    absl::StatusOr<Ed25519Signer> signer =
        Ed25519Signer::FromPrivate(Unhex(v.secret));
    ASSERT_THAT(signer, IsOk());
    EXPECT_EQ(HexEncode(signer->public_key()), v.public_key);
    const std::string message = Unhex(v.message);
    absl::StatusOr<std::string> sig = signer->Sign(message);
    ASSERT_THAT(sig, IsOk());
    EXPECT_EQ(HexEncode(*sig), v.signature);
    EXPECT_THAT(Ed25519Verify(Unhex(v.public_key), message, Unhex(v.signature)),
                IsOk());
  }
}

TEST(Ed25519Test, RejectsTamperedMessageSignatureAndKey) {
  absl::StatusOr<Ed25519Signer> signer = Ed25519Signer::Generate();
  absl::StatusOr<Ed25519Signer> other = Ed25519Signer::Generate();
  ASSERT_THAT(signer, IsOk());
  ASSERT_THAT(other, IsOk());
  absl::StatusOr<std::string> sig = signer->Sign("advertise keys r0");
  ASSERT_THAT(sig, IsOk());
  EXPECT_THAT(Ed25519Verify(signer->public_key(), "advertise keys r0", *sig),
              IsOk());
  EXPECT_THAT(Ed25519Verify(signer->public_key(), "advertise keys r1", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("signature does not verify")));
  std::string flipped = *sig;
  flipped[10] ^= 0x04;
  EXPECT_THAT(Ed25519Verify(signer->public_key(), "advertise keys r0", flipped),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Ed25519Verify(other->public_key(), "advertise keys r0", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      Ed25519Verify(signer->public_key(), "advertise keys r0", sig->substr(1)),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Ed25519Signer::FromPrivate("short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

struct Identity {
  std::string key_pem;   // PKCS#8
  std::string cert_pem;  // self-signed
};

// A self-signed certificate for a fresh key of `type` (e.g. "EC" with
// `curve` "P-256", or "ED25519"), as scripts/make_pki.sh issues.
Identity MakeIdentity(const char* type, const char* curve = nullptr) {
  std::unique_ptr<EVP_PKEY, Deleter> key(
      curve == nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type)
                       : EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve));
  EXPECT_NE(key, nullptr);
  std::unique_ptr<X509, Deleter> cert(X509_new());
  EXPECT_EQ(X509_set_version(cert.get(), 2), 1);
  EXPECT_NE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0), nullptr);
  EXPECT_NE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600), nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  EXPECT_EQ(X509_NAME_add_entry_by_txt(
                name, "CN", MBSTRING_UTF8,
                reinterpret_cast<const unsigned char*>("client-1"), -1, -1, 0),
            1);
  EXPECT_EQ(X509_set_issuer_name(cert.get(), name), 1);
  EXPECT_EQ(X509_set_pubkey(cert.get(), key.get()), 1);
  const bool is_ed25519 = std::string(type) == "ED25519";
  EXPECT_GT(
      X509_sign(cert.get(), key.get(), is_ed25519 ? nullptr : EVP_sha256()), 0);
  Identity id;
  std::unique_ptr<BIO, Deleter> key_bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr,
                                     0, nullptr, nullptr),
            1);
  id.key_pem = BioContents(key_bio.get());
  std::unique_ptr<BIO, Deleter> cert_bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(cert_bio.get(), cert.get()), 1);
  id.cert_pem = BioContents(cert_bio.get());
  return id;
}

TEST(CertificateSignatureTest, EcdsaP256RoundTripAndTamper) {
  const Identity id = MakeIdentity("EC", "P-256");
  absl::StatusOr<std::string> sig = SignWithPrivateKeyPem(id.key_pem, "msg");
  ASSERT_THAT(sig, IsOk());
  EXPECT_LE(sig->size(), 72u);
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg", *sig), IsOk());
  // Randomized: a second signature differs but verifies too.
  absl::StatusOr<std::string> sig2 = SignWithPrivateKeyPem(id.key_pem, "msg");
  ASSERT_THAT(sig2, IsOk());
  EXPECT_NE(*sig, *sig2);
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg", *sig2), IsOk());

  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msh", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("signature does not verify")));
  std::string flipped = *sig;
  flipped[flipped.size() - 3] ^= 0x01;
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg", flipped),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg", "not DER"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const Identity other = MakeIdentity("EC", "P-256");
  EXPECT_THAT(VerifyWithCertificate(other.cert_pem, "msg", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CertificateSignatureTest, Ed25519PemMatchesRawSigner) {
  const Identity id = MakeIdentity("ED25519");
  absl::StatusOr<std::string> sig = SignWithPrivateKeyPem(id.key_pem, "msg");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(sig->size(), kEd25519SignatureBytes);
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg", *sig), IsOk());
  EXPECT_THAT(VerifyWithCertificate(id.cert_pem, "msg2", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Pure Ed25519 is deterministic.
  EXPECT_THAT(SignWithPrivateKeyPem(id.key_pem, "msg"), IsOkAndHolds(*sig));
}

TEST(CertificateSignatureTest, RejectsUnsupportedAndMalformedInputs) {
  const Identity p384 = MakeIdentity("EC", "P-384");
  EXPECT_THAT(SignWithPrivateKeyPem(p384.key_pem, "m"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(VerifyWithCertificate(p384.cert_pem, "m", "sig"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(SignWithPrivateKeyPem("", "m"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWithPrivateKeyPem("-----BEGIN PRIVATE KEY-----\n", "m"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(VerifyWithCertificate("garbage", "m", "sig"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Encrypted keys are refused without prompting for a passphrase.
  {
    std::unique_ptr<EVP_PKEY, Deleter> key(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_NE(key, nullptr);
    std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
    char passphrase[] = "secret";
    ASSERT_EQ(
        PEM_write_bio_PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(),
                                 reinterpret_cast<unsigned char*>(passphrase),
                                 6, nullptr, nullptr),
        1);
    EXPECT_THAT(
        SignWithPrivateKeyPem(BioContents(bio.get()), "m"),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unencrypted")));
  }
  // A key PEM is not a certificate.
  const Identity ec = MakeIdentity("EC", "P-256");
  EXPECT_THAT(VerifyWithCertificate(ec.key_pem, "m", "sig"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// PEM of DER `der` under `label`, 64 base64 characters a line (as OpenSSL writes).
std::string Pem(absl::string_view label, absl::string_view der) {
  const std::string b64 = absl::Base64Escape(der);
  std::string out = absl::StrCat("-----BEGIN ", label, "-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) {
    absl::StrAppend(&out, b64.substr(i, 64), "\n");
  }
  absl::StrAppend(&out, "-----END ", label, "-----\n");
  return out;
}

// RFC 8032 TEST 1 through the PEM functions: the PKCS#8 key (RFC 8410 section 7 layout)
// signs the empty message with the RFC's signature, and its SubjectPublicKeyInfo is the
// RFC's public key.
TEST(PemSignatureTest, Ed25519Rfc8032Test1ThroughPem) {
  const Ed25519Vector& v = kVectors[0];
  const std::string key_pem =
      Pem("PRIVATE KEY", Unhex(absl::StrCat("302e020100300506032b657004220420", v.secret)));
  const std::string spki = Unhex(absl::StrCat("302a300506032b6570032100", v.public_key));
  EXPECT_THAT(PrivateKeyType(key_pem), IsOkAndHolds(SignatureKeyType::kEd25519));
  absl::StatusOr<std::string> sig = SignWithPrivateKeyPem(key_pem, "");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(HexEncode(*sig), v.signature);
  EXPECT_THAT(PublicKeyPemOfPrivateKey(key_pem), IsOkAndHolds(Pem("PUBLIC KEY", spki)));
  const std::string public_pem = Pem("PUBLIC KEY", spki);
  EXPECT_THAT(PublicKeyType(public_pem), IsOkAndHolds(SignatureKeyType::kEd25519));
  EXPECT_THAT(VerifyWithPublicKeyPem(public_pem, "", Unhex(v.signature)), IsOk());
  EXPECT_THAT(VerifyWithPublicKeyPem(public_pem, "x", Unhex(v.signature)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("signature does not verify")));
  EXPECT_THAT(PublicKeyFingerprintSha256Hex(public_pem),
              IsOkAndHolds(HexEncode(Sha256Digest(spki))));
}

TEST(PemSignatureTest, GeneratedEd25519KeySignsAndVerifies) {
  absl::StatusOr<std::string> key = GenerateEd25519PrivateKeyPem();
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  absl::StatusOr<std::string> other = GenerateEd25519PrivateKeyPem();
  ASSERT_THAT(other, IsOk());
  EXPECT_NE(*key, *other);
  absl::StatusOr<std::string> public_pem = PublicKeyPemOfPrivateKey(*key);
  ASSERT_THAT(public_pem, IsOk());
  absl::StatusOr<std::string> sig = SignWithPrivateKeyPem(*key, "bom");
  ASSERT_THAT(sig, IsOk());
  EXPECT_THAT(VerifyWithPublicKeyPem(*public_pem, "bom", *sig), IsOk());
  EXPECT_THAT(VerifyWithPublicKeyPem(*public_pem, "bom!", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::string> other_public = PublicKeyPemOfPrivateKey(*other);
  ASSERT_THAT(other_public, IsOk());
  EXPECT_THAT(VerifyWithPublicKeyPem(*other_public, "bom", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(PublicKeyFingerprintSha256Hex(*public_pem).value(),
            PublicKeyFingerprintSha256Hex(*other_public).value());
}

TEST(PemSignatureTest, P256PublicKeyPemAndKeyTypes) {
  const Identity id = MakeIdentity("EC", "P-256");
  EXPECT_THAT(PrivateKeyType(id.key_pem), IsOkAndHolds(SignatureKeyType::kEcdsaP256Sha256));
  EXPECT_THAT(CertificateKeyType(id.cert_pem),
              IsOkAndHolds(SignatureKeyType::kEcdsaP256Sha256));
  EXPECT_THAT(CertificateKeyType(MakeIdentity("ED25519").cert_pem),
              IsOkAndHolds(SignatureKeyType::kEd25519));
  absl::StatusOr<std::string> public_pem = PublicKeyPemOfPrivateKey(id.key_pem);
  ASSERT_THAT(public_pem, IsOk());
  EXPECT_THAT(PublicKeyType(*public_pem), IsOkAndHolds(SignatureKeyType::kEcdsaP256Sha256));
  absl::StatusOr<std::string> sig = SignWithPrivateKeyPem(id.key_pem, "m");
  ASSERT_THAT(sig, IsOk());
  EXPECT_THAT(VerifyWithPublicKeyPem(*public_pem, "m", *sig), IsOk());
  EXPECT_THAT(PublicKeyType(MakeIdentity("EC", "P-384").cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PrivateKeyType(MakeIdentity("EC", "P-384").key_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  // A certificate is not a bare public key, nor the other way round.
  EXPECT_THAT(VerifyWithPublicKeyPem(id.cert_pem, "m", *sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CertificateKeyType(*public_pem), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PublicKeyFingerprintSha256Hex("garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PemSignatureTest, CheckKeyMatchesCertificate) {
  const Identity ec = MakeIdentity("EC", "P-256");
  const Identity ed = MakeIdentity("ED25519");
  EXPECT_THAT(CheckKeyMatchesCertificate(ec.key_pem, ec.cert_pem), IsOk());
  EXPECT_THAT(CheckKeyMatchesCertificate(ed.key_pem, ed.cert_pem), IsOk());
  EXPECT_THAT(CheckKeyMatchesCertificate(MakeIdentity("EC", "P-256").key_pem, ec.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(CheckKeyMatchesCertificate(ed.key_pem, ec.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(CheckKeyMatchesCertificate(ec.cert_pem, ec.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckKeyMatchesCertificate(ec.key_pem, ec.key_pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
