// File: certificate_fuzz.cc
// Fuzzes certificate PEM decoding: ParseCertificateIdentity (the identity of every mTLS
// peer), the chain check against a CA (TrustAnchors), a certificate request (tessera pki
// issue --csr) and a secure aggregation identity certificate (CertificateVerifier).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/pki.h"
#include "privacy/secagg/identity.h"
#include "tests/fuzz/fuzz_pki.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const absl::string_view pem(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(pem);
  fuzz::Report(id.status());
  if (id.ok()) {
    fuzz::Check(id->fingerprint_sha256_hex.size() == 64, "a 64-hex-digit fingerprint");
    fuzz::Check(!id->serial_hex.empty(), "a serial");
  }
  static const std::shared_ptr<const crypto::TrustAnchors> anchors =
      *crypto::TrustAnchors::Create(fuzz::kFuzzCaPem, "");
  fuzz::Report(anchors->Verify(pem));
  fuzz::Report(crypto::ReadCertificateRequest(pem).status());
  // As a secure aggregation peer's advertised identity (the signature cannot verify; the
  // certificate is decoded and checked first).
  static const secagg::VerifyFn verify =
      secagg::CertificateVerifier(*secagg::FixedTrustSource(fuzz::kFuzzCaPem, ""));
  secagg::v1::Identity identity;
  identity.set_certificate_pem(std::string(pem));
  (void)verify(0, identity, "message", "signature").ok();
  return 0;
}
